"""The Llama-3 tokenizer on the Python side (the `tokenizers` package), and text samples from a model."""
from __future__ import annotations

from pathlib import Path

import torch

from .llama import LlamaLM
from .metrics import sample
from .presets import BOS_ID

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOKENIZER_DIR = REPO_ROOT / "node_modules" / "@lenml" / "tokenizer-llama3" / "models"

SAMPLE_PROMPTS = (
    "The history of the Roman Empire",
    "In mathematics, a prime number is",
    "Once upon a time, in a small village,",
    "def quicksort(items):",
    "The President said on Tuesday that",
)


def load_tokenizer(tokenizer_dir: Path):
    """A `tokenizers.Tokenizer` from tokenizer.json, or None when the package or the file is missing."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    path = tokenizer_dir / "tokenizer.json"
    return Tokenizer.from_file(str(path)) if path.exists() else None


def write_samples(model: LlamaLM, tokenizer, device: torch.device, count: int, seed: int, out: Path) -> list[dict]:
    """Greedy and top-p continuations of SAMPLE_PROMPTS, written to `out` as Markdown and returned."""
    if tokenizer is None:
        out.write_text("(no samples: the python `tokenizers` package or tokenizer.json is missing)\n")
        return []
    samples = []
    for i, prompt in enumerate(SAMPLE_PROMPTS):
        ids = torch.tensor([[BOS_ID, *tokenizer.encode(prompt, add_special_tokens=False).ids]], device=device)
        for mode, temperature in (("greedy", 0.0), ("top-p 0.95, T 0.8", 0.8)):
            continuation = sample(model, ids, count, temperature, 0.95, seed + i)
            samples.append({"prompt": prompt, "mode": mode, "text": tokenizer.decode(continuation[0].tolist(), skip_special_tokens=False)})
    out.write_text("".join(f"### {s['mode']}: {s['prompt']!r}\n\n```\n{s['prompt']}{s['text']}\n```\n\n" for s in samples))
    return samples
