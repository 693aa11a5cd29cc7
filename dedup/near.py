"""Near-duplicate pHash pairs from permuted tables, in numpy on uint64 arrays.

Input is the sorted array of *distinct* hashes: identical hashes (blank or placeholder images that
thousands of samples share) are collapsed to one node beforehand, so they never make a bucket hot.
Within a table, hashes are sorted by their permuted value; hashes with the same key are then
adjacent, and every pair in a bucket is a candidate. Candidates are enumerated by offset (i, i+d)
over the positions still inside a bucket, so the work is the number of candidates, never n^2, and
each is verified by a popcount of the XOR. Tables that share their first key block are walked
together over cache-sized runs of that block (`tables_pairs`), so nothing sorts all n at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dedup.tables import HASH_BITS, Table, tables_by_first_block


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


# Elements per bucket of the radix pass in `inverse_index`: a bucket of values and the range of
# `unique` it is searched in fit in a core's L2 cache.
SORT_BUCKET = 1 << 16


def inverse_index(h: np.ndarray, unique: np.ndarray) -> np.ndarray:
    """Position of every value of `h` in `unique` (sorted, holding every value of `h`).

    One radix pass on the top bits (numpy's stable sort of uint16 is a radix sort) groups the
    values into cache-sized buckets, each sorted and numbered on its own: one argsort of 100M
    values, or a searchsorted into 100M, would miss the cache at nearly every step."""
    h = np.asarray(h, dtype=np.uint64)
    bits = min(16, (h.size // SORT_BUCKET).bit_length())
    if bits < 2:
        return np.searchsorted(unique, h).astype(np.int64)
    shift = np.uint64(HASH_BITS - bits)
    top = np.empty(h.size, dtype=np.uint16)
    for start in range(0, h.size, SORT_BUCKET):
        top[start:start + SORT_BUCKET] = h[start:start + SORT_BUCKET] >> shift
    order = np.argsort(top, kind="stable")
    ends = np.cumsum(np.bincount(top, minlength=1 << bits)).tolist()
    del top
    lows = np.searchsorted(unique, np.arange(1 << bits, dtype=np.uint64) << shift).tolist() + [unique.size]
    grouped = h[order]
    inverse = np.empty(h.size, dtype=np.int64)
    start = 0
    for b, end in enumerate(ends):
        if end > start:
            # Sorted within the bucket, a value's position in `unique` is the bucket's first
            # position plus the count of distinct values before it (no binary search).
            local = np.argsort(grouped[start:end])
            values = grouped[start:end][local]
            new = np.empty(values.size, dtype=np.int64)
            new[0] = lows[b]
            np.not_equal(values[1:], values[:-1], out=new[1:])
            np.cumsum(new, out=new)
            inverse[order[start:end][local]] = new
        start = end
    return inverse


def unique_with_inverse(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each input value among them)."""
    unique = sorted_unique(h)
    return unique, inverse_index(h, unique)


# Elements per slice of the table walk: a slice, its permuted copy and the sort's buffer stay in a
# core's L2 cache, so sorting and scanning cost the same per hash at 100M as at 1M.
SLICE = 1 << 16


def tables_pairs(unique: np.ndarray, tables: list[Table], radius: int, window: int,
                 slice_size: int = SLICE) -> list[tuple[np.ndarray, np.ndarray, TableStats]]:
    """Index pairs (i < j) into `unique` within `radius` that share a key, for tables whose keys
    all start with the same block (one result per table).

    Every table's key begins with its lowest key block `f`. Ordered by block f (for f = 0 the
    sorted input already is; otherwise one sort of the first table's permutation), the hashes fall
    into runs of equal block f that hold every bucket of every such table whole. Each table then
    permutes, sorts and scans cache-sized slices of whole runs, instead of one sort of all n."""
    first = {t.key_blocks[0] for t in tables}
    if len(first) != 1:
        raise ValueError(f"tables must share their first key block, got {sorted(first)}")
    results = [(np.empty(0, np.int64), np.empty(0, np.int64), TableStats(key_bits=t.key_bits)) for t in tables]
    n = unique.size
    if n < 2 or not tables:
        return results
    lead = tables[0]
    if first == {0}:
        ordered = unique  # sorted hashes: block 0 is on top in every table of the group
        move = lambda table, x: table.permute(x)  # noqa: E731
    else:
        ordered = lead.permute(unique)
        ordered.sort()
        move = lambda table, x: table.permute_from(x, lead)  # noqa: E731
    run_bits = lead.block_bits[0]
    cuts = _slice_cuts(ordered, run_bits, slice_size)
    for k, table in enumerate(tables):
        stats = results[k][2]
        found_a: list[np.ndarray] = []
        found_b: list[np.ndarray] = []
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            for v in _split_by_key(move(table, ordered[lo:hi]), run_bits, table.key_bits, slice_size):
                v.sort()
                a, b = sorted_pairs(v, table.key_bits, radius, window, stats)
                found_a += a
                found_b += b
        if found_a:
            ia = positions(unique, table.unpermute(np.concatenate(found_a)))
            ib = positions(unique, table.unpermute(np.concatenate(found_b)))
            results[k] = (np.minimum(ia, ib), np.maximum(ia, ib), stats)
        stats.pairs = int(results[k][0].size)
    return results


def table_pairs(unique: np.ndarray, table: Table, radius: int, window: int) -> tuple[np.ndarray, np.ndarray, TableStats]:
    """Index pairs (i < j) into `unique` within `radius`, among hashes sharing this table's key."""
    return tables_pairs(unique, [table], radius, window)[0]


def _split_by_key(v: np.ndarray, done_bits: int, key_bits: int, size: int) -> list[np.ndarray]:
    """`v` (one run of the lead block) halved on the next key bits until the parts are about
    `size`: buckets share every key bit, so none is split, and each part sorts in the cache."""
    parts, out = [(v, done_bits)], []
    while parts:
        part, bits = parts.pop()
        if part.size <= size * 3 // 2 or bits >= key_bits:
            out.append(part)
            continue
        # Every value of the part shares its top `bits` bits: one threshold splits on the next.
        shift = HASH_BITS - bits
        threshold = np.uint64((int(part[0]) >> shift << shift) | (1 << (shift - 1)))
        low = part < threshold
        parts += [(part[low], bits + 1), (part[~low], bits + 1)]
    return out


def positions(unique: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value in sorted `unique`, searched in sorted order (each probe starts near
    the last one, in cache, where random needles would miss it at 100M)."""
    order = np.argsort(values)
    out = np.empty(values.size, dtype=np.int64)
    out[order] = np.searchsorted(unique, values[order])
    return out


def _slice_cuts(ordered: np.ndarray, run_bits: int, size: int) -> list[int]:
    """Slice boundaries near multiples of `size`, each moved up to the end of its run of equal top
    `run_bits` bits (`ordered` is sorted), so no run is split."""
    n = ordered.size
    shift = np.uint64(HASH_BITS - run_bits)
    cuts = [0]
    while cuts[-1] + size < n:
        run = int(ordered[cuts[-1] + size] >> shift)
        if run + 1 >= 1 << run_bits:
            break
        cuts.append(int(np.searchsorted(ordered, np.uint64(run + 1) << shift, side="left")))
    cuts.append(n)
    return cuts


def sorted_pairs(v: np.ndarray, key_bits: int, radius: int, window: int,
                 stats: TableStats) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pairs (as permuted values) within `radius` among neighbours of sorted `v` sharing the top
    `key_bits` bits; candidates and hot buckets are added to `stats`."""
    n = v.size
    if n < 2:
        return [], []
    # Two sorted values share the key iff their XOR has no bit set above the non-key bits.
    span = np.uint64(1) << np.uint64(HASH_BITS - key_bits)
    # Offset 1 is verified in the same pass that finds the buckets; the walk then continues with
    # the (far fewer) positions whose bucket reaches offset 2.
    hits, pos = _offset_one(v, span, radius, stats)
    found_a, found_b = [v[hits]], [v[hits + 1]]
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
        _count_hot(v, pos, d, span, key_bits, stats)
    return found_a, found_b


# Elements per pass of the offset-1 scan: its temporaries stay in L1/L2 beside the slice.
SCAN = 1 << 13


def _offset_one(v: np.ndarray, span: np.uint64, radius: int, stats: TableStats) -> tuple[np.ndarray, np.ndarray]:
    """Positions i where (v[i], v[i+1]) share the key and are within the radius, and positions
    whose bucket reaches i+2; counts the offset-1 candidates."""
    n = v.size
    hits, reach2 = [], []
    x = np.empty(min(SCAN, n), dtype=np.uint64)
    for start in range(0, n - 1, SCAN):
        stop = min(start + SCAN, n - 1)
        t = x[:stop - start]
        np.bitwise_xor(v[start:stop], v[start + 1:stop + 1], out=t)
        same = t < span
        stats.candidates += int(np.count_nonzero(same))
        hits.append(np.flatnonzero(same & (np.bitwise_count(t) <= radius)) + start)
        stop2 = min(stop, n - 2)
        if stop2 > start:
            t2 = t[:stop2 - start]
            np.bitwise_xor(v[start:stop2], v[start + 2:stop2 + 2], out=t2)
            reach2.append(np.flatnonzero(t2 < span) + start)
    cat = lambda parts: np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)  # noqa: E731
    return cat(hits), cat(reach2)


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
    """All tables in this process (small inputs and tests); the Ray job spreads the groups over tasks."""
    results = []
    for group in tables_by_first_block(tables).values():
        results += tables_pairs(unique, group, radius, window)
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
