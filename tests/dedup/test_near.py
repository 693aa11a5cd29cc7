"""The pigeonhole table search against brute force, on random hashes with planted neighbours."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dedup.clusters import component_roots, group_edges
from dedup.near import near_pairs, sorted_unique, table_pairs
from dedup.tables import block_sizes, choose_plan, make_tables


def brute_pairs(u: np.ndarray, radius: int) -> set[tuple[int, int]]:
    out = set()
    for i in range(u.size - 1):
        d = np.bitwise_count(u[i + 1:] ^ u[i])
        for j in np.flatnonzero(d <= radius):
            out.add((i, i + 1 + int(j)))
    return out


def planted(rng, n_random: int, n_clusters: int, radius: int) -> np.ndarray:
    base = rng.integers(0, 2**64, size=n_random, dtype=np.uint64)
    out = [base]
    for c in range(n_clusters):
        root = base[c]
        for _ in range(3):
            bits = rng.choice(64, size=int(rng.integers(1, radius + 1)), replace=False)
            out.append(np.array([root ^ np.uint64(sum(1 << int(b) for b in bits))], dtype=np.uint64))
    return sorted_unique(np.concatenate(out))


@pytest.mark.parametrize("blocks,radius", [(5, 4), (6, 4), (7, 4), (3, 2), (10, 8), (9, 1)])
def test_permutation_round_trip_and_key_on_top(blocks, radius):
    rng = np.random.default_rng(blocks)
    h = rng.integers(0, 2**64, size=1000, dtype=np.uint64)
    sizes = block_sizes(blocks)
    assert sum(sizes) == 64 and max(sizes) - min(sizes) <= 1
    tables = make_tables(blocks, radius)
    assert len(tables) == math.comb(blocks, radius)
    for t in tables:
        p = t.permute(h)
        np.testing.assert_array_equal(t.unpermute(p), h)
        # Hamming distances are kept by the permutation.
        np.testing.assert_array_equal(np.bitwise_count(p[1:] ^ p[:-1]), np.bitwise_count(h[1:] ^ h[:-1]))
    # The key of the identity table (first blocks) is just the top bits.
    t0 = tables[0]
    assert t0.key_blocks == tuple(range(blocks - radius))
    np.testing.assert_array_equal(t0.permute(h), h)


@pytest.mark.parametrize("radius,blocks", [(1, 0), (3, 0), (4, 0), (4, 6), (6, 0), (8, 0), (8, 10)])
def test_tables_find_exactly_the_brute_force_pairs(radius, blocks):
    rng = np.random.default_rng(radius * 10 + blocks)
    u = planted(rng, 3000, 150, radius)
    plan = choose_plan(u.size, radius, blocks)
    lo, hi, stats = near_pairs(u, make_tables(plan.blocks, radius), radius, window=10_000)
    got = set(zip(lo.tolist(), hi.tolist()))
    want = brute_pairs(u, radius)
    assert len(want) >= 150 * 2  # planted members may coincide at small radii
    assert got == want
    assert stats["hot_buckets"] == 0 and stats["skipped_comparisons"] == 0
    assert stats["candidates"] >= stats["pairs"]


def test_auto_plan_grows_keys_with_size():
    small = choose_plan(10**6, 4)
    big = choose_plan(10**8, 4)
    assert small.min_key_bits >= 19 and big.min_key_bits >= 26
    assert big.tables >= small.tables
    # At the design point the expected random candidates stay near n per table, not n^2.
    assert big.expected_candidates / big.tables < 10**8
    with pytest.raises(ValueError):
        choose_plan(100, 4, blocks=4)


def test_hot_bucket_is_capped_and_reported():
    rng = np.random.default_rng(7)
    # 500 distinct hashes sharing their top 40 bits (near-blank images): one hot bucket per table.
    top = np.uint64(0xABCDEF1234) << np.uint64(24)
    hot = top | rng.choice(2**24, size=500, replace=False).astype(np.uint64)
    u = sorted_unique(np.concatenate([hot, rng.integers(0, 2**64, size=2000, dtype=np.uint64)]))
    table = make_tables(5, 4)[0]  # key = top 13 bits: all 500 share it
    lo, hi, stats = table_pairs(u, table, 4, window=50)
    assert stats.hot_buckets >= 1 and stats.hot_bucket_max >= 500
    m = stats.hot_bucket_max
    assert stats.skipped_comparisons == (m * (m - 1) // 2) - (50 * m - 50 * 51 // 2)
    # Everything found is genuinely within the radius.
    assert (np.bitwise_count(u[lo] ^ u[hi]) <= 4).all()
    # With a window covering the bucket the result equals brute force.
    lo2, hi2, stats2 = table_pairs(u, table, 4, window=10_000)
    assert stats2.skipped_comparisons == 0
    want = {p for p in brute_pairs(u, 4) if (u[p[0]] >> np.uint64(51)) == (u[p[1]] >> np.uint64(51))}
    assert set(zip(lo2.tolist(), hi2.tolist())) == want


def test_components_and_group_edges():
    roots = component_roots(8, np.array([5, 1, 6]), np.array([3, 5, 7]))
    assert roots.tolist() == [0, 1, 2, 1, 4, 1, 6, 6]
    a, b = group_edges(np.array([2, -1, 2, 0, 2, 0, -1]))
    pairs = set(zip(a.tolist(), b.tolist()))
    assert pairs == {(0, 2), (0, 4), (3, 5)}
    assert component_roots(3, np.array([], np.int64), np.array([], np.int64)).tolist() == [0, 1, 2]


def test_unique_with_inverse():
    from dedup.near import unique_with_inverse
    h = np.array([5, 3, 5, 2**64 - 1, 3, 0], dtype=np.uint64)
    u, inv = unique_with_inverse(h)
    assert u.tolist() == [0, 3, 5, 2**64 - 1]
    np.testing.assert_array_equal(u[inv], h)
    np.testing.assert_array_equal(sorted_unique(h), u)


@pytest.mark.parametrize("slice_size", [64, 500, 1 << 16])
def test_sliced_groups_find_the_brute_force_pairs(slice_size):
    """Every first-block group, walked in slices small enough to split runs on key bits."""
    from dedup.near import tables_pairs
    from dedup.tables import tables_by_first_block

    rng = np.random.default_rng(slice_size)
    u = planted(rng, 4000, 200, 4)
    want = brute_pairs(u, 4)
    groups = tables_by_first_block(make_tables(7, 4))
    assert sorted(groups) == [0, 1, 2, 3, 4]
    got = set()
    for group in groups.values():
        for lo, hi, stats in tables_pairs(u, group, 4, window=10_000, slice_size=slice_size):
            assert (lo < hi).all() and stats.pairs == lo.size
            got |= set(zip(lo.tolist(), hi.tolist()))
    assert got == want


def test_inverse_index_bucketed_path_matches_searchsorted():
    from dedup.near import SORT_BUCKET, inverse_index, unique_with_inverse

    rng = np.random.default_rng(3)
    n = 4 * SORT_BUCKET + 123  # large enough for the radix-bucket path
    h = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    h[::7] = h[0]            # a hot hash
    h[1::11] = np.uint64(0)  # the smallest and largest values, repeated
    h[2::13] = np.uint64(2**64 - 1)
    u, inv = unique_with_inverse(h)
    assert (u[1:] > u[:-1]).all()
    np.testing.assert_array_equal(inv, np.searchsorted(u, h))
    np.testing.assert_array_equal(inverse_index(h, u), inv)

