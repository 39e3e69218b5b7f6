"""Hugging Face checkpoint folders (config.json + safetensors, sharded so each file can be carried
on its own) and the resumable training state of a step.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .presets import BOS_ID, EOS_ID, EOT_ID, DecoderShape

INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def llama_config(shape: DecoderShape, dtype: str) -> dict:
    """LlamaForCausalLM's config.json for a tied decoder of this shape."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "head_dim": shape.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": shape.rms_norm_eps,
        "rope_theta": shape.rope_theta,
        "rope_scaling": None,
        "max_position_embeddings": shape.max_position_embeddings,
        "vocab_size": shape.vocab_size,
        "tie_word_embeddings": True,
        "attention_bias": False,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "torch_dtype": dtype,
        "use_cache": True,
    }


def eagle_config(shape: DecoderShape, dtype: str) -> dict:
    """An EAGLE-1/2 head's config.json, laid out like yuhuili/EAGLE-LLaMA3-Instruct-8B's."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "bias": False,
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": 1,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "hidden_act": "silu",
        "rms_norm_eps": shape.rms_norm_eps,
        "rope_theta": shape.rope_theta,
        "max_position_embeddings": shape.max_position_embeddings,
        "vocab_size": shape.vocab_size,
        "tie_word_embeddings": False,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "torch_dtype": dtype,
    }


def shape_from_config(config: dict) -> DecoderShape:
    return DecoderShape(
        hidden_size=config["hidden_size"],
        intermediate_size=config["intermediate_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        num_kv_heads=config.get("num_key_value_heads", config["num_attention_heads"]),
        vocab_size=config["vocab_size"],
        rope_theta=float(config.get("rope_theta", 10000.0)),
        rms_norm_eps=config["rms_norm_eps"],
        max_position_embeddings=config.get("max_position_embeddings", 2048),
    )


DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def save_hf_checkpoint(
    out_dir: Path,
    tensors: dict[str, torch.Tensor],
    config: dict,
    *,
    dtype: str = "float16",
    shard_bytes: int = 45_000_000,
    tokenizer_dir: Path | None = None,
    generation_config: bool = False,
) -> None:
    """Writes `out_dir` whole or not at all (into a sibling folder, renamed at the end)."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    stored = {name: t.detach().to("cpu", DTYPES[dtype]).contiguous() for name, t in tensors.items()}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in stored.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], str(tmp / "model.safetensors"), metadata={"format": "pt"})
    else:
        weight_map = {}
        for i, shard in enumerate(shards):
            file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, str(tmp / file), metadata={"format": "pt"})
            weight_map.update({name: file for name in shard})
        total = sum(t.numel() * t.element_size() for t in stored.values())
        (tmp / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if generation_config:
        generation = {"bos_token_id": BOS_ID, "eos_token_id": [EOS_ID, EOT_ID], "do_sample": False}
        (tmp / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    if tokenizer_dir is not None:
        for name in TOKENIZER_FILES:
            if (tokenizer_dir / name).exists():
                shutil.copyfile(tokenizer_dir / name, tmp / name)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)


def load_hf_tensors(hf_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of an HF folder (single file or shards), as fp32 on the CPU."""
    index = hf_dir / INDEX_FILE
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        tensors.update({name: t.float() for name, t in load_file(str(hf_dir / file)).items()})
    return tensors


def read_config(hf_dir: Path) -> dict:
    path = hf_dir / "config.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run the step that trains it first")
    return json.loads(path.read_text())


def save_state(path: Path, state: dict) -> None:
    """torch.save into a temporary file, then an atomic rename: a killed run leaves the old state."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path, device: torch.device) -> dict | None:
    return torch.load(path, map_location=device, weights_only=False) if path.exists() else None
