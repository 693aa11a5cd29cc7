"""Row-growing stage outputs as a directory of parquet parts with a manifest of their key ranges.

An output that grows with the number of samples (the filter's kept and rejected rows, the dedup
decisions) is never one file written by a driver: each task writes its own part
(`NAME/part-NNNNN.parquet`, atomically), and the driver, which sees only one small entry per part,
writes `NAME/_manifest.json` last. The manifest is what makes the output complete and defines which
parts belong to it: a part a killed run left behind, or one from an earlier, larger run, is not in
it and is never read.

A consumer that joins these rows with one raw shard asks for the parts whose key range overlaps
the shard's (`overlapping`), so a task reads a few parts, not the dataset. Keys are compared as
strings (the raw shards' keys are fixed-width digits, so string order is numeric order).

For outputs of earlier versions, `open_parts(base, NAME)` also accepts a single `NAME.parquet`
file; it is then one part whose key range is unknown (every consumer reads it, filtered by key).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shards.atomic import write_json_atomic, write_parquet_atomic

MANIFEST = "_manifest.json"
PART_PATTERN = "part-{index:05d}.parquet"
KEY_COL = "key"
FORMAT_VERSION = 1


class IncompleteOutput(FileNotFoundError):
    """A parts directory without its manifest: the stage that writes it did not finish."""


@dataclass(frozen=True)
class Part:
    """One parquet part: its file name (relative to the directory), rows and key range (None:
    unknown, treated as overlapping every range)."""
    file: str
    rows: int
    key_min: str | None = None
    key_max: str | None = None

    def overlaps(self, lo: str | None, hi: str | None) -> bool:
        if self.key_min is None or self.key_max is None or lo is None or hi is None:
            return True
        return not (self.key_max < lo or self.key_min > hi)


@dataclass(frozen=True)
class Parts:
    """The parts of one output: `directory` and what its manifest lists."""
    directory: Path
    parts: tuple[Part, ...]
    meta: dict

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def paths(self) -> list[str]:
        return [str(self.directory / p.file) for p in self.parts]

    def overlapping(self, lo: str | None, hi: str | None) -> list[str]:
        """Paths of the parts whose key range meets [lo, hi]."""
        return [str(self.directory / p.file) for p in self.parts if p.overlaps(lo, hi)]


def part_name(index: int) -> str:
    return PART_PATTERN.format(index=index)


def key_range(table: pa.Table, key_col: str = KEY_COL) -> tuple[str | None, str | None]:
    if key_col not in table.column_names or table.num_rows == 0:
        return None, None
    col = table[key_col]
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    mm = pc.min_max(col)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    return (lo, hi) if lo is not None else (None, None)


def write_part(directory: str | Path, index: int, table: pa.Table, key_col: str = KEY_COL,
               **parquet_options) -> Part:
    """Write one part atomically; returns its manifest entry (rows and key range)."""
    name = part_name(index)
    write_parquet_atomic(Path(directory) / name, table, **parquet_options)
    lo, hi = key_range(table, key_col)
    return Part(name, table.num_rows, lo, hi)


def write_manifest(directory: str | Path, parts: list[Part], meta: dict | None = None) -> Path:
    """Publish the output: list its parts (sorted by file name) and remove part files not listed."""
    directory = Path(directory)
    parts = sorted(parts, key=lambda p: p.file)
    listed = {p.file for p in parts}
    for stray in directory.glob("part-*.parquet"):
        if stray.name not in listed:
            stray.unlink(missing_ok=True)
    path = directory / MANIFEST
    write_json_atomic(path, {"version": FORMAT_VERSION, "meta": meta or {},
                             "rows": sum(p.rows for p in parts), "parts": [asdict(p) for p in parts]})
    return path


def unpublish(directory: str | Path) -> None:
    """Remove the manifest before a rerun rewrites parts, so a crash in between never leaves a
    manifest pointing at parts of two different runs."""
    (Path(directory) / MANIFEST).unlink(missing_ok=True)


def read_manifest(directory: str | Path) -> Parts:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise IncompleteOutput(f"{directory} has no {MANIFEST}: the run that writes it did not finish")
    data = json.loads(path.read_text(encoding="utf-8"))
    parts = tuple(Part(**p) for p in data.get("parts", []))
    return Parts(directory, parts, data.get("meta", {}))


def open_parts(base: str | Path, name: str) -> Parts:
    """`base/name/` (parts + manifest), or a legacy single file `base/name.parquet`."""
    base = Path(base)
    directory = base / name
    if directory.is_dir() and (directory / MANIFEST).is_file():
        return read_manifest(directory)
    legacy = base / f"{name}.parquet"
    if legacy.is_file():
        rows = pq.ParquetFile(legacy).metadata.num_rows
        return Parts(base, (Part(legacy.name, rows),), {"legacy": True})
    if directory.is_dir():
        return read_manifest(directory)  # raises IncompleteOutput with the reason
    raise FileNotFoundError(f"neither {directory}/ nor {legacy} exists")


def read_range(paths: list[str], lo: str | None, hi: str | None, columns: list[str] | None = None,
               key_col: str = KEY_COL) -> pa.Table | None:
    """Rows of `paths` whose key lies in [lo, hi] (all rows when a bound is None); None when
    `paths` is empty. Row groups outside the range are skipped by their statistics."""
    if not paths:
        return None
    filters = None
    if lo is not None and hi is not None:
        filters = [(key_col, ">=", lo), (key_col, "<=", hi)]
    tables = [pq.read_table(p, columns=columns, filters=filters) for p in paths]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


class RangeIndex:
    """Sorted key ranges of many parts, for finding the parts that meet a range in O(log n + k)
    when parts do not overlap each other (the usual case: parts follow the raw shards)."""

    def __init__(self, parts: Parts):
        self._parts = parts
        known = [p for p in parts.parts if p.key_min is not None and p.key_max is not None]
        self._unknown = [str(parts.directory / p.file) for p in parts.parts if p.key_min is None or p.key_max is None]
        known.sort(key=lambda p: p.key_min)
        self._known = known
        self._mins = [p.key_min for p in known]
        # Running maximum of key_max, so a search can stop at the first part that cannot overlap.
        self._max_prefix = []
        m = None
        for p in known:
            m = p.key_max if m is None or p.key_max > m else m
            self._max_prefix.append(m)

    def paths(self, lo: str | None, hi: str | None) -> list[str]:
        if lo is None or hi is None:
            return self._parts.paths()
        end = bisect.bisect_right(self._mins, hi)  # parts starting after hi cannot overlap
        out = []
        for i in range(end - 1, -1, -1):
            if self._max_prefix[i] < lo:
                break  # no part at or before i reaches lo
            p = self._known[i]
            if p.key_max >= lo:
                out.append(str(self._parts.directory / p.file))
        out.reverse()
        return out + self._unknown
