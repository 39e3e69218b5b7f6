#!/usr/bin/env python3
"""Step "eagle": trains an EAGLE-1/2 draft head on the target's own hidden states (target frozen,
its embedding and LM head reused), then writes OUT/eagle/hf (fc.weight [d, 2d], layers.0.*, a config
like yuhuili/EAGLE-LLaMA3-Instruct-8B's), metrics.json (top-1/top-10 agreement with the target's next
token, greedy chain acceptance length), loss.csv and eval.csv.
"""
from __future__ import annotations

import sys

import torch

from frspec_train.checkpoints import eagle_config, save_hf_checkpoint
from frspec_train.data import batches, load_splits
from frspec_train.drafters import eagle_drafter
from frspec_train.eagle import EagleHead, eagle_agreement_logits, eagle_loss
from frspec_train.llama import init_weights
from frspec_train.metrics import agreement, chain_acceptance
from frspec_train.models import load_llama
from frspec_train.runtime import StepContext, autocast, common_arguments, log

RESUME_EXIT_CODE = 75
DATA_STREAM = 1  # keeps this step's random windows apart from the target's


def held_out_agreement(target, head, windows: torch.Tensor, batch: int) -> dict[str, float]:
    totals: dict[str, float] = {}
    for chunk in batches(windows, batch):
        for key, value in agreement(*eagle_agreement_logits(target, head, chunk)).items():
            totals[key] = totals.get(key, 0.0) + value * chunk.shape[0] / windows.shape[0]
    return totals


def main() -> int:
    args = common_arguments(__doc__).parse_args()
    ctx = StepContext(args, "eagle")
    preset, settings = ctx.preset, ctx.preset.eagle_train
    hf_dir = ctx.run_dir / "hf"
    train, val = load_splits(ctx.data_dir, ctx.device)
    target = load_llama(ctx.part_dir("target") / "hf", ctx.device)

    head = EagleHead(preset.eagle_shape())
    init_weights(head, 1)
    head.to(ctx.device)
    trainer = ctx.trainer(head, settings)
    if ctx.already_trained(trainer, hf_dir):
        return 0

    eval_windows = val.spread_windows(settings.eval_windows, settings.seq_len)

    def micro_step(step: int, micro: int):
        window = train.random_windows(settings.micro_batch, settings.seq_len, (ctx.seed, DATA_STREAM, step, micro))
        with autocast(ctx.device):
            return eagle_loss(target, head, window, settings.feature_noise, settings.token_loss_weight)

    def evaluate():
        with autocast(ctx.device):
            return held_out_agreement(target, head, eval_windows, settings.micro_batch)

    if not trainer.finished and not trainer.run(micro_step, evaluate):
        return RESUME_EXIT_CODE

    head.eval()
    final_windows = val.spread_windows(settings.final_eval_windows, settings.seq_len)
    contexts = val.spread_windows(preset.chain_positions, preset.chain_context)
    with autocast(ctx.device):
        held_out = trainer.evaluate(lambda: held_out_agreement(target, head, final_windows, settings.micro_batch))
        with torch.no_grad():
            chain = chain_acceptance(target, eagle_drafter(target, head), contexts, preset.chain_depth, batch=64, drafts_after_root=True)
    log(f"chain acceptance: {chain}")
    save_hf_checkpoint(hf_dir, head.state_dict(), eagle_config(preset.eagle_shape(), "float16"))
    log(f"wrote {hf_dir}")
    ctx.write_metrics(
        {
            "part": "eagle",
            "preset": preset.name,
            "parameters": sum(p.numel() for p in head.parameters()),
            "steps": trainer.progress.step,
            "tokens": trainer.progress.tokens,
            "train_minutes": trainer.progress.train_seconds / 60,
            "held_out": {**held_out, "windows": int(final_windows.shape[0])},
            "chain": {**chain, "depth": preset.chain_depth, "contexts": int(contexts.shape[0]), "context_tokens": preset.chain_context},
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
