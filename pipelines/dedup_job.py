"""Dedup on Ray with a driver that holds O(partitions) rows' worth of bookkeeping, the distinct
pHashes (8 bytes each) and the graph edges; every per-sample step is a Ray task over files.

    dedup-map     one task per raw index: samples, exact rows, pHash summary (dedup.steps.map_step)
    dedup-exact   one task per digest range: edges of exact URL / sha256 groups (a hash shuffle)
    dedup-tables  groups of permuted tables over the distinct pHashes: near pairs
                  (driver: connected components over the nodes that have an edge)
    dedup-route   one task per raw index: cluster label per sample, multi-sample clusters routed
    dedup-decide  one task per label range: survivor policy over whole clusters
    dedup-write   one task per raw index: its decisions part, sorted by key

Output: `decisions/` (parts + manifest, `shards.parts`; part P covers raw index P's keys) and
`stats.json`. Work files live in `_work/` under the output, tied to a fingerprint of the inputs
and the configuration; a rerun with the same fingerprint redoes only missing steps and writes
byte-identical decisions, and a rerun after a finished run returns its stats. See docs/scale.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from dedup.config import DedupConfig
from dedup.digest import bucket_bounds
from dedup.near import merge_table_results, tables_pairs
from dedup.steps import (Work, components_step, decide_step, distinct_step, exact_step, map_step, route_step,
                         write_step)
from dedup.survivors import REASONS, merge_hot
from dedup.tables import choose_plan, make_tables, tables_by_first_block
from pipelines import metrics
from pipelines.config import WukongConfig
from pipelines.ray_runtime import cluster_cpus, init_ray
from shards.atomic import remove_stale_temporaries, write_json_atomic
from shards.parts import MANIFEST, Part, Parts, open_parts, read_manifest, unpublish, write_manifest
from shards.sources import raw_shard_indexes

log = logging.getLogger(__name__)

STAGE = "dedup"
DECISIONS = "decisions"
WORK_DIR = "_work"
LEGACY_DECISIONS = "decisions.parquet"
# Bump when work files change meaning, so a rerun never resumes from files of another version.
WORK_VERSION = 2


# --- Near search (dedup-tables) -------------------------------------------------------------------

def _tables_task(unique, blocks: int, radius: int, indexes: list[int], window: int):
    tables = make_tables(blocks, radius)
    return tables_pairs(unique, [tables[i] for i in indexes], radius, window)


def table_tasks(blocks: int, radius: int, cpus: int) -> list[list[int]]:
    """Table indexes per task, costliest first, about two tasks per CPU. Tables sharing a first
    key block go together: they share one ordering of the hashes, free for block 0 (the sorted
    input) and one extra sort for any other block, which also makes their tasks costlier."""
    tables = make_tables(blocks, radius)
    share = max(1, math.ceil(len(tables) / (2 * max(1, cpus))))
    index = {t: i for i, t in enumerate(tables)}
    pieces = []
    for group in tables_by_first_block(tables).values():
        parts = math.ceil(len(group) / share)
        pieces += [[index[t] for t in group[p::parts]] for p in range(parts)]
    # Cost in tables, plus about one for the sort a group other than block 0's pays.
    first = {i: t.key_blocks[0] for i, t in enumerate(tables)}
    return sorted(pieces, key=lambda idx: len(idx) + (first[idx[0]] != 0), reverse=True)


def near_search_start(unique_ref, n: int, cfg: DedupConfig):
    """Start the table tasks over the distinct hashes in the object store; None when there is
    nothing to search. Returns (futures, plan, start time) for `near_search_finish`."""
    import ray

    if cfg.radius < 1 or n < 2:
        return None
    plan = choose_plan(n, cfg.radius, cfg.blocks, cfg.max_tables, cfg.cost_sort_ns, cfg.cost_candidate_ns)
    # A task holds one ordered copy of the hashes (two while making it) and cache-sized slices.
    task = ray.remote(_tables_task).options(name="dedup-tables", memory=max(1, n * 8 * 2), max_retries=2)
    futures = [task.remote(unique_ref, plan.blocks, cfg.radius, idx, cfg.hot_bucket_window)
               for idx in table_tasks(plan.blocks, cfg.radius, cluster_cpus())]
    return futures, plan, time.perf_counter()


def near_search_finish(started) -> tuple[np.ndarray, np.ndarray, dict]:
    import ray

    if started is None:
        return np.empty(0, np.int64), np.empty(0, np.int64), {"tables": 0}
    futures, plan, t0 = started
    lo, hi, stats = merge_table_results([r for res in ray.get(futures) for r in res])
    stats.update(blocks=plan.blocks, min_key_bits=plan.min_key_bits, seconds=round(time.perf_counter() - t0, 3))
    return lo, hi, stats


def ray_near_finder(unique: np.ndarray, cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Near pairs of sorted distinct hashes by Ray tasks over groups of permuted tables (the
    in-memory reference `dedup.decisions.decide` and the benchmark take it as their finder)."""
    import ray

    ref = ray.put(unique)
    try:
        return near_search_finish(near_search_start(ref, unique.size, cfg))
    finally:
        del ref


