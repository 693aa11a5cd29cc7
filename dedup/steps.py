"""The work of each distributed dedup task, on files in a work directory (no Ray here: the
pipeline runs these functions as Ray tasks and holds only what they return).

Every step writes its outputs atomically and its completion marker last, and starts by looking for
that marker (its result says `reused` when it found it): a rerun after a crash or `kill -9` redoes only the steps whose marker is missing. The
work directory belongs to one run fingerprint (inputs and configuration, checked by the pipeline),
so a marker is never read against other inputs. Layout under the work directory (P: raw index
position, E/D: exact/decide reducer count and index):

    map/P.samples.arrow    the partition's samples (dedup.samples.SAMPLE_SCHEMA), sorted by key
    map/P.exact.arrow      its exact rows (dedup.exact.EXACT_SCHEMA), sorted by digest
    map/P.phash.npz        its distinct and its repeated pHashes
    map/P.json             counts and key range (marker)
    exact/E-e.npz          edges of exact reducer e of E (marker)
    components.npz         nodes that have an edge and their component labels (marker of the
                           near search, the exact reducers and the components together)
    route/P.arrow          its samples in multi-sample clusters, sorted by bucket (marker)
    decided/D-d.arrow      decisions of decide reducer d of D, sorted by partition
    decided/D-d.json       its counts (marker)
    write/P.json           the decisions part's manifest entry and counts (marker)
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa

from dedup.clusters import edge_components
from dedup.config import DedupConfig
from dedup.digest import cluster_ids, mix64
from dedup.exact import EXACT_SCHEMA, exact_edges, exact_rows
from dedup.near import merge_table_results, sorted_unique
from dedup.routing import labels, node_ids, sample_ids
from dedup.runfiles import gather, read_all, rows, slice_range, write_sorted, write_table
from dedup.samples import first_per_key, key_range, phash_summary, read_success, restrict_to_kept, sample_table
from dedup.survivors import REASONS, ROUTE_SCHEMA, UNIQUE, decide_clusters
from shards.atomic import write_bytes_atomic, write_json_atomic
from shards.parts import Part, Parts, RangeIndex, read_range, write_part


class Work:
    """Paths of the work directory (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def map(self, p: int, what: str) -> Path:
        return self.root / "map" / f"{p:05d}.{what}"

    def exact(self, buckets: int, e: int) -> Path:
        return self.root / "exact" / f"{buckets}-{e:05d}.npz"

    def route(self, p: int) -> Path:
        return self.root / "route" / f"{p:05d}.arrow"

    def decided(self, buckets: int, d: int, what: str = "arrow") -> Path:
        return self.root / "decided" / f"{buckets}-{d:05d}.{what}"

    def written(self, p: int) -> Path:
        return self.root / "write" / f"{p:05d}.json"

    def components(self) -> Path:
        return self.root / "components.npz"

    def dirs(self) -> list[Path]:
        return [self.root / d for d in ("map", "exact", "route", "decided", "write")]


def save_npz(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# --- dedup-map ------------------------------------------------------------------------------------

def map_step(work: Work, p: int, raw_path: str, kept: Parts | None, exclude: list[str] | None,
             cfg: DedupConfig) -> dict:
    """Samples of raw index `raw_path` (partition p): compact columns, exact rows, pHash summary.
    `exclude`: earlier raw indexes whose keys this one must drop (their rows come first); None
    accepts a finished map whatever it excluded (the caller checks `stats["exclude"]`)."""
    done = _json(work.map(p, "json"))
    if done is not None and (exclude is None or done["exclude"] == exclude):
        return {**done, "reused": True}
    exclude = exclude or []
    stats = {"partition": p, "path": raw_path, "exclude": exclude, "error": None, "rows": 0, "success": 0,
             "missing_key": 0, "key_min": None, "key_max": None, "duplicate_key": 0, "not_kept": 0,
             "samples": 0, "exact_rows": 0, "distinct_phash": 0}
    raw = read_success(raw_path)
    stats["rows"], stats["missing_key"], table = raw.rows, raw.missing_key, raw.table
    if table is None:
        stats["error"] = raw.error
        write_json_atomic(work.map(p, "json"), stats)
        return {**stats, "reused": False}
    stats["success"] = table.num_rows + raw.missing_key
    stats["key_min"], stats["key_max"] = key_range(table)
    earlier = [read_success(q).table for q in exclude]
    earlier_keys = [t["key"] for t in earlier if t is not None]
    table, stats["duplicate_key"] = first_per_key(
        table, pa.chunked_array(earlier_keys, pa.string()).combine_chunks() if earlier_keys else None)
    if kept is not None:
        lo, hi = key_range(table)
        k = read_range(RangeIndex(kept).paths(lo, hi), lo, hi, ["key", "caption"]) if lo is not None else None
        if k is None:
            k = pa.table({"key": pa.array([], pa.string()), "caption": pa.array([], pa.string())})
        table, stats["not_kept"] = restrict_to_kept(table, k)
    samples = sample_table(table, cfg.url_drop_params)
    n = samples.num_rows
    write_table(work.map(p, "samples.arrow"), samples)
    exact = exact_rows(samples, sample_ids(p, np.arange(n)), cfg.exact_url, cfg.exact_sha256)
    stats["exact_rows"] = write_sorted(work.map(p, "exact.arrow"), exact, "d_hi")
    distinct, repeated = phash_summary(samples)
    save_npz(work.map(p, "phash.npz"), distinct=distinct, repeated=repeated)
    stats["samples"], stats["distinct_phash"] = n, int(distinct.size)
    write_json_atomic(work.map(p, "json"), stats)
    return {**stats, "reused": False}


# --- dedup-distinct -------------------------------------------------------------------------------

def distinct_step(work: Work, partitions: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(sorted distinct pHashes of all samples, the sorted ones more than one sample holds, how
    many distinct), merged from the partitions' summaries (`counts`: distinct hashes of each) in
    one preallocated array: 8 bytes per hash, twice while deduplicating."""
    merged = np.empty(int(np.sum(counts)), dtype=np.uint64)
    repeated = []
    at = 0
    for p in partitions:
        summary = load_npz(work.map(int(p), "phash.npz"))
        d = summary["distinct"]
        merged[at:at + d.size] = d
        at += d.size
        repeated.append(summary["repeated"])
    merged.sort()
    if merged.size == 0:
        return merged, merged, 0
    new = np.empty(merged.size, dtype=bool)
    new[0] = True
    np.not_equal(merged[1:], merged[:-1], out=new[1:])
    repeated.append(merged[1:][~new[1:]])  # held by samples of two or more partitions
    unique = merged[new]
    del merged
    return unique, sorted_unique(np.concatenate(repeated)), int(unique.size)


# --- dedup-exact ----------------------------------------------------------------------------------

def exact_step(work: Work, buckets: int, e: int, lo: int, hi: int, partitions: np.ndarray,
               unique: np.ndarray) -> dict:
    """Edges (node pairs a, b) of the exact groups whose digest's top word lies in [lo, hi],
    gathered from the exact rows of every partition in `partitions`."""
    path = work.exact(buckets, e)
    if path.is_file():
        return {**load_npz(path), "reused": True}
    t = gather([work.map(int(p), "exact.arrow") for p in partitions], "d_hi", lo, hi, EXACT_SCHEMA)
    a, b = exact_edges(t["kind"].to_numpy(), t["d_hi"].to_numpy(), t["d_lo"].to_numpy(), t["phash"].to_numpy(),
                       t["has_phash"].to_numpy(zero_copy_only=False), t["sid"].to_numpy(), unique)
    save_npz(path, a=a, b=b)
    return {"a": a, "b": b, "reused": False}


# --- dedup-components ---------------------------------------------------------------------------

def components_step(work: Work, near_results: list, exact_results: list[dict],
                    near_plan: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Connected components over the nodes that have an edge: near pairs (hash nodes already,
    from the table tasks' results) and exact-group edges. Returns (sorted nodes, their component
    labels, a summary with the near search's counts)."""
    path = work.components()
    if path.is_file():
        saved = load_npz(path)
        return saved["nodes"], saved["roots"], {**json.loads(str(saved["summary"])), "reused": True}
    lo, hi, near_stats = merge_table_results(near_results)
    if near_results:
        near_stats.update(near_plan)
    a = np.concatenate([lo] + [x["a"] for x in exact_results])
    b = np.concatenate([hi] + [x["b"] for x in exact_results])
    nodes, roots = edge_components(a, b)
    summary = {"near_search": near_stats, "edges": int(a.size), "edge_nodes": int(nodes.size),
               "exact_tasks": len(exact_results), "exact_reused": sum(bool(x["reused"]) for x in exact_results)}
    save_npz(path, nodes=nodes, roots=roots, summary=np.array(json.dumps(summary)))
    return nodes, roots, {**summary, "reused": False}


# --- dedup-route ----------------------------------------------------------------------------------

def route_step(work: Work, p: int, unique: np.ndarray, repeated: np.ndarray, edge_nodes: np.ndarray,
               edge_roots: np.ndarray) -> dict:
    """Label partition p's samples with their cluster; write those in multi-sample clusters,
    sorted by the bucket of their label. Returns how many (`routed`)."""
    path = work.route(p)
    if path.is_file():
        return {"routed": rows(path), "reused": True}
    s = _read_samples(work, p)
    phash, has = s["phash"].to_numpy(), s["has_phash"].to_numpy(zero_copy_only=False)
    nodes = node_ids(phash, has, sample_ids(p, np.arange(s.num_rows)), unique)
    label, multi = labels(nodes, phash, has, edge_nodes, edge_roots, repeated)
    sel = np.flatnonzero(multi)
    picked = s.take(pa.array(sel))
    cols = {c: picked[c] for c in picked.column_names}
    cols.update(bucket=mix64(label[sel]), label=label[sel], part=np.full(sel.size, p, dtype=np.int64), row=sel)
    table = pa.table({f.name: cols[f.name] for f in ROUTE_SCHEMA}, schema=ROUTE_SCHEMA)
    return {"routed": write_sorted(path, table, "bucket"), "reused": False}


def _read_samples(work: Work, p: int, columns: list[str] | None = None) -> pa.Table:
    table = read_all(work.map(p, "samples.arrow"))
    return table.select(columns) if columns else table


# --- dedup-decide ---------------------------------------------------------------------------------

def decide_step(work: Work, buckets: int, d: int, lo: int, hi: int, partitions: np.ndarray,
                cfg: DedupConfig) -> dict:
    """Survivors of the clusters whose label's bucket lies in [lo, hi], gathered from the routed
    samples of every partition in `partitions`; decisions sorted by partition for the writers;
    returns the counts."""
    done = _json(work.decided(buckets, d, "json"))
    if done is not None:
        return {**done, "reused": True}
    routed = gather([work.route(int(p)) for p in partitions], "bucket", lo, hi, ROUTE_SCHEMA)
    decided, stats = decide_clusters(routed, cfg)
    write_sorted(work.decided(buckets, d), decided, "part")
    write_json_atomic(work.decided(buckets, d, "json"), stats)
    return {**stats, "reused": False}


# --- dedup-write ----------------------------------------------------------------------------------

def write_step(work: Work, p: int, decisions_dir: str, decide_buckets: int) -> dict:
    """Partition p's decisions part: every sample sorted by key, `unique` unless a decide task
    decided it. Returns the manifest entry (as a dict) and the counts by reason."""
    done = _json(work.written(p))
    if done is not None and (Path(decisions_dir) / done["part"]["file"]).is_file():
        return {**done, "reused": True}
    s = _read_samples(work, p, ["key", "has_phash"])
    n = s.num_rows
    keys = s["key"].combine_chunks()
    keep = np.ones(n, dtype=bool)
    reason = np.full(n, UNIQUE, dtype=np.uint8)
    survivor = keys.to_numpy(zero_copy_only=False).astype(object)
    cluster_id = cluster_ids(keys)
    size = np.ones(n, dtype=np.int64)
    dist = np.where(s["has_phash"].to_numpy(zero_copy_only=False), 0, -1).astype(np.int16)
    for d in range(decide_buckets):
        piece = slice_range(read_all(work.decided(decide_buckets, d)), "part", p, p)
        if piece.num_rows == 0:
            continue
        r = piece["row"].to_numpy()
        keep[r] = piece["keep"].to_numpy(zero_copy_only=False)
        reason[r] = piece["reason"].to_numpy()
        survivor[r] = piece["survivor_key"].to_numpy(zero_copy_only=False)
        cluster_id[r] = piece["cluster_id"].to_numpy()
        size[r] = piece["cluster_size"].to_numpy()
        dist[r] = piece["phash_distance"].to_numpy()
    table = pa.table({
        "key": keys, "keep": keep, "reason": pa.array(np.asarray(REASONS, dtype=object)[reason], pa.string()),
        "survivor_key": pa.array(survivor, pa.string()), "cluster_id": cluster_id, "cluster_size": size,
        "phash_distance": dist})
    part: Part = write_part(decisions_dir, p, table)
    counts = np.bincount(reason, minlength=len(REASONS))
    out = {"part": asdict(part), "by_reason": {r: int(c) for r, c in zip(REASONS, counts)},
           "kept": int(keep.sum())}
    write_json_atomic(work.written(p), out)
    return {**out, "reused": False}
