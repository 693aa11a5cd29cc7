"""Exact duplicates: the same normalised URL, the same image bytes, the same (image, caption) pair."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd

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
