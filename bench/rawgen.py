"""Synthetic raw shards at any size, in the ingest stage's own format, with a known truth.

`write_raw(out, n)` writes `{shard:05d}.tar` (WebDataset members `KEY.jpg`, `KEY.txt`, `KEY.json`
through `AtomicTarWriter`), `{shard:05d}.parquet` (`RAW_INDEX_SCHEMA`, failures included),
`{shard:05d}_stats.json` and `stats.json`, `rows_per_shard` rows a shard (10,000 like
`download.rows_per_shard`), keys `{file:03d}{row:09d}` as ingest makes them.

Each row has one planted role (`ROLES`), and what was planted is recorded in `planted.npz` (role,
duplicate group and rank in the group, one byte or int per row) and `planted.json` (counts):
- good rows: captions of 3-7 words drawn from jieba's dictionary (a real vocabulary of frequent
  Chinese words), random original sizes within the image rules, random sha256 and pHash;
- rejects the filter must drop, with the reason it must give: boilerplate captions (the bundled
  phrase list), non-Chinese captions, too-small originals, bad aspect ratios;
- failed downloads (status failed, an error code, no tar member);
- duplicate groups of 2-4 good rows spread over the whole dataset (so they cross shards):
  the same URL under spellings that normalise equal (exact_url), the same image bytes with other
  captions (exact_sha256), the same bytes and caption (exact_pair), and pHashes within the radius
  of a base hash (near_phash).
Payloads are real JPEGs (16 px crops of scikit-image's photos, under 512 bytes, so a member is one
tar block); a few hundred are reused, since no stage decodes an image again after ingest. The
index's sha256 and pHash are the planted values, not those of the payload.

Generation is vectorised per shard and runs shards on a few processes; the row roles are drawn
once (a byte and two small ints per row).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from shards.atomic import write_json_atomic, write_parquet_atomic
from shards.format import (OFFSET_COLUMNS, RAW_INDEX_SCHEMA, RAW_SHARD_PATTERN, STATUS_FAILED, STATUS_SUCCESS,
                           AtomicTarWriter)

ROWS_PER_SHARD = 10_000
PAYLOADS = 256
PAYLOAD_SIDE = 16
FILE_INDEX = 0
RADIUS = 4  # the dedup stage's default radius: near members lie 1..RADIUS bits from their base

# Role codes (one byte per row).
GOOD, FAILED, TOO_SMALL, BAD_ASPECT, BOILERPLATE, NOT_CHINESE, DUP_URL, DUP_SHA, DUP_PAIR, NEAR = range(10)
ROLES = {GOOD: "good", FAILED: "failed", TOO_SMALL: "too_small", BAD_ASPECT: "bad_aspect",
         BOILERPLATE: "boilerplate", NOT_CHINESE: "not_chinese", DUP_URL: "dup_url", DUP_SHA: "dup_sha256",
         DUP_PAIR: "dup_pair", NEAR: "near_phash"}
# Reason the filter stage must give to each planted reject (filters/reasons.py).
FILTER_REASON = {TOO_SMALL: "image_too_small", BAD_ASPECT: "image_bad_aspect", BOILERPLATE: "boilerplate",
                 NOT_CHINESE: "no_chinese"}
# Reason the dedup stage must give to every member of a planted group but its survivor.
DEDUP_REASON = {DUP_URL: "exact_url", DUP_SHA: "exact_sha256", DUP_PAIR: "exact_pair", NEAR: "near_phash"}
DUP_ROLES = tuple(DEDUP_REASON)

# Share of the rows per role (the rest are good rows); groups have 2..MAX_GROUP members.
DEFAULT_SHARES = {FAILED: 0.03, TOO_SMALL: 0.01, BAD_ASPECT: 0.005, BOILERPLATE: 0.01, NOT_CHINESE: 0.02,
                  DUP_URL: 0.01, DUP_SHA: 0.01, DUP_PAIR: 0.01, NEAR: 0.02}
MAX_GROUP = 4
ERRORS = [("http_404", "404 Not Found"), ("timeout", "read timed out after 10 s"),
          ("not_image", "body is text/html"), ("connection_error", "connection refused")]
ENGLISH = ("a photo of the red car on a sunny beach with blue sky and green trees near old house "
           "city night lights mountain lake river dog cat bird flower garden street food coffee "
           "wallpaper hd free download best new cute small big happy family travel").split()
# Generic web words (some are boilerplate words of the filter): a caption of only these is rejected as
# boilerplate before its language is judged, so a non-Chinese caption starts with another word.
ENGLISH_GENERIC = frozenset("a the of on with and near photo wallpaper hd free download best new".split())
ENGLISH_CONTENT = [w for w in ENGLISH if w not in ENGLISH_GENERIC]
_HAN = re.compile(r"^[\u4e00-\u9fff]{2,4}$")


def key_of(row: int) -> str:
    return f"{FILE_INDEX:03d}{row:09d}"


def shard_name(shard: int) -> str:
    return RAW_SHARD_PATTERN.format(shard=shard)


# ---------------------------------------------------------------- vocabulary and payloads

def vocabulary(size: int = 40_000) -> list[str]:
    """The `size` most frequent 2-4 character Han words of jieba's dictionary that no filter rule
    would act on alone (no sensitive word, boilerplate phrase or Japanese-only kanji inside, not a
    person name)."""
    import jieba

    data = Path(__file__).resolve().parent.parent / "filters" / "data"
    banned = [w for f in ("sensitive_words.txt", "boilerplate.txt") for w in _lines(data / f)]
    jp = set("".join(_lines(data / "japanese_only_kanji.txt")))
    words = []
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 3 or parts[2].startswith("nr") or not _HAN.match(parts[0]):
                continue
            w = parts[0]
            if jp & set(w) or any(b in w or w in b for b in banned):
                continue
            words.append((int(parts[1]), w))
    words.sort(key=lambda fw: (-fw[0], fw[1]))
    return [w for _, w in words[:size]]


def _lines(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip() and not s.startswith("#")]


def boilerplate_phrases() -> list[str]:
    data = Path(__file__).resolve().parent.parent / "filters" / "data" / "boilerplate.txt"
    return [p for p in _lines(data) if re.search(r"[\u4e00-\u9fff]", p) and len(p) >= 4]


def payloads(count: int = PAYLOADS) -> list[bytes]:
    """Distinct real JPEGs of PAYLOAD_SIDE px, each at most one tar block (512 bytes)."""
    import skimage.data
    from PIL import Image

    out: list[bytes] = []
    names = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "camera", "coins", "moon"]
    for name in names:
        im = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        w, h = im.size
        step = max(8, min(w, h) // 12)
        for y in range(0, h - 4 * step, step):
            for x in range(0, w - 4 * step, step):
                buf = io.BytesIO()
                im.crop((x, y, x + 4 * step, y + 4 * step)).resize((PAYLOAD_SIDE, PAYLOAD_SIDE)).save(
                    buf, "JPEG", quality=60, optimize=True)
                if len(buf.getvalue()) <= 512:
                    out.append(buf.getvalue())
                if len(out) == count:
                    return out
    return out


# ---------------------------------------------------------------- the plan of roles

def plant(n: int, seed: int = 0, shares: dict[int, float] | None = None) -> dict[str, np.ndarray]:
    """Role, duplicate group (-1: none) and rank in the group of every row."""
    shares = DEFAULT_SHARES if shares is None else shares
    rng = np.random.default_rng([seed, 0])
    role = np.full(n, GOOD, np.int8)
    group = np.full(n, -1, np.int32)
    rank = np.zeros(n, np.int8)
    perm = rng.permutation(n)
    at = 0
    next_group = 0
    for r in sorted(shares):
        want = int(round(n * shares[r]))
        if r in DUP_ROLES:
            sizes = rng.integers(2, MAX_GROUP + 1, size=max(1, want // 3))
            sizes = sizes[np.cumsum(sizes) <= min(want, n - at)]
            members = perm[at:at + int(sizes.sum())]
            at += int(sizes.sum())
            gid = np.repeat(np.arange(next_group, next_group + len(sizes), dtype=np.int32), sizes)
            starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
            role[members] = r
            group[members] = gid
            rank[members] = np.arange(len(members)) - starts
            next_group += len(sizes)
        else:
            want = min(want, n - at)
            role[perm[at:at + want]] = r
            at += want
    return {"role": role, "group": group, "rank": rank}


def summary(planted: dict[str, np.ndarray], n: int, seed: int) -> dict:
    role, group = planted["role"], planted["group"]
    counts = np.bincount(role, minlength=len(ROLES))
    groups = {}
    for r in DUP_ROLES:
        g = group[role == r]
        groups[ROLES[r]] = {"groups": int(np.unique(g).size), "members": int(g.size),
                            "to_remove": int(g.size - np.unique(g).size)}
    return {"samples": n, "seed": seed, "rows_per_shard": ROWS_PER_SHARD, "radius": RADIUS,
            "rows_by_role": {ROLES[r]: int(c) for r, c in enumerate(counts)}, "duplicate_groups": groups,
            "success_rows": int(n - counts[FAILED])}


# ---------------------------------------------------------------- one shard

def _group_rng(seed: int, kind: int, gid: int) -> np.random.Generator:
    return np.random.default_rng([seed, 7, kind, int(gid)])


def _caption(words: list[str], rng: np.random.Generator) -> str:
    k = int(rng.integers(3, 8))
    return "".join(words[i] for i in rng.integers(0, len(words), k))


def english_caption(rng: np.random.Generator) -> str:
    """3-8 English words, the first a content word (never a caption of web boilerplate only)."""
    k = int(rng.integers(3, 9))
    first = ENGLISH_CONTENT[int(rng.integers(0, len(ENGLISH_CONTENT)))]
    return " ".join([first] + [ENGLISH[j] for j in rng.integers(0, len(ENGLISH), k - 1)])


def _sizes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Original sizes that pass the image rules (both sides > 200, aspect within 3)."""
    w = rng.integers(201, 1601, n)
    lo = np.maximum(201, -(-w // 3))
    hi = np.minimum(1600, 3 * w)
    h = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)
    return w, h


def shard_rows(shard: int, start: int, role: np.ndarray, group: np.ndarray, rank: np.ndarray, seed: int,
               words: list[str], boiler: list[str]) -> dict[str, list]:
    """Index columns of one shard's rows (RAW_INDEX_SCHEMA names), vectorised where it counts."""
    n = role.size
    rng = np.random.default_rng([seed, 1, shard])
    rows = np.arange(start, start + n)
    sha_bytes = rng.bytes(32 * n)
    sha = [sha_bytes[32 * i:32 * i + 32].hex() for i in range(n)]
    phash = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    ow, oh = _sizes(rng, n)
    url = [f"http://img{r % 97}.example.test/p/{r:x}.jpg" for r in rows]
    caption = [_caption(words, rng) for _ in range(n)]
    body = rng.integers(20_000, 400_000, n)
    status = np.where(role == FAILED, STATUS_FAILED, STATUS_SUCCESS)
    error = [None] * n
    error_message = [None] * n

    for i in np.flatnonzero(role != GOOD):
        r = role[i]
        if r == FAILED:
            code, msg = ERRORS[int(rows[i]) % len(ERRORS)]
            error[i], error_message[i] = code, msg
        elif r == TOO_SMALL:
            side = int(rng.integers(32, 201))
            ow[i], oh[i] = (side, int(rng.integers(side, 3 * side + 1))) if i % 2 else (int(rng.integers(side, 3 * side + 1)), side)
        elif r == BAD_ASPECT:
            short = int(rng.integers(201, 400))
            long = int(short * rng.uniform(3.2, 6.0))
            ow[i], oh[i] = (long, short) if i % 2 else (short, long)
        elif r == BOILERPLATE:
            caption[i] = boiler[int(rng.integers(0, len(boiler)))]
        elif r == NOT_CHINESE:
            caption[i] = english_caption(rng)
        else:
            g, k = int(group[i]), int(rank[i])
            grng = _group_rng(seed, r, g)
            if r == DUP_URL:
                # Spellings that normalise to one URL (scheme, host case, default port, tracking, fragment).
                path = f"dup.example.test/g{g}.jpg"
                url[i] = [f"http://{path}", f"https://DUP.example.test/g{g}.jpg?utm_source=feed",
                          f"http://dup.example.test:80/g{g}.jpg#top", f"https://{path}?spm=a.b.c"][k % 4]
            elif r in (DUP_SHA, DUP_PAIR):
                sha[i] = hashlib.sha256(f"{seed}:{r}:{g}".encode()).hexdigest()
                phash[i] = grng.integers(0, np.iinfo(np.uint64).max, dtype=np.uint64, endpoint=True)
                if r == DUP_PAIR:
                    caption[i] = _caption(words, grng)
            elif r == NEAR:
                base = grng.integers(0, np.iinfo(np.uint64).max, dtype=np.uint64, endpoint=True)
                if k:
                    bits = np.random.default_rng([seed, 8, g, k]).choice(64, int(1 + (g + k) % RADIUS), replace=False)
                    base = base ^ np.uint64(np.bitwise_or.reduce(np.left_shift(np.uint64(1), bits.astype(np.uint64))))
                phash[i] = base
    ok = role != FAILED
    payload_id = (rows * 2654435761) % PAYLOADS

    def masked(values, dtype=None):
        return [v if o else None for v, o in zip(values.tolist() if dtype is None else values, ok)]

    return {
        "key": [key_of(int(r)) for r in rows], "url": url, "caption": caption, "status": status.tolist(),
        "error": error, "error_message": error_message,
        "width": masked(np.full(n, PAYLOAD_SIDE)), "height": masked(np.full(n, PAYLOAD_SIDE)),
        "original_width": masked(ow), "original_height": masked(oh), "phash": masked(phash),
        "sha256": [s if o else None for s, o in zip(sha, ok)], "bytes": masked(body),
        "format": ["JPEG" if o else None for o in ok], "source_file": ["urls.parquet"] * n,
        "source_row": rows.tolist(), "_payload": payload_id.tolist(),
    }


def _meta_json(c: dict, i: int) -> bytes:
    """The member's metadata as ingest writes it (fields it records, sorted keys)."""
    return json.dumps({"bytes": c["bytes"][i], "caption": c["caption"][i], "format": "JPEG",
                       "height": c["height"][i], "key": c["key"][i], "original_height": c["original_height"][i],
                       "original_width": c["original_width"][i], "phash": f"{c['phash'][i]:016x}",
                       "sha256": c["sha256"][i], "status": STATUS_SUCCESS, "url": c["url"][i],
                       "width": c["width"][i]}, ensure_ascii=False, sort_keys=True).encode("utf-8")


def write_shard(out: str, shard: int, start: int, role, group, rank, seed: int) -> dict:
    out_dir = Path(out)
    base = out_dir / shard_name(shard)
    if base.with_suffix(".parquet").is_file():
        return json.loads((out_dir / f"{base.name}_stats.json").read_text())
    words, boiler, blobs = _resources()
    c = shard_rows(shard, start, role, group, rank, seed, words, boiler)
    where = {name: [None] * len(c["key"]) for name in OFFSET_COLUMNS}
    with AtomicTarWriter(base.with_suffix(".tar")) as tar:
        for i, key in enumerate(c["key"]):
            if c["status"][i] != STATUS_SUCCESS:
                continue
            at = tar.write_sample(key, {"jpg": blobs[c["_payload"][i]], "json": _meta_json(c, i),
                                        "txt": c["caption"][i].encode("utf-8")})
            where["jpg_offset"][i], where["jpg_size"][i] = at["jpg"]
            where["json_offset"][i], where["json_size"][i] = at["json"]
    c.update(where)
    c.pop("_payload")
    table = pa.Table.from_pydict(c, schema=RAW_INDEX_SCHEMA)
    ok = int(sum(s == STATUS_SUCCESS for s in c["status"]))
    stats = {"shard": shard, "count": len(c["key"]), "successes": ok, "failed": len(c["key"]) - ok}
    write_json_atomic(out_dir / f"{base.name}_stats.json", stats)
    write_parquet_atomic(base.with_suffix(".parquet"), table)  # last: its presence means complete
    return stats


_RES: tuple | None = None


def _resources():
    global _RES
    if _RES is None:
        _RES = (vocabulary(), boilerplate_phrases(), payloads())
    return _RES


def write_raw(out: str | Path, n: int, seed: int = 0, rows_per_shard: int = ROWS_PER_SHARD,
              jobs: int = 1, shares: dict[int, float] | None = None) -> dict:
    """Write (or finish) the raw shards of `n` samples under `out`; returns the planted summary.

    A rerun with the same arguments keeps the shards already complete."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = {"samples": n, "seed": seed, "rows_per_shard": rows_per_shard, "shares": {ROLES[k]: v for k, v in
                                                                                      (shares or DEFAULT_SHARES).items()}}
    recorded = out / "planted.json"
    if recorded.is_file() and json.loads(recorded.read_text()).get("params") != info:
        raise ValueError(f"{out} holds raw shards of other parameters; use another directory")
    planted = plant(n, seed, shares)
    np.savez_compressed(out / "planted.npz", **planted)
    write_json_atomic(recorded, {"params": info, **summary(planted, n, seed)})
    starts = list(range(0, n, rows_per_shard))
    args = [(str(out), s, a, planted["role"][a:a + rows_per_shard], planted["group"][a:a + rows_per_shard],
             planted["rank"][a:a + rows_per_shard], seed) for s, a in enumerate(starts)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(write_shard, *zip(*args), chunksize=4))
    else:
        results = [write_shard(*a) for a in args]
    ok = sum(r["successes"] for r in results)
    write_json_atomic(out / "stats.json", {"rows": n, "shards": len(starts), "shards_done": len(starts),
                                           "by_status": {STATUS_SUCCESS: ok, STATUS_FAILED: n - ok},
                                           "generator": "bench/rawgen.py"})
    return json.loads(recorded.read_text())


def load_planted(raw_dir: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    raw_dir = Path(raw_dir)
    with np.load(raw_dir / "planted.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads((raw_dir / "planted.json").read_text()), arrays


def raw_bytes(raw_dir: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(raw_dir).iterdir() if p.is_file())


if __name__ == "__main__":
    import argparse
    import time

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    a = p.parse_args()
    t = time.perf_counter()
    s = write_raw(a.out, a.samples, a.seed, jobs=a.jobs)
    print(json.dumps({**s, "seconds": round(time.perf_counter() - t, 1)}, ensure_ascii=False, indent=1))
