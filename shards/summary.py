"""What the driver keeps of a shards run: counts, histograms and file lists, never rows.

`PlanSummary` adds up the plan tasks' results (O(splits x groups + histogram bins), one digest per
plan file) and derives the layout of the final shards: how many per split, where each gather group
starts in its split's shuffled order. `ShardPieces` lists which gather groups hold pieces of which
final shard (O(shards + groups)).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

import numpy as np

from shards.plan import PlanParams
from shards.splits import SPLITS

FUNNEL_STEPS = ("raw rows", "downloaded", "kept by filter", "kept by dedup")


class PlanSummary:
    def __init__(self, params: PlanParams):
        self.params = params
        self.counts = np.zeros((len(SPLITS), params.groups), dtype=np.int64)
        self.funnel: Counter = Counter()
        self.reasons: dict[str, Counter] = defaultdict(Counter)
        self.histograms = params.histograms()
        self.digests: dict[int, str] = {}      # source -> plan file digest ("" when it has no row)
        self.errors: dict[str, str] = {}       # unreadable raw index -> error
        self.tar_errors: dict[str, str] = {}
        self.reused = 0

    def add(self, result: dict) -> None:
        self.digests[result["source"]] = result["digest"]
        if result.get("error"):
            self.errors[result["index"]] = result["error"]
        if result.get("tar_error"):
            self.tar_errors[result["index"]] = result["tar_error"]
        self.reused += bool(result.get("reused"))
        self.counts += np.asarray(result["counts"], dtype=np.int64)
        self.funnel.update(result["funnel"])
        for stage, by_reason in result["reasons"].items():
            self.reasons[stage].update(by_reason)
        self.histograms.add(result["histograms"])

    @property
    def split_rows(self) -> list[int]:
        return [int(x) for x in self.counts.sum(axis=1)]

    def shards_per_split(self, samples_per_shard: int) -> list[int]:
        return [-(-n // samples_per_shard) for n in self.split_rows]

    def group_offsets(self) -> np.ndarray:
        """[split, group]: rank in the split's shuffled order of the group's first row."""
        return np.cumsum(self.counts, axis=1) - self.counts

    def plan_files(self, path_of) -> list[str]:
        """Paths (by `path_of(source)`) of the plan files that hold rows, in source order."""
        return [path_of(s) for s in sorted(self.digests) if self.digests[s]]

    def digest(self) -> str:
        """Of every plan file in source order: a gather group's output depends on nothing else
        (with samples_per_shard)."""
        text = "\n".join(f"{s}:{self.digests[s]}" for s in sorted(self.digests))
        return hashlib.sha256(text.encode()).hexdigest()

    def funnel_steps(self) -> dict[str, int]:
        return {k: int(self.funnel[k]) for k in FUNNEL_STEPS if k in self.funnel}

    def reasons_dict(self) -> dict[str, dict[str, int]]:
        return {stage: {r: int(n) for r, n in sorted(c.items())} for stage, c in self.reasons.items() if c}


class ShardPieces:
    """Which gather groups wrote pieces of which (split, shard), with their row counts."""

    def __init__(self):
        self.groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.rows: Counter = Counter()
        self.reused = 0

    def add(self, result: dict) -> None:
        self.reused += bool(result.get("reused"))
        for s, shard, n in result["pieces"]:
            self.groups[(s, shard)].append(result["group"])
            self.rows[(s, shard)] += n

    def of(self, split: int, shard: int) -> list[int]:
        return sorted(self.groups.get((split, shard), []))

    @property
    def pieces(self) -> int:
        return sum(len(g) for g in self.groups.values())
