"""Dedup on Ray: read the raw parquet indexes (one task per shard), search near pHashes (one task per
permuted table), decide survivors on the driver, write `decisions.parquet` and `stats.json`.

Only metadata moves: keys, URLs, captions, sha256 and 64-bit hashes; no image is decoded again.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dedup.config import DedupConfig
from dedup.decisions import decide
from dedup.exact import normalize_url
from dedup.near import merge_table_results, tables_pairs
from dedup.tables import choose_plan, make_tables, tables_by_first_block
from pipelines.config import WukongConfig
from pipelines.ray_runtime import cluster_cpus, init_ray
from shards.atomic import write_json_atomic, write_parquet_atomic
from shards.format import STATUS_SUCCESS
from shards.sources import raw_shard_indexes

log = logging.getLogger(__name__)

INDEX_COLUMNS = ["key", "url", "caption", "status", "sha256", "phash", "width", "height",
                 "original_width", "original_height"]


def read_index(path: str, drop_params: list[str]) -> tuple[pd.DataFrame | None, str | None]:
    """Successful rows of one raw index with normalised URLs, or (None, error) if unreadable."""
    try:
        schema = pq.read_schema(path)
        cols = [c for c in INDEX_COLUMNS if c in schema.names]
        missing = {"key", "status", "phash"} - set(cols)
        if missing:
            return None, f"missing columns {sorted(missing)}"
        # Nullable UInt64 keeps 64-bit hashes exact where a float64 column would round them.
        df = pq.read_table(path, columns=cols).to_pandas(types_mapper={pa.uint64(): pd.UInt64Dtype()}.get)
    except (OSError, pa.ArrowException) as exc:
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]
    df = df[df["status"] == STATUS_SUCCESS].drop(columns=["status"])
    for c in INDEX_COLUMNS:
        if c not in df and c != "status":
            df[c] = None
    df["url_norm"] = [normalize_url(u, drop_params) for u in df["url"]]
    df["source_index"] = str(path)
    return df.reset_index(drop=True), None


def load_samples(raw_dirs, cfg: DedupConfig, kept: str | Path | None) -> tuple[pd.DataFrame, dict]:
    import ray

    files = raw_shard_indexes(raw_dirs)
    task = ray.remote(read_index)
    results = ray.get([task.remote(str(f), list(cfg.url_drop_params)) for f in files])
    errors = {str(f): err for f, (_, err) in zip(files, results) if err}
    for f, err in errors.items():
        log.warning("dedup: unreadable raw index %s: %s", f, err)
    frames = [df for df, _ in results if df is not None]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=INDEX_COLUMNS + ["url_norm"])
    stats = {"index_files": len(files), "unreadable_index_files": errors, "success_rows": int(len(df))}
    dup = df["key"].duplicated(keep="first")
    stats["duplicate_key"] = int(dup.sum())
    if dup.any():
        log.warning("dedup: %d rows repeat a key seen in an earlier shard; the first is used", int(dup.sum()))
        df = df[~dup]
    if kept is not None:
        k = pq.read_table(kept, columns=["key", "caption"]).to_pandas().drop_duplicates("key")
        before = len(df)
        df = df.drop(columns=["caption"]).merge(k, on="key", how="inner")
        stats["not_kept_by_filter"] = int(before - len(df))
        stats["kept_keys_missing_from_raw"] = int(len(k) - len(df))
    return df.reset_index(drop=True), stats


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


def ray_near_finder(unique: np.ndarray, cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Ray tasks over groups of permuted tables (`table_tasks`); the distinct hashes are shared
    through the object store."""
    import ray

    if cfg.radius < 1 or unique.size < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), {"tables": 0}
    t0 = time.perf_counter()
    plan = choose_plan(unique.size, cfg.radius, cfg.blocks, cfg.max_tables, cfg.cost_sort_ns, cfg.cost_candidate_ns)
    ref = ray.put(unique)
    # A task holds one ordered copy of the hashes (two while making it) and cache-sized slices.
    task = ray.remote(_tables_task).options(memory=max(1, unique.nbytes * 2), max_retries=2)
    futures = [task.remote(ref, plan.blocks, cfg.radius, idx, cfg.hot_bucket_window)
               for idx in table_tasks(plan.blocks, cfg.radius, cluster_cpus())]
    lo, hi, stats = merge_table_results([r for res in ray.get(futures) for r in res])
    del ref
    stats.update(blocks=plan.blocks, min_key_bits=plan.min_key_bits, seconds=round(time.perf_counter() - t0, 3))
    return lo, hi, stats


def run_dedup(raw_dirs, output, cfg: WukongConfig, kept: str | Path | None = None) -> dict:
    problems = cfg.dedup.problems()
    if problems:
        raise ValueError(problems[0])
    init_ray(cfg.ray)
    t0 = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    df, load_stats = load_samples(raw_dirs, cfg.dedup, kept)
    decisions, stats = decide(df, cfg.dedup, finder=ray_near_finder)
    write_parquet_atomic(out / "decisions.parquet", pa.Table.from_pandas(decisions, preserve_index=False))
    stats = {"input": load_stats, **stats, "seconds": round(time.perf_counter() - t0, 3)}
    write_json_atomic(out / "stats.json", stats)
    log.info("dedup: %d examined, %d kept, %s", stats["examined"], stats["kept"], stats["by_reason"])
    return stats
