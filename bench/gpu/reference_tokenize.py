"""Reference tokenizer throughput on the GPU host's CPU, for comparison with `fr-spec build-vocab`.

  python3 bench/gpu/reference_tokenize.py TOKENIZER_DIR CORPUS.jsonl.zst [--threads 16]

Measures (1) what the reference FR-Spec `fr.py` does: `AutoTokenizer.encode(text)` per document in one Python
process, and (2) Hugging Face's Rust `Tokenizer.encode_batch` with RAYON_NUM_THREADS threads. Prints MB/s of UTF-8
text and tokens/s for each. Reads .jsonl, .jsonl.gz, or .jsonl.zst with the `zstd` CLI; reading and decompression are not timed.
"""
import argparse, json, os, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("tokenizer_dir")
p.add_argument("corpus")
p.add_argument("--threads", type=int, default=16)
p.add_argument("--skip-python", action="store_true")
a = p.parse_args()
os.environ.setdefault("RAYON_NUM_THREADS", str(a.threads))
os.environ["TOKENIZERS_PARALLELISM"] = "true"

if a.corpus.endswith(".zst"):
    raw = subprocess.run(["zstd", "-dc", "--long=27", a.corpus], check=True, capture_output=True).stdout
elif a.corpus.endswith(".gz"):
    import gzip
    raw = gzip.open(a.corpus).read()
else:
    raw = open(a.corpus, "rb").read()
# split on "\n" only: str.splitlines() also splits on U+2028 and other separators that JSON strings may hold raw
texts = [json.loads(l)["text"] for l in raw.decode("utf-8").split("\n") if l.strip()]
mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
print(f"{len(texts)} documents, {mb:.2f} MB of text, {os.cpu_count()} CPUs")

from tokenizers import Tokenizer
tok = Tokenizer.from_file(os.path.join(a.tokenizer_dir, "tokenizer.json"))
t0 = time.perf_counter()
enc = tok.encode_batch(texts, add_special_tokens=False)
dt = time.perf_counter() - t0
n = sum(len(e.ids) for e in enc)
print(f"rust encode_batch, {os.environ['RAYON_NUM_THREADS']} threads: {dt:.2f} s, {mb/dt:.2f} MB/s, {n/dt:,.0f} tokens/s, {n} tokens")

if not a.skip_python:
    from transformers import AutoTokenizer
    at = AutoTokenizer.from_pretrained(a.tokenizer_dir)
    t0 = time.perf_counter()
    n = 0
    for t in texts:
        n += len(at.encode(t, add_special_tokens=False))
    dt = time.perf_counter() - t0
    print(f"AutoTokenizer.encode per document (fr.py), 1 process: {dt:.2f} s, {mb/dt:.2f} MB/s, {n/dt:,.0f} tokens/s, {n} tokens")
