"""Test and measurement helper: synthetic stage outputs at any size, fast.

Raw shards in the ingest format (`{i:05d}.tar` + `.parquet`, failures included), a filter output
and dedup decisions over them, in the parts layout (`shards.parts`, one part per raw shard) and/or
the legacy single files (`kept.parquet`, `rejected.parquet`, `decisions.parquet`). Images are a
few hundred opaque bytes (the shards stage copies them without decoding); captions are random CJK
text. The ground truth is a rule on the row number, so tests know which keys must come out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shards.format import RAW_INDEX_SCHEMA, AtomicTarWriter, sample_members
from shards.parts import write_manifest, write_part

FAILED_EVERY = 13     # ingest failure (no tar member)
REJECT_EVERY = 7      # filter reject, among successful rows
DUPLICATE_EVERY = 11  # dedup removes, among kept rows
FILTER_REASONS = ("text_blocklist", "too_short")


@dataclass
class Synthetic:
    raw: Path
    filter_dir: Path
    dedup_dir: Path
    rows: int
    survivors: set[str]          # keys that must end in the final shards, once each
    captions: dict[str, str]     # cleaned caption of every survivor


def _row_kind(row: int) -> str:
    if row % FAILED_EVERY == FAILED_EVERY - 1:
        return "failed"
    if row % REJECT_EVERY == 3:
        return "rejected"
    if row % DUPLICATE_EVERY == 5:
        return "duplicate"
    return "survivor"


def write_synthetic(root: str | Path, n: int, per_shard: int = 10_000, layout: str = "parts",
                    seed: int = 0, file_index: int = 0, keep_truth: bool = True) -> Synthetic:
    """`layout`: "parts", "legacy" or "both"."""
    root = Path(root)
    raw, fdir, ddir = root / "raw", root / "filter", root / "dedup"
    for d in (raw, fdir, ddir):
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    survivors: set[str] = set()
    captions: dict[str, str] = {}
    parts = {"kept": [], "rejected": [], "decisions": []}
    legacy = {"kept": [], "rejected": [], "decisions": []}
    for shard, start in enumerate(range(0, n, per_shard)):
        rows = range(start, min(n, start + per_shard))
        index = {f.name: [] for f in RAW_INDEX_SCHEMA}
        kept = {"key": [], "caption": [], "caption_original": []}
        rejected = {"key": [], "caption": [], "reason": []}
        decisions = {"key": [], "keep": [], "reason": [], "survivor_key": []}
        lengths = rng.integers(6, 40, len(rows))
        chars = rng.integers(0x4E00, 0x9FA5, int(lengths.sum()))
        sizes = rng.integers(200, 900, len(rows))
        dims = rng.integers(64, 2048, (len(rows), 2))
        hashes = rng.integers(0, 2**63, len(rows), dtype=np.int64).astype(np.uint64)
        pos = 0
        name = f"{shard:05d}"
        with AtomicTarWriter(raw / f"{name}.tar") as tar:
            for i, row in enumerate(rows):
                key = f"{file_index:03d}{row:09d}"
                caption = "".join(map(chr, chars[pos:pos + lengths[i]]))
                pos += lengths[i]
                kind = _row_kind(row)
                rec = {"key": key, "url": f"http://img{row % 97}.example.test/{row}.jpg", "caption": caption,
                       "source_file": "input.parquet", "source_row": row}
                if kind == "failed":
                    rec.update(status="failed", error="http_404", error_message="404 Not Found")
                else:
                    w, h = (int(x) for x in dims[i])
                    jpeg = b"\xff\xd8" + rng.bytes(int(sizes[i])) + b"\xff\xd9"
                    rec.update(status="success", width=min(w, 256), height=min(h, 256), original_width=w,
                               original_height=h, phash=int(hashes[i]), sha256=f"{row:064x}",
                               bytes=len(jpeg), format="JPEG")
                    meta = {k: rec[k] for k in ("key", "url", "caption", "status", "width", "height")}
                    where = tar.write_sample(key, sample_members(jpeg, caption, meta))
                    if shard % 2 == 0:
                        # Even shards record member offsets as ingest does; odd ones are indexes
                        # of the older format, located by scanning the tar.
                        (rec["jpg_offset"], rec["jpg_size"]), (rec["json_offset"], rec["json_size"]) = \
                            where["jpg"], where["json"]
                    cleaned = caption.strip() + "。"
                    if kind == "rejected":
                        rejected["key"].append(key)
                        rejected["caption"].append(caption)
                        rejected["reason"].append(FILTER_REASONS[row % 2])
                    else:
                        kept["key"].append(key)
                        kept["caption"].append(cleaned)
                        kept["caption_original"].append(caption)
                        decisions["key"].append(key)
                        decisions["keep"].append(kind == "survivor")
                        decisions["reason"].append("unique" if kind == "survivor" else "exact_sha256")
                        decisions["survivor_key"].append(key if kind == "survivor" else None)
                        if kind == "survivor" and keep_truth:
                            survivors.add(key)
                            captions[key] = cleaned
                for f in RAW_INDEX_SCHEMA:
                    index[f.name].append(rec.get(f.name))
        pq.write_table(pa.Table.from_pydict(index, schema=RAW_INDEX_SCHEMA), raw / f"{name}.parquet")
        tables = {"kept": pa.table(kept), "rejected": pa.table(rejected),
                  "decisions": pa.table(decisions, schema=pa.schema([("key", pa.string()), ("keep", pa.bool_()),
                                                                     ("reason", pa.string()),
                                                                     ("survivor_key", pa.string())]))}
        for out_name, table in tables.items():
            base = ddir if out_name == "decisions" else fdir
            if layout in ("parts", "both"):
                parts[out_name].append(write_part(base / out_name, shard, table))
            if layout in ("legacy", "both"):
                legacy[out_name].append(table)
    for out_name in parts:
        base = ddir if out_name == "decisions" else fdir
        if layout in ("parts", "both"):
            write_manifest(base / out_name, parts[out_name], {"stage": "synthetic"})
        if layout in ("legacy", "both"):
            pq.write_table(pa.concat_tables(legacy[out_name]), base / f"{out_name}.parquet")
    failed = sum(1 for r in range(n) if r % FAILED_EVERY == FAILED_EVERY - 1)
    (raw / "stats.json").write_text(json.dumps({"rows": n, "by_status": {"success": n - failed, "failed": failed}}))
    (fdir / "stats.json").write_text(json.dumps({"rows_in": n - failed}))
    (ddir / "stats.json").write_text(json.dumps({"examined": n}))
    return Synthetic(raw, fdir, ddir, n, survivors, captions)
