#!/usr/bin/env python3
"""Step "data": turns a corpus into the token files training reads: OUT/train.bin and OUT/val.bin
(little-endian uint32 Llama-3 token ids; each document as <|begin_of_text|> text <|end_of_text|>,
concatenated) and OUT/meta.json (counts per file and per set, tokenizer hash, time).

Two routes, by file name:
  text   .jsonl / .jsonl.gz / .jsonl.xz / .jsonl.bz2 (SlimPajama lines {"text", "meta": {"redpajama_set_name"}}),
         .jsonl.zst (needs the python `zstandard` module), .txt[.gz|.xz] (one document per file):
         tokenized with tokenizer.json by the `tokenizers` package, batches encoded on all cores.
  ids    .bin / .bin.gz / .bin.xz (uint32 ids, documents already framed as above) or .npy:
         taken as they are (e.g. ids tokenized elsewhere), only split and checked.

The held-out split comes from --val files (e.g. the corpus's validation shard), or else from the last
--val-fraction of the training input.

  python3 training/prepare_data.py --out OUT/data --val corpus/validation-00000.jsonl.xz corpus/train-*.jsonl.xz
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import sys
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np

BOS_ID, EOS_ID = 128000, 128001
DEFAULT_TOKENIZER = Path(__file__).resolve().parents[1] / "node_modules" / "@lenml" / "tokenizer-llama3" / "models" / "tokenizer.json"
TEXT_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.xz", ".jsonl.bz2", ".jsonl.zst", ".txt", ".txt.gz", ".txt.xz")
ID_SUFFIXES = (".bin", ".bin.gz", ".bin.xz", ".npy")
BATCH_DOCS = 512

Encoder = Callable[[list[str]], list[list[int]]]


def suffix_of(path: Path, suffixes: tuple[str, ...]) -> str | None:
    return next((s for s in sorted(suffixes, key=len, reverse=True) if path.name.endswith(s)), None)


def open_binary(path: Path) -> BinaryIO:
    name = path.name
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".xz"):
        return lzma.open(path, "rb")
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")
    if name.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise SystemExit(f"{path}: reading .zst needs the python zstandard module; recompress first: zstd -dc --long=27 {name} | xz -T0 -6 > {name[:-4]}.xz")
        return zstandard.ZstdDecompressor(max_window_size=2**27).stream_reader(open(path, "rb"))
    return open(path, "rb")


def documents(path: Path, sets: set[str] | None) -> Iterator[tuple[str, str]]:
    """(set name, text) of every document of a text file."""
    with open_binary(path) as raw:
        if ".txt" in path.name:
            yield "text", raw.read().decode("utf-8")
            return
        with io.TextIOWrapper(raw, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    text = record["text"]
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise SystemExit(f"{path}:{number}: not a JSONL document with a text field ({error})")
                set_name = (record.get("meta") or {}).get("redpajama_set_name", "unknown")
                if sets is None or set_name in sets:
                    yield set_name, text


def framed(ids: Iterable[int]) -> list[int]:
    return [BOS_ID, *ids, EOS_ID]


class TokenWriter:
    """Appends uint32 ids to a file and counts them per set."""

    def __init__(self, path: Path):
        self.file = open(path, "wb")
        self.tokens = 0
        self.documents = 0
        self.per_set: dict[str, int] = {}

    def add(self, ids: np.ndarray, set_name: str, documents: int) -> None:
        ids.astype("<u4", copy=False).tofile(self.file)
        self.tokens += int(ids.size)
        self.documents += documents
        self.per_set[set_name] = self.per_set.get(set_name, 0) + int(ids.size)

    def close(self) -> dict:
        self.file.close()  # closing twice is harmless
        return {"tokens": self.tokens, "documents": self.documents, "tokens_per_set": dict(sorted(self.per_set.items()))}


def tokenize_text(paths: list[Path], encode: Encoder, sets: set[str] | None, writers: Callable[[int], TokenWriter]) -> None:
    """Encodes documents in batches; `writers(n)` says which writer the n-th document goes to."""
    pending: list[tuple[str, str]] = []
    number = 0

    def flush() -> None:
        nonlocal number
        for (set_name, _), ids in zip(pending, encode([text for _, text in pending])):
            writers(number).add(np.asarray(framed(ids), dtype=np.uint32), set_name, 1)
            number += 1
        pending.clear()

    for path in paths:
        for document in documents(path, sets):
            pending.append(document)
            if len(pending) >= BATCH_DOCS:
                flush()
    flush()


def read_ids(path: Path) -> np.ndarray:
    if path.name.endswith(".npy"):
        ids = np.load(path)
    else:
        with open_binary(path) as f:
            ids = np.frombuffer(f.read(), dtype="<u4")
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or (ids.size and (ids.min() < 0 or ids.max() >= 2**31)):
        raise SystemExit(f"{path}: expected a flat array of token ids")
    return ids.astype(np.uint32, copy=False)


def hf_encoder(tokenizer_path: Path) -> Encoder:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise SystemExit("tokenizing text needs the python `tokenizers` package (or pass pre-tokenized .bin/.npy ids)")
    if not tokenizer_path.exists():
        raise SystemExit(f"{tokenizer_path}: no tokenizer.json (pass --tokenizer)")
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    return lambda texts: [encoding.ids for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def classify(paths: list[Path]) -> str:
    kinds = {"text" if suffix_of(p, TEXT_SUFFIXES) else "ids" if suffix_of(p, ID_SUFFIXES) else p.name for p in paths}
    unknown = kinds - {"text", "ids"}
    if unknown:
        raise SystemExit(f"cannot read {', '.join(sorted(unknown))}: expected {', '.join(TEXT_SUFFIXES + ID_SUFFIXES)}")
    if len(kinds) > 1:
        raise SystemExit("mix of text and id files: prepare them separately")
    return kinds.pop() if kinds else "text"


def write_splits(route: str, inputs: list[Path], val_inputs: list[Path], val_fraction: float, sets: set[str] | None, encode: Encoder | None, tokenizer_file: Path, train: TokenWriter, val: TokenWriter) -> None:
    if route == "text":
        encode = encode or hf_encoder(tokenizer_file)
        if val_inputs:
            tokenize_text(val_inputs, encode, sets, lambda n: val)
            tokenize_text(inputs, encode, sets, lambda n: train)
        else:
            # Every k-th document is held out: a spread-out sample of the same mix.
            stride = max(2, round(1 / val_fraction))
            tokenize_text(inputs, encode, sets, lambda n: val if n % stride == stride - 1 else train)
        return
    for path in val_inputs:
        val.add(read_ids(path), path.name, 0)
    for path in inputs:
        ids = read_ids(path)
        held = 0 if val_inputs else int(ids.size * val_fraction)
        train.add(ids[: ids.size - held], path.name, 0)
        if held:
            val.add(ids[ids.size - held :], path.name, 0)


def prepare(inputs: list[Path], val_inputs: list[Path], out: Path, val_fraction: float, sets: set[str] | None, encode: Encoder | None, tokenizer_path: Path | None) -> dict:
    """Writes train.bin, val.bin and meta.json into `out` (through a temporary sibling folder)."""
    for path in inputs + val_inputs:
        if not path.exists():
            raise SystemExit(f"{path}: no such file")
    route = classify(inputs + val_inputs)
    tokenizer_file = tokenizer_path or DEFAULT_TOKENIZER
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.time()
    train, val = TokenWriter(tmp / "train.bin"), TokenWriter(tmp / "val.bin")
    try:
        write_splits(route, inputs, val_inputs, val_fraction, sets, encode, tokenizer_file, train, val)
        meta = {
            "route": route,
            "inputs": [str(p) for p in inputs],
            "val_inputs": [str(p) for p in val_inputs] or f"every {round(1 / val_fraction)}th document / last {val_fraction:.3%} of the ids",
            "sets": sorted(sets) if sets else "all",
            "bos_id": BOS_ID,
            "eos_id": EOS_ID,
            "tokenizer": {"path": str(tokenizer_file), "sha256": sha256_of(tokenizer_file)} if route == "text" and tokenizer_file.exists() else None,
            "train": train.close(),
            "val": val.close(),
            "seconds": round(time.time() - started, 1),
        }
        if meta["train"]["tokens"] == 0 or meta["val"]["tokens"] == 0:
            raise SystemExit(f"empty split: {meta['train']['tokens']} training and {meta['val']['tokens']} held-out tokens")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    except BaseException:
        train.close()
        val.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return meta


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, help="training corpus files (text or ids, see above)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    parser.add_argument("--val", action="append", default=[], type=Path, metavar="FILE", help="a held-out file (repeat for more); default: split off --val-fraction of the inputs")
    parser.add_argument("--val-fraction", type=float, default=0.01)
    parser.add_argument("--sets", help="only these redpajama_set_names, comma-separated")
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="Llama-3 tokenizer.json")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="tokenizer threads")
    args = parser.parse_args()
    # The tokenizers package sizes its thread pool from this variable when it starts.
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))
    sets = set(args.sets.split(",")) if args.sets else None
    meta = prepare(args.inputs, args.val, args.out, args.val_fraction, sets, None, args.tokenizer)
    train, val = meta["train"], meta["val"]
    print(f"wrote {args.out}: {train['tokens']:,} training tokens ({train['documents']:,} documents), {val['tokens']:,} held-out tokens, in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
