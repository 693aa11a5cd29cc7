"""The global caption count behind the `frequency` rule, as a map and a reduce over key counts.

Map (one per partition): the partition's distinct caption keys with their counts. Reduce (one per
bucket of the keys' low bits): the keys whose count over all partitions exceeds the limit. A reduce
folds the partitions' counts into a running total, compacting whenever `compact_rows` rows are
pending, so it holds its bucket's distinct keys plus at most `compact_rows` more, however many
partitions there are.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COUNTS_SCHEMA = pa.schema([("key", pa.uint64()), ("count", pa.int64())])


def key_counts(keys: pa.Array) -> pa.Table:
    """Distinct keys with how often each occurs (nulls left out)."""
    t = pa.table({"key": keys.drop_null()}).group_by("key").aggregate([("key", "count")])
    return t.select(["key", "key_count"]).rename_columns(["key", "count"]).cast(COUNTS_SCHEMA)


def _sum_counts(tables: list[pa.Table]) -> pa.Table:
    t = pa.concat_tables(tables).group_by("key").aggregate([("count", "sum")])
    return t.select(["key", "count_sum"]).rename_columns(["key", "count"])


def frequent_keys(count_files: list[str], bucket: int, buckets: int, max_occurrences: int,
                  compact_rows: int) -> pa.Array:
    """Keys of bucket `bucket` (of `buckets`, a power of two) counted more than `max_occurrences`
    times over all `count_files` (parquet files of COUNTS_SCHEMA)."""
    mask, want = pa.scalar(buckets - 1, pa.uint64()), pa.scalar(bucket, pa.uint64())
    total: list[pa.Table] = []  # zero or one compacted table
    pending: list[pa.Table] = []
    pending_rows = 0
    for f in count_files:
        t = pq.read_table(f, columns=["key", "count"])
        t = t.filter(pc.equal(pc.bit_wise_and(t["key"], mask), want))
        pending.append(t)
        pending_rows += t.num_rows
        if pending_rows >= compact_rows:
            total, pending, pending_rows = [_sum_counts(total + pending)], [], 0
    if pending or not total:
        total = [_sum_counts(total + pending)] if total or pending else []
    if not total:
        return pa.array([], pa.uint64())
    t = total[0]
    return t.filter(pc.greater(t["count"], max_occurrences))["key"].combine_chunks().cast(pa.uint64())
