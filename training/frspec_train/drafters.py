"""Greedy chain drafting for the acceptance measurement (metrics.chain_acceptance): with an EAGLE head,
and with a plain draft LM. No KV caches: these run on short held-out contexts only.
"""
from __future__ import annotations

import torch

from .eagle import EagleHead
from .llama import LlamaLM
from .metrics import next_logits


def eagle_drafter(target: LlamaLM, head: EagleHead):
    """Greedy chain drafting as EAGLE does it: after the context and the target's root token, feed the
    head its own output as the next feature and its own draft token as the next input."""

    @torch.no_grad()
    def draft_after(context: torch.Tensor, root: torch.Tensor, depth: int) -> torch.Tensor:
        features = target.hidden(context)  # f_0 … f_{C-1}
        tokens = torch.cat([context[:, 1:], root], dim=1)  # x_1 … x_{C-1}, then the root
        drafts = []
        for _ in range(depth):
            out = head(target.model.embed_tokens(tokens), features)
            last = out[:, -1:]
            draft = target.logits(last).argmax(-1)
            drafts.append(draft)
            features = torch.cat([features, last.to(features.dtype)], dim=1)
            tokens = torch.cat([tokens, draft], dim=1)
        return torch.cat(drafts, dim=1)

    return draft_after


def lm_drafter(draft: LlamaLM):
    """Greedy chain drafting with a plain draft LM (the root is the target's token, not the draft's)."""

    @torch.no_grad()
    def draft_after(context: torch.Tensor, root: torch.Tensor, depth: int) -> torch.Tensor:
        ids = context
        for _ in range(depth):
            ids = torch.cat([ids, next_logits(draft, ids).argmax(-1, keepdim=True)], dim=1)
        return ids[:, context.shape[1] :]

    return draft_after
