"""Compact per-sample values for the distributed dedup: 128-bit digests of strings, cluster ids
from keys, and a 64-bit mix that spreads integer labels evenly over buckets.

Exact groups and the survivor's reasons compare digests instead of the strings (URLs, sha256,
captions), so a sample moves through the shuffles as a few fixed-width numbers. A digest is two
independent 64-bit SipHash values (pandas' vectorised `hash_array` under two fixed keys): at 10^9
distinct values the chance that any two collide is about 10^18 / 2^129, i.e. never in practice.
Missing values (null or empty) get the digest (0, 0), which never matches anything.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Two fixed SipHash keys (16 bytes each): the digests are stable across runs and machines.
_KEYS = ("wukong-dedup-k1.", "wukong-dedup-k2.")
# Keys of at most this many digits are their own cluster id (int64 holds 18 digits).
_MAX_ID_DIGITS = 18
_ID_MASK = (1 << 63) - 1


def digest128(values, missing_empty: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) uint64 digests of strings; null (and, if `missing_empty`, empty) -> (0, 0)."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=pa.string())
    arr = pc.cast(arr, pa.string())
    missing = pc.is_null(arr)
    if missing_empty:
        missing = pc.or_(missing, pc.equal(pc.utf8_length(arr), 0))
    missing = pc.fill_null(missing, True).to_numpy(zero_copy_only=False)
    text = pc.fill_null(arr, "").to_numpy(zero_copy_only=False).astype(object, copy=False)
    hi = pd.util.hash_array(text, encoding="utf8", hash_key=_KEYS[0], categorize=False)
    lo = pd.util.hash_array(text, encoding="utf8", hash_key=_KEYS[1], categorize=False)
    hi[missing] = 0
    lo[missing] = 0
    return hi.astype(np.uint64, copy=False), lo.astype(np.uint64, copy=False)


def cluster_ids(keys) -> np.ndarray:
    """The int64 id of the cluster whose smallest key is `key`: the key's digits as a number for
    the pipeline's digit keys (`{file_index:03d}{row:09d}` -> that number), else the top 63 bits
    of the key's BLAKE2b digest. It depends on the key only, not on how the work was split."""
    arr = keys if isinstance(keys, (pa.Array, pa.ChunkedArray)) else pa.array(keys, type=pa.string())
    if len(arr) == 0:
        return np.empty(0, dtype=np.int64)
    digits = pc.and_(pc.match_substring_regex(arr, r"^[0-9]+$"), pc.less_equal(pc.utf8_length(arr), _MAX_ID_DIGITS))
    if pc.all(digits).as_py():
        return pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False).copy()
    out = np.empty(len(arr), dtype=np.int64)
    for i, (k, d) in enumerate(zip(arr.to_pylist(), digits.to_pylist())):
        out[i] = int(k) if d else int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big") & _ID_MASK
    return out


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: integer labels (clustered in small ranges) to evenly spread uint64s,
    so contiguous ranges of the result are buckets of about equal size."""
    z = np.asarray(x).astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def bucket_bounds(buckets: int) -> list[tuple[int, int]]:
    """`buckets` contiguous [lo, hi] ranges covering the uint64 space (hi inclusive)."""
    edges = [(b << 64) // buckets for b in range(buckets + 1)]
    return [(edges[b], edges[b + 1] - 1) for b in range(buckets)]
