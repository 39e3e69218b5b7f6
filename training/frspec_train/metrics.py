"""Held-out measurements: perplexity, a draft's agreement with the target's next token, and the greedy
chain acceptance length of speculative decoding at a given depth.

Chain acceptance: from a held-out context, the target's greedy continuation is y_1 … y_{k+1}. A plain
draft LM proposes k tokens greedily from the context and is compared with y_1 … y_k; an EAGLE head, which
drafts after the target's own next token y_1 (the root of its tree), proposes k tokens compared with
y_2 … y_{k+1}. A cycle accepts the matching prefix and adds the target's bonus token, so the acceptance
length is 1 + (matching prefix), between 1 and k + 1.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .data import batches
from .llama import LlamaLM, cross_entropy

# (context [B, C], root [B, 1], depth) → draft tokens [B, depth]
Drafter = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


@torch.no_grad()
def perplexity(model: LlamaLM, windows: torch.Tensor, batch: int) -> dict[str, float]:
    total_loss, total_correct, count = 0.0, 0, 0
    for chunk in batches(windows, batch):
        logits = model(chunk[:, :-1])
        targets = chunk[:, 1:]
        total_loss += cross_entropy(logits, targets).item() * targets.numel()
        total_correct += (logits.argmax(-1) == targets).sum().item()
        count += targets.numel()
    loss = total_loss / count
    return {"val_loss": loss, "val_ppl": float(torch.tensor(loss).exp()), "val_top1": total_correct / count}


@torch.no_grad()
def greedy_continuation(model: LlamaLM, context: torch.Tensor, count: int) -> torch.Tensor:
    """`count` greedy tokens after each context row [B, C] → [B, count] (no KV cache: short runs only)."""
    ids = context
    for _ in range(count):
        ids = torch.cat([ids, next_logits(model, ids).argmax(-1, keepdim=True)], dim=1)
    return ids[:, context.shape[1] :]


def next_logits(model: LlamaLM, ids: torch.Tensor) -> torch.Tensor:
    """Logits [B, V] after the last position only (the LM head over every position would be [B, T, V])."""
    return model.logits(model.hidden(ids)[:, -1])


def acceptance_lengths(proposed: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """1 + the length of the prefix where `proposed` [B, k] equals `truth` [B, k], per row."""
    matches = (proposed == truth).long().cumprod(dim=1)
    return 1 + matches.sum(dim=1)


@torch.no_grad()
def chain_acceptance(target: LlamaLM, draft_after: Drafter, contexts: torch.Tensor, depth: int, batch: int, drafts_after_root: bool) -> dict[str, float]:
    """Mean greedy chain acceptance length over contexts [N, C] (see the module docstring).

    `draft_after(context, root, depth)` returns [B, depth] draft tokens; `root` is [B, 1], the
    target's next token, which an EAGLE head conditions on and a plain draft LM ignores.
    """
    lengths = []
    for chunk in batches(contexts, batch):
        truth = greedy_continuation(target, chunk, depth + 1)
        proposed = draft_after(chunk, truth[:, :1], depth)
        expected = truth[:, 1:] if drafts_after_root else truth[:, :depth]
        lengths.append(acceptance_lengths(proposed, expected).float())
    values = torch.cat(lengths)
    return {f"chain_acceptance_depth{depth}": values.mean().item(), "chain_full_accept_rate": (values == depth + 1).float().mean().item()}


def agreement(draft_logits: torch.Tensor, target_logits: torch.Tensor, top: int = 10) -> dict[str, float]:
    """How often the draft's best token is the target's best token, and the target's best is in the draft's top `top`."""
    target_best = target_logits.argmax(-1, keepdim=True)
    draft_top = draft_logits.topk(top, dim=-1).indices
    return {
        "top1_agreement": (draft_top[..., :1] == target_best).float().mean().item(),
        f"top{top}_agreement": (draft_top == target_best).any(-1).float().mean().item(),
    }


def sample(model: LlamaLM, prompt: torch.Tensor, count: int, temperature: float, top_p: float, seed: int) -> torch.Tensor:
    """Top-p sampling (greedy at temperature 0) of `count` tokens after `prompt` [1, P]."""
    generator = torch.Generator(device=prompt.device).manual_seed(seed)
    ids = prompt
    with torch.no_grad():
        for _ in range(count):
            logits = next_logits(model, ids).float()
            if temperature <= 0:
                next_id = logits.argmax(-1, keepdim=True)
            else:
                probs = F.softmax(logits / temperature, dim=-1)
                sorted_probs, order = probs.sort(dim=-1, descending=True)
                keep = sorted_probs.cumsum(-1) - sorted_probs < top_p
                sorted_probs = sorted_probs * keep
                choice = torch.multinomial(sorted_probs / sorted_probs.sum(-1, keepdim=True), 1, generator=generator)
                next_id = order.gather(-1, choice)
            ids = torch.cat([ids, next_id], dim=1)
    return ids[:, prompt.shape[1] :]
