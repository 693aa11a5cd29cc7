"""Shuffle files without an all-to-all of files: each map task writes ONE file, its rows sorted by
the column the reducers split on; a reducer reads, from every map file, the contiguous rows whose
value lies in its range (two binary searches on a memory-mapped column). Files grow as the map
tasks, not as maps x reducers, and the number of reducers is chosen after the maps, from the rows
they actually wrote.

Files are uncompressed Arrow IPC, written atomically, and read memory-mapped: a reducer touches
only the pages of its slice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from shards.atomic import commit, tmp_path


def write_sorted(path: str | Path, table: pa.Table, column: str) -> int:
    """Write `table` sorted by `column` (uint64 or int64, stable); returns the rows written."""
    values = table[column].to_numpy()
    order = np.argsort(values, kind="stable")
    return write_table(path, table.take(pa.array(order)))


def write_table(path: str | Path, table: pa.Table) -> int:
    """Write `table` as one record batch, atomically; returns the rows written."""
    table = table.combine_chunks()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return table.num_rows


def read_all(path: str | Path) -> pa.Table:
    with pa.memory_map(str(path), "r") as source:
        return ipc.open_file(source).read_all()


def rows(path: str | Path) -> int:
    with pa.memory_map(str(path), "r") as source:
        reader = ipc.open_file(source)
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def slice_range(table: pa.Table, column: str, lo: int, hi: int) -> pa.Table:
    """Rows of `table` (sorted by `column`) with lo <= value <= hi."""
    values = table[column].to_numpy() if table.num_rows else np.empty(0)
    dtype = values.dtype if values.size else np.uint64
    start = int(np.searchsorted(values, np.array(lo, dtype=dtype), side="left"))
    stop = int(np.searchsorted(values, np.array(hi, dtype=dtype), side="right"))
    return table.slice(start, stop - start)


def gather(paths: list[str], column: str, lo: int, hi: int, schema: pa.Schema) -> pa.Table:
    """The rows with lo <= `column` <= hi from every file of `paths` (each sorted by `column`),
    concatenated in the order of `paths`."""
    parts = []
    for p in paths:
        table = read_all(p)
        piece = slice_range(table, column, lo, hi)
        if piece.num_rows:
            # A copy, so the file's mapping is released now rather than when the result is.
            parts.append(piece.take(pa.array(np.arange(piece.num_rows))))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts).combine_chunks()
