"""shards-plan: one raw shard's part of the final shards' plan, written as one exchange file.

A plan task reads one raw parquet index and, from the filter and dedup outputs, only the parts
whose key range meets the index's (`shards.parts`); joins them by key; locates each kept sample's
members in the raw tar (byte offsets, no decode); gives each sample its split (a salted hash of
the key, `shards.splits`) and its position in the split's shuffled order (a seeded hash of the
key). Rows are written to `plan/NNNNN.arrow`, one record batch per gather group (a fixed range of
positions, `shards.exchange`), so the number of final shards need not be known yet: it follows
from the counts the task returns. The task returns only counts and small histograms.

A plan file is skipped on a rerun when its inputs (file sizes and times, the parameters) are
those recorded beside it (`NNNNN.json`, written after the plan file): a killed run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shards.atomic import write_json_atomic
from shards.config import ShardsConfig
from shards.exchange import write_grouped
from shards.format import STATUS_SUCCESS
from shards.histograms import Histograms
from shards.parts import read_range
from shards.sources import INDEX_COLUMNS, locate, offsets_from_index
from shards.splits import SPLITS, position_groups, shuffle_positions, split_indexes

PLAN_VERSION = 1
# What a final shard needs of a sample (the writer's row), then where it goes.
PLAN_SCHEMA = pa.schema([
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
    ("tar", pa.string()),
    ("jpg_off", pa.int64()),
    ("jpg_len", pa.int64()),
    ("json_off", pa.int64()),
    ("json_len", pa.int64()),
    ("split", pa.int8()),       # position in SPLITS
    ("position", pa.uint64()),  # place in the split's shuffled order
    ("source", pa.int32()),     # raw index number: on a key repeated across raw shards, the lower wins
])


@dataclass(frozen=True)
class PlanParams:
    seed: int
    val_fraction: float
    test_fraction: float
    split_salt: str
    groups: int
    caption_max: int
    image_bin: int
    image_max: int

    @classmethod
    def from_config(cls, cfg: ShardsConfig, groups: int) -> "PlanParams":
        return cls(cfg.seed, cfg.val_fraction, cfg.test_fraction, cfg.split_salt, groups,
                   cfg.plot_caption_max_chars, cfg.plot_image_bin_px, cfg.plot_image_max_px)

    def histograms(self) -> Histograms:
        return Histograms(self.caption_max, self.image_bin, self.image_max)


@dataclass(frozen=True)
class PlanInputs:
    """One raw index and the parts of the previous stages' outputs that meet its key range
    (None: that stage's output was not given)."""
    index: str
    source: int
    kept: tuple[str, ...] | None = None
    rejected: tuple[str, ...] | None = None
    decisions: tuple[str, ...] | None = None

    @property
    def tar(self) -> str:
        return str(Path(self.index).with_suffix(".tar"))


def _stat(path: str) -> list:
    try:
        st = os.stat(path)
        return [path, st.st_size, st.st_mtime_ns]
    except OSError:
        return [path, None, None]


def fingerprint(inputs: PlanInputs, params: PlanParams) -> str:
    """Changes when any input file or parameter does (sizes and modification times, as make)."""
    files = [inputs.index, inputs.tar] + [p for ps in (inputs.kept, inputs.rejected, inputs.decisions) for p in ps or ()]
    doc = {"version": PLAN_VERSION, "params": asdict(params), "source": inputs.source,
           "given": [ps is not None for ps in (inputs.kept, inputs.rejected, inputs.decisions)],
           "files": [_stat(p) for p in files]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def done_path(out_path: str | Path) -> Path:
    return Path(out_path).with_suffix(".json")


def _counts(values) -> dict[str, int]:
    return {str(k): int(v) for k, v in Counter(values).items()}


def _column(table: pa.Table, name: str, type_: pa.DataType) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, type_)
    return pc.cast(table[name], type_).combine_chunks()


def _read_index(path: str) -> tuple[pa.Table | None, str | None]:
    try:
        names = pq.read_schema(path).names
        if not {"key", "status"} <= set(names):
            return None, "missing key/status columns"
        return pq.read_table(path, columns=[c for c in INDEX_COLUMNS if c in names]), None
    except (OSError, pa.ArrowException) as exc:
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def _first_of_each_key(keys: pa.Array) -> pa.Array:
    """Mask keeping the first row of every key."""
    import pandas as pd
    return pa.array(~pd.Series(keys.to_numpy(zero_copy_only=False)).duplicated(keep="first").to_numpy())


def _read_parts(paths, lo, hi, wanted: list[str]) -> pa.Table | None:
    if not paths:
        return None
    names = pq.read_schema(paths[0]).names
    return read_range(list(paths), lo, hi, [c for c in wanted if c in names])


def _empty_result(inputs: PlanInputs, params: PlanParams, error: str | None) -> dict:
    return {"source": inputs.source, "index": inputs.index, "error": error, "rows": 0, "digest": "",
            "counts": [[0] * params.groups for _ in SPLITS], "funnel": {}, "reasons": {},
            "histograms": params.histograms().to_dict()}


def plan_partition(inputs: PlanInputs, params: PlanParams, out_path: str) -> dict:
    """Write the plan file of one raw index (see the module doc); returns its counts."""
    fp = fingerprint(inputs, params)
    done = done_path(out_path)
    try:
        record = json.loads(done.read_text(encoding="utf-8"))
        if record.get("fingerprint") == fp and (record["result"]["rows"] == 0 or Path(out_path).is_file()):
            return {**record["result"], "reused": True}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = _plan(inputs, params, out_path)
    write_json_atomic(done, {"fingerprint": fp, "result": result})
    return {**result, "reused": False}


@dataclass
class _Rows:
    """The raw rows still selected, with their final and original captions."""
    table: pa.Table
    caption: pa.Array
    caption_original: pa.Array

    def filter(self, mask) -> "_Rows":
        return _Rows(self.table.filter(mask), self.caption.filter(mask), self.caption_original.filter(mask))

    @property
    def keys(self) -> pa.Array:
        return self.table["key"]


def _with_string_keys(table: pa.Table) -> pa.Table:
    return table.set_column(table.column_names.index("key"), "key", _column(table, "key", pa.string()))


def _apply_filter(rows: _Rows, paths, lo, hi) -> _Rows:
    """Rows whose key the filter kept, with its cleaned caption (and its caption_original)."""
    kept = _read_parts(paths, lo, hi, ["key", "caption", "caption_original"]) if rows.table.num_rows else None
    if kept is None or not kept.num_rows:
        return rows.filter(pa.array(np.zeros(rows.table.num_rows, dtype=bool)))
    kept = _with_string_keys(kept)
    kept = kept.filter(_first_of_each_key(kept["key"]))
    at = pc.index_in(rows.keys, value_set=kept["key"])
    rows, at = rows.filter(pc.is_valid(at)), at.filter(pc.is_valid(at))
    original = (pc.take(_column(kept, "caption_original", pa.string()), at)
                if "caption_original" in kept.column_names else rows.caption_original)
    return _Rows(rows.table, pc.take(_column(kept, "caption", pa.string()), at), original)


def _apply_dedup(rows: _Rows, paths, lo, hi, reasons: dict) -> _Rows:
    """Rows the dedup decisions keep; counts every decision of the range by reason."""
    dec = _read_parts(paths, lo, hi, ["key", "keep", "reason"]) if lo is not None else None
    if dec is None or not dec.num_rows:
        return rows.filter(pa.array(np.zeros(rows.table.num_rows, dtype=bool)))
    if "reason" in dec.column_names:
        reasons["dedup"] = _counts(dec["reason"].to_pylist())
    keep_keys = pc.cast(dec.filter(pc.fill_null(dec["keep"], False))["key"], pa.string())
    return rows.filter(pc.is_in(rows.keys, value_set=keep_keys))


def _locate_rows(rows: _Rows, tar: str, reasons: dict) -> tuple[_Rows, list[str], np.ndarray, str | None]:
    """Rows whose image is in the raw tar, their keys, (jpg off, len, json off, len) and the
    tar's error (damage) if any. The index's offset columns are used when it has them, so the
    tar is not read here; otherwise its headers are scanned."""
    keys = rows.keys.to_pylist()
    recorded = offsets_from_index(rows.table, tar)
    if recorded is not None:
        return rows, keys, recorded, None
    found, st = locate(tar, keys) if keys else ({}, {"missing_image_in_tar": 0, "tar_error": None})
    lost = {}
    if st["missing_image_in_tar"]:
        lost["missing_image_in_tar"] = st["missing_image_in_tar"]
    if st["tar_error"]:
        lost["damaged_tars"] = 1
    if lost:
        reasons["shards"] = lost
    rows = rows.filter(pa.array([k in found for k in keys], type=pa.bool_()))
    keys = [k for k in keys if k in found]
    return rows, keys, np.array([found[k] for k in keys], dtype=np.int64).reshape(-1, 4), st["tar_error"]


def _plan(inputs: PlanInputs, params: PlanParams, out_path: str) -> dict:
    raw, error = _read_index(inputs.index)
    if raw is None:
        Path(out_path).unlink(missing_ok=True)
        return _empty_result(inputs, params, error)
    raw = _with_string_keys(raw)
    ok = pc.fill_null(pc.equal(raw["status"], STATUS_SUCCESS), False)
    failed_errors = raw.filter(pc.invert(ok))["error"] if "error" in raw.column_names else pa.nulls(0, pa.string())
    reasons: dict[str, dict] = {"ingest": _counts(e if e is not None else "unknown" for e in failed_errors.to_pylist())}
    # An empty index has no key range (None): parts are then not read at all.
    lo, hi = pc.min(raw["key"]).as_py(), pc.max(raw["key"]).as_py()
    t = raw.filter(ok)
    funnel = {"raw rows": raw.num_rows, "downloaded": t.num_rows}
    first = _first_of_each_key(t["key"])
    if t.num_rows and not pc.all(first).as_py():
        reasons["input"] = {"duplicate_key": t.num_rows - int(pc.sum(first).as_py())}
        t = t.filter(first)
    caption = _column(t, "caption", pa.string())
    rows = _Rows(t, caption, caption)
    if inputs.kept is not None:
        rows = _apply_filter(rows, inputs.kept, lo, hi)
        funnel["kept by filter"] = rows.table.num_rows
    if inputs.rejected is not None and lo is not None:
        rej = _read_parts(inputs.rejected, lo, hi, ["key", "reason"])
        if rej is not None and "reason" in rej.column_names:
            reasons["filter"] = _counts(rej["reason"].to_pylist())
    if inputs.decisions is not None:
        rows = _apply_dedup(rows, inputs.decisions, lo, hi, reasons)
        funnel["kept by dedup"] = rows.table.num_rows
    rows, keys, offsets, tar_error = _locate_rows(rows, inputs.tar, reasons)
    t, caption, caption_original = rows.table, rows.caption, rows.caption_original

    split = split_indexes(keys, params.val_fraction, params.test_fraction, params.split_salt)
    position = shuffle_positions(keys, params.seed)
    group = position_groups(position, params.groups)
    caption = pc.fill_null(caption, "")
    caption_original = pc.fill_null(caption_original, "")
    n = t.num_rows
    columns = {
        "key": _column(t, "key", pa.string()), "caption": caption, "caption_original": caption_original,
        **{c: _column(t, c, PLAN_SCHEMA.field(c).type) for c in
           ("url", "width", "height", "original_width", "original_height", "phash", "sha256")},
        "tar": pa.array([inputs.tar] * n, type=pa.string()),
        "jpg_off": offsets[:, 0], "jpg_len": offsets[:, 1], "json_off": offsets[:, 2], "json_len": offsets[:, 3],
        "split": split, "position": position, "source": np.full(n, inputs.source, dtype=np.int32),
    }
    plan = pa.Table.from_arrays([pa.array(columns[f.name], type=f.type) for f in PLAN_SCHEMA], schema=PLAN_SCHEMA)
    counts = np.bincount(split.astype(np.int64) * params.groups + group,
                         minlength=len(SPLITS) * params.groups).reshape(len(SPLITS), params.groups)
    hist = params.histograms()
    hist.count(pc.utf8_length(caption).to_numpy(zero_copy_only=False),
               pc.fill_null(plan["original_width"], 0).to_numpy(), pc.fill_null(plan["original_height"], 0).to_numpy())
    digest = ""
    if n:
        write_grouped(out_path, plan, group, params.groups)
        digest = hashlib.sha256(Path(out_path).read_bytes()).hexdigest()
    else:
        Path(out_path).unlink(missing_ok=True)
    return {"source": inputs.source, "index": inputs.index, "error": None, "rows": n, "digest": digest,
            "counts": counts.tolist(), "funnel": funnel, "reasons": reasons, "histograms": hist.to_dict(),
            "tar_error": tar_error}
