"""Exact duplicates: the same normalised URL, the same image bytes, the same (image, caption) pair."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dedup.near import positions

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
    query = parts.query
    if query:
        drop = {p.lower() for p in drop_params}
        query = urlencode(sorted((k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() not in drop))
    scheme = "https" if scheme in _DEFAULT_PORTS else scheme
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


# The common shape `http(s)://host[:port][/path][#fragment]` with a plain ASCII host and path and
# no query: normalised by Arrow's vectorised kernels to exactly what `normalize_url` returns.
# Anything else (queries, user info, IPv6, spaces, non-ASCII) takes `normalize_url` itself.
_PLAIN_URL = (r"^(?P<scheme>(?i:https?))://(?P<host>[A-Za-z0-9.\-]+)(?::(?P<port>[0-9]{0,5}))?"
              r"(?P<path>/[\x21\x22\x24-\x3e\x40-\x7e]*)?(?:#.*)?$")
_MAX_PORT = 65535


def normalize_urls(urls, drop_params: Iterable[str] = ()) -> pa.Array:
    """`normalize_url` over a column: the plain shape vectorised, the rest row by row."""
    arr = pc.cast(urls if isinstance(urls, (pa.Array, pa.ChunkedArray)) else pa.array(urls, pa.string()), pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return arr
    m = pc.extract_regex(arr, _PLAIN_URL)
    scheme = pc.ascii_lower(pc.struct_field(m, "scheme"))
    host = pc.utf8_rtrim(pc.ascii_lower(pc.struct_field(m, "host")), characters=".")
    port_text = pc.struct_field(m, "port")
    port = pc.cast(pc.if_else(pc.equal(port_text, ""), pa.scalar(None, pa.string()), port_text), pa.int64())
    default = pc.if_else(pc.equal(scheme, "http"), 80, 443)
    show_port = pc.fill_null(pc.not_equal(port, default), False)
    netloc = pc.if_else(show_port, pc.binary_join_element_wise(host, pc.cast(port, pa.string()), ":"), host)
    path = pc.struct_field(m, "path")
    path = pc.if_else(pc.equal(path, ""), "/", path)
    out = pc.binary_join_element_wise("https://", netloc, path, "")
    out = pc.if_else(pc.equal(host, ""), pa.scalar(None, pa.string()), out)
    plain = pc.and_(pc.fill_null(pc.is_valid(m), False), pc.fill_null(pc.less_equal(port, _MAX_PORT), True))
    plain = plain.to_numpy(zero_copy_only=False)
    if plain.all():
        return out
    values = out.to_pylist()
    raw = arr.to_pylist()
    drop = list(drop_params)
    for i in np.flatnonzero(~plain):
        values[i] = normalize_url(raw[i], drop)
    return pa.array(values, pa.string())


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


def exact_edges(kind: np.ndarray, d_hi: np.ndarray, d_lo: np.ndarray, phash: np.ndarray, has_phash: np.ndarray,
                sid: np.ndarray, unique: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining the distinct nodes (`dedup.routing`) of every group of equal (kind, digest):
    each to the group's smallest node. Members on one node (one identical pHash) add nothing.

    Only rows whose digest's top word repeats can be in a group: one sort of that word finds them,
    and only those few are sorted on every field and looked up among the distinct hashes."""
    if kind.size < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.argsort(d_hi)
    s = d_hi[order]
    same = s[1:] == s[:-1]
    shared = np.zeros(s.size, dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    rows = order[shared]
    # A node is (no pHash, value): hash nodes first, by hash (their numbering follows the sorted
    # hashes), then sample nodes by sid, so the smallest (flag, value) is the smallest node.
    flag = ~has_phash[rows]
    value = np.where(flag, sid[rows].astype(np.uint64), phash[rows])
    o = np.lexsort((value, flag, d_lo[rows], kind[rows], d_hi[rows]))
    rows, flag, value = rows[o], flag[o], value[o]
    k, hi, lo = kind[rows], d_hi[rows], d_lo[rows]
    start = np.ones(rows.size, dtype=bool)
    start[1:] = (k[1:] != k[:-1]) | (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    new_node = start.copy()
    new_node[1:] |= (flag[1:] != flag[:-1]) | (value[1:] != value[:-1])
    head = np.maximum.accumulate(np.where(start, np.arange(rows.size), 0))
    member = np.flatnonzero(new_node & ~start)
    if member.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    ends = np.concatenate([head[member], member])
    nodes = np.where(flag[ends], np.int64(unique.size) + value[ends].astype(np.int64),
                     positions(unique, np.where(flag[ends], np.uint64(0), value[ends])))
    return nodes[:member.size], nodes[member.size:]
