"""The global caption count: per-partition key counts, and the reduce that finds the too-frequent
keys of one bucket, equal to a plain count over everything however often it compacts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.frequency_counts import COUNTS_SCHEMA, frequent_keys, key_counts


def test_key_counts_counts_distinct_keys_and_skips_nulls():
    t = key_counts(pa.array([5, 7, 5, None, 5, 2**64 - 1], pa.uint64()))
    assert t.schema.equals(COUNTS_SCHEMA)
    assert dict(zip(t["key"].to_pylist(), t["count"].to_pylist())) == {5: 3, 7: 1, 2**64 - 1: 1}


@pytest.mark.parametrize("compact_rows", [1, 7, 10**9])
def test_frequent_keys_equal_a_plain_global_count(tmp_path, compact_rows):
    rng = np.random.default_rng(0)
    files, everything = [], Counter()
    for p in range(12):
        keys = rng.integers(0, 60, 200).astype(np.uint64) * np.uint64(2**58 + 1)  # high and low bits used
        everything.update(keys.tolist())
        f = tmp_path / f"{p}.parquet"
        pq.write_table(key_counts(pa.array(keys)), f)
        files.append(str(f))
    pq.write_table(COUNTS_SCHEMA.empty_table(), tmp_path / "empty.parquet")
    files.append(str(tmp_path / "empty.parquet"))
    buckets, limit = 4, 40
    got = set()
    for b in range(buckets):
        keys = frequent_keys(files, b, buckets, limit, compact_rows)
        assert keys.type == pa.uint64()
        assert all(k & (buckets - 1) == b for k in keys.to_pylist())
        got.update(keys.to_pylist())
    want = {k for k, n in everything.items() if n > limit}
    assert got == want and 0 < len(want) < len(everything)


def test_no_count_files_no_frequent_keys():
    assert frequent_keys([], 0, 1, 3, 10).to_pylist() == []
