#!/usr/bin/env python3
"""Checks that fr-spec's freq_{r}.pt files load in PyTorch the way FR-Spec and SGLang load them.

Usage: python3 scripts/check-pt.py OUT_DIR/freq_32768.pt [more.pt ...]

Each file must load with torch.load(path, weights_only=True) (what SGLang's
--speculative-token-map does) and with plain torch.load(path) (the reference FR-Spec code),
giving a list of distinct non-negative Python ints.
"""
import sys

import torch


def check(path: str) -> None:
    ids = torch.load(path, weights_only=True)
    assert type(ids) is list, f"{path}: expected a list, got {type(ids).__name__}"
    assert all(type(i) is int for i in ids), f"{path}: not every entry is an int"
    assert all(i >= 0 for i in ids), f"{path}: negative token id"
    assert len(set(ids)) == len(ids), f"{path}: duplicate token ids"
    assert torch.load(path, weights_only=False) == ids, f"{path}: weights_only=False loads something else"
    # SGLang turns the list into a tensor of hot token ids; make sure that works too.
    as_tensor = torch.tensor(ids, dtype=torch.int64)
    assert as_tensor.numel() == len(ids)
    print(f"{path}: ok, {len(ids)} ids, first {ids[:8]}, torch {torch.__version__}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        check(arg)
