"""One raw index -> the compact per-sample columns the distributed dedup works on.

A sample is a `success` row of a raw index, at most once per key (the first row of a key in the
listing order of the raw indexes), restricted to the filter's kept keys with their cleaned
captions when a filter output is given. What leaves this module per sample is fixed-width: the
key, the pHash, 128-bit digests of the normalised URL, the sha256 and the caption, the pixels of
the original image and the caption's length; no string but the key moves further.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dedup.digest import digest128
from dedup.exact import normalize_urls

STATUS_SUCCESS = "success"
# What each raw column is read as (the ingest format's types; sizes widened for products). A file
# whose success rows do not convert (a signed or textual pHash, say) is reported unreadable.
RAW_TYPES = {"key": pa.string(), "url": pa.string(), "caption": pa.string(), "status": pa.string(),
             "sha256": pa.string(), "phash": pa.uint64(), "width": pa.int64(), "height": pa.int64(),
             "original_width": pa.int64(), "original_height": pa.int64()}
RAW_COLUMNS = list(RAW_TYPES)
REQUIRED = {"key", "status", "phash"}

SAMPLE_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("phash", pa.uint64()),        # 0 where has_phash is false
    ("has_phash", pa.bool_()),
    ("url_hi", pa.uint64()), ("url_lo", pa.uint64()),  # normalised URL; (0, 0) = none
    ("sha_hi", pa.uint64()), ("sha_lo", pa.uint64()),  # sha256 text; (0, 0) = none
    ("cap_hi", pa.uint64()), ("cap_lo", pa.uint64()),  # caption ("" when missing)
    ("pixels", pa.int64()),        # of the original image (the stored one where unknown)
    ("cap_len", pa.int64()),       # caption length in characters
])


@dataclass
class RawRead:
    """One raw index read for dedup: its success rows that have a key (None if unreadable)."""
    table: pa.Table | None
    error: str | None = None
    rows: int = 0          # rows in the file, every status
    missing_key: int = 0   # success rows without a key: nothing downstream can name them


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def read_success(path: str) -> RawRead:
    """The success rows of a raw index, with a key, columns RAW_COLUMNS less status as RAW_TYPES
    (missing optional ones as nulls). A file that cannot be read, lacks key/status/phash or holds
    values of another type gives RawRead(None, error)."""
    try:
        schema = pq.read_schema(path)
        cols = [c for c in RAW_COLUMNS if c in schema.names]
        missing = REQUIRED - set(cols)
        if missing:
            return RawRead(None, f"missing columns {sorted(missing)}")
        table = pq.read_table(path, columns=cols)
    except (OSError, pa.ArrowException) as exc:
        return RawRead(None, _error(exc))
    rows = table.num_rows
    c = "status"
    try:
        ok = pc.fill_null(pc.equal(pc.cast(table[c], RAW_TYPES[c]), STATUS_SUCCESS), False)
        table = table.filter(ok).drop_columns([c])
        for c in table.column_names:
            table = table.set_column(table.column_names.index(c), c, pc.cast(table[c], RAW_TYPES[c]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return RawRead(None, f"column {c} is not {RAW_TYPES[c]}: {_error(exc)}"[:300], rows)
    for c in RAW_COLUMNS:
        if c != "status" and c not in table.column_names:
            table = table.append_column(c, pa.nulls(table.num_rows, RAW_TYPES[c]))
    keyed = table.filter(pc.is_valid(table["key"]))
    return RawRead(keyed, None, rows, table.num_rows - keyed.num_rows)


def first_per_key(table: pa.Table, exclude: pa.Array | None = None) -> tuple[pa.Table, int]:
    """Rows whose key neither repeats an earlier row of the table nor is in `exclude` (keys an
    earlier raw index already holds); returns them and how many were dropped."""
    keys = table["key"].to_pandas()
    keep = ~keys.duplicated(keep="first").to_numpy()
    if exclude is not None and len(exclude):
        keep &= ~pc.is_in(table["key"], value_set=pc.cast(exclude, pa.string())).to_numpy(zero_copy_only=False)
    return table.filter(pa.array(keep)), int((~keep).sum())


def key_range(table: pa.Table) -> tuple[str | None, str | None]:
    if table.num_rows == 0:
        return None, None
    mm = pc.min_max(table["key"])
    return mm["min"].as_py(), mm["max"].as_py()


def restrict_to_kept(table: pa.Table, kept: pa.Table) -> tuple[pa.Table, int]:
    """Inner join with the filter's kept rows (key, caption; the first row of a repeated key),
    the caption replaced by the cleaned one. Returns the rows and how many were not kept."""
    kept = kept.select(["key", "caption"])
    kept = kept.set_column(0, "key", pc.cast(kept["key"], pa.string()))
    kept = kept.set_column(1, "caption", pc.cast(kept["caption"], pa.string()))
    kept, _ = first_per_key(kept)
    joined = table.drop_columns(["caption"]).join(kept, keys="key", join_type="inner")
    return joined, table.num_rows - joined.num_rows


def pixels(table: pa.Table) -> np.ndarray:
    """Original width x height per row; the stored image's where the original size is unknown."""
    def product(w: str, h: str) -> np.ndarray:
        a = pc.fill_null(pc.cast(table[w], pa.int64()), 0).to_numpy(zero_copy_only=False)
        b = pc.fill_null(pc.cast(table[h], pa.int64()), 0).to_numpy(zero_copy_only=False)
        return a * b

    original = product("original_width", "original_height")
    return np.where(original > 0, original, product("width", "height"))


def sample_table(rows: pa.Table, drop_params) -> pa.Table:
    """The compact columns (SAMPLE_SCHEMA) of `rows` (read_success's columns), sorted by key."""
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("key", "ascending")]))
    url_norm = normalize_urls(rows["url"], drop_params)
    phash = pc.cast(rows["phash"], pa.uint64())
    caption = pc.fill_null(pc.cast(rows["caption"], pa.string()), "")
    url = digest128(url_norm)
    sha = digest128(rows["sha256"])
    cap = digest128(caption, missing_empty=False)
    cols = {
        "key": rows["key"],
        "phash": pc.fill_null(phash, 0),
        "has_phash": pc.is_valid(phash),
        "url_hi": url[0], "url_lo": url[1], "sha_hi": sha[0], "sha_lo": sha[1], "cap_hi": cap[0], "cap_lo": cap[1],
        "pixels": pixels(rows),
        "cap_len": pc.cast(pc.utf8_length(caption), pa.int64()),
    }
    return pa.table(cols, schema=SAMPLE_SCHEMA)


def phash_summary(samples: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct pHashes, the sorted ones that more than one sample holds) of a partition."""
    h = np.sort(samples["phash"].to_numpy()[samples["has_phash"].to_numpy(zero_copy_only=False)])
    if h.size == 0:
        return h, h
    new = np.empty(h.size, dtype=bool)
    new[0] = True
    np.not_equal(h[1:], h[:-1], out=new[1:])
    repeated = h[1:][~new[1:]]
    return h[new], pd.unique(repeated) if repeated.size else repeated
