"""One decision per sample: clusters of duplicates and which member survives, in memory.

This is the reference implementation (all samples in one frame): the pipeline's distributed path
(`dedup.steps`, `pipelines.dedup_job`) must give the same decisions, and the tests check it does.

Clusters are the connected components of four relations: the same normalised URL, the same image
bytes (sha256), identical pHash, and pHash within the radius. Survivor policy, deterministic:
the largest original image (pixels), then the longest caption, then the smallest key. With
`captions_per_cluster = K > 1` the next members in that order whose caption differs from every
caption already kept survive too, up to K per cluster. Every other member records its survivor and
the closest reason relative to that survivor, so a decision can be audited or reversed:
`exact_url` (same normalised URL), `exact_pair` (same bytes and caption), `exact_sha256` (same bytes),
else `near_phash` (same or near pHash, directly or through other members). A missing or empty
URL or sha256 never makes two samples the same. `cluster_id` is derived from the cluster's
smallest key (`dedup.digest.cluster_ids`), so it does not depend on how the work was split.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa

from dedup.clusters import component_roots, group_edges
from dedup.config import DedupConfig
from dedup.digest import cluster_ids
from dedup.exact import group_codes, normalize_url
from dedup.near import inverse_index, near_pairs, sorted_unique
from dedup.survivors import REASONS, hot_phash
from dedup.tables import choose_plan, make_tables

__all__ = ["REASONS", "decide", "local_near_finder", "search_near"]

# (sorted distinct hashes, cfg) -> (node pairs lo, hi, search stats)
NearFinder = Callable[[np.ndarray, DedupConfig], tuple[np.ndarray, np.ndarray, dict]]


def local_near_finder(unique: np.ndarray, cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    if cfg.radius < 1 or unique.size < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), {"tables": 0}
    plan = choose_plan(unique.size, cfg.radius, cfg.blocks, cfg.max_tables, cfg.cost_sort_ns, cfg.cost_candidate_ns)
    lo, hi, stats = near_pairs(unique, make_tables(plan.blocks, cfg.radius), cfg.radius, cfg.hot_bucket_window)
    stats.update(blocks=plan.blocks, min_key_bits=plan.min_key_bits)
    return lo, hi, stats


def search_near(hashes: np.ndarray, cfg: DedupConfig, finder: NearFinder = local_near_finder):
    """(near node pairs lo, hi, search stats, sorted distinct hashes, node of every hash).

    The search needs only the distinct hashes; numbering every sample's hash (a pass as long as a
    sort at 100M) overlaps with it on this thread while the finder runs (in Ray workers, or in
    numpy calls that release the GIL)."""
    unique = sorted_unique(hashes)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="near-search") as pool:
        search = pool.submit(finder, unique, cfg)
        inverse = inverse_index(hashes, unique)
        lo, hi, stats = search.result()
    return lo, hi, stats, unique, inverse


def _pixels(df: pd.DataFrame) -> np.ndarray:
    """Original width x height per row; the stored image's where the original size is unknown."""
    def product(w: str, h: str) -> np.ndarray:
        if w not in df or h not in df:
            return np.zeros(len(df), dtype=np.int64)
        return df[w].fillna(0).to_numpy(np.int64) * df[h].fillna(0).to_numpy(np.int64)

    original = product("original_width", "original_height")
    return np.where(original > 0, original, product("width", "height"))


