#!/usr/bin/env python3
"""Step "check": runs the exported model folder with python onnxruntime on held-out windows and
compares it with the PyTorch checkpoints it came from: how often the exported target's and draft's
greedy tokens agree with the checkpoints' (int8 vocabulary tables and fp16 storage move a few of
them), the EAGLE head's output error, and that lm_head.onnx picks the target's own argmax.
Writes OUT/export-check.json. Skipped (with a note) when onnxruntime is not installed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from frspec_train.data import VAL_FILE, TokenStream
from frspec_train.models import load_eagle, load_llama
from frspec_train.runtime import common_arguments, log, pick_device

MASKED = np.finfo(np.float32).min


def causal_bias(length: int) -> np.ndarray:
    return np.triu(np.full((length, length), MASKED, dtype=np.float32), k=1)[None, None]


def decoder_feeds(ids: np.ndarray, architecture: dict, dtype: np.dtype) -> dict[str, np.ndarray]:
    length = ids.shape[1]
    feeds = {"input_ids": ids.astype(np.int64), "position_ids": np.arange(length, dtype=np.int64)[None], "attention_bias": causal_bias(length)}
    empty = np.zeros((1, 0, architecture["num_kv_heads"], architecture["head_dim"]), dtype=dtype)
    for i in range(architecture["num_layers"]):
        feeds[f"past_key_{i}"] = feeds[f"past_value_{i}"] = empty
    return feeds


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual.astype(np.float64) - expected).max() / max(np.abs(expected).max(), 1e-30))


def main() -> int:
    parser = common_arguments(__doc__)
    parser.add_argument("--model", type=Path, help="the exported folder (default OUT/model)")
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    args = parser.parse_args()
    model_dir = args.model or args.out / "model"
    report_path = args.out / "export-check.json"
    try:
        import onnxruntime as ort
    except ImportError:
        report_path.write_text(json.dumps({"skipped": "python onnxruntime is not installed"}) + "\n")
        log("skipped: python onnxruntime is not installed")
        return 0
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("ops") == "fused" and tuple(int(x) for x in ort.__version__.split(".")[:2]) < (1, 23):
        note = f"python onnxruntime {ort.__version__} cannot run --ops fused graphs (opset 23 needs 1.23 or later)"
        report_path.write_text(json.dumps({"skipped": note}) + "\n")
        log(f"skipped: {note}")
        return 0
    dtype = np.float16 if config["dtype"] == "float16" else np.float32
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]

    def session(file: str):
        return ort.InferenceSession(str(model_dir / file), providers=providers)

    device = pick_device(args.device)
    data_dir = args.data or args.out / "data"
    windows = TokenStream(data_dir / VAL_FILE, torch.device("cpu")).spread_windows(args.windows, args.length).numpy()

    target_torch = load_llama(args.out / "target" / "hf", device)
    target, head = session(config["target"]["file"]), session(config["lm_head"]["file"])
    report: dict = {"model": str(model_dir), "dtype": config["dtype"], "weights": config.get("weights"), "providers": providers, "windows": len(windows), "tokens_per_window": args.length}
    agree = same_head = count = 0
    hidden_errors, eagle_errors, draft_agree = [], [], 0
    eagle = session(config["eagle"]["file"]) if "eagle" in config else None
    eagle_torch = load_eagle(args.out / "eagle" / "hf", device) if eagle else None
    draft = session(config["draft"]["file"]) if "draft" in config else None
    draft_torch = load_llama(args.out / "draft" / "hf", device) if draft else None
    with torch.no_grad():
        for window in windows:
            ids = window[None]
            out = dict(zip([o.name for o in target.get_outputs()], target.run(None, decoder_feeds(ids, config["target"]["architecture"], dtype))))
            torch_ids = torch.as_tensor(ids, device=device)
            hidden = target_torch.hidden(torch_ids)
            agree += int((out["argmax"][0] == target_torch.logits(hidden).argmax(-1)[0].cpu().numpy()).sum())
            hidden_errors.append(relative_error(out["hidden"][0], hidden[0].cpu().double().numpy()))
            top = head.run(None, {"hidden": out["hidden"][0], "top_k": np.array([1], dtype=np.int64)})[0]
            same_head += int((top[:, 0] == out["argmax"][0]).sum())
            count += ids.shape[1]
            if eagle:
                feeds = decoder_feeds(ids[:, 1:], config["eagle"]["architecture"], dtype)
                feeds["feature"] = out["hidden"][:, :-1]
                onnx_out = eagle.run(["out"], feeds)[0]
                features = torch.as_tensor(out["hidden"][:, :-1], device=device).float()
                expected = eagle_torch(target_torch.model.embed_tokens(torch_ids[:, 1:]), features)
                eagle_errors.append(relative_error(onnx_out[0], expected[0].cpu().double().numpy()))
            if draft:
                draft_out = draft.run(["argmax"], decoder_feeds(ids, config["draft"]["architecture"], dtype))[0]
                draft_agree += int((draft_out[0] == draft_torch(torch_ids).argmax(-1)[0].cpu().numpy()).sum())
    report["target_argmax_agreement"] = agree / count
    report["target_hidden_max_relative_error"] = max(hidden_errors)
    report["lm_head_matches_target_argmax"] = same_head / count
    if eagle:
        report["eagle_out_max_relative_error"] = max(eagle_errors)
    if draft:
        report["draft_argmax_agreement"] = draft_agree / count
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    log(f"export check: {json.dumps(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
