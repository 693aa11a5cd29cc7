"""Near-duplicate pHash pairs from one permuted table, in numpy on uint64 arrays.

Input is the sorted array of *distinct* hashes: identical hashes (blank or placeholder images that
thousands of samples share) are collapsed to one node beforehand, so they never make a bucket hot.
Within a table, hashes are sorted by their permuted value; hashes with the same key are then
adjacent, and every pair in a bucket is a candidate. Candidates are enumerated by offset (i, i+d)
over the positions still inside a bucket, so the work is the number of candidates, never n^2, and
each is verified by a popcount of the XOR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dedup.tables import CHUNK, HASH_BITS, Table


@dataclass
class TableStats:
    key_bits: int = 0
    candidates: int = 0
    pairs: int = 0
    hot_buckets: int = 0
    hot_bucket_max: int = 0
    skipped_comparisons: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"key_bits": self.key_bits, "candidates": self.candidates, "pairs": self.pairs,
                "hot_buckets": self.hot_buckets, "hot_bucket_max": self.hot_bucket_max,
                "skipped_comparisons": self.skipped_comparisons}


def sorted_unique(h: np.ndarray) -> np.ndarray:
    """Distinct values of a uint64 array, sorted (sort + neighbour test: faster than np.unique here)."""
    s = np.sort(np.asarray(h, dtype=np.uint64))
    if s.size == 0:
        return s
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def unique_with_inverse(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each input value among them): one argsort, no searches."""
    h = np.asarray(h, dtype=np.uint64)
    order = np.argsort(h)
    s = h[order]
    new = np.empty(s.size, dtype=bool)
    if s.size:
        new[0] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
    inverse = np.empty(s.size, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return s[new], inverse


def table_pairs(unique: np.ndarray, table: Table, radius: int, window: int) -> tuple[np.ndarray, np.ndarray, TableStats]:
    """Index pairs (i < j) into `unique` within `radius`, among hashes sharing this table's key."""
    n = unique.size
    stats = TableStats(key_bits=table.key_bits)
    empty = np.empty(0, dtype=np.int64)
    if n < 2:
        return empty, empty, stats
    v = table.permute(unique)
    v.sort()
    # Two sorted values share the key iff their XOR has no bit set above the non-key bits.
    span = np.uint64(1) << np.uint64(HASH_BITS - table.key_bits)
    # Offset 1 is verified in the same cache-sized pass that finds the buckets; the walk then
    # continues with the (far fewer) positions whose bucket reaches offset 2.
    hits, pos, first = _offset_one(v, span, radius)
    stats.candidates += first
    found_a: list[np.ndarray] = [v[hits]]
    found_b: list[np.ndarray] = [v[hits + 1]]
    d = 2
    while pos.size and d <= window:
        stats.candidates += int(pos.size)
        hit = np.bitwise_count(v[pos] ^ v[pos + d]) <= radius
        if hit.any():
            found_a.append(v[pos[hit]])
            found_b.append(v[pos[hit] + d])
        # Positions whose bucket reaches d+1 further: a subset of those that reached d (sorted).
        pos = pos[pos + d + 1 < n]
        pos = pos[(v[pos] ^ v[pos + d + 1]) < span]
        d += 1
    if pos.size:
        _count_hot(v, pos, d, span, table.key_bits, stats)
    a = table.unpermute(np.concatenate(found_a))
    b = table.unpermute(np.concatenate(found_b))
    ia = np.searchsorted(unique, a).astype(np.int64)
    ib = np.searchsorted(unique, b).astype(np.int64)
    lo, hi = np.minimum(ia, ib), np.maximum(ia, ib)
    stats.pairs = int(lo.size)
    return lo, hi, stats


def _offset_one(v: np.ndarray, span: np.uint64, radius: int) -> tuple[np.ndarray, np.ndarray, int]:
    """In cache-sized chunks: positions i where (v[i], v[i+1]) share the key and are within the
    radius, positions whose bucket reaches i+2, and the number of offset-1 candidates."""
    n = v.size
    hits, reach2 = [], []
    candidates = 0
    x = np.empty(min(CHUNK, n), dtype=np.uint64)
    for start in range(0, n - 1, CHUNK):
        stop = min(start + CHUNK, n - 1)
        t = x[:stop - start]
        np.bitwise_xor(v[start:stop], v[start + 1:stop + 1], out=t)
        same = t < span
        candidates += int(np.count_nonzero(same))
        hits.append(np.flatnonzero(same & (np.bitwise_count(t) <= radius)) + start)
        stop2 = min(stop, n - 2)
        if stop2 > start:
            t2 = t[:stop2 - start]
            np.bitwise_xor(v[start:stop2], v[start + 2:stop2 + 2], out=t2)
            reach2.append(np.flatnonzero(t2 < span) + start)
    cat = lambda parts: np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)  # noqa: E731
    return cat(hits), cat(reach2), candidates


def _count_hot(v: np.ndarray, pos: np.ndarray, d: int, span: np.uint64, key_bits: int, stats: TableStats) -> None:
    """Buckets larger than the window: how many, the largest, and the comparisons not made."""
    keys = np.unique(v[pos] >> np.uint64(HASH_BITS - key_bits))
    shift = np.uint64(HASH_BITS - key_bits)
    lo = np.searchsorted(v, keys << shift, side="left")
    hi = np.searchsorted(v, (keys << shift) + (span - np.uint64(1)), side="right")
    sizes = (hi - lo).astype(np.int64)
    window = d - 1
    # Pairs in a bucket of m compared with offsets 1..w: sum over offsets of (m - offset).
    compared = np.where(sizes > window, window * sizes - window * (window + 1) // 2, sizes * (sizes - 1) // 2)
    stats.hot_buckets += int(keys.size)
    stats.hot_bucket_max = max(stats.hot_bucket_max, int(sizes.max()))
    stats.skipped_comparisons += int((sizes * (sizes - 1) // 2 - compared).sum())


def near_pairs(unique: np.ndarray, tables: list[Table], radius: int, window: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """All tables in this process (small inputs and tests); the Ray job runs one task per table."""
    results = [table_pairs(unique, t, radius, window) for t in tables]
    return merge_table_results(results)


def merge_table_results(results) -> tuple[np.ndarray, np.ndarray, dict]:
    a = [r[0] for r in results]
    b = [r[1] for r in results]
    stats = [r[2] for r in results]
    lo = np.concatenate(a) if a else np.empty(0, dtype=np.int64)
    hi = np.concatenate(b) if b else np.empty(0, dtype=np.int64)
    lo, hi = dedupe_pairs(lo, hi)
    summary = {
        "tables": len(stats),
        "candidates": sum(s.candidates for s in stats),
        "pairs_found_over_tables": sum(s.pairs for s in stats),
        "pairs": int(lo.size),
        "hot_buckets": sum(s.hot_buckets for s in stats),
        "hot_bucket_max": max((s.hot_bucket_max for s in stats), default=0),
        "skipped_comparisons": sum(s.skipped_comparisons for s in stats),
    }
    return lo, hi, summary


def dedupe_pairs(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A pair found by several tables is kept once (sorted, so the result is deterministic)."""
    if lo.size == 0:
        return lo, hi
    order = np.lexsort((hi, lo))
    lo, hi = lo[order], hi[order]
    keep = np.ones(lo.size, dtype=bool)
    keep[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[keep], hi[keep]
