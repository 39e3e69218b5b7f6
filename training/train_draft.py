#!/usr/bin/env python3
"""Step "draft": trains a small plain draft LM for SpS and Ouroboros: the target's shape with fewer
layers, started from the target's first layers and final norm, sharing the target's embedding and
(tied) LM head, both frozen, so the exported draft.onnx adds only its layers. Loss: cross-entropy on
the corpus mixed with the target's next-token distribution. Writes OUT/draft/hf, metrics.json
(held-out perplexity, agreement with the target, greedy chain acceptance), loss.csv, eval.csv.
"""
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from frspec_train.checkpoints import llama_config, save_hf_checkpoint
from frspec_train.data import batches, load_splits
from frspec_train.drafters import lm_drafter
from frspec_train.hf_check import compare_with_transformers
from frspec_train.llama import LlamaLM
from frspec_train.metrics import agreement, chain_acceptance, perplexity
from frspec_train.models import load_llama
from frspec_train.presets import parameter_counts
from frspec_train.runtime import StepContext, autocast, common_arguments, log

RESUME_EXIT_CODE = 75
DATA_STREAM = 2


def start_from_target(draft: LlamaLM, target: LlamaLM) -> None:
    """The target's embedding (frozen: it is also the tied head), first layers and final norm."""
    draft.model.embed_tokens.weight.data.copy_(target.model.embed_tokens.weight.data)
    draft.model.embed_tokens.weight.requires_grad_(False)
    for mine, theirs in zip(draft.model.layers, target.model.layers):
        mine.load_state_dict(theirs.state_dict())
    draft.model.norm.load_state_dict(target.model.norm.state_dict())


def draft_loss(target: LlamaLM, draft: LlamaLM, window: torch.Tensor, distill_weight: float):
    ids, labels = window[:, :-1], window[:, 1:]
    logprobs = F.log_softmax(draft(ids).float(), dim=-1)
    corpus_loss = F.nll_loss(logprobs.flatten(0, 1), labels.flatten())
    with torch.no_grad():
        target_probs = F.softmax(target(ids).float(), dim=-1)
    distill_loss = -(target_probs * logprobs).sum(-1).mean()
    loss = (1 - distill_weight) * corpus_loss + distill_weight * distill_loss
    return loss, {"corpus_loss": corpus_loss.item(), "distill_loss": distill_loss.item()}


def held_out(target: LlamaLM, draft: LlamaLM, windows: torch.Tensor, batch: int) -> dict[str, float]:
    metrics = perplexity(draft, windows, batch)
    for chunk in batches(windows, batch):
        ids = chunk[:, :-1]
        for key, value in agreement(draft(ids).float(), target(ids).float()).items():
            metrics[key] = metrics.get(key, 0.0) + value * chunk.shape[0] / windows.shape[0]
    return metrics


def main() -> int:
    args = common_arguments(__doc__).parse_args()
    ctx = StepContext(args, "draft")
    preset, settings = ctx.preset, ctx.preset.draft_train
    hf_dir = ctx.run_dir / "hf"
    train, val = load_splits(ctx.data_dir, ctx.device)
    target = load_llama(ctx.part_dir("target") / "hf", ctx.device)

    draft = LlamaLM(preset.draft_shape()).to(ctx.device)
    start_from_target(draft, target)
    trainer = ctx.trainer(draft, settings)
    if ctx.already_trained(trainer, hf_dir):
        return 0

    eval_windows = val.spread_windows(settings.eval_windows, settings.seq_len + 1)

    def micro_step(step: int, micro: int):
        window = train.random_windows(settings.micro_batch, settings.seq_len + 1, (ctx.seed, DATA_STREAM, step, micro))
        with autocast(ctx.device):
            return draft_loss(target, draft, window, settings.distill_weight)

    def evaluate():
        with autocast(ctx.device):
            return held_out(target, draft, eval_windows, settings.micro_batch)

    if not trainer.finished and not trainer.run(micro_step, evaluate):
        return RESUME_EXIT_CODE

    draft.eval()
    final_windows = val.spread_windows(settings.final_eval_windows, settings.seq_len + 1)
    contexts = val.spread_windows(preset.chain_positions, preset.chain_context)
    with autocast(ctx.device):
        final = trainer.evaluate(lambda: held_out(target, draft, final_windows, settings.micro_batch))
        with torch.no_grad():
            chain = chain_acceptance(target, lm_drafter(draft), contexts, preset.chain_depth, batch=64, drafts_after_root=False)
    log(f"chain acceptance: {chain}")
    save_hf_checkpoint(hf_dir, draft.state_dict(), llama_config(preset.draft_shape(), "float16"))
    log(f"wrote {hf_dir}")
    transformers_check = compare_with_transformers(hf_dir, ctx.device)
    log(f"transformers check: {transformers_check or 'skipped (no transformers)'}")
    ctx.write_metrics(
        {
            "part": "draft",
            "preset": preset.name,
            "parameters": parameter_counts(preset.draft_shape()),
            "steps": trainer.progress.step,
            "tokens": trainer.progress.tokens,
            "train_minutes": trainer.progress.train_seconds / 60,
            "held_out": {**final, "windows": int(final_windows.shape[0])},
            "chain": {**chain, "depth": preset.chain_depth, "contexts": int(contexts.shape[0]), "context_tokens": preset.chain_context},
            "transformers_check": transformers_check,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
