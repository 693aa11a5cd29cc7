"""Permuted tables of the pigeonhole scheme (Manku, Jain, Das Sarma 2007).

Split the 64 bits into `b` blocks. Two hashes within Hamming distance `k` differ in at most `k`
blocks, so they agree exactly on at least `b - k` of them. One table per choice of `b - k` blocks:
the hash is permuted so those blocks come first (the table's key, the top `key_bits` bits), and
hashes are sorted by the permuted value. Every pair within distance `k` then shares a key in at
least one table, and a bit permutation keeps Hamming distances, so candidates are verified on the
permuted values directly. Blocks are numbered from the most significant bit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

HASH_BITS = 64


def block_sizes(blocks: int) -> list[int]:
    """As even as possible; the larger blocks first."""
    base, extra = divmod(HASH_BITS, blocks)
    return [base + 1] * extra + [base] * (blocks - extra)


@dataclass(frozen=True)
class Table:
    """One table: which blocks form the key, and the bit moves of its permutation."""

    key_blocks: tuple[int, ...]
    key_bits: int
    # (source shift, width, destination shift) runs: dest |= ((h >> src) & mask(width)) << dst.
    moves: tuple[tuple[int, int, int], ...]

    def permute(self, h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return _apply(h, self.moves, out)

    def unpermute(self, p: np.ndarray) -> np.ndarray:
        return _apply(p, tuple((dst, w, src) for src, w, dst in self.moves), None)


# Elements per chunk of the bit moves: small enough that a chunk and its temporary stay in the
# CPU cache across the moves (one pass over memory instead of four per move).
CHUNK = 1 << 16


def _apply(h: np.ndarray, moves, out: np.ndarray | None) -> np.ndarray:
    h = np.asarray(h, dtype=np.uint64)
    if out is None:
        out = np.empty(h.shape, dtype=np.uint64)
    tmp = np.empty(min(CHUNK, h.size), dtype=np.uint64)
    masks = [np.uint64((1 << w) - 1) if w < HASH_BITS else np.uint64(0xFFFFFFFFFFFFFFFF) for _, w, _ in moves]
    for start in range(0, h.size, CHUNK):
        src_c = h[start:start + CHUNK]
        dst_c = out[start:start + CHUNK]
        t = tmp[:src_c.size]
        dst_c[...] = 0
        for (src, _, dst), mask in zip(moves, masks):
            np.right_shift(src_c, np.uint64(src), out=t)
            np.bitwise_and(t, mask, out=t)
            np.left_shift(t, np.uint64(dst), out=t)
            np.bitwise_or(dst_c, t, out=dst_c)
    return out


def _moves(order: list[int], sizes: list[int]) -> tuple[tuple[int, int, int], ...]:
    """Bit moves placing blocks in `order` from the top; runs contiguous in both are merged."""
    starts = np.cumsum([0] + sizes[:-1]).tolist()  # from the most significant bit
    raw = []
    dst_top = 0
    for blk in order:
        w = sizes[blk]
        src = HASH_BITS - starts[blk] - w
        dst = HASH_BITS - dst_top - w
        raw.append([src, w, dst])
        dst_top += w
    merged: list[list[int]] = []
    for src, w, dst in raw:
        if merged and merged[-1][0] == src + w and merged[-1][2] == dst + w:
            merged[-1] = [src, merged[-1][1] + w, dst]
        else:
            merged.append([src, w, dst])
    return tuple(tuple(m) for m in merged)


def make_tables(blocks: int, radius: int) -> list[Table]:
    sizes = block_sizes(blocks)
    tables = []
    for key in itertools.combinations(range(blocks), blocks - radius):
        rest = [b for b in range(blocks) if b not in key]
        tables.append(Table(key_blocks=key, key_bits=sum(sizes[b] for b in key),
                            moves=_moves(list(key) + rest, sizes)))
    return tables


@dataclass(frozen=True)
class TablePlan:
    blocks: int
    tables: int
    min_key_bits: int
    expected_candidates: float  # over all tables, for uniformly random hashes


def plan_cost(n: int, radius: int, blocks: int, sort_ns: float, cand_ns: float) -> tuple[float, TablePlan]:
    sizes = sorted(block_sizes(blocks))
    key_bits = sum(sizes[: blocks - radius])
    tables = math.comb(blocks, radius)
    cand = tables * n * max(n - 1, 0) / 2.0 / (2.0 ** key_bits)
    cost = tables * n * sort_ns + cand * cand_ns
    return cost, TablePlan(blocks, tables, key_bits, cand)


def choose_plan(n: int, radius: int, blocks: int = 0, max_tables: int = 4096,
                sort_ns: float = 40.0, cand_ns: float = 15.0) -> TablePlan:
    """The given block count, or the one with the lowest estimated cost for `n` unique hashes."""
    if radius < 1:
        raise ValueError("near-duplicate tables need a radius of at least 1")
    if blocks:
        if not radius < blocks <= HASH_BITS:
            raise ValueError(f"blocks must be within radius+1..64, got {blocks} for radius {radius}")
        return plan_cost(n, radius, blocks, sort_ns, cand_ns)[1]
    best = None
    for b in range(radius + 1, HASH_BITS + 1):
        if math.comb(b, radius) > max_tables and best is not None:
            break
        cost, plan = plan_cost(n, radius, b, sort_ns, cand_ns)
        if best is None or cost < best[0]:
            best = (cost, plan)
    return best[1]
