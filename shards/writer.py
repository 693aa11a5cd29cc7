"""shards-write: one final shard, a WebDataset tar plus its parquet index, written atomically.

`write_final_shard` reads the shard's pieces (`shards.gather`), keeps one row per key (the one
from the earliest raw shard), orders the rows by key and shuffles them with a generator seeded by
(seed, split, shard), so the order inside a shard is fixed by those alone; `write_shard` writes
the rows. A plan row names the sample's key, final caption and where its raw bytes are. The JPEG
is copied byte for byte; `KEY.txt` is the final caption; `KEY.json` is the raw metadata updated
with the final caption, the original caption and the split. The parquet index is written last
and carries the rows' digest, so a rerun recognises a finished shard and skips it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tarfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shards.atomic import drop_from_page_cache, write_parquet_atomic
from shards.exchange import read_table
from shards.format import IMAGE_EXT, META_EXT, TEXT_EXT, AtomicTarWriter, phash_to_hex
from shards.sources import member_offsets

DIGEST_META = b"wukong.plan_digest"

FINAL_INDEX_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("caption", pa.string()),
    ("caption_original", pa.string()),
    ("url", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("original_width", pa.int32()),
    ("original_height", pa.int32()),
    ("phash", pa.uint64()),
    ("sha256", pa.string()),
    ("split", pa.string()),
    ("jpg_bytes", pa.int64()),
])

PLAN_FIELDS = ["key", "caption", "caption_original", "url", "width", "height", "original_width",
               "original_height", "phash", "sha256", "tar", "jpg_off", "jpg_len", "json_off", "json_len"]


def shard_is_done(tar: Path, index: Path, digest: str) -> bool:
    if not (tar.is_file() and index.is_file()):
        return False
    try:
        meta = pq.read_schema(index).metadata or {}
    except (OSError, pa.ArrowException):
        return False
    return meta.get(DIGEST_META, b"").decode() == digest


# A raw sample's members are written in sorted order (jpg, json, txt), so its JSON starts at most
# one block of padding plus one header after the JPEG ends: both come in one read.
_JSON_AFTER_JPEG_MAX = 2 * tarfile.BLOCKSIZE
_HEADER = tarfile.BLOCKSIZE


def _header_matches(head: bytes, name: bytes, size: int) -> bool:
    """Whether a tar header is that of member `name` with `size` bytes of data. Offsets come from
    the raw index (or a scan of the tar when the plan was made); a tar replaced since then must not
    lend another sample's bytes."""
    try:
        if int(head[124:136].split(b"\x00", 1)[0].strip() or b"0", 8) != size:
            return False
    except ValueError:
        return False
    field, prefix = head[:100].split(b"\x00", 1)[0], head[345:500].split(b"\x00", 1)[0]
    full = prefix + b"/" + field if prefix and head[257:262] == b"ustar" else field
    # A longer name than the field holds (GNU/pax headers before this one) is cut to 100 bytes.
    return full == name or full.endswith(b"/" + name) or (len(name) > 100 and field == name[:100])


class _ShortRead(OSError):
    """Fewer bytes than asked: the tar ends before the recorded member does."""


class _Sources:
    """Open raw tars once per shard; read members by offset, checking each member's header."""

    def __init__(self):
        self._fds: dict[str, int] = {}
        self._scanned: dict[str, dict] = {}
        self.missing = 0

    def read(self, path: str, offset: int, size: int) -> bytes:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY)
            # Reads here are scattered over many tars: the kernel's readahead would fetch (and
            # cache, evicting others) up to 128 KiB around each few-KB member.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        data = os.pread(fd, size, offset)
        if len(data) != size:
            raise _ShortRead(f"{path}: short read at {offset} ({len(data)} of {size} bytes)")
        return data

    def _read_checked(self, tar: str, key: str, jpg_off: int, jpg_len: int, json_off: int,
                      json_len: int) -> tuple[bytes, bytes | None] | None:
        """The JPEG and raw JSON with their headers checked (one read when they are neighbours);
        None when a header is not the member's."""
        if jpg_off < _HEADER:
            return None
        gap = json_off - (jpg_off + jpg_len)
        if json_off >= 0 and 0 <= gap <= _JSON_AFTER_JPEG_MAX:
            start = jpg_off - _HEADER
            span = self.read(tar, start, json_off + json_len - start)
            jpg_head, json_head = span[:_HEADER], span[json_off - _HEADER - start:json_off - start]
            jpg, raw = span[_HEADER:_HEADER + jpg_len], span[json_off - start:]
        else:
            span = self.read(tar, jpg_off - _HEADER, _HEADER + jpg_len)
            jpg_head, jpg = span[:_HEADER], span[_HEADER:]
            json_head, raw = b"", None
            if json_off >= _HEADER:
                span = self.read(tar, json_off - _HEADER, _HEADER + json_len)
                json_head, raw = span[:_HEADER], span[_HEADER:]
        if not _header_matches(jpg_head, f"{key}.{IMAGE_EXT}".encode("utf-8"), jpg_len):
            return None
        if raw is not None and not _header_matches(json_head, f"{key}.{META_EXT}".encode("utf-8"), json_len):
            return None
        return jpg, raw

    def read_sample(self, row: dict) -> tuple[bytes | None, bytes | None]:
        """The JPEG and raw JSON of a plan row. When the recorded offsets do not hold the member
        (the tar changed), the tar's headers are scanned once and the member is read where it
        is; (None, None) when the tar no longer has the image (counted in `missing`)."""
        tar, key = row["tar"], row["key"]
        try:
            got = self._read_checked(tar, key, row["jpg_off"], row["jpg_len"], row["json_off"], row["json_len"])
        except _ShortRead:
            got = None
        if got is not None:
            return got
        members = self._scanned.get(tar)
        if members is None:
            members = self._scanned[tar] = member_offsets(tar)[0]
        m = members.get(key, {})
        if IMAGE_EXT in m:
            got = self._read_checked(tar, key, *m[IMAGE_EXT], *m.get(META_EXT, (-1, -1)))
            if got is not None:
                return got
        self.missing += 1
        return None, None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _meta(raw: bytes | None, row: dict, split: str) -> bytes:
    try:
        meta = json.loads(raw) if raw else {}
        if not isinstance(meta, dict):
            meta = {}
    except ValueError:
        meta = {}
    meta.update(key=row["key"], caption=row["caption"], caption_original=row["caption_original"], split=split)
    if row.get("phash") is not None:
        meta["phash"] = phash_to_hex(row["phash"])
    return json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")


