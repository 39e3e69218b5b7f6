"""The training loop every step shares: AdamW with warmup and cosine decay over a time budget (or a
fixed number of steps), gradient accumulation and clipping, a loss curve in CSV, periodic held-out
evaluation, and a resumable state saved periodically, when the call's wall-clock guard runs out and at
the end — so a step split over several 10-minute commands continues where it stopped.
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .checkpoints import load_state, save_state
from .presets import TrainSettings

MicroStep = Callable[[int, int], "tuple[torch.Tensor, dict[str, float]]"]
Evaluation = Callable[[], "dict[str, float]"]


@dataclass
class Progress:
    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    budget_seconds: float = 0.0
    total_steps: int | None = None
    done: bool = False

    def fraction(self) -> float:
        if self.total_steps:
            return min(1.0, self.step / self.total_steps)
        return min(1.0, self.train_seconds / self.budget_seconds)


def learning_rate(settings: TrainSettings, progress: Progress) -> float:
    """Linear warmup times a cosine from lr down to min_lr_ratio x lr over the run's progress."""
    warmup = min(1.0, (progress.step + 1) / max(1, settings.warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress.fraction()))
    return settings.lr * warmup * (settings.min_lr_ratio + (1.0 - settings.min_lr_ratio) * cosine)


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices; none on norm scales."""
    trainable = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    return [
        {"params": [p for _, p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for _, p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]


class Trainer:
    def __init__(
        self,
        module: nn.Module,
        settings: TrainSettings,
        run_dir: Path,
        device: torch.device,
        *,
        minutes: float | None = None,
        steps: int | None = None,
        call_minutes: float = 8.5,
        started: float | None = None,
        log: Callable[[str], None] = print,
    ):
        self.module, self.settings, self.run_dir, self.device, self.log = module, settings, run_dir, device, log
        self.state_path = run_dir / "state.pt"
        self.loss_csv, self.eval_csv = run_dir / "loss.csv", run_dir / "eval.csv"
        self.call_deadline = (started or time.time()) + 60 * call_minutes
        fused = device.type == "cuda"
        self.optimizer = torch.optim.AdamW(parameter_groups(module, settings.weight_decay), lr=settings.lr, betas=(0.9, 0.95), eps=1e-8, fused=fused)
        saved = load_state(self.state_path, device)
        if saved is None:
            total_steps = steps if steps is not None else settings.steps
            self.progress = Progress(budget_seconds=60 * (minutes if minutes is not None else settings.minutes), total_steps=total_steps)
            for path in (self.loss_csv, self.eval_csv):
                path.unlink(missing_ok=True)
        else:
            module.load_state_dict(saved["module"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.progress = Progress(**saved["progress"])
            for path in (self.loss_csv, self.eval_csv):
                self.drop_rows_after(path, self.progress.step)
            if not self.progress.done:
                if minutes is not None or steps is not None:
                    log("resuming: the budget fixed when this step started is kept (use --restart to start over)")
                log(f"resuming at step {self.progress.step}, {self.progress.tokens:,} tokens, {self.progress.train_seconds:.0f} s trained")

    @property
    def finished(self) -> bool:
        return self.progress.done

    def run(self, micro_step: MicroStep, evaluate: Evaluation | None = None) -> bool:
        """Trains until the budget is spent (True) or this call's guard runs out (False, state saved)."""
        settings, progress = self.settings, self.progress
        last_eval = last_checkpoint = progress.train_seconds
        self.module.train()
        while progress.fraction() < 1.0:
            if time.time() > self.call_deadline:
                self.save()
                self.log(f"stopped for this call at step {progress.step} ({progress.fraction():.0%} of the budget); run the same command again to continue")
                return False
            began = time.perf_counter()
            lr = learning_rate(settings, progress)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            totals: dict[str, float] = {}
            for micro in range(settings.accumulation):
                loss, parts = micro_step(progress.step, micro)
                (loss / settings.accumulation).backward()
                for key, value in {"loss": loss.item(), **parts}.items():
                    totals[key] = totals.get(key, 0.0) + value / settings.accumulation
            grad_norm = torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], settings.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - began
            progress.step += 1
            progress.tokens += settings.tokens_per_step
            progress.train_seconds += seconds
            self.append(self.loss_csv, {"step": progress.step, "tokens": progress.tokens, "seconds": round(progress.train_seconds, 2), "lr": lr, **totals, "grad_norm": float(grad_norm), "tokens_per_s": round(settings.tokens_per_step / seconds)})
            if progress.step == 1 or progress.step % 50 == 0:
                self.log(f"step {progress.step}: loss {totals['loss']:.4f}, lr {lr:.2e}, {settings.tokens_per_step / seconds:,.0f} tokens/s, {progress.fraction():.0%} of the budget")
            if evaluate and progress.train_seconds - last_eval >= 60 * settings.eval_every_minutes and progress.fraction() < 1.0:
                self.evaluate(evaluate)
                last_eval = progress.train_seconds
            if progress.train_seconds - last_checkpoint >= 60 * settings.checkpoint_every_minutes:
                self.save()
                last_checkpoint = progress.train_seconds
        progress.done = True
        self.save()
        self.log(f"trained {progress.step} steps, {progress.tokens:,} tokens in {progress.train_seconds / 60:.1f} min")
        return True

    def evaluate(self, evaluate: Evaluation) -> dict[str, float]:
        self.module.eval()
        with torch.no_grad():
            metrics = evaluate()
        self.module.train()
        self.append(self.eval_csv, {"step": self.progress.step, "tokens": self.progress.tokens, "seconds": round(self.progress.train_seconds, 2), **metrics})
        self.log(f"eval at step {self.progress.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        return metrics

    def save(self) -> None:
        save_state(self.state_path, {"module": self.module.state_dict(), "optimizer": self.optimizer.state_dict(), "progress": vars(self.progress)})

    @staticmethod
    def drop_rows_after(path: Path, step: int) -> None:
        """Forgets logged steps past the saved state (a killed call logged them, then lost them)."""
        if not path.exists():
            return
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [row for row in rows[1:] if int(row[0]) <= step]
        with path.open("w", newline="") as f:
            csv.writer(f).writerows(kept)

    @staticmethod
    def append(path: Path, row: dict) -> None:
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
