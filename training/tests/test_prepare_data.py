"""CPU checks of prepare_data.py's reading, framing and splitting (a stand-in encoder replaces the
Llama-3 tokenizer, so no `tokenizers` package is needed): python3 -m unittest discover training/tests
"""
from __future__ import annotations

import gzip
import json
import lzma
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import prepare_data  # noqa: E402
from prepare_data import BOS_ID, EOS_ID, prepare  # noqa: E402


def word_lengths(texts: list[str]) -> list[list[int]]:
    """Stand-in tokenizer: one id per word, the word's length."""
    return [[len(word) for word in text.split()] for text in texts]


def jsonl(docs: list[tuple[str, str]]) -> bytes:
    return "".join(json.dumps({"text": text, "meta": {"redpajama_set_name": name}}) + "\n" for name, text in docs).encode()


class PrepareDataTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.dir, True)

    def ids(self, name: str) -> list[int]:
        return np.fromfile(self.dir / "out" / name, dtype="<u4").tolist()

    def test_text_with_a_validation_file(self):
        (self.dir / "a.jsonl.xz").write_bytes(lzma.compress(jsonl([("RedPajamaBook", "one three"), ("RedPajamaGithub", "x = 1")])))
        (self.dir / "b.jsonl.gz").write_bytes(gzip.compress(jsonl([("RedPajamaBook", "hello")])))
        (self.dir / "val.jsonl").write_bytes(jsonl([("RedPajamaC4", "held out")]))
        meta = prepare([self.dir / "a.jsonl.xz", self.dir / "b.jsonl.gz"], [self.dir / "val.jsonl"], self.dir / "out", 0.01, None, word_lengths, None)
        self.assertEqual(self.ids("train.bin"), [BOS_ID, 3, 5, EOS_ID, BOS_ID, 1, 1, 1, EOS_ID, BOS_ID, 5, EOS_ID])
        self.assertEqual(self.ids("val.bin"), [BOS_ID, 4, 3, EOS_ID])
        self.assertEqual(meta["train"], {"tokens": 12, "documents": 3, "tokens_per_set": {"RedPajamaBook": 7, "RedPajamaGithub": 5}})
        self.assertEqual(json.loads((self.dir / "out" / "meta.json").read_text())["val"]["documents"], 1)

    def test_text_split_and_set_filter(self):
        docs = [("RedPajamaBook", "w" * (i + 1)) for i in range(10)] + [("RedPajamaGithub", "code")]
        (self.dir / "c.jsonl").write_bytes(jsonl(docs))
        meta = prepare([self.dir / "c.jsonl"], [], self.dir / "out", 0.25, {"RedPajamaBook"}, word_lengths, None)
        # Every 4th book document is held out; the Github one is filtered away.
        self.assertEqual(self.ids("val.bin"), [BOS_ID, 4, EOS_ID, BOS_ID, 8, EOS_ID])
        self.assertEqual(meta["train"]["documents"], 8)
        self.assertNotIn("RedPajamaGithub", meta["train"]["tokens_per_set"])

    def test_pre_tokenized_ids(self):
        ids = np.arange(100, dtype="<u4")
        (self.dir / "ids.bin.xz").write_bytes(lzma.compress(ids.tobytes()))
        np.save(self.dir / "more.npy", np.arange(7, dtype=np.int64))
        meta = prepare([self.dir / "ids.bin.xz", self.dir / "more.npy"], [], self.dir / "out", 0.1, None, None, None)
        self.assertEqual(self.ids("train.bin"), list(range(90)) + list(range(7)))
        self.assertEqual(self.ids("val.bin"), list(range(90, 100)))
        self.assertEqual(meta["route"], "ids")

    def test_bad_input(self):
        (self.dir / "a.parquet").write_bytes(b"")
        with self.assertRaisesRegex(SystemExit, "cannot read a.parquet"):
            prepare([self.dir / "a.parquet"], [], self.dir / "out", 0.1, None, word_lengths, None)
        (self.dir / "bad.jsonl").write_text('{"text": "ok"}\nnot json\n')
        with self.assertRaisesRegex(SystemExit, r"bad.jsonl:2: not a JSONL document"):
            prepare([self.dir / "bad.jsonl"], [], self.dir / "out", 0.5, None, word_lengths, None)
        np.save(self.dir / "x.npy", np.zeros(4))
        (self.dir / "t.jsonl").write_bytes(jsonl([("a", "b")]))
        with self.assertRaisesRegex(SystemExit, "mix of text and id files"):
            prepare([self.dir / "t.jsonl", self.dir / "x.npy"], [], self.dir / "out", 0.1, None, word_lengths, None)
        with self.assertRaisesRegex(SystemExit, "expected a flat array of token ids"):
            prepare([self.dir / "x.npy"], [], self.dir / "out", 0.5, None, None, None)
        self.assertFalse((self.dir / "out").exists())
        self.assertFalse((self.dir / "out.tmp").exists(), "nothing left behind")
        self.assertIsNone(prepare_data.suffix_of(Path("a.json"), prepare_data.TEXT_SUFFIXES))


if __name__ == "__main__":
    unittest.main()
