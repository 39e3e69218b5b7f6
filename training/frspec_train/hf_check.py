"""Checks a saved target or draft checkpoint against Hugging Face transformers: same logits from
transformers' LlamaForCausalLM as from this package's LlamaLM. Skipped when transformers is missing.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .models import load_llama


@torch.no_grad()
def compare_with_transformers(hf_dir: Path, device: torch.device, tokens: int = 48) -> dict[str, float] | None:
    try:
        from transformers import LlamaForCausalLM
    except ImportError:
        return None
    # On the CPU in fp32: the trainer turns on TF32 matmuls for CUDA, whose rounding alone exceeds the 1e-3 bound.
    del device
    device = torch.device("cpu")
    ours = load_llama(hf_dir, device).float()
    theirs = LlamaForCausalLM.from_pretrained(str(hf_dir), attn_implementation="eager").to(device).float().eval()
    ids = torch.randint(0, ours.shape.vocab_size, (2, tokens), generator=torch.Generator().manual_seed(0)).to(device)
    expected = theirs(input_ids=ids).logits.float()
    actual = ours(ids).float()
    error = ((actual - expected).abs().max() / expected.abs().max()).item()
    same_argmax = (actual.argmax(-1) == expected.argmax(-1)).float().mean().item()
    if error > 1e-3:
        raise SystemExit(f"{hf_dir}: LlamaLM and transformers disagree (max relative error {error:.2e}); the checkpoint would not export as trained")
    return {"max_relative_error": error, "argmax_agreement": same_argmax}
