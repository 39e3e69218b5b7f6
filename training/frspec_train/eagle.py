"""The EAGLE-1/2 draft head (SafeAILab/EAGLE `cnets1.py`, as docs/model-contract.md §5 describes it)
and its training loss.

    out = layers(fc([embed_target(x_{t+1}); f_t]))      layer 0 without input norm, no final norm

f_t is the target's hidden state after its final norm; the head reuses the target's embedding and LM
head, both frozen. Trained as EAGLE-1: at position t the head sees (f_t + noise, x_{t+1}) and must
produce f_{t+1}; loss = SmoothL1(out_t, f_{t+1}) + 0.1 × CE(lm_head(out_t), softmax(lm_head(f_{t+1}))).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .llama import DecoderLayer, LlamaLM, rope_tables
from .presets import DecoderShape


class EagleHead(nn.Module):
    def __init__(self, shape: DecoderShape):
        super().__init__()
        self.shape = shape
        self.fc = nn.Linear(2 * shape.hidden_size, shape.hidden_size, bias=False)
        self.layers = nn.ModuleList(DecoderLayer(shape, input_norm=i > 0) for i in range(shape.num_layers))

    def forward(self, embedded: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """embedded, features [B, T, d] (token t's embedding first, as EAGLE orders them) → out [B, T, d]."""
        positions = torch.arange(embedded.shape[1], device=embedded.device).expand(embedded.shape[0], -1)
        cos, sin = rope_tables(positions, self.shape.head_dim, self.shape.rope_theta)
        x = self.fc(torch.cat([embedded, features], dim=-1))
        for layer in self.layers:
            x = layer(x, cos, sin)
        return x


def eagle_loss(target: LlamaLM, head: EagleHead, window: torch.Tensor, noise: float, token_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """EAGLE-1's loss over windows [B, T] of token ids (positions 0 … T-2 of each window)."""
    with torch.no_grad():
        features = target.hidden(window)  # f_0 … f_{T-1}
        next_probs = F.softmax(target.logits(features[:, 1:]).float(), dim=-1)
        embedded = target.model.embed_tokens(window[:, 1:])  # x_1 … x_{T-1}
    inputs = features[:, :-1]
    if noise > 0:
        inputs = inputs + (torch.rand_like(inputs) - 0.5) * noise
    out = head(embedded, inputs)
    feature_loss = F.smooth_l1_loss(out.float(), features[:, 1:].float())
    draft_logprobs = F.log_softmax(target.logits(out).float(), dim=-1)
    token_loss = -(next_probs * draft_logprobs).sum(-1).mean()
    with torch.no_grad():
        top1 = (draft_logprobs.argmax(-1) == next_probs.argmax(-1)).float().mean().item()
    return feature_loss + token_weight * token_loss, {"feature_loss": feature_loss.item(), "token_loss": token_loss.item(), "top1_agreement": top1}


@torch.no_grad()
def eagle_agreement_logits(target: LlamaLM, head: EagleHead, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's logits at each position (from clean target features) and the target's at the next one."""
    features = target.hidden(window)
    out = head(target.model.embed_tokens(window[:, 1:]), features[:, :-1])
    return target.logits(out).float(), target.logits(features[:, 1:]).float()
