"""Exact duplicates: the same normalised URL, the same image bytes, the same (image, caption) pair."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pyarrow as pa

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str | None, drop_params: Iterable[str] = ()) -> str | None:
    """One spelling per resource: http and https, host case, default port, fragment and tracking
    parameters do not make two URLs different; the query is sorted. Unparsable input -> None."""
    if not url or not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not host:
        return None
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    drop = {p.lower() for p in drop_params}
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in drop)
    scheme = "https" if scheme in _DEFAULT_PORTS else scheme
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


def group_codes(values: pd.Series) -> np.ndarray:
    """An integer per distinct value, -1 for missing/empty ones (which never match anything)."""
    v = values.where(values.notna() & (values.astype("string") != ""), None)
    codes, _ = pd.factorize(v, use_na_sentinel=True)
    return codes.astype(np.int64)


def pair_codes(sha: pd.Series, caption: pd.Series) -> np.ndarray:
    """Same image bytes and the same caption; missing sha256 never matches."""
    valid = sha.notna() & (sha.astype("string") != "")
    joined = sha.fillna("").astype(str) + "\x00" + caption.fillna("").astype(str)
    return np.where(valid.to_numpy(), group_codes(joined), -1).astype(np.int64)


# --- Exact groups as a hash shuffle (the distributed path) -----------------------------------------

KIND_URL, KIND_SHA = 1, 2
EXACT_SCHEMA = pa.schema([
    ("d_hi", pa.uint64()), ("d_lo", pa.uint64()),  # digest of the value; reducers split on d_hi
    ("kind", pa.uint8()),                           # KIND_URL or KIND_SHA
    ("phash", pa.uint64()), ("has_phash", pa.bool_()),
    ("sid", pa.int64()),                            # partition << 32 | row (dedup.routing)
])


def exact_rows(samples: pa.Table, sid: np.ndarray, url: bool, sha: bool) -> pa.Table:
    """One row per (sample, enabled relation) whose value is present: what the exact shuffle moves."""
    parts = []
    for kind, on, (hi, lo) in ((KIND_URL, url, ("url_hi", "url_lo")), (KIND_SHA, sha, ("sha_hi", "sha_lo"))):
        if not on:
            continue
        d_hi, d_lo = samples[hi].to_numpy(), samples[lo].to_numpy()
        present = (d_hi != 0) | (d_lo != 0)
        parts.append(pa.table({
            "d_hi": d_hi[present], "d_lo": d_lo[present],
            "kind": np.full(int(present.sum()), kind, dtype=np.uint8),
            "phash": samples["phash"].to_numpy()[present],
            "has_phash": samples["has_phash"].to_numpy(zero_copy_only=False)[present],
            "sid": sid[present]}, schema=EXACT_SCHEMA))
    return pa.concat_tables(parts) if parts else EXACT_SCHEMA.empty_table()


def exact_edges(kind: np.ndarray, d_hi: np.ndarray, d_lo: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining the distinct nodes of every group of equal (kind, digest): each to the group's
    smallest node. Members on the same node (one identical pHash) add nothing."""
    if nodes.size < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.lexsort((nodes, d_lo, d_hi, kind))
    k, hi, lo, nd = kind[order], d_hi[order], d_lo[order], nodes[order]
    start = np.ones(nd.size, dtype=bool)
    start[1:] = (k[1:] != k[:-1]) | (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    new_node = start.copy()
    new_node[1:] |= nd[1:] != nd[:-1]
    head = nd[np.maximum.accumulate(np.where(start, np.arange(nd.size), 0))]
    member = new_node & ~start
    return head[member], nd[member]