def decide(df: pd.DataFrame, cfg: DedupConfig, finder: NearFinder = local_near_finder) -> tuple[pd.DataFrame, dict]:
    """`df`: key, url, caption, sha256, phash (uint64, may be null), sizes; one row per sample.
    Returns (decisions sorted by key, stats)."""
    df = df.sort_values("key", kind="stable").reset_index(drop=True)
    n = len(df)
    if "url_norm" not in df:
        df["url_norm"] = [normalize_url(u, cfg.url_drop_params) for u in df["url"]]
    caption = df["caption"].fillna("").astype(str)
    edges_a: list[np.ndarray] = []
    edges_b: list[np.ndarray] = []

    def add(pair):
        edges_a.append(pair[0])
        edges_b.append(pair[1])

    if cfg.exact_url:
        add(group_edges(group_codes(df["url_norm"])))
    if cfg.exact_sha256:
        add(group_edges(group_codes(df["sha256"])))
    # pHash: identical hashes are one node; near pairs join nodes.
    has_hash = df["phash"].notna().to_numpy()
    hashes = df["phash"].to_numpy(dtype=np.uint64, na_value=0)
    lo, hi, near_stats, unique, inverse = search_near(hashes[has_hash], cfg, finder)
    node = np.full(n, -1, dtype=np.int64)
    node[has_hash] = inverse
    add(group_edges(node))
    if lo.size:
        # A representative row per node: the first row holding that hash.
        rep = np.full(unique.size, -1, dtype=np.int64)
        rows = np.flatnonzero(has_hash)[::-1]
        rep[node[rows]] = rows
        add((rep[lo], rep[hi]))
    roots = component_roots(n, np.concatenate(edges_a), np.concatenate(edges_b))

    pixels = _pixels(df)
    cap_len = caption.str.len().to_numpy(np.int64)
    keys = df["key"].to_numpy()
    # Rank: cluster, then largest image, longest caption, smallest key (rows are sorted by key).
    order = np.lexsort((np.arange(n), -cap_len, -pixels, roots))
    ranked = pd.DataFrame({"row": order, "root": roots[order], "caption": caption.to_numpy()[order]})
    first_of_caption = ~ranked.duplicated(["root", "caption"])
    nth_caption = first_of_caption.astype(np.int64).groupby(ranked["root"]).cumsum()
    keep_ranked = first_of_caption & (nth_caption <= cfg.captions_per_cluster)
    keep = np.zeros(n, dtype=bool)
    keep[order[keep_ranked.to_numpy()]] = True
    is_primary = np.zeros(n, dtype=bool)
    is_primary[order[~ranked["root"].duplicated().to_numpy()]] = True
    primary_of_root = np.full(n, -1, dtype=np.int64)
    primary_of_root[roots[is_primary]] = np.flatnonzero(is_primary)
    survivor = primary_of_root[roots]
    size = np.bincount(roots, minlength=n)[roots]

    url_norm = df["url_norm"].astype(object).to_numpy()
    sha = df["sha256"].astype(object).to_numpy()
    cap = caption.to_numpy()
    same_url = (url_norm == url_norm[survivor]) & pd.notna(url_norm)
    same_sha = (sha == sha[survivor]) & pd.notna(sha) & (sha != "")
    same_cap = cap == cap[survivor]
    reason = np.select(
        [keep & (size == 1), keep, same_url & cfg.exact_url, same_sha & same_cap & cfg.exact_sha256,
         same_sha & cfg.exact_sha256],
        ["unique", "survivor", "exact_url", "exact_pair", "exact_sha256"], default="near_phash")
    dist = np.where(has_hash & has_hash[survivor],
                    np.bitwise_count(hashes ^ hashes[survivor]).astype(np.int16), -1)
    decisions = pd.DataFrame({
        "key": keys, "keep": keep, "reason": reason, "survivor_key": keys[survivor],
        # Rows are sorted by key, so a cluster's root row holds its smallest key.
        "cluster_id": cluster_ids(pa.array(keys, pa.string()))[roots], "cluster_size": size,
        "phash_distance": dist,
    })
    stats = _stats(decisions, hashes, has_hash, unique, near_stats, cfg)
    return decisions, stats


def _stats(decisions: pd.DataFrame, hashes, has_hash, unique, near_stats: dict, cfg: DedupConfig) -> dict:
    counts = decisions["reason"].value_counts().to_dict()
    multi = decisions.loc[decisions["cluster_size"] > 1, "cluster_id"]
    return {
        "examined": int(len(decisions)),
        "kept": int(decisions["keep"].sum()),
        "removed": int((~decisions["keep"]).sum()),
        "by_reason": {r: int(counts.get(r, 0)) for r in REASONS},
        "clusters_with_duplicates": int(multi.nunique()),
        "largest_cluster": int(decisions["cluster_size"].max()) if len(decisions) else 0,
        "distinct_phash": int(unique.size),
        # Identical-hash groups are collapsed to one node before the search: the largest ones
        # are typically blank or placeholder images.
        "largest_identical_phash_groups": hot_phash(hashes[has_hash]),
        "radius": cfg.radius,
        "captions_per_cluster": cfg.captions_per_cluster,
        "near_search": near_stats,
    }
