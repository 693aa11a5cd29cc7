"""Which sample goes into which final shard: split by key hash, shuffle with a recorded seed, cut.

The plan depends only on the selected samples (sorted by key first) and the config, so the same
inputs always give the same shards; each shard's digest covers everything written into it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shards.config import ShardsConfig
from shards.format import FINAL_SHARD_PATTERN
from shards.splits import SPLITS, assign_splits
from shards.writer import PLAN_FIELDS


@dataclass
class ShardPlan:
    split: str
    index: int
    rows: list[dict]
    digest: str

    @property
    def name(self) -> str:
        return FINAL_SHARD_PATTERN.format(shard=self.index)


def _clean(v):
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.integer):
        return int(v)
    return v


def plan_shards(selected: pd.DataFrame, cfg: ShardsConfig) -> dict[str, list[ShardPlan]]:
    df = selected.sort_values("key", kind="stable").reset_index(drop=True)
    df["split"] = assign_splits(df["key"], cfg.val_fraction, cfg.test_fraction, cfg.split_salt)
    out: dict[str, list[ShardPlan]] = {}
    for s_index, split in enumerate(SPLITS):
        part = df[df["split"] == split]
        if part.empty:
            continue
        # One generator per split, seeded from (seed, split), so adding a test split does not
        # reshuffle train.
        rng = np.random.default_rng([cfg.seed, s_index])
        part = part.iloc[rng.permutation(len(part))]
        rows = [{k: _clean(v) for k, v in zip(PLAN_FIELDS, r)} for r in part[PLAN_FIELDS].itertuples(index=False)]
        plans = []
        for i, start in enumerate(range(0, len(rows), cfg.samples_per_shard)):
            chunk = rows[start:start + cfg.samples_per_shard]
            digest = hashlib.sha256(json.dumps([split, chunk], ensure_ascii=False, sort_keys=True,
                                               default=str).encode("utf-8")).hexdigest()
            plans.append(ShardPlan(split, i, chunk, digest))
        out[split] = plans
    return out
