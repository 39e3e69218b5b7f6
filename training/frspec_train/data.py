"""Token streams written by prepare_data.py (little-endian uint32 ids, documents as
<|begin_of_text|> text <|end_of_text|>, concatenated) and the windows training and evaluation read.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

TRAIN_FILE = "train.bin"
VAL_FILE = "val.bin"
META_FILE = "meta.json"


class TokenStream:
    """One split's ids, held on the training device as int32 so windows are gathered there."""

    def __init__(self, path: Path, device: torch.device):
        ids = np.fromfile(path, dtype="<u4")
        if ids.size == 0:
            raise SystemExit(f"{path}: no tokens")
        if int(ids.max()) >= 2**31:
            raise SystemExit(f"{path}: ids beyond int32; is this a uint32 token file?")
        self.path = path
        self.tokens = torch.from_numpy(ids.astype(np.int32)).to(device)

    def __len__(self) -> int:
        return self.tokens.numel()

    def _gather(self, starts: np.ndarray, length: int) -> torch.Tensor:
        if len(self) < length:
            raise SystemExit(f"{self.path}: {len(self)} tokens, fewer than one window of {length}")
        offsets = torch.as_tensor(starts, device=self.tokens.device, dtype=torch.long)[:, None]
        return self.tokens[offsets + torch.arange(length, device=self.tokens.device)].long()

    def random_windows(self, count: int, length: int, seed: tuple[int, ...]) -> torch.Tensor:
        """`count` windows [count, length] at random offsets; the same seed gives the same windows."""
        rng = np.random.default_rng(list(seed))
        return self._gather(rng.integers(0, len(self) - length + 1, size=count), length)

    def spread_windows(self, count: int, length: int) -> torch.Tensor:
        """`count` windows evenly spread over the split (fixed: the held-out set of every evaluation)."""
        count = max(1, min(count, len(self) // length))
        return self._gather(np.linspace(0, len(self) - length, count).astype(np.int64), length)


def load_splits(data_dir: Path, device: torch.device) -> tuple[TokenStream, TokenStream]:
    for name in (TRAIN_FILE, VAL_FILE):
        if not (data_dir / name).exists():
            raise SystemExit(f"{data_dir / name} is missing: run the data step first (training/prepare_data.py)")
    return TokenStream(data_dir / TRAIN_FILE, device), TokenStream(data_dir / VAL_FILE, device)


def read_meta(data_dir: Path) -> dict:
    path = data_dir / META_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def batches(windows: torch.Tensor, size: int):
    for start in range(0, windows.shape[0], size):
        yield windows[start : start + size]