# --- Inputs, fingerprint, work directory ----------------------------------------------------------

def resolve_kept(kept) -> Parts | None:
    """The filter's kept rows: a filter output directory (`kept/` parts or a legacy
    `kept.parquet`), a `kept/` directory, or a legacy file (or Parts already resolved)."""
    if kept is None or isinstance(kept, Parts):
        return kept
    path = Path(kept)
    if path.is_file():
        return Parts(path.parent, (Part(path.name, pq.ParquetFile(path).metadata.num_rows),), {"legacy": True})
    if not path.is_dir():
        raise FileNotFoundError(f"filter output not found: {path}")
    if (path / "kept").exists() or (path / "kept.parquet").is_file():
        return open_parts(path, "kept")
    return read_manifest(path)  # a kept/ directory itself; without a manifest: IncompleteOutput


def _kept_identity(kept: Parts | None) -> object:
    if kept is None:
        return None
    manifest = kept.directory / MANIFEST
    if not kept.meta.get("legacy") and manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    f = kept.directory / kept.parts[0].file
    st = f.stat()
    return [str(f), st.st_size, st.st_mtime_ns]


def run_fingerprint(files: list[Path], cfg: DedupConfig, kept: Parts | None) -> str:
    """Identity of a run's inputs and configuration: work files are reused only under the same one."""
    raw = []
    for f in files:
        st = f.stat()
        raw.append([str(f), st.st_size, st.st_mtime_ns])
    text = json.dumps({"version": WORK_VERSION, "cfg": asdict(cfg), "raw": raw, "kept": _kept_identity(kept)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def prepare_work(root: Path, fingerprint: str) -> Work:
    """The work directory of this fingerprint: kept (less temporaries) when it matches, else new."""
    marker = root / "fingerprint"
    if root.exists() and (not marker.is_file() or marker.read_text().strip() != fingerprint):
        shutil.rmtree(root)
    work = Work(root)
    for d in work.dirs():
        d.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(d)
    if not marker.is_file():
        marker.write_text(fingerprint + "\n")
    return work


def earlier_overlaps(stats: list[dict]) -> dict[int, list[str]]:
    """For each raw index, the earlier ones (in listing order) whose success key ranges overlap
    its own: their rows come first, so it drops the keys they hold. Sorted by range start, a
    range meets exactly the following ones that start before it ends (O(P log P + overlaps))."""
    ranges = sorted((s["key_min"], s["key_max"], s["partition"]) for s in stats if s["key_min"] is not None)
    out: dict[int, set[int]] = {}
    for i, (lo, hi, p) in enumerate(ranges):
        j = i + 1  # indexes, not a slice of the tail: that would copy O(P) per range
        while j < len(ranges) and ranges[j][0] <= hi:
            q = ranges[j][2]
            out.setdefault(max(p, q), set()).add(min(p, q))
            j += 1
    by_p = {s["partition"]: s["path"] for s in stats}
    return {p: [by_p[q] for q in sorted(qs)] for p, qs in out.items()}


# --- Tasks (stage names; the partition is an argument) ---------------------------------------------

def _map_task(work, p, raw_path, kept, exclude, cfg):
    stats = map_step(work, p, raw_path, kept, exclude, cfg)
    metrics.count(STAGE, "rows", stats["samples"], kind="samples")
    metrics.count(STAGE, "rows", stats["not_kept"], kind="not_kept_by_filter")
    metrics.count(STAGE, "rows", stats["duplicate_key"], kind="duplicate_key")
    metrics.count(STAGE, "rows", stats["missing_key"], kind="missing_key")
    return stats


def _write_task(work, p, decisions_dir, decide_buckets):
    out = write_step(work, p, decisions_dir, decide_buckets)
    metrics.count_many(STAGE, "samples", out["by_reason"], "reason")
    return out


def _components_task(work, n_near, plan, *results):
    """Near-pair results of `n_near` table tasks, then exact-edge results (resolved by Ray)."""
    near = [r for res in results[:n_near] for r in res]
    return components_step(work, near, list(results[n_near:]), plan)


def _remote(fn, name: str, **options):
    import ray
    return ray.remote(fn).options(name=name, **options)


# --- Driver ---------------------------------------------------------------------------------------

def _run_maps(work: Work, files: list[Path], kept: Parts | None, cfg: DedupConfig) -> list[dict]:
    import ray

    task = _remote(_map_task, "dedup-map")
    kept_ref = ray.put(kept) if kept is not None else None
    stats = ray.get([task.remote(work, p, str(f), kept_ref, None, cfg) for p, f in enumerate(files)])
    # Keys held by two raw indexes (rare: overlapping inputs): the earlier one's row wins.
    overlaps = earlier_overlaps([s for s in stats if not s["error"]])
    redo = [p for p, s in enumerate(stats) if not s["error"] and s["exclude"] != overlaps.get(p, [])]
    if redo:
        log.warning("dedup: %d raw indexes share keys with earlier ones; the earlier rows are used", len(redo))
        again = ray.get([task.remote(work, p, str(files[p]), kept_ref, overlaps.get(p, []), cfg) for p in redo])
        for p, s in zip(redo, again):
            stats[p] = s
    return stats


def _buckets(rows: int, cfg: DedupConfig) -> int:
    return max(1, math.ceil(rows / cfg.shuffle_rows_per_task))


class _Clock:
    """Wall seconds of each driver step, for the stats."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 3)
        self._t = now


def _published(decisions_dir: Path, stats_path: Path, fingerprint: str) -> dict | None:
    """The stats of a finished run with this fingerprint, if its output is still complete."""
    try:
        parts = read_manifest(decisions_dir)
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if parts.meta.get("fingerprint") != fingerprint or stats.get("fingerprint") != fingerprint:
        return None
    if not all((decisions_dir / p.file).is_file() for p in parts.parts):
        return None
    return stats


def run_dedup(raw_dirs, output, cfg: WukongConfig, kept: str | Path | Parts | None = None) -> dict:
    """Decisions for every sample of the raw indexes under `raw_dirs` (restricted to the filter's
    kept rows when `kept` names a filter output, see `resolve_kept`); returns the stats."""
    import ray

    problems = cfg.dedup.problems()
    if problems:
        raise ValueError(problems[0])
    dcfg = cfg.dedup
    out = Path(output)
    decisions_dir = out / DECISIONS
    files = raw_shard_indexes(raw_dirs)
    kept_parts = resolve_kept(kept)
    fingerprint = run_fingerprint(files, dcfg, kept_parts)
    done = _published(decisions_dir, out / "stats.json", fingerprint)
    if done is not None:
        log.info("dedup: %s already holds this run's decisions", decisions_dir)
        # A run killed after publishing, before removing its work files, left them behind.
        shutil.rmtree(out / WORK_DIR, ignore_errors=True)
        return done
    init_ray(cfg.ray)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    decisions_dir.mkdir(exist_ok=True)
    unpublish(decisions_dir)  # before any part is rewritten
    remove_stale_temporaries(decisions_dir)
    work = prepare_work(out / WORK_DIR, fingerprint)

    clock = _Clock()
    # 1. dedup-map
    maps = _run_maps(work, files, kept_parts, dcfg)
    clock.lap("map")
    live = [p for p, s in enumerate(maps) if s["samples"] > 0]
    live_ref = ray.put(np.asarray(live, dtype=np.int64))

    # 2. dedup-distinct: the distinct pHashes go to the object store, never through the driver
    counts = np.asarray([maps[p]["distinct_phash"] for p in live], dtype=np.int64)
    distinct = _remote(distinct_step, "dedup-distinct", num_returns=3, memory=max(1, int(counts.sum()) * 8 * 3))
    unique_ref, repeated_ref, n_unique_ref = distinct.remote(work, live_ref, counts)
    n_unique = ray.get(n_unique_ref)
    clock.lap("distinct_phash")

    # 3. dedup-exact and dedup-tables side by side, then dedup-components over their edges
    near_refs, exact_refs, plan = [], [], {}
    if not work.components().is_file():  # else a previous run of this fingerprint got this far
        started = near_search_start(unique_ref, n_unique, dcfg)
        if started is not None:
            near_refs, near_plan, _ = started
            plan = {"blocks": near_plan.blocks, "min_key_bits": near_plan.min_key_bits}
        exact_buckets = _buckets(sum(maps[p]["exact_rows"] for p in live), dcfg)
        exact_task = _remote(exact_step, "dedup-exact")
        exact_refs = [exact_task.remote(work, exact_buckets, e, lo, hi, live_ref, unique_ref)
                      for e, (lo, hi) in enumerate(bucket_bounds(exact_buckets))]
    components = _remote(_components_task, "dedup-components", num_returns=3)
    nodes_ref, roots_ref, summary_ref = components.remote(work, len(near_refs), plan, *near_refs, *exact_refs)
    graph = ray.get(summary_ref)
    del near_refs, exact_refs
    clock.lap("exact_near_components")

    # 4. dedup-route, 5. dedup-decide
    route_task = _remote(route_step, "dedup-route")
    routed = ray.get([route_task.remote(work, p, unique_ref, repeated_ref, nodes_ref, roots_ref) for p in live])
    clock.lap("route")
    decide_buckets = _buckets(sum(r["routed"] for r in routed), dcfg)
    decide_task = _remote(decide_step, "dedup-decide")
    decided = ray.get([decide_task.remote(work, decide_buckets, d, lo, hi, live_ref, dcfg)
                       for d, (lo, hi) in enumerate(bucket_bounds(decide_buckets))])
    del unique_ref, repeated_ref, nodes_ref, roots_ref
    clock.lap("decide")

    # 6. dedup-write, then publish
    write_task = _remote(_write_task, "dedup-write")
    written = ray.get([write_task.remote(work, p, str(decisions_dir), decide_buckets) for p in live])
    write_manifest(decisions_dir, [Part(**w["part"]) for w in written], {"fingerprint": fingerprint})
    (out / LEGACY_DECISIONS).unlink(missing_ok=True)  # an earlier version's output, now stale
    clock.lap("write")

    stats = _stats(maps, written, decided, kept_parts, n_unique, graph["near_search"], dcfg)
    stats.update(fingerprint=fingerprint, seconds=round(time.perf_counter() - t0, 3), work={
        "partitions": len(files), "exact_tasks": graph["exact_tasks"], "decide_tasks": decide_buckets,
        "routed_samples": sum(r["routed"] for r in routed), "edges": graph["edges"],
        "edge_nodes": graph["edge_nodes"], "seconds": clock.laps,
        # Steps a previous run of the same fingerprint had finished (a resumed run).
        "reused": {"map": sum(s["reused"] for s in maps),
                   "exact": graph["exact_tasks"] if graph["reused"] else graph["exact_reused"],
                   "components": graph["reused"], "route": sum(r["reused"] for r in routed),
                   "decide": sum(d["reused"] for d in decided), "write": sum(w["reused"] for w in written)}})
    write_json_atomic(out / "stats.json", stats)
    shutil.rmtree(work.root, ignore_errors=True)
    log.info("dedup: %d examined, %d kept, %s", stats["examined"], stats["kept"], stats["by_reason"])
    return stats


def _stats(maps: list[dict], written: list[dict], decided: list[dict], kept: Parts | None, n_unique: int,
           near_stats: dict, cfg: DedupConfig) -> dict:
    examined = sum(s["samples"] for s in maps)
    inputs = {"index_files": len(maps),
              "unreadable_index_files": {s["path"]: s["error"] for s in maps if s["error"]},
              "success_rows": sum(s["success"] for s in maps),
              # Success rows without a key (malformed): left out, since no later stage can name them.
              "missing_key": sum(s["missing_key"] for s in maps),
              "duplicate_key": sum(s["duplicate_key"] for s in maps)}
    if kept is not None:
        inputs["not_kept_by_filter"] = sum(s["not_kept"] for s in maps)
        inputs["kept_keys_missing_from_raw"] = kept.rows - examined
    by_reason = {r: sum(w["by_reason"][r] for w in written) for r in REASONS}
    kept_n = sum(w["kept"] for w in written)
    return {
        "input": inputs,
        "examined": examined, "kept": kept_n, "removed": examined - kept_n, "by_reason": by_reason,
        "clusters_with_duplicates": sum(d["clusters"] for d in decided),
        "largest_cluster": max([d["largest_cluster"] for d in decided] + [1 if examined else 0]),
        "distinct_phash": n_unique,
        # Identical-hash groups are collapsed to one node before the search: the largest ones
        # are typically blank or placeholder images.
        "largest_identical_phash_groups": merge_hot([d["hot_phash"] for d in decided]),
        "radius": cfg.radius,
        "captions_per_cluster": cfg.captions_per_cluster,
        "near_search": near_stats,
    }