def read_in_order(sources: _Sources, rows: list[dict], threads: int, batch: int):
    """(row, jpg, raw json) for `rows` in order. Reads run on `threads` threads (pread releases
    the GIL), `batch` rows per job and two jobs per thread in flight, so the disk works on many
    reads while the tar is written, and a job's hand-off is paid once per `batch` rows."""
    if threads <= 1:
        for row in rows:
            yield (row, *sources.read_sample(row))
        return

    def read_batch(chunk):
        return [sources.read_sample(r) for r in chunk]

    chunks = (rows[i:i + batch] for i in range(0, len(rows), batch))
    with ThreadPoolExecutor(threads, thread_name_prefix="shards-read") as pool:
        pending = deque((c, pool.submit(read_batch, c)) for c in itertools.islice(chunks, 2 * threads))
        while pending:
            chunk, fut = pending.popleft()
            data = fut.result()
            nxt = next(chunks, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(read_batch, nxt)))
            for row, (jpg, raw_meta) in zip(chunk, data):
                yield row, jpg, raw_meta


def write_shard(tar_path: str, index_path: str, split: str, rows: list[dict], digest: str,
                read_threads: int = 1, read_batch: int = 1) -> dict:
    """Write the shard of `rows` (plan rows, in order). Returns its counts."""
    tar_path, index_path = Path(tar_path), Path(index_path)
    if shard_is_done(tar_path, index_path, digest):
        return {"samples": pq.read_metadata(index_path).num_rows, "skipped": True,
                "bytes": tar_path.stat().st_size, "missing_image_in_tar": 0}
    sources = _Sources()
    records = []
    try:
        with AtomicTarWriter(tar_path) as tar:
            for row, jpg, raw_meta in read_in_order(sources, rows, read_threads, read_batch):
                if jpg is None:
                    continue
                tar.write_sample(row["key"], {IMAGE_EXT: jpg, TEXT_EXT: row["caption"].encode("utf-8"),
                                              META_EXT: _meta(raw_meta, row, split)})
                records.append({**{f.name: row.get(f.name) for f in FINAL_INDEX_SCHEMA}, "split": split,
                                "jpg_bytes": len(jpg)})
    finally:
        sources.close()
    table = pa.Table.from_pylist(records, schema=FINAL_INDEX_SCHEMA)
    table = table.replace_schema_metadata({DIGEST_META: digest.encode()})
    write_parquet_atomic(index_path, table)
    drop_from_page_cache(tar_path)
    return {"samples": len(records), "skipped": False, "bytes": tar_path.stat().st_size,
            "missing_image_in_tar": sources.missing}


def plan_digest(split: str, rows: list[dict]) -> str:
    """Covers everything written into a shard: a rerun with the same digest skips the shard."""
    return hashlib.sha256(json.dumps([split, rows], ensure_ascii=False, sort_keys=True,
                                     default=str).encode("utf-8")).hexdigest()


def shard_rows(pieces: list[str], seed: int, split_index: int, shard: int) -> tuple[list[dict], int]:
    """The shard's rows in their final order, and how many repeated keys were dropped."""
    tables = [read_table(p) for p in pieces]
    if not tables:
        return [], 0
    t = pa.concat_tables(tables).sort_by([("key", "ascending"), ("source", "ascending")])
    keys = t["key"].to_numpy(zero_copy_only=False)
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    t = t.filter(pa.array(first))
    order = np.random.default_rng([seed, split_index, shard]).permutation(t.num_rows)
    t = t.take(pa.array(order, type=pa.int64())).select(PLAN_FIELDS)
    return t.to_pylist(), int(len(keys) - t.num_rows)


def write_final_shard(tar_path: str, index_path: str, split: str, split_index: int, shard: int,
                      pieces: list[str], seed: int, read_threads: int = 1, read_batch: int = 1) -> dict:
    """Gather, order and write one final shard from its pieces; skipped when already written
    from the same rows. Returns its counts."""
    rows, repeated = shard_rows(pieces, seed, split_index, shard)
    result = write_shard(tar_path, index_path, split, rows, plan_digest(split, rows), read_threads, read_batch)
    return {**result, "split": split, "shard": shard, "duplicate_key": repeated}
