"""The learning-rate curve: linear warmup, then cosine decay over the run's progress."""

from __future__ import annotations

import math

from train.config import TrainConfig


class Schedule:
    """Linear warmup then cosine decay over the run's progress (steps or time, whichever is further)."""

    def __init__(self, cfg: TrainConfig, total_steps: int | None):
        self.cfg = cfg
        self.total = total_steps
        self.warmup = min(cfg.warmup_steps, max(0, (total_steps or 10**12) // 2))

    def progress(self, step: int, elapsed: float) -> float:
        p = 0.0
        if self.total:
            p = step / self.total
        if self.cfg.time_budget_s > 0:
            p = max(p, elapsed / self.cfg.time_budget_s)
        return min(1.0, p)

    def lr(self, step: int, elapsed: float) -> float:
        c = self.cfg
        if self.total:
            warm = step / self.warmup if self.warmup and step < self.warmup else 1.0
        else:
            span = c.warmup_fraction * c.time_budget_s
            warm = min(1.0, elapsed / span) if span > 0 else 1.0
        warm = max(warm, 1.0 / max(1, self.warmup or 1)) if warm < 1.0 else 1.0
        cos = 0.5 * (1.0 + math.cos(math.pi * self.progress(step, elapsed)))
        return (c.min_lr + (c.lr - c.min_lr) * cos) * warm
