"""Building the models of a run from presets and loading them back from their HF checkpoints."""
from __future__ import annotations

from pathlib import Path

import torch

from .checkpoints import load_hf_tensors, read_config, shape_from_config
from .eagle import EagleHead
from .llama import LlamaLM


def load_llama(hf_dir: Path, device: torch.device, trainable: bool = False) -> LlamaLM:
    """A tied LlamaLM from an HF folder written by save_hf_checkpoint (fp32 weights on `device`)."""
    model = LlamaLM(shape_from_config(read_config(hf_dir)))
    model.load_state_dict(load_hf_tensors(hf_dir), strict=True)
    model.to(device).requires_grad_(trainable)
    return model.train(trainable)


def load_eagle(hf_dir: Path, device: torch.device) -> EagleHead:
    head = EagleHead(shape_from_config(read_config(hf_dir)))
    head.load_state_dict(load_hf_tensors(hf_dir), strict=True)
    return head.to(device).requires_grad_(False).eval()
