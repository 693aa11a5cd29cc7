"""Partitioned outputs: parts + manifest, key-range lookup, legacy single files."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shards.parts import (MANIFEST, IncompleteOutput, RangeIndex, open_parts, read_range, unpublish,
                          write_manifest, write_part)


def _table(keys):
    return pa.table({"key": [f"{k:012d}" for k in keys], "v": list(keys)})


def test_parts_manifest_lists_only_published_parts(tmp_path):
    d = tmp_path / "kept"
    p0 = write_part(d, 0, _table(range(0, 10)))
    p1 = write_part(d, 1, _table(range(10, 25)))
    stray = write_part(d, 7, _table(range(100, 110)))  # a killed run's leftover
    assert (d / stray.file).is_file()
    write_manifest(d, [p1, p0], meta={"stage": "test"})
    parts = open_parts(tmp_path, "kept")
    assert [p.file for p in parts.parts] == ["part-00000.parquet", "part-00001.parquet"]
    assert parts.rows == 25 and parts.meta == {"stage": "test"}
    assert not (d / stray.file).exists()
    assert (p0.key_min, p0.key_max) == ("000000000000", "000000000009")


def test_missing_manifest_is_an_incomplete_output(tmp_path):
    d = tmp_path / "kept"
    write_part(d, 0, _table(range(3)))
    with pytest.raises(IncompleteOutput):
        open_parts(tmp_path, "kept")
    write_manifest(d, [])
    unpublish(d)
    assert not (d / MANIFEST).exists()
    with pytest.raises(FileNotFoundError):
        open_parts(tmp_path, "absent")


def test_legacy_single_file_is_one_part_of_unknown_range(tmp_path):
    pq.write_table(_table(range(50)), tmp_path / "kept.parquet")
    parts = open_parts(tmp_path, "kept")
    assert parts.rows == 50 and parts.meta == {"legacy": True}
    got = read_range(RangeIndex(parts).paths("000000000010", "000000000019"),
                     "000000000010", "000000000019")
    assert got["v"].to_pylist() == list(range(10, 20))


def test_range_index_finds_exactly_the_overlapping_parts(tmp_path):
    rng = random.Random(3)
    d = tmp_path / "dec"
    entries, bounds, start = [], [], 0
    for i in range(60):
        n = rng.randint(1, 40)
        entries.append(write_part(d, i, _table(range(start, start + n))))
        bounds.append((start, start + n - 1))
        start += n + rng.randint(0, 5)
    # One wide part overlapping many others (a part written by a reducer, not a source).
    entries.append(write_part(d, 60, _table([5, start // 2, start])))
    bounds.append((5, start))
    write_manifest(d, entries)
    idx = RangeIndex(open_parts(tmp_path, "dec"))
    for _ in range(300):
        a = rng.randint(-5, start + 5)
        b = a + rng.randint(0, 60)
        lo, hi = f"{max(a, 0):012d}", f"{max(b, 0):012d}"
        want = sorted(str(d / e.file) for e, (x, y) in zip(entries, bounds) if not (y < max(a, 0) or x > max(b, 0)))
        assert sorted(idx.paths(lo, hi)) == want
        rows = read_range(idx.paths(lo, hi), lo, hi)
        keys = set() if rows is None else set(rows["key"].to_pylist())
        assert all(lo <= k <= hi for k in keys)
