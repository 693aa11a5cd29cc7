"""Train / val / test by a stable hash of the key: the split of a sample depends on its key alone.
The position of a sample in its split's shuffled order is a second, seeded hash of the key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

SPLITS = ("train", "val", "test")
SHUFFLE_SALT = "wukong-shuffle-v1"


def key_unit(key: str, salt: str) -> float:
    """A number in [0, 1) fixed by (key, salt)."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def assign_splits(keys: Iterable[str], val_fraction: float, test_fraction: float, salt: str) -> np.ndarray:
    u = np.fromiter((key_unit(k, salt) for k in keys), dtype=np.float64)
    return np.where(u < val_fraction, "val", np.where(u < val_fraction + test_fraction, "test", "train"))


def split_indexes(keys: Iterable[str], val_fraction: float, test_fraction: float, salt: str) -> np.ndarray:
    """`assign_splits` as positions in SPLITS (int8)."""
    names = assign_splits(keys, val_fraction, test_fraction, salt)
    return np.select([names == s for s in SPLITS], np.arange(len(SPLITS)), 0).astype(np.int8)


def shuffle_positions(keys: Iterable[str], seed: int) -> np.ndarray:
    """A uint64 per key fixed by (seed, key): the sample's place in its split's shuffled order."""
    prefix = f"{SHUFFLE_SALT}\x00{seed}\x00".encode("utf-8")
    return np.fromiter((int.from_bytes(hashlib.blake2b(prefix + k.encode("utf-8"), digest_size=8).digest(), "big")
                        for k in keys), dtype=np.uint64)


def position_groups(positions: np.ndarray, groups: int) -> np.ndarray:
    """floor(position * groups / 2^64), exactly: group g holds the g-th of `groups` equal ranges of
    positions, so groups in order hold the shuffled order in order."""
    p = np.asarray(positions, dtype=np.uint64)
    g = np.uint64(groups)
    hi, lo = p >> np.uint64(32), p & np.uint64(0xFFFFFFFF)
    return ((hi * g + ((lo * g) >> np.uint64(32))) >> np.uint64(32)).astype(np.int64)
