"""Input tables of the filter stage: discovery, partition planning and reading.

Inputs are parquet, csv, tsv or jsonl files with a caption column, or directories of them (raw
shard directories hold one parquet index per shard; rows there are filtered only when
`status == success`). A malformed csv/jsonl row is returned beside the table, never raised.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

TABLE_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
                  ".ndjson": "jsonl"}
STATUS_COL = "status"
STATUS_SUCCESS = "success"
_COUNT_CHUNK = 1 << 22


class InputError(ValueError):
    """An input that cannot be filtered at all (missing, unknown format, no caption column)."""


@dataclass(frozen=True)
class Partition:
    path: str
    fmt: str
    start: int
    stop: int | None      # None: to the end of the file
    raw: bool             # parquet index of a raw shard: only status == success rows
    file_index: int

    @property
    def name(self) -> str:
        return f"{self.file_index:05d}_{self.start:010d}"


def discover(inputs: list[str]) -> list[Path]:
    """Table files of the inputs, in a stable order (directories: their table files, sorted)."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in TABLE_SUFFIXES
                           and not f.name.startswith((".", "_")))
            if not found:
                raise InputError(f"no parquet/csv/tsv/jsonl table in directory {p}")
            files.extend(found)
        elif p.is_file():
            if p.suffix.lower() not in TABLE_SUFFIXES:
                raise InputError(f"unsupported input {p} (expected .parquet, .csv, .tsv or .jsonl)")
            files.append(p)
        else:
            raise InputError(f"input not found: {p}")
    return files


def _count_lines(path: Path) -> int:
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(_COUNT_CHUNK):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def _text_columns(path: Path, fmt: str) -> list[str]:
    if fmt == "jsonl":
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict):
                        return list(row)
        return []
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline().rstrip("\r\n")
    delim = "\t" if fmt == "tsv" else ","
    return [c.strip().strip('"') for c in header.split(delim)]


def plan(inputs: list[str], caption_col: str, rows_per_partition: int) -> list[Partition]:
    """Partitions (file, row range) of every input; raises InputError for an unusable input."""
    parts: list[Partition] = []
    for index, path in enumerate(discover(inputs)):
        fmt = TABLE_SUFFIXES[path.suffix.lower()]
        if fmt == "parquet":
            try:
                meta = pq.ParquetFile(path)
            except Exception as exc:
                raise InputError(f"{path}: not a readable parquet file ({exc})".splitlines()[0]) from exc
            names, rows = meta.schema_arrow.names, meta.metadata.num_rows
            raw = STATUS_COL in names
        else:
            names, rows, raw = _text_columns(path, fmt), max(0, _count_lines(path) - (fmt != "jsonl")), False
        if caption_col not in names:
            raise InputError(f"{path}: no {caption_col!r} column (columns: {', '.join(names[:20])})")
        starts = list(range(0, max(rows, 1), rows_per_partition))
        for k, start in enumerate(starts):
            stop = starts[k + 1] if k + 1 < len(starts) else None
            parts.append(Partition(str(path.resolve()), fmt, start, stop, raw, index))
    return parts


def file_fingerprint(path: str) -> str:
    st = os.stat(path)
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def _read_parquet(part: Partition) -> pa.Table:
    pf = pq.ParquetFile(part.path)
    meta = pf.metadata
    groups, offset, first = [], 0, None
    stop = meta.num_rows if part.stop is None else part.stop
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if offset < stop and offset + n > part.start:
            groups.append(g)
            first = offset if first is None else first
        offset += n
    if not groups:
        return pf.schema_arrow.empty_table()
    table = pf.read_row_groups(groups)
    return table.slice(part.start - first, stop - part.start)


def _read_csv(part: Partition, caption_col: str) -> tuple[pa.Table, list[tuple[int | None, str]]]:
    bad: list[tuple[int | None, str]] = []

    def on_invalid(row) -> str:
        bad.append((row.number, f"expected {row.expected_columns} columns, got {row.actual_columns}"))
        return "skip"

    delim = "\t" if part.fmt == "tsv" else ","
    table = pcsv.read_csv(
        part.path,
        read_options=pcsv.ReadOptions(use_threads=False),
        parse_options=pcsv.ParseOptions(delimiter=delim, newlines_in_values=part.fmt == "csv",
                                        invalid_row_handler=on_invalid,
                                        quote_char='"' if part.fmt == "csv" else False),
        convert_options=pcsv.ConvertOptions(strings_can_be_null=False, quoted_strings_can_be_null=False,
                                            column_types={caption_col: pa.string()},
                                            auto_dict_encode=False),
    )
    return table, bad


def _read_jsonl(part: Partition) -> tuple[pa.Table, list[tuple[int | None, str]]]:
    try:
        return pjson.read_json(part.path, read_options=pjson.ReadOptions(use_threads=False)), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # a malformed line or mixed types: parse line by line and set the bad lines aside
    rows, bad = [], []
    with open(part.path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                bad.append((number, f"invalid JSON: {exc}"))
                continue
            if not isinstance(row, dict):
                bad.append((number, f"not a JSON object: {type(row).__name__}"))
                continue
            rows.append(row)
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed value types in a column: keep every value, as JSON text where it is not a string.
        cols = sorted({k for r in rows for k in r}, key=lambda k: next(i for i, r in enumerate(rows) if k in r))
        table = pa.table({c: pa.array([_as_text(r.get(c)) for r in rows], pa.string()) for c in cols})
    return table, bad


def _as_text(v) -> str | None:
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


def read_partition(part: Partition, caption_col: str) -> tuple[pa.Table, list[tuple[int | None, str]]]:
    """The partition's rows (raw: success only) with the caption as text, and its malformed rows
    (reported by the file's first partition only, so each is counted once)."""
    if part.fmt == "parquet":
        table, bad = _read_parquet(part), []
    elif part.fmt == "jsonl":
        table, bad = _read_jsonl(part)
    else:
        table, bad = _read_csv(part, caption_col)
    if part.fmt != "parquet":
        stop = table.num_rows if part.stop is None else part.stop
        table = table.slice(part.start, max(0, stop - part.start))
        if part.start:
            bad = []
    if part.raw and STATUS_COL in table.column_names:
        import pyarrow.compute as pc
        table = table.filter(pc.fill_null(pc.equal(table[STATUS_COL].cast(pa.string()), STATUS_SUCCESS), False))
    if caption_col in table.column_names and table.schema.field(caption_col).type != pa.string():
        idx = table.column_names.index(caption_col)
        try:
            col = table[caption_col].cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            col = pa.array([_as_text(v) for v in table[caption_col].to_pylist()], pa.string())
        table = table.set_column(idx, caption_col, col)
    return table, bad
