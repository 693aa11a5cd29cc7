"""Typed, documented defaults of the trainer and the evaluation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    model: str = "tiny"
    head: str = "global"


@dataclass
class EvalConfig:
    batch_size: int = 256
