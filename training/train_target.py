#!/usr/bin/env python3
"""Step "target": trains a Llama-architecture LM with the Llama-3 tokenizer (tied 128,256-token
embedding) on the prepared corpus, then writes OUT/target/hf (LlamaForCausalLM safetensors +
config.json + tokenizer files), metrics.json (held-out perplexity), loss.csv, eval.csv and samples.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

from frspec_train.checkpoints import llama_config, save_hf_checkpoint
from frspec_train.data import load_splits
from frspec_train.hf_check import compare_with_transformers
from frspec_train.llama import LlamaLM, cross_entropy, init_weights
from frspec_train.metrics import perplexity
from frspec_train.presets import parameter_counts
from frspec_train.runtime import StepContext, autocast, common_arguments, log
from frspec_train.text import DEFAULT_TOKENIZER_DIR, load_tokenizer, write_samples

RESUME_EXIT_CODE = 75


def main() -> int:
    parser = common_arguments(__doc__)
    parser.add_argument("--tokenizer-dir", type=Path, default=DEFAULT_TOKENIZER_DIR, help="folder with the Llama-3 tokenizer.json (copied into the checkpoint)")
    args = parser.parse_args()
    ctx = StepContext(args, "target")
    shape, settings = ctx.preset.target, ctx.preset.target_train
    hf_dir = ctx.run_dir / "hf"
    train, val = load_splits(ctx.data_dir, ctx.device)
    log(f"data: {len(train):,} training tokens, {len(val):,} held-out tokens")

    model = LlamaLM(shape)
    init_weights(model, shape.num_layers)
    model.to(ctx.device)
    trainer = ctx.trainer(model, settings)
    if ctx.already_trained(trainer, hf_dir):
        return 0

    eval_windows = val.spread_windows(settings.eval_windows, settings.seq_len + 1)

    def micro_step(step: int, micro: int):
        window = train.random_windows(settings.micro_batch, settings.seq_len + 1, (ctx.seed, step, micro))
        with autocast(ctx.device):
            return cross_entropy(model(window[:, :-1]), window[:, 1:]), {}

    def evaluate():
        with autocast(ctx.device):
            return perplexity(model, eval_windows, settings.micro_batch)

    if not trainer.finished and not trainer.run(micro_step, evaluate):
        return RESUME_EXIT_CODE

    model.eval()
    final_windows = val.spread_windows(settings.final_eval_windows, settings.seq_len + 1)
    with autocast(ctx.device):
        held_out = trainer.evaluate(lambda: perplexity(model, final_windows, settings.micro_batch))
        samples = write_samples(model, load_tokenizer(args.tokenizer_dir), ctx.device, ctx.preset.sample_tokens, ctx.seed, ctx.run_dir / "samples.md")
    save_hf_checkpoint(hf_dir, model.state_dict(), llama_config(shape, "float16"), tokenizer_dir=args.tokenizer_dir, generation_config=True)
    log(f"wrote {hf_dir}")
    transformers_check = compare_with_transformers(hf_dir, ctx.device)
    log(f"transformers check: {transformers_check or 'skipped (no transformers)'}")
    ctx.write_metrics(
        {
            "part": "target",
            "preset": ctx.preset.name,
            "parameters": parameter_counts(shape),
            "steps": trainer.progress.step,
            "tokens": trainer.progress.tokens,
            "train_minutes": trainer.progress.train_seconds / 60,
            "held_out": {**held_out, "windows": int(final_windows.shape[0]), "tokens": int(final_windows[:, 1:].numel())},
            "transformers_check": transformers_check,
            "samples": samples,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
