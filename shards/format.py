"""The on-disk shard format every stage agrees on.

A shard is a WebDataset tar of `KEY.jpg`, `KEY.txt` (caption) and `KEY.json` (metadata), the
img2dataset / open_clip convention, with a parquet index beside it (`NAME.parquet`) and a stats
file (`NAME_stats.json`). A shard becomes visible only when complete (`shards.atomic`): it is
written under a temporary name in the same directory and renamed, so a crash never leaves half a
shard behind.
Tar members carry fixed metadata (mtime 0, uid 0, mode 0644) so equal inputs give equal bytes.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from shards.atomic import tmp_path

# Raw shards (ingest output) and final shards (training-ready) differ only in their name width.
RAW_SHARD_PATTERN = "{shard:05d}"
FINAL_SHARD_PATTERN = "{shard:06d}"

IMAGE_EXT = "jpg"
TEXT_EXT = "txt"
META_EXT = "json"

# Statuses in the parquet index of a raw shard.
STATUS_SUCCESS = "success"
STATUS_FAILED = "failed"

# Columns of a raw shard's parquet index: one row per input row, failures included.
RAW_INDEX_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("url", pa.string()),
    ("caption", pa.string()),
    ("status", pa.string()),
    ("error", pa.string()),          # error code (e.g. http_404, not_image, too_small), null on success
    ("error_message", pa.string()),  # human-readable detail
    ("width", pa.int32()),           # of the stored (resized) image
    ("height", pa.int32()),
    ("original_width", pa.int32()),
    ("original_height", pa.int32()),
    ("phash", pa.uint64()),          # 64-bit DCT perceptual hash, equal to imagehash.phash
    ("sha256", pa.string()),         # of the original bytes
    ("bytes", pa.int64()),           # size of the original body
    ("format", pa.string()),         # sniffed from the bytes: JPEG, PNG, WEBP, GIF, ...
    ("source_file", pa.string()),
    ("source_row", pa.int64()),
    # Where KEY.jpg's and KEY.json's data start in the raw tar and their sizes (null on failure),
    # so the final shards read a sample by offset without scanning the tar's headers first.
    ("jpg_offset", pa.int64()),
    ("jpg_size", pa.int64()),
    ("json_offset", pa.int64()),
    ("json_size", pa.int64()),
])
OFFSET_COLUMNS = ("jpg_offset", "jpg_size", "json_offset", "json_size")


def phash_to_hex(value: int) -> str:
    return f"{int(value):016x}"


def hex_to_phash(text: str) -> int:
    return int(text, 16)


_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
# ustar header fields after the name (mode 0644, uid/gid 0) up to the size field, and the fields
# after the mtime (blank checksum, regular file, no link, "ustar\0" "00", then empty owner names,
# device numbers and prefix, as tarfile writes them for a regular file).
_HEAD_MODE_IDS = b"0000644\x00" + b"0000000\x00" * 2
_HEAD_TAIL = b" " * 8 + b"0" + b"\x00" * 100 + b"ustar\x0000" + b"\x00" * (64 + 16 + 155)
_MTIME = b"00000000000\x00"  # 0: equal inputs give equal bytes


def _ustar_header(name: bytes, size: int) -> bytes:
    """The 512-byte header tarfile writes for a regular file of fixed metadata (the same bytes,
    without a TarInfo and two copies per member: a shard holds three members per sample)."""
    head = name.ljust(100, b"\x00") + _HEAD_MODE_IDS + b"%011o\x00" % size + _MTIME + _HEAD_TAIL
    head += b"\x00" * (_BLOCK - len(head))
    chksum = sum(head)  # the checksum field counts as eight spaces, as it is here
    return head[:148] + b"%06o\x00 " % chksum + head[156:]


class AtomicTarWriter:
    """Writes a WebDataset tar under a temporary name; `close()` renames it into place.

    Use as a context manager: leaving the block by an exception discards the partial file.
    Members are written as ustar entries with fixed metadata; names longer than a ustar name field
    go through `tarfile`, which writes the same layout.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp_path(self.path)
        self._fh = open(self._tmp, "wb")
        self._offset = 0
        self.count = 0

    def add_member(self, name: str, data: bytes) -> int:
        """Append one member; returns the offset of its data in the tar."""
        raw = name.encode("utf-8")
        if len(raw) <= 100:
            head = _ustar_header(raw, len(data))
        else:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            info.uname = info.gname = ""
            head = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        pad = -len(data) % _BLOCK
        self._fh.write(head)
        self._fh.write(data)
        if pad:
            self._fh.write(b"\x00" * pad)
        data_offset = self._offset + len(head)
        self._offset = data_offset + len(data) + pad
        return data_offset

    def write_sample(self, key: str, members: dict[str, bytes]) -> dict[str, tuple[int, int]]:
        """`members` maps extension (jpg, txt, json) to bytes; written in sorted order. Returns
        {ext: (data offset, size)}."""
        if "." in key or "/" in key:
            raise ValueError(f"invalid sample key {key!r}: keys may not contain '.' or '/'")
        where = {}
        for ext in sorted(members):
            where[ext] = (self.add_member(f"{key}.{ext}", members[ext]), len(members[ext]))
        self.count += 1
        return where

    def close(self) -> None:
        if self._fh.closed:
            return
        # End of archive: two zero blocks, then zeros up to a whole record (as tarfile does).
        end = 2 * _BLOCK
        end += -(self._offset + end) % _RECORD
        self._fh.write(b"\x00" * end)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "AtomicTarWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def sample_members(image_jpeg: bytes, caption: str, meta: dict) -> dict[str, bytes]:
    return {
        IMAGE_EXT: image_jpeg,
        TEXT_EXT: caption.encode("utf-8"),
        META_EXT: json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8"),
    }


def split_member_name(name: str) -> tuple[str, str] | None:
    """`dir/KEY.ext.more` -> (KEY, ext.more), the WebDataset rule (the key ends at the first dot of
    the base name); None for a member that belongs to no sample."""
    base = name.rsplit("/", 1)[-1]
    key, dot, ext = base.partition(".")
    return (key, ext) if dot and key else None


def iter_tar_samples(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield (key, {ext: bytes}) for each sample of a tar, members grouped by key in tar order."""
    key: str | None = None
    members: dict[str, bytes] = {}
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            parts = split_member_name(info.name) if info.isfile() else None
            if parts is None:
                continue
            k, ext = parts
            if key is not None and k != key:
                yield key, members
                members = {}
            key = k
            fh = tar.extractfile(info)
            members[ext] = fh.read() if fh else b""
    if key is not None:
        yield key, members


def iter_tar_members_raw(path: str | Path) -> Iterable[tuple[tarfile.TarInfo, bytes]]:
    """Every regular member with its bytes, for copying samples between tars without re-encoding."""
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            if info.isfile():
                fh = tar.extractfile(info)
                yield info, (fh.read() if fh else b"")
