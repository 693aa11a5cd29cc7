"""Typed, documented defaults of the final-shards stage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ShardsConfig:
    # Samples per final shard; the last shard of a split may be smaller.
    samples_per_shard: int = 10_000
    # Seed of the shuffle across source shards (recorded in stats.json and the dataset card).
    seed: int = 0
    # Split fractions by a stable hash of the key: a sample never changes split as data grows.
    val_fraction: float = 0.05
    test_fraction: float = 0.0
    # Salt of that hash; change it only to draw a new, independent split.
    split_salt: str = "wukong-split-v1"
    # Dataset card fields.
    dataset_name: str = "wukong-zh-demo"
    license: str = "unknown: images and captions belong to their owners; research use only"
    description: str = "Chinese image-text pairs crawled and filtered with the Wukong recipe."
    # Histogram bins of the plots.
    plot_bins: int = 40
    # Parallel Ray tasks writing shards (0: one per CPU Ray sees).
    processes: int = 0

    def problems(self) -> list[str]:
        """Values that cannot work, one line each (the CLI turns them into a usage error)."""
        out = []
        if self.samples_per_shard < 1:
            out.append(f"shards.samples_per_shard must be at least 1, got {self.samples_per_shard}")
        if not (0 <= self.val_fraction and 0 <= self.test_fraction and self.val_fraction + self.test_fraction < 1):
            out.append("shards.val_fraction and shards.test_fraction must be >= 0 and sum to less than 1")
        return out
