"""Device, seeds, mixed precision and the command-line plumbing the step scripts share."""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .presets import Preset, TrainSettings, get_preset
from .trainer import Trainer

STARTED = time.time()


def log(message: str) -> None:
    print(f"[{time.time() - STARTED:6.1f}s] {message}", flush=True)


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    return torch.device(requested)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device):
    """bf16 autocast on CUDA (weights stay fp32); plain fp32 on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def common_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--preset", required=True, help="demo, bench or smoke (frspec_train/presets.py)")
    parser.add_argument("--out", required=True, type=Path, help="the run folder: data/, target/, eagle/, draft/ live under it")
    parser.add_argument("--data", type=Path, help="prepared data folder (default OUT/data)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--minutes", type=float, help="training-time budget of this step (default: the preset's); the LR schedule spans it")
    parser.add_argument("--steps", type=int, help="train exactly this many steps instead (the schedule spans them): reproducible runs")
    parser.add_argument("--call-minutes", type=float, default=8.5, help="stop and save after this much wall time in this call, leaving time for the final evaluation under the 10-minute job limit (resume by running it again)")
    parser.add_argument("--restart", action="store_true", help="discard a saved state and start this step over")
    parser.add_argument("--seed", type=int, help="default: the preset's")
    return parser


class StepContext:
    """What a step script works with, from its parsed arguments."""

    def __init__(self, args: argparse.Namespace, part: str):
        self.args = args
        self.preset: Preset = get_preset(args.preset)
        self.out: Path = args.out
        self.data_dir: Path = args.data or args.out / "data"
        self.run_dir: Path = args.out / part
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if args.restart:
            (self.run_dir / "state.pt").unlink(missing_ok=True)
        self.device = pick_device(args.device)
        self.seed = args.seed if args.seed is not None else self.preset.seed
        seed_everything(self.seed)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        log(f"{part} ({self.preset.name}) on {self.device}{' ' + torch.cuda.get_device_name(self.device) if self.device.type == 'cuda' else ''}, torch {torch.__version__}, python {sys.version.split()[0]}")

    def trainer(self, model: torch.nn.Module, settings: TrainSettings) -> Trainer:
        """The step's Trainer, resumed from this step's saved state when there is one."""
        a = self.args
        return Trainer(model, settings, self.run_dir, self.device, minutes=a.minutes, steps=a.steps, call_minutes=a.call_minutes, started=STARTED, log=log)

    def already_trained(self, trainer: Trainer, hf_dir: Path) -> bool:
        """True (and says so) when this step finished before: its checkpoint and metrics are written."""
        done = trainer.finished and hf_dir.exists() and (self.run_dir / "metrics.json").exists()
        if done:
            log(f"already trained: {hf_dir} (use --restart to train again)")
        return done

    def part_dir(self, part: str) -> Path:
        return self.out / part

    def write_metrics(self, metrics: dict) -> None:
        path = self.run_dir / "metrics.json"
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        metrics = {**metrics, "device": device, "torch": torch.__version__, "seed": self.seed}
        path.write_text(json.dumps(metrics, indent=2) + "\n")
        log(f"wrote {path}")
