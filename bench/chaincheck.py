"""Accounting of a filter -> dedup -> shards chain over raw shards planted by `bench/rawgen.py`.

Every output is read through `shards.parts.open_parts` (parts + manifest, or the single files of
earlier versions), one part at a time, into per-row arrays indexed by the row number the key
encodes, so the check holds a few bytes per sample whatever the size. It reports what it finds;
`problems` lists every way the chain lost, duplicated or misjudged a sample.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.rawgen import DEDUP_REASON, FAILED, FILTER_REASON, ROLES, key_of
from shards.format import iter_tar_samples
from shards.parts import open_parts
from shards.splits import SPLITS

EXAMPLES = 5
# Share of random 64-bit pairs within Hamming distance 4: sum_{k<=4} C(64, k) / 2^64.
_NEAR4 = sum(math.comb(64, k) for k in range(5)) / 2.0**64


def _rows(keys, n: int) -> np.ndarray:
    """Row numbers of keys `{file:03d}{row:09d}` (file 0); -1 for a key this dataset never had."""
    rows = pc.cast(keys, "int64").to_numpy(zero_copy_only=False)
    return np.where((rows >= 0) & (rows < n), rows, -1)


def _examples(rows: np.ndarray) -> list[str]:
    return [key_of(int(r)) for r in rows[:EXAMPLES]]


class _Codes:
    """Small integer codes for reason strings, shared over parts."""

    def __init__(self):
        self.names: list[str] = []

    def encode(self, column) -> np.ndarray:
        enc = pc.dictionary_encode(pc.fill_null(column.combine_chunks(), ""))
        remap = np.array([self._code(v) for v in enc.dictionary.to_pylist()], np.int16)
        return remap[enc.indices.to_numpy(zero_copy_only=False)] if len(remap) else np.zeros(0, np.int16)

    def _code(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)

    def code(self, name: str) -> int:
        return self._code(name)


def check_filter(filter_dir: str | Path, planted: dict[str, np.ndarray]) -> dict:
    role = planted["role"]
    n = role.size
    seen = np.zeros(n, np.int16)
    kept = np.zeros(n, bool)
    reason = np.full(n, -1, np.int16)
    codes = _Codes()
    foreign = 0
    for name in ("kept", "rejected"):
        parts = open_parts(filter_dir, name)
        for path in parts.paths():
            cols = ["key"] + (["reason"] if name == "rejected" else [])
            t = pq.read_table(path, columns=cols)
            rows = _rows(t["key"], n)
            foreign += int((rows < 0).sum())
            good = rows >= 0
            np.add.at(seen, rows[good], 1)
            if name == "kept":
                kept[rows[good]] = True
            else:
                reason[rows[good]] = codes.encode(t["reason"])[good]
    problems = []
    success = role != FAILED
    if foreign:
        problems.append(f"filter: {foreign} output rows with keys not in the raw shards")
    twice = np.flatnonzero(seen > 1)
    if twice.size:
        problems.append(f"filter: {twice.size} keys written more than once, e.g. {_examples(twice)}")
    lost = np.flatnonzero(success & (seen == 0))
    if lost.size:
        problems.append(f"filter: {lost.size} successful rows in neither kept nor rejected, e.g. {_examples(lost)}")
    failed_out = np.flatnonzero(~success & (seen > 0))
    if failed_out.size:
        problems.append(f"filter: {failed_out.size} failed downloads in its output, e.g. {_examples(failed_out)}")
    planted_rejects = {}
    for r, want in FILTER_REASON.items():
        rows = np.flatnonzero(role == r)
        wrong = rows[reason[rows] != codes.code(want)]
        planted_rejects[ROLES[r]] = {"planted": int(rows.size), "rejected_as_planted": int(rows.size - wrong.size)}
        if wrong.size:
            problems.append(f"filter: {wrong.size} of {rows.size} planted {ROLES[r]} rows not rejected as {want}, "
                            f"e.g. {_examples(wrong)}")
    unplanted = success & (reason >= 0) & ~np.isin(role, list(FILTER_REASON))
    by_reason = {codes.names[c]: int(k) for c, k in enumerate(np.bincount(reason[unplanted], minlength=len(codes.names))) if k}
    return {"kept": int(kept.sum()), "rejected": int((reason >= 0).sum()), "planted_rejects": planted_rejects,
            "unplanted_rejects": by_reason, "problems": problems, "_kept": kept}


def check_dedup(dedup_dir: str | Path, planted: dict[str, np.ndarray], filter_kept: np.ndarray) -> dict:
    role, group = planted["role"], planted["group"]
    n = role.size
    seen = np.zeros(n, np.int16)
    keep = np.zeros(n, bool)
    reason = np.full(n, -1, np.int16)
    survivor = np.full(n, -1, np.int64)
    codes = _Codes()
    foreign = 0
    for path in open_parts(dedup_dir, "decisions").paths():
        t = pq.read_table(path, columns=["key", "keep", "reason", "survivor_key"])
        rows = _rows(t["key"], n)
        foreign += int((rows < 0).sum())
        good = rows >= 0
        r = rows[good]
        np.add.at(seen, r, 1)
        keep[r] = t["keep"].to_numpy(zero_copy_only=False)[good]
        reason[r] = codes.encode(t["reason"])[good]
        survivor[r] = _rows(t["survivor_key"], n)[good]
    problems = []
    if foreign:
        problems.append(f"dedup: {foreign} decisions for keys not in the raw shards")
    twice = np.flatnonzero(seen > 1)
    if twice.size:
        problems.append(f"dedup: {twice.size} keys decided more than once, e.g. {_examples(twice)}")
    missing = np.flatnonzero(filter_kept & (seen == 0))
    if missing.size:
        problems.append(f"dedup: {missing.size} rows the filter kept have no decision, e.g. {_examples(missing)}")
    extra = np.flatnonzero(~filter_kept & (seen > 0))
    if extra.size:
        problems.append(f"dedup: {extra.size} decisions for rows the filter did not keep, e.g. {_examples(extra)}")
    groups = {}
    in_group = group >= 0
    for r, want in DEDUP_REASON.items():
        members = np.flatnonzero(role == r)
        g = group[members]
        # Groups with a member the filter dropped (a random caption hitting a rule) are not judged.
        whole = np.ones(int(g.max()) + 1 if g.size else 0, bool)
        whole[g[~filter_kept[members]]] = False
        members, g = members[whole[g]], g[whole[g]]
        kept_per_group = np.bincount(g, weights=keep[members], minlength=whole.size)[np.unique(g)]
        bad_groups = int((kept_per_group != 1).sum())
        removed = members[~keep[members]]
        wrong_reason = removed[reason[removed] != codes.code(want)]
        sv = survivor[removed]
        wrong_survivor = removed[(sv < 0) | (group[np.maximum(sv, 0)] != group[removed])]
        groups[ROLES[r]] = {"groups": int(np.unique(g).size), "removed": int(removed.size),
                            "removed_as_planted": int(removed.size - wrong_reason.size),
                            "groups_not_one_survivor": bad_groups}
        if bad_groups:
            problems.append(f"dedup: {bad_groups} planted {ROLES[r]} groups do not keep exactly one member")
        if wrong_reason.size:
            problems.append(f"dedup: {wrong_reason.size} planted {ROLES[r]} duplicates removed for another reason "
                            f"than {want}, e.g. {_examples(wrong_reason)}")
        if wrong_survivor.size:
            problems.append(f"dedup: {wrong_survivor.size} planted {ROLES[r]} duplicates name a survivor outside "
                            f"their group, e.g. {_examples(wrong_survivor)}")
    unplanted = np.flatnonzero((seen > 0) & ~keep & ~in_group)
    decided = int((seen > 0).sum())
    expected_random = decided * (decided - 1) / 2 * _NEAR4
    if unplanted.size > max(10, 10 * expected_random):
        problems.append(f"dedup: {unplanted.size} rows outside planted groups removed (random pHash pairs "
                        f"within radius 4 expected: {expected_random:.2f}), e.g. {_examples(unplanted)}")
    return {"decisions": decided, "kept": int(keep.sum()), "removed": int(((seen > 0) & ~keep).sum()),
            "planted_groups": groups, "unplanted_removed": int(unplanted.size),
            "random_near_pairs_expected": round(expected_random, 3), "problems": problems, "_keep": keep & (seen > 0)}


def final_indexes(shards_dir: str | Path) -> list[Path]:
    out = []
    for split in SPLITS:
        d = Path(shards_dir) / split
        if d.is_dir():
            out += sorted(p for p in d.glob("*.parquet") if p.stem.isdigit())
    return out


def check_shards(shards_dir: str | Path, n: int, dedup_keep: np.ndarray, tars_to_read: int = 3,
                 seed: int = 0) -> dict:
    seen = np.zeros(n, np.int16)
    foreign = 0
    by_split: dict[str, int] = {}
    indexes = final_indexes(shards_dir)
    for path in indexes:
        t = pq.read_table(path, columns=["key"])
        rows = _rows(t["key"], n)
        foreign += int((rows < 0).sum())
        np.add.at(seen, rows[rows >= 0], 1)
        by_split[path.parent.name] = by_split.get(path.parent.name, 0) + t.num_rows
    problems = []
    written = int(seen.sum()) + foreign
    if foreign:
        problems.append(f"shards: {foreign} samples with keys not in the raw shards")
    twice = np.flatnonzero(seen > 1)
    if twice.size:
        problems.append(f"shards: {twice.size} keys in more than one final sample, e.g. {_examples(twice)}")
    missing = np.flatnonzero(dedup_keep & (seen == 0))
    if missing.size:
        problems.append(f"shards: {missing.size} kept decisions missing from the final shards, e.g. {_examples(missing)}")
    extra = np.flatnonzero(~dedup_keep & (seen > 0))
    if extra.size:
        problems.append(f"shards: {extra.size} final samples that dedup did not keep, e.g. {_examples(extra)}")
    if written != int(dedup_keep.sum()):
        problems.append(f"shards: {written} final samples, {int(dedup_keep.sum())} kept decisions")
    # A few whole shards: the tar holds exactly the index's samples, each with its three members.
    for path in random.Random(seed).sample(indexes, min(tars_to_read, len(indexes))):
        keys = pq.read_table(path, columns=["key"])["key"].to_pylist()
        tar_keys, incomplete = [], 0
        for key, members in iter_tar_samples(path.with_suffix(".tar")):
            tar_keys.append(key)
            incomplete += not {"jpg", "txt", "json"} <= set(members) or not members["jpg"]
        if tar_keys != keys or incomplete:
            problems.append(f"shards: {path.with_suffix('.tar')} does not hold its index's samples "
                            f"({len(tar_keys)} in the tar, {len(keys)} indexed, {incomplete} incomplete)")
    return {"samples": written, "by_split": by_split, "final_shards": len(indexes), "problems": problems}


def check_chain(filter_dir, dedup_dir, shards_dir, planted: dict[str, np.ndarray]) -> dict:
    """Each stage's check on the previous one's verdicts; a stage whose output is missing stops it."""
    out: dict = {}
    try:
        f = check_filter(filter_dir, planted)
        out["filter"] = f
        d = check_dedup(dedup_dir, planted, f.pop("_kept"))
        out["dedup"] = d
        out["shards"] = check_shards(shards_dir, planted["role"].size, d.pop("_keep"))
    except (FileNotFoundError, OSError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["problems"] = [p for s in ("filter", "dedup", "shards") for p in out.get(s, {}).get("problems", [])]
    if "error" in out:
        out["problems"].append(out["error"])
    return out
