"""URL-list readers: csv, tsv, parquet, jsonl (and json arrays, txt), optionally gzipped, streamed.

A file is scanned once (`scan_file`) to count its rows and note where every partition starts (a
byte offset for text formats, a row for parquet), so a partition is later read by seeking there,
never by loading the file. Rows are numbered within their file (blank lines are not rows); the key
of a row is `{file_index:03d}{row:09d}`, stable across reruns. A malformed row (bad JSON, wrong
field count, no URL) is yielded with an error code, never raised, so it is counted and listed, and
keeps what it has: the URL and caption fields it holds, and its raw text in the message, so a user
can tell which row it was. Unusable input (missing file, no url column) raises `SourceError`.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq

FORMATS = ("csv", "tsv", "parquet", "jsonl", "json", "txt")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "json", ".txt": "txt"}
_DELIMITERS = {"csv": ",", "tsv": "\t"}
KEY_FILE_DIGITS = 3
KEY_ROW_DIGITS = 9
MAX_FILES = 10 ** KEY_FILE_DIGITS
MAX_ROWS = 10 ** KEY_ROW_DIGITS
TXT_URL_COLUMN = "url"
# Row errors.
MALFORMED_ROW = "malformed_row"
MISSING_URL = "missing_url"
# A malformed row's raw text is quoted in its message up to this many characters.
RAW_TEXT_MAX_CHARS = 1000

# Captions can be long; the csv module's default 128 KiB field limit would reject a legal row.
csv.field_size_limit(min(sys.maxsize, 2 ** 31 - 1))


class SourceError(ValueError):
    """An input file that cannot be used at all (one line, shown to the user)."""


@dataclass
class Row:
    row: int                        # index within its file
    url: str | None
    caption: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    message: str | None = None


@dataclass
class Partition:
    """Rows [start_row, start_row + num_rows) of one file: one raw shard."""

    shard: int
    file_index: int
    path: str
    fmt: str
    start_row: int
    num_rows: int
    offset: int                     # byte offset (text formats, of the decompressed stream) or row (parquet)
    columns: list[str] = field(default_factory=list)  # csv/tsv header, needed when reading from an offset

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Partition":
        return cls(**d)


@dataclass
class FileScan:
    path: str
    fmt: str
    num_rows: int
    starts: list[tuple[int, int]]   # (start_row, offset) of each partition
    columns: list[str]


def make_key(file_index: int, row: int) -> str:
    return f"{file_index:0{KEY_FILE_DIGITS}d}{row:0{KEY_ROW_DIGITS}d}"


def detect_format(path: str | Path, override: str = "") -> str:
    if override:
        if override not in FORMATS:
            raise SourceError(f"unknown input format {override!r} (known: {', '.join(FORMATS)})")
        return override
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise SourceError(f"{p}: cannot tell the format from the name (set download.input_format)")
    return fmt


def _open_binary(path: str) -> IO[bytes]:
    if path.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


class _Lines:
    """Decoded lines of a binary stream, counting bytes consumed so a record's end offset is known,
    and keeping the lines of the record being read, so a malformed one can be quoted."""

    def __init__(self, fh: IO[bytes], offset: int, keep_record: bool = False):
        self.fh = fh
        self.offset = offset
        self.keep_record = keep_record
        self._record: list[str] = []

    def __iter__(self) -> Iterator[str]:
        first = self.offset == 0
        for raw in self.fh:
            self.offset += len(raw)
            text = raw.decode("utf-8", errors="replace")
            if first:
                text = text.removeprefix("\ufeff")
                first = False
            if self.keep_record:
                self._record.append(text)
            yield text

    def take_record(self) -> str:
        """The text read since the last call (the current record's lines)."""
        text = "".join(self._record)
        self._record.clear()
        return text


class _Spec:
    """Which columns a reader needs, from the download config."""

    def __init__(self, cfg: Any):
        self.url_col = cfg.url_col
        self.caption_col = cfg.caption_col
        self.extra_cols = list(cfg.save_additional_columns)
        self.has_header = cfg.input_has_header

    def check_columns(self, path: str, columns: list[str]) -> None:
        if self.url_col not in columns:
            raise SourceError(f"{path}: no url column {self.url_col!r} (columns: {', '.join(columns[:20])})")
        missing = [c for c in ([self.caption_col] if self.caption_col else []) + self.extra_cols if c not in columns]
        if missing:
            raise SourceError(f"{path}: no column {missing[0]!r} (columns: {', '.join(columns[:20])})")

    def malformed(self, message: str, raw: str, record: dict[str, Any] | None = None) -> Row:
        """A row that could not be parsed whole: the fields it has, its raw text in the message."""
        record = record or {}
        url = record.get(self.url_col)
        url = (str(url).strip() or None) if url is not None else None
        caption = record.get(self.caption_col) if self.caption_col else None
        extra = {c: record.get(c) for c in self.extra_cols}
        raw = raw.rstrip("\r\n")
        quoted = raw[:RAW_TEXT_MAX_CHARS] + ("..." if len(raw) > RAW_TEXT_MAX_CHARS else "")
        return Row(0, url, None if caption is None else str(caption), extra, MALFORMED_ROW,
                   f"{message}; raw: {quoted!r}")

    def row(self, index: int, record: dict[str, Any]) -> Row:
        url = record.get(self.url_col)
        caption = record.get(self.caption_col) if self.caption_col else None
        extra = {c: record.get(c) for c in self.extra_cols}
        url = None if url is None else str(url).strip()
        caption = None if caption is None else str(caption)
        if not url:
            return Row(index, None, caption, extra, MISSING_URL, f"empty {self.url_col!r}")
        return Row(index, url, caption, extra)


# -- text formats --------------------------------------------------------------------------------

def _delimited_records(lines: _Lines, fmt: str) -> Iterator[tuple[list[str] | None, str | None]]:
    """(fields, None) per record, or (None, message) for one the csv module cannot parse;
    `lines.take_record()` then holds the record's raw text."""
    reader = csv.reader(lines, delimiter=_DELIMITERS[fmt])
    while True:
        lines.take_record()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield None, str(exc)
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line: not a row
        yield fields, None


def _read_header(fh: IO[bytes], fmt: str, spec: _Spec, path: str) -> tuple[list[str], int]:
    lines = _Lines(fh, 0)
    if not spec.has_header:
        return [], 0
    for fields, err in _delimited_records(lines, fmt):
        if fields is None:
            raise SourceError(f"{path}: unreadable header ({err})")
        return [f.strip() for f in fields], lines.offset
    raise SourceError(f"{path}: empty file, no header")


def _text_records(path: str, fmt: str, spec: _Spec, offset: int, columns: list[str]
                  ) -> Iterator[tuple[int, Row | None]]:
    """(end offset, row) for every record from `offset`; the row's index is filled in by the caller."""
    with _open_binary(path) as fh:
        fh.seek(offset)
        lines = _Lines(fh, offset, keep_record=fmt in _DELIMITERS)
        if fmt in _DELIMITERS:
            for fields, err in _delimited_records(lines, fmt):
                if fields is None:
                    yield lines.offset, spec.malformed(f"csv: {err}"[:300], lines.take_record())
                    continue
                names = columns or [str(i) for i in range(len(fields))]
                if columns and len(fields) != len(columns):
                    # Fields are positional: the ones present still say which URL the row was for.
                    yield lines.offset, spec.malformed(f"{len(fields)} fields, header has {len(columns)}",
                                                       lines.take_record(), dict(zip(names, fields)))
                    continue
                yield lines.offset, spec.row(0, dict(zip(names, fields)))
        elif fmt == "jsonl":
            for line in lines:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    yield lines.offset, spec.malformed(f"json: {exc}"[:300], line)
                    continue
                if not isinstance(obj, dict):
                    yield lines.offset, spec.malformed("json line is not an object", line)
                    continue
                yield lines.offset, spec.row(0, obj)
        elif fmt == "txt":
            for line in lines:
                if line.strip():
                    yield lines.offset, spec.row(0, {spec.url_col: line.strip()})
        else:
            raise SourceError(f"{path}: {fmt} is not a line format")


# -- json arrays (loaded whole: img2dataset's `json` input; jsonl is the streaming form) -----------

def _json_array(path: str) -> list:
    with _open_binary(path) as fh:
        data = fh.read()
    try:
        items = json.loads(data.decode("utf-8", errors="replace").lstrip("\ufeff"))
    except ValueError as exc:
        raise SourceError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(items, list):
        raise SourceError(f"{path}: a .json input must hold a list of objects (or use .jsonl)")
    return items


def _json_kind(path: str) -> str:
    """`.json` files hold either a JSON array or JSON lines."""
    with _open_binary(path) as fh:
        head = fh.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    return "json" if head.startswith("[") else "jsonl"


# -- scanning and reading ------------------------------------------------------------------------

def _resolve_fmt(path: str, cfg: Any) -> str:
    fmt = detect_format(path, getattr(cfg, "input_format", ""))
    return _json_kind(path) if fmt == "json" else fmt


def probe_file(path: str | Path, cfg: Any) -> tuple[str, list[str]]:
    """(format, columns) of a usable input, read from its header only; SourceError otherwise."""
    path = str(path)
    if not Path(path).is_file():
        raise SourceError(f"input file not found: {path}")
    spec = _Spec(cfg)
    try:
        fmt = _resolve_fmt(path, cfg)
        if fmt == "parquet":
            try:
                columns = list(pq.ParquetFile(path).schema_arrow.names)
            except Exception as exc:  # noqa: BLE001 - any reader error means the file is unusable
                raise SourceError(f"{path}: not a readable parquet file ({exc})") from exc
        elif fmt == "json":
            columns = sorted({k for it in _json_array(path)[:1000] if isinstance(it, dict) for k in it})
        elif fmt in _DELIMITERS:
            with _open_binary(path) as fh:
                columns, _ = _read_header(fh, fmt, spec, path)
            if not spec.has_header:
                return fmt, columns
        elif fmt == "jsonl":
            columns = _first_object_keys(path)
        else:
            return fmt, [spec.url_col]
        spec.check_columns(path, columns)
        return fmt, columns
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SourceError(f"{path}: unreadable ({exc})") from exc


def _first_object_keys(path: str) -> list[str]:
    """Keys of the first parsable JSON object of a JSON-lines file (what its rows are expected to hold)."""
    with _open_binary(path) as fh:
        for line in _Lines(fh, 0):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                return list(obj)
    raise SourceError(f"{path}: no JSON object in this file")


def scan_file(path: str | Path, cfg: Any) -> FileScan:
    """Count rows and record where each partition of `cfg.rows_per_shard` rows starts."""
    path = str(path)
    fmt, columns = probe_file(path, cfg)
    spec = _Spec(cfg)
    per = cfg.rows_per_shard
    if per <= 0:
        raise SourceError("download.rows_per_shard must be positive")
    try:
        if fmt == "parquet":
            n = pq.ParquetFile(path).metadata.num_rows
            return FileScan(path, fmt, n, [(r, r) for r in range(0, n, per)], columns)
        if fmt == "json":
            n = len(_json_array(path))
            return FileScan(path, fmt, n, [(r, r) for r in range(0, n, per)], columns)
        offset = 0
        if fmt in _DELIMITERS and spec.has_header:
            with _open_binary(path) as fh:
                _, offset = _read_header(fh, fmt, spec, path)
        header = columns if fmt in _DELIMITERS and spec.has_header else []
        starts: list[tuple[int, int]] = []
        n = 0
        prev = offset
        for end, _row in _text_records(path, fmt, spec, offset, header):
            if n % per == 0:
                starts.append((n, prev))
            n += 1
            prev = end
        return FileScan(path, fmt, n, starts, header)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SourceError(f"{path}: unreadable ({exc})") from exc


def plan_partitions(scans: list[FileScan], rows_per_shard: int) -> list[Partition]:
    """Partitions of all files in input order; shard numbers run across files."""
    if len(scans) > MAX_FILES:
        raise SourceError(f"at most {MAX_FILES} input files per run (keys hold {KEY_FILE_DIGITS} digits)")
    parts: list[Partition] = []
    for file_index, scan in enumerate(scans):
        if scan.num_rows > MAX_ROWS:
            raise SourceError(f"{scan.path}: more than {MAX_ROWS} rows (keys hold {KEY_ROW_DIGITS} digits)")
        for start, offset in scan.starts:
            parts.append(Partition(
                shard=len(parts), file_index=file_index, path=scan.path, fmt=scan.fmt, start_row=start,
                num_rows=min(rows_per_shard, scan.num_rows - start), offset=offset, columns=scan.columns,
            ))
    return parts


def read_partition(part: Partition, cfg: Any) -> Iterator[Row]:
    """The partition's rows in order, each with its index in the file."""
    spec = _Spec(cfg)
    if part.fmt == "parquet":
        yield from _parquet_rows(part, spec)
        return
    if part.fmt == "json":
        items = _json_array(part.path)[part.start_row: part.start_row + part.num_rows]
        for i, obj in enumerate(items):
            row = (spec.row(0, obj) if isinstance(obj, dict)
                   else spec.malformed("json item is not an object", json.dumps(obj, ensure_ascii=False)))
            row.row = part.start_row + i
            yield row
        return
    index = part.start_row
    for _end, row in _text_records(part.path, part.fmt, spec, part.offset, part.columns):
        if index >= part.start_row + part.num_rows:
            return
        row.row = index
        index += 1
        yield row


def _parquet_rows(part: Partition, spec: _Spec) -> Iterator[Row]:
    pf = pq.ParquetFile(part.path)
    columns = list(dict.fromkeys([spec.url_col] + ([spec.caption_col] if spec.caption_col else [])
                                 + spec.extra_cols))
    end = part.start_row + part.num_rows
    # Read only the row groups overlapping the partition; skip the rows before its start.
    groups, group_start, first = [], 0, None
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if group_start + n > part.start_row and group_start < end:
            groups.append(g)
            first = group_start if first is None else first
        group_start += n
    if not groups:
        return
    index = first
    for batch in pf.iter_batches(batch_size=8192, row_groups=groups, columns=columns):
        for record in batch.to_pylist():
            if index >= end:
                return
            if index >= part.start_row:
                yield spec.row(index, record)
            index += 1


def describe_partition(part: Partition) -> str:
    return f"{Path(part.path).name}[{part.start_row}:{part.start_row + part.num_rows}]"
