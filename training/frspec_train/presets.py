"""Model shapes and training settings of each preset.

`demo` is sized so that the exported set (target, EAGLE head, draft LM, vocab maps and the 9 MB
tokenizer.json) stays under 60 MB with int8 vocabulary tables: the 128,256 x 256 table alone is
32.8 MB. `bench` is about what ten minutes of one H100 can train. `smoke` checks the whole
pipeline on a CPU in about a minute.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

LLAMA3_VOCAB_SIZE = 128256
BOS_ID = 128000  # <|begin_of_text|>
EOS_ID = 128001  # <|end_of_text|>
EOT_ID = 128009  # <|eot_id|>


@dataclass(frozen=True)
class DecoderShape:
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int = LLAMA3_VOCAB_SIZE
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 2048

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class TrainSettings:
    seq_len: int
    micro_batch: int  # sequences per forward pass
    accumulation: int  # forward passes per optimizer step
    lr: float
    warmup_steps: int
    minutes: float  # default training-time budget; the LR schedule spans it
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    # A fixed number of steps instead of a time budget (the schedule then spans the steps).
    steps: int | None = None
    eval_every_minutes: float = 1.0
    eval_windows: int = 64  # held-out windows for the periodic evaluation
    final_eval_windows: int = 512
    checkpoint_every_minutes: float = 2.0
    # Loss terms: EAGLE's `0.1 x CE` token weight, the draft's distillation share.
    token_loss_weight: float = 0.1
    feature_noise: float = 0.2  # EAGLE: uniform noise of this width on input features
    distill_weight: float = 0.5  # draft: share of the loss taken by the target's distribution

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.micro_batch * self.accumulation


@dataclass(frozen=True)
class Preset:
    name: str
    target: DecoderShape
    draft_layers: int
    target_train: TrainSettings
    eagle_train: TrainSettings
    draft_train: TrainSettings
    # fr-spec export options for the model folder.
    export_args: tuple[str, ...]
    seed: int = 20240611
    chain_depth: int = 6
    chain_positions: int = 256
    chain_context: int = 256
    sample_tokens: int = 120
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def eagle_shape(self) -> DecoderShape:
        return replace(self.target, num_layers=1)

    def draft_shape(self) -> DecoderShape:
        return replace(self.target, num_layers=self.draft_layers)


DEMO = Preset(
    name="demo",
    target=DecoderShape(hidden_size=256, intermediate_size=768, num_layers=6, num_heads=4, num_kv_heads=2),
    draft_layers=2,
    target_train=TrainSettings(seq_len=2048, micro_batch=8, accumulation=4, lr=2e-3, warmup_steps=200, minutes=7.0),
    eagle_train=TrainSettings(seq_len=2048, micro_batch=4, accumulation=4, lr=1e-3, warmup_steps=100, minutes=3.0, weight_decay=0.0),
    draft_train=TrainSettings(seq_len=2048, micro_batch=4, accumulation=4, lr=1.5e-3, warmup_steps=100, minutes=2.5),
    export_args=("--dtype", "fp32", "--weight-dtype", "fp16", "--quantize-vocab", "int8"),
    notes="fp32 graphs over fp16 weights and int8 vocabulary tables: small files, fast on CPUs.",
)

BENCH = Preset(
    name="bench",
    target=DecoderShape(hidden_size=1024, intermediate_size=2816, num_layers=12, num_heads=16, num_kv_heads=4),
    draft_layers=2,
    target_train=TrainSettings(seq_len=2048, micro_batch=8, accumulation=8, lr=8e-4, warmup_steps=200, minutes=8.5),
    eagle_train=TrainSettings(seq_len=2048, micro_batch=4, accumulation=8, lr=5e-4, warmup_steps=100, minutes=6.0, weight_decay=0.0),
    draft_train=TrainSettings(seq_len=2048, micro_batch=4, accumulation=8, lr=1e-3, warmup_steps=100, minutes=5.0),
    export_args=("--dtype", "fp16"),
    notes="fp16 graphs for CUDA.",
)

SMOKE = Preset(
    name="smoke",
    target=DecoderShape(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1, max_position_embeddings=256),
    draft_layers=1,
    target_train=TrainSettings(seq_len=64, micro_batch=4, accumulation=2, lr=3e-3, warmup_steps=2, minutes=1.0, steps=12, eval_windows=4, final_eval_windows=8, eval_every_minutes=0.0),
    eagle_train=TrainSettings(seq_len=64, micro_batch=4, accumulation=2, lr=3e-3, warmup_steps=2, minutes=1.0, steps=8, eval_windows=4, final_eval_windows=8, eval_every_minutes=0.0, weight_decay=0.0),
    draft_train=TrainSettings(seq_len=64, micro_batch=4, accumulation=2, lr=3e-3, warmup_steps=2, minutes=1.0, steps=8, eval_windows=4, final_eval_windows=8, eval_every_minutes=0.0),
    export_args=("--dtype", "fp32", "--weight-dtype", "fp16", "--quantize-vocab", "int8"),
    chain_positions=8,
    chain_context=32,
    sample_tokens=16,
    notes="pipeline check only: a few steps of a tiny model.",
)

PRESETS = {preset.name: preset for preset in (DEMO, BENCH, SMOKE)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise SystemExit(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def parameter_counts(shape: DecoderShape) -> dict[str, int]:
    """Parameters of a tied Llama decoder of this shape: the embedding, and everything else."""
    d, kv = shape.hidden_size, shape.num_kv_heads * shape.head_dim
    attention = 2 * d * d + 2 * d * kv
    layer = attention + 3 * d * shape.intermediate_size + 2 * d
    return {"embedding": shape.vocab_size * d, "layers": shape.num_layers * layer + d}
