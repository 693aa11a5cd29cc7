"""Typed, documented defaults of the final-shards stage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ShardsConfig:
    samples_per_shard: int = 10_000
    seed: int = 0
