"""The survivor policy over whole clusters of routed samples (a `dedup-decide` task's work).

Same policy as `dedup.decisions.decide` (the in-memory reference), on digests instead of strings:
rank each cluster by largest original image, then longest caption, then smallest key; the first
is the survivor, and with `captions_per_cluster = K` the next members whose caption differs from
every caption already kept survive too, up to K. Every other member records the survivor's key
and its reason relative to the survivor: `exact_url`, `exact_pair`, `exact_sha256`, else
`near_phash`. `cluster_id` is derived from the cluster's smallest key (`dedup.digest.cluster_ids`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dedup.config import DedupConfig
from dedup.digest import cluster_ids

REASONS = ("unique", "survivor", "exact_url", "exact_sha256", "exact_pair", "near_phash")
UNIQUE, SURVIVOR, EXACT_URL, EXACT_SHA256, EXACT_PAIR, NEAR_PHASH = range(len(REASONS))
# Identical-hash groups reported in the stats (the largest are blank or placeholder images).
HOT_GROUPS_REPORTED = 5

ROUTE_SCHEMA = pa.schema([
    ("bucket", pa.uint64()),   # mix64(label): reducers split on it
    ("label", pa.int64()),     # cluster label (smallest node of the component)
    ("key", pa.string()),
    ("phash", pa.uint64()), ("has_phash", pa.bool_()),
    ("url_hi", pa.uint64()), ("url_lo", pa.uint64()),
    ("sha_hi", pa.uint64()), ("sha_lo", pa.uint64()),
    ("cap_hi", pa.uint64()), ("cap_lo", pa.uint64()),
    ("pixels", pa.int64()), ("cap_len", pa.int64()),
    ("part", pa.int64()), ("row", pa.int64()),  # where the sample's decision goes back to
])

DECIDED_SCHEMA = pa.schema([
    ("part", pa.int64()), ("row", pa.int64()),
    ("keep", pa.bool_()), ("reason", pa.uint8()),  # index into REASONS
    ("survivor_key", pa.string()), ("cluster_id", pa.int64()), ("cluster_size", pa.int64()),
    ("phash_distance", pa.int16()),
])


def _np(table: pa.Table, col: str) -> np.ndarray:
    return table[col].to_numpy(zero_copy_only=False) if table.num_rows else np.empty(0)


def decide_clusters(table: pa.Table, cfg: DedupConfig) -> tuple[pa.Table, dict]:
    """`table` (ROUTE_SCHEMA) holds every member of each of its clusters. Returns one decision per
    row (DECIDED_SCHEMA) and counts: by_reason, clusters, largest_cluster, hot_phash {hex: n}."""
    n = table.num_rows
    stats = {"by_reason": {r: 0 for r in REASONS}, "clusters": 0, "largest_cluster": 0, "hot_phash": {}}
    if n == 0:
        return DECIDED_SCHEMA.empty_table(), stats
    keys = table["key"].combine_chunks()
    key_order = pc.sort_indices(keys).to_numpy()
    key_rank = np.empty(n, dtype=np.int64)
    key_rank[key_order] = np.arange(n)
    label = _np(table, "label")
    order = np.lexsort((key_rank, -_np(table, "cap_len"), -_np(table, "pixels"), label))

    def ranked(col: str) -> np.ndarray:
        return _np(table, col)[order]

    lab = label[order]
    start = np.ones(n, dtype=bool)
    start[1:] = lab[1:] != lab[:-1]
    group_start = np.flatnonzero(start)
    group = np.cumsum(start) - 1
    sizes = np.diff(np.append(group_start, n))
    size = sizes[group]
    primary = group_start[group]  # the survivor, in ranked positions

    # The first member of each (cluster, caption) in rank order, then the K first of those.
    cap_hi, cap_lo = ranked("cap_hi"), ranked("cap_lo")
    by_caption = np.lexsort((np.arange(n), cap_lo, cap_hi, group))
    g2, h2, l2 = group[by_caption], cap_hi[by_caption], cap_lo[by_caption]
    first = np.ones(n, dtype=bool)
    first[1:] = (g2[1:] != g2[:-1]) | (h2[1:] != h2[:-1]) | (l2[1:] != l2[:-1])
    first_of_caption = np.empty(n, dtype=bool)
    first_of_caption[by_caption] = first
    seen = np.cumsum(first_of_caption)
    nth_caption = seen - (seen[group_start] - first_of_caption[group_start])[group]
    keep = first_of_caption & (nth_caption <= cfg.captions_per_cluster)

    def same(hi_col: str, lo_col: str) -> np.ndarray:
        hi, lo = ranked(hi_col), ranked(lo_col)
        return (hi == hi[primary]) & (lo == lo[primary]) & ((hi != 0) | (lo != 0))

    same_url = same("url_hi", "url_lo")
    same_sha = same("sha_hi", "sha_lo")
    same_cap = (cap_hi == cap_hi[primary]) & (cap_lo == cap_lo[primary])
    reason = np.select(
        [keep & (size == 1), keep, same_url & cfg.exact_url, same_sha & same_cap & cfg.exact_sha256,
         same_sha & cfg.exact_sha256],
        [UNIQUE, SURVIVOR, EXACT_URL, EXACT_PAIR, EXACT_SHA256], default=NEAR_PHASH).astype(np.uint8)
    phash, has = ranked("phash"), ranked("has_phash")
    dist = np.where(has & has[primary], np.bitwise_count(phash ^ phash[primary]).astype(np.int16), np.int16(-1))
    ranked_keys = keys.take(pa.array(order))
    smallest_key = keys.take(pa.array(key_order[np.minimum.reduceat(key_rank[order], group_start)]))
    decided = pa.table({
        "part": ranked("part"), "row": ranked("row"), "keep": keep, "reason": reason,
        "survivor_key": ranked_keys.take(pa.array(primary)),
        "cluster_id": cluster_ids(smallest_key)[group], "cluster_size": size.astype(np.int64),
        "phash_distance": dist}, schema=DECIDED_SCHEMA)

    counts = np.bincount(reason, minlength=len(REASONS))
    stats["by_reason"] = {r: int(c) for r, c in zip(REASONS, counts)}
    stats["clusters"] = int(group_start.size)
    stats["largest_cluster"] = int(sizes.max())
    stats["hot_phash"] = hot_phash(phash[has])
    return decided, stats


def hot_phash(hashes: np.ndarray, top: int = HOT_GROUPS_REPORTED) -> dict[str, int]:
    """The `top` hashes held by the most samples (more than one), largest first, ties by hash."""
    values, counts = np.unique(hashes, return_counts=True)
    many = counts > 1
    values, counts = values[many], counts[many]
    pick = np.lexsort((values, -counts))[:top]
    return {f"{int(values[i]):016x}": int(counts[i]) for i in pick}


def merge_hot(groups: list[dict[str, int]], top: int = HOT_GROUPS_REPORTED) -> dict[str, int]:
    """Top groups over tasks whose hashes are disjoint (a hash's samples are all in one cluster)."""
    items = [(c, h) for g in groups for h, c in g.items()]
    items.sort(key=lambda ch: (-ch[0], ch[1]))
    return {h: c for c, h in items[:top]}
