"""A Llama decoder in plain PyTorch whose parameter names and arithmetic are Hugging Face's
LlamaForCausalLM (so its state dict saves as an HF checkpoint that transformers and `fr-spec export`
read): RMSNorm in fp32, RoPE with rotate-half over the split head, grouped KV heads, SwiGLU, tied
embeddings. `hf_check.py` compares it with transformers on the GPU host.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .presets import DecoderShape


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rope_tables(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 cos, sin [..., T, head_dim] for integer positions [..., T], as transformers computes them."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim))
    freqs = positions.float()[..., None] * inv_freq
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, shape: DecoderShape):
        super().__init__()
        d, hd = shape.hidden_size, shape.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = shape.num_heads, shape.num_kv_heads, hd
        self.q_proj = nn.Linear(d, shape.num_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, shape.num_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, shape.num_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(shape.num_heads * hd, d, bias=False)

    def split_heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        """[B, T, heads * head_dim] → [B, heads, T, head_dim]."""
        return x.view(x.shape[0], x.shape[1], heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.split_heads(self.q_proj(x), self.num_heads)
        k = self.split_heads(self.k_proj(x), self.num_kv_heads)
        v = self.split_heads(self.v_proj(x), self.num_kv_heads)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # broadcast over heads
        # Rotated in fp32, then back to the projections' type (bf16 under autocast).
        q = (q * cos + rotate_half(q) * sin).to(v.dtype)
        k = (k * cos + rotate_half(k) * sin).to(v.dtype)
        groups = self.num_heads // self.num_kv_heads
        if groups > 1:
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))


class Mlp(nn.Module):
    def __init__(self, shape: DecoderShape):
        super().__init__()
        d, inner = shape.hidden_size, shape.intermediate_size
        self.gate_proj = nn.Linear(d, inner, bias=False)
        self.up_proj = nn.Linear(d, inner, bias=False)
        self.down_proj = nn.Linear(inner, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-norm layer; `input_norm=False` is EAGLE's first layer, whose input is already normalized."""

    def __init__(self, shape: DecoderShape, input_norm: bool = True):
        super().__init__()
        if input_norm:
            self.input_layernorm = RMSNorm(shape.hidden_size, shape.rms_norm_eps)
        self.self_attn = Attention(shape)
        self.post_attention_layernorm = RMSNorm(shape.hidden_size, shape.rms_norm_eps)
        self.mlp = Mlp(shape)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        attention_input = self.input_layernorm(x) if hasattr(self, "input_layernorm") else x
        x = x + self.self_attn(attention_input, cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    """HF's `model.*`: embedding, layers, final norm."""

    def __init__(self, shape: DecoderShape):
        super().__init__()
        self.embed_tokens = nn.Embedding(shape.vocab_size, shape.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(shape) for _ in range(shape.num_layers))
        self.norm = RMSNorm(shape.hidden_size, shape.rms_norm_eps)


class LlamaLM(nn.Module):
    """LlamaForCausalLM with tied embeddings: `hidden()` gives the post-norm states, `logits()` the head."""

    def __init__(self, shape: DecoderShape):
        super().__init__()
        self.shape = shape
        self.model = Backbone(shape)

    @property
    def head_weight(self) -> torch.Tensor:
        return self.model.embed_tokens.weight

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """Hidden states after the final norm [B, T, d]: the LM head's input and EAGLE's feature."""
        positions = torch.arange(ids.shape[1], device=ids.device).expand(ids.shape[0], -1)
        x = self.model.embed_tokens(ids)
        cos, sin = rope_tables(positions, self.shape.head_dim, self.shape.rope_theta)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.model.norm(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.head_weight)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logits(self.hidden(ids))


def init_weights(module: nn.Module, num_layers: int, std: float = 0.02) -> None:
    """Normal(0, std) weights; projections into the residual stream scaled by 1/sqrt(2 * layers)."""
    for name, param in module.named_parameters():
        if name.endswith("norm.weight"):
            nn.init.ones_(param)
        elif name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
            nn.init.normal_(param, std=std / math.sqrt(2 * num_layers))
        else:
            nn.init.normal_(param, std=std)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy, computed in fp32 over the full vocabulary."""
    return F.cross_entropy(logits.float().flatten(0, -2), targets.flatten())
