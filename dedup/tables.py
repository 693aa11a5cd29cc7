"""Permuted tables of the pigeonhole scheme (Manku, Jain, Das Sarma 2007).

Split the 64 bits into `b` blocks. Two hashes within Hamming distance `k` differ in at most `k`
blocks, so they agree exactly on at least `b - k` of them. One table per choice of `b - k` blocks:
the hash is permuted so those blocks come first (the table's key, the top `key_bits` bits), and
hashes are sorted by the permuted value. Every pair within distance `k` then shares a key in at
least one table, and a bit permutation keeps Hamming distances, so candidates are verified on the
permuted values directly. Blocks are numbered from the most significant bit.
"""

from __future__ import annotations

import functools
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
    # Blocks in permuted order (key blocks first), and every block's width by block number.
    order: tuple[int, ...]
    sizes: tuple[int, ...]
    # (source shift, width, destination shift) runs: dest |= ((h >> src) & mask(width)) << dst.
    moves: tuple[tuple[int, int, int], ...]

    @property
    def block_bits(self) -> tuple[int, ...]:
        """Widths of the blocks in permuted order."""
        return tuple(self.sizes[b] for b in self.order)

    def permute(self, h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return _apply(h, self.moves, out)

    def unpermute(self, p: np.ndarray) -> np.ndarray:
        return _apply(p, tuple((dst, w, src) for src, w, dst in self.moves), None)

    def permute_from(self, p: np.ndarray, other: "Table") -> np.ndarray:
        """Values in `other`'s permuted layout moved straight to this table's layout."""
        return _apply(p, _moves(self.order, self.sizes, other.order), None)


# Elements per chunk of the bit moves: small enough that a chunk and its temporary stay in the
# CPU cache across the moves (one pass over memory instead of three per move).
CHUNK = 1 << 16


def _apply(h: np.ndarray, moves, out: np.ndarray | None) -> np.ndarray:
    h = np.asarray(h, dtype=np.uint64)
    if out is None:
        out = np.empty(h.shape, dtype=np.uint64)
    tmp = np.empty(min(CHUNK, h.size), dtype=np.uint64)
    # Each move: mask the run in place, then shift it by the distance to its destination.
    steps = []
    for src, w, dst in moves:
        mask = ((1 << w) - 1) << src
        steps.append((np.uint64(mask), np.uint64(abs(dst - src)), dst >= src))
    for start in range(0, h.size, CHUNK):
        src_c = h[start:start + CHUNK]
        dst_c = out[start:start + CHUNK]
        t = tmp[:src_c.size]
        for i, (mask, dist, left) in enumerate(steps):
            target = dst_c if i == 0 else t
            np.bitwise_and(src_c, mask, out=target)
            if dist:
                (np.left_shift if left else np.right_shift)(target, dist, out=target)
            if i:
                np.bitwise_or(dst_c, t, out=dst_c)
    return out


@functools.lru_cache(maxsize=4096)
def _moves(order: tuple[int, ...], sizes: tuple[int, ...], from_order: tuple[int, ...] | None = None) -> tuple[tuple[int, int, int], ...]:
    """Bit moves placing blocks in `order` from the top, taking them from the layout `from_order`
    (default: the natural order of the hash); runs contiguous in both are merged."""
    src_order = from_order if from_order is not None else tuple(range(len(sizes)))
    src_top = dict(zip(src_order, np.cumsum([0] + [sizes[b] for b in src_order[:-1]]).tolist()))
    raw = []
    dst_top = 0
    for blk in order:
        w = sizes[blk]
        src = HASH_BITS - src_top[blk] - w
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
        order = list(key) + rest
        tables.append(Table(key_blocks=key, key_bits=sum(sizes[b] for b in key), order=tuple(order),
                            sizes=tuple(sizes), moves=_moves(tuple(order), tuple(sizes))))
    return tables


def tables_by_first_block(tables: list[Table]) -> dict[int, list[Table]]:
    """Tables grouped by their lowest key block: one ordering by that block serves the group."""
    groups: dict[int, list[Table]] = {}
    for t in tables:
        groups.setdefault(t.key_blocks[0], []).append(t)
    return groups


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
