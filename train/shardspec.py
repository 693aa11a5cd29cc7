"""Shard lists and exact sample counts.

A SPEC is a directory of `*.tar` shards, a brace pattern (`out/{000000..000009}.tar`), or several of
those joined by `::`. Counts come from the shards' own index, never from a guess: `sizes.json` in
the shard's directory (open_clip's convention: shard file name -> samples), else the parquet index
beside the tar (`NAME.parquet`, successful rows), else the tar's headers are read once.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
from webdataset.shardlists import expand_urls

from shards.format import split_member_name

SIZES_FILE = "sizes.json"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


class ShardSpecError(ValueError):
    """A SPEC that names no shard or a shard that does not exist."""


def resolve_shards(spec: str) -> list[str]:
    if not spec or not str(spec).strip():
        raise ShardSpecError("empty shard SPEC")
    out: list[str] = []
    for part in str(spec).split("::"):
        part = part.strip()
        if not part:
            continue
        p = Path(part)
        if p.is_dir():
            tars = sorted(str(t) for t in p.glob("*.tar"))
            if not tars:
                raise ShardSpecError(f"no .tar shards in directory {p}")
            out.extend(tars)
            continue
        for url in expand_urls(part):
            if not Path(url).is_file():
                raise ShardSpecError(f"shard not found: {url}")
            out.append(str(Path(url)))
    if not out:
        raise ShardSpecError(f"SPEC {spec!r} names no shard")
    # A shard named twice would be read twice per epoch.
    return list(dict.fromkeys(out))


def _sizes_from_json(directory: Path) -> dict[str, int]:
    f = directory / SIZES_FILE
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(data, dict) and isinstance(data.get("shards"), dict):
        data = data["shards"]
    if not isinstance(data, dict):
        return {}
    sizes = {}
    for name, n in data.items():
        if isinstance(n, int) and not isinstance(n, bool):
            sizes[Path(name).name] = n
            sizes[Path(name).stem] = n
    return sizes


def _count_from_parquet(tar: Path) -> int | None:
    idx = tar.with_suffix(".parquet")
    if not idx.is_file():
        return None
    try:
        pf = pq.ParquetFile(idx)
        if "status" in pf.schema_arrow.names:
            status = pq.read_table(idx, columns=["status"]).column("status").to_pylist()
            return sum(1 for s in status if s == "success")
        return pf.metadata.num_rows
    except Exception:  # an unreadable index falls through to reading the tar itself
        return None


def _count_from_tar(tar: Path) -> int:
    keys = set()
    try:
        with tarfile.open(tar, mode="r:") as tf:
            for info in tf:
                parts = split_member_name(info.name) if info.isfile() else None
                if parts and parts[1].lower() in IMAGE_EXTS:
                    keys.add(parts[0])
    except (tarfile.TarError, OSError):
        pass  # a truncated tar counts the samples before the damage
    return len(keys)


def count_samples(shards: list[str]) -> dict[str, int]:
    """Samples per shard, from the best index available for each."""
    sizes_by_dir: dict[Path, dict[str, int]] = {}
    counts = {}
    for s in shards:
        p = Path(s)
        sizes = sizes_by_dir.setdefault(p.parent, _sizes_from_json(p.parent))
        n = sizes.get(p.name, sizes.get(p.stem))
        if n is None:
            n = _count_from_parquet(p)
        if n is None:
            n = _count_from_tar(p)
        counts[s] = int(n)
    return counts
