"""Train / val / test by a stable hash of the key: the split of a sample depends on its key alone."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

SPLITS = ("train", "val", "test")


def key_unit(key: str, salt: str) -> float:
    """A number in [0, 1) fixed by (key, salt)."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def assign_splits(keys: Iterable[str], val_fraction: float, test_fraction: float, salt: str) -> np.ndarray:
    u = np.fromiter((key_unit(k, salt) for k in keys), dtype=np.float64)
    return np.where(u < val_fraction, "val", np.where(u < val_fraction + test_fraction, "test", "train"))
