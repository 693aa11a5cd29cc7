"""Files that appear only complete: written under a temporary name in the same directory, fsynced,
then renamed into place, so a crash or `kill -9` never leaves half a file under the real name.

Every stage writes its outputs through these helpers; a rerun calls `remove_stale_temporaries`
on its output directories to clear what a killed run left behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"


def tmp_path(path: Path) -> Path:
    """A fresh temporary beside `path` (hidden, `.NAME.XXXX.tmp`)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    # mkstemp creates 0600; published files must be readable like any other file.
    os.fchmod(fd, 0o644)
    os.close(fd)
    return Path(name)


def commit(tmp: Path, path: Path) -> None:
    """fsync the temporary, then rename it to its real name (atomic within one file system)."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        tmp.write_bytes(data)
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8"))


def write_parquet_atomic(path: str | Path, table: pa.Table, **options) -> None:
    """`options` go to `pyarrow.parquet.write_table` (row_group_size, compression, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        pq.write_table(table, tmp, **options)
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(directory: str | Path) -> int:
    """Delete temporaries left by a killed run; returns how many were removed."""
    n = 0
    for p in Path(directory).glob(f".*{TMP_SUFFIX}"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def drop_from_page_cache(path: str | Path) -> None:
    """Let the kernel drop a written (fsynced) file's cached pages now. For outputs this run never
    reads again: left cached they would evict inputs still to be read (the raw tars, read again
    by offset when final shards are written)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
