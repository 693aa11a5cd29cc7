"""shards-gather: one gather group's rows from every plan file, cut into final shards' pieces.

Group g holds a fixed range of shuffle positions (`shards.splits.position_groups`), so once the
plan tasks have counted their rows per (split, group), the driver knows where each group starts in
its split's shuffled order (`offsets`). The task reads batch g of every plan file (one read each),
sorts the rows by (position, key, source) and gives each row its final shard: its rank in the
split's order divided by `samples_per_shard`. Every copy of a key gets the rank of the first, so
a key repeated across raw shards lands in one final shard, where the writer keeps one copy.
Each (split, shard) piece is written as `gather/GGGGG/SPLIT-NNNNNN.arrow`; `_done.json` last.

Exchange volume: P plan files x G groups reads, G x (shards per group + 1) piece files, against
P x S reads for a direct all-to-all (P raw shards, S final shards).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from shards.atomic import write_json_atomic
from shards.exchange import read_group, write_table
from shards.plan import PLAN_SCHEMA
from shards.splits import SPLITS

DONE = "_done.json"


def piece_name(split: str, shard: int) -> str:
    return f"{split}-{shard:06d}.arrow"


def _reuse(out: Path, fingerprint: str) -> dict | None:
    try:
        record = json.loads((out / DONE).read_text(encoding="utf-8"))
        if record.get("fingerprint") != fingerprint:
            return None
        if not all((out / piece_name(SPLITS[s], i)).is_file() for s, i, _ in record["result"]["pieces"]):
            return None
        return record["result"]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _clear(out: Path) -> None:
    """What an earlier run (or a killed one) left in this group's directory."""
    (out / DONE).unlink(missing_ok=True)
    if out.is_dir():
        for p in out.iterdir():
            p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def first_ranks(keys: np.ndarray) -> np.ndarray:
    """For sorted rows, the index of the first row carrying each row's key."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.ones(n, dtype=bool)
    starts[1:] = keys[1:] != keys[:-1]
    return np.maximum.accumulate(np.where(starts, np.arange(n), 0))


def gather_group(group: int, plan_files: list[str], offsets: list[int], samples_per_shard: int,
                 out_dir: str, fingerprint: str) -> dict:
    """Pieces of group `group`; `offsets[s]`: rank in split s of the group's first row."""
    out = Path(out_dir)
    reused = _reuse(out, fingerprint)
    if reused is not None:
        return {**reused, "reused": True}
    _clear(out)
    batches = [read_group(p, group) for p in plan_files]
    table = pa.Table.from_batches(batches, schema=PLAN_SCHEMA) if batches else PLAN_SCHEMA.empty_table()
    table = table.sort_by([("split", "ascending"), ("position", "ascending"), ("key", "ascending"),
                           ("source", "ascending")])
    split = table["split"].to_numpy()
    pieces = []
    for s, name in enumerate(SPLITS):
        a, b = np.searchsorted(split, s, "left"), np.searchsorted(split, s, "right")
        if a == b:
            continue
        rows = table.slice(int(a), int(b - a))
        shard = (offsets[s] + first_ranks(rows["key"].to_numpy(zero_copy_only=False))) // samples_per_shard
        cuts = np.flatnonzero(np.diff(shard)) + 1
        for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(shard)]])):
            i = int(shard[lo])
            write_table(out / piece_name(name, i), rows.slice(int(lo), int(hi - lo)))
            pieces.append([s, i, int(hi - lo)])
    result = {"group": group, "pieces": pieces}
    write_json_atomic(out / DONE, {"fingerprint": fingerprint, "result": result})
    return {**result, "reused": False}
