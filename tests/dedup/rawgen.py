"""Test helper: raw shards (the ingest format) built from real package photos and known edits.

Sources are the photos bundled with scikit-image and crops of their quadrants (distinct pictures);
each is stored as-is and after known transformations, so the ground truth of which samples are
copies of which is known. pHash is `imagehash.phash` of the stored image, sha256 of its bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import skimage.data
from PIL import Image, ImageDraw, ImageEnhance

from shards.format import RAW_INDEX_SCHEMA, AtomicTarWriter, sample_members

PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "moon", "clock", "coins", "colorwheel", "cell", "page", "text"]
MAX_SIDE = 384


def _load(name: str) -> Image.Image:
    im = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    im.thumbnail((MAX_SIDE * 2, MAX_SIDE * 2))
    return im


def photo_sources(limit: int | None = None) -> list[tuple[str, Image.Image]]:
    """Whole photos, then quadrant crops of the larger ones: distinct pictures."""
    out = []
    for name in PHOTOS:
        im = _load(name)
        w, h = im.size
        small = im.copy()
        small.thumbnail((MAX_SIDE, MAX_SIDE))
        out.append((name, small))
        if min(w, h) >= 300:
            for q, (x, y) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
                out.append((f"{name}_q{q}", im.crop((x * w // 2, y * h // 2, (x + 1) * w // 2, (y + 1) * h // 2))))
    return out[:limit]


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _crop(im: Image.Image, fraction: float) -> Image.Image:
    w, h = im.size
    dx, dy = round(w * fraction / 2), round(h * fraction / 2)
    return im.crop((dx, dy, w - dx, h - dy))


def _watermark(im: Image.Image) -> Image.Image:
    """Semi-transparent text in the bottom-right corner, about 2% of the picture."""
    base = im.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    size = max(8, im.height // 20)
    ImageDraw.Draw(layer).text((im.width - size * 5, im.height - size * 1.6), "wukong",
                               fill=(255, 255, 255, 110), font_size=size)
    return Image.alpha_composite(base, layer).convert("RGB")


TRANSFORMS = {
    "jpeg90": lambda im: _jpeg(im, 90),
    "jpeg70": lambda im: _jpeg(im, 70),
    "jpeg40": lambda im: _jpeg(im, 40),
    "resize50": lambda im: im.resize((im.width // 2, im.height // 2), Image.BICUBIC),
    "crop2": lambda im: _crop(im, 0.02),
    "bright+10": lambda im: ImageEnhance.Brightness(im).enhance(1.10),
    "bright-10": lambda im: ImageEnhance.Brightness(im).enhance(0.90),
    "watermark": _watermark,
}


@dataclass
class Sample:
    key: str
    url: str
    caption: str
    jpeg: bytes
    source: str       # ground truth: which picture this is a copy of
    transform: str    # "original" or a TRANSFORMS name


def encode(im: Image.Image, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def build_corpus(limit_sources: int | None = None, transforms=TRANSFORMS, file_index: int = 0) -> list[Sample]:
    samples = []
    for s, (name, im) in enumerate(photo_sources(limit_sources)):
        variants = [("original", im)] + [(t, f(im)) for t, f in transforms.items()]
        for t, v in variants:
            row = len(samples)
            samples.append(Sample(
                key=f"{file_index:03d}{row:09d}",
                url=f"http://img{s % 3}.example.test/{name}/{t}.jpg",
                caption=f"{name.replace('_', ' ')} 的照片（{t}）第{row}张",
                jpeg=encode(v), source=name, transform=t))
    return samples


def phash_u64(jpeg: bytes) -> int:
    return int(str(imagehash.phash(Image.open(io.BytesIO(jpeg)))), 16)


def write_raw_shards(directory: str | Path, samples: list[Sample], per_shard: int = 50,
                     failed_every: int = 0) -> list[Path]:
    """Raw shards `{shard:05d}.tar` + `.parquet` like the ingest stage; every `failed_every`-th
    input row is recorded as a failed download (no tar member), as ingest does."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for shard, start in enumerate(range(0, len(samples), per_shard)):
        rows = []
        name = f"{shard:05d}"
        with AtomicTarWriter(directory / f"{name}.tar") as tar:
            for i, s in enumerate(samples[start:start + per_shard]):
                failed = failed_every and (start + i) % failed_every == failed_every - 1
                row = {"key": s.key, "url": s.url, "caption": s.caption, "source_file": "input.parquet",
                       "source_row": start + i}
                if failed:
                    row.update(status="failed", error="http_404", error_message="404 Not Found")
                    rows.append(row)
                    continue
                im = Image.open(io.BytesIO(s.jpeg))
                sha = hashlib.sha256(s.jpeg).hexdigest()
                ph = phash_u64(s.jpeg)
                row.update(status="success", width=im.width, height=im.height, original_width=im.width,
                           original_height=im.height, phash=ph, sha256=sha, bytes=len(s.jpeg), format="JPEG")
                meta = {k: row[k] for k in ("key", "url", "caption", "status", "width", "height",
                                            "original_width", "original_height", "sha256", "bytes", "format")}
                meta["phash"] = f"{ph:016x}"
                tar.write_sample(s.key, sample_members(s.jpeg, s.caption, meta))
                rows.append(row)
        cols = {f.name: [r.get(f.name) for r in rows] for f in RAW_INDEX_SCHEMA}
        pq.write_table(pa.Table.from_pydict(cols, schema=RAW_INDEX_SCHEMA), directory / f"{name}.parquet")
        (directory / f"{name}_stats.json").write_text(json.dumps({"count": len(rows)}))
        written.append(directory / f"{name}.tar")
    failed = len(samples) // failed_every if failed_every else 0
    (directory / "stats.json").write_text(json.dumps({
        "rows": len(samples), "shards": len(written),
        "by_status": {"success": len(samples) - failed, "failed": failed}}))
    return written


def truth_pairs(samples: list[Sample]) -> set[tuple[str, str]]:
    """Every pair of keys that are copies of the same picture."""
    by_source: dict[str, list[str]] = {}
    for s in samples:
        by_source.setdefault(s.source, []).append(s.key)
    out = set()
    for keys in by_source.values():
        keys = sorted(keys)
        out.update((a, b) for i, a in enumerate(keys) for b in keys[i + 1:])
    return out


def cluster_pairs(cluster_of: dict[str, int]) -> set[tuple[str, str]]:
    groups: dict[int, list[str]] = {}
    for k, c in cluster_of.items():
        groups.setdefault(c, []).append(k)
    out = set()
    for keys in groups.values():
        keys = sorted(keys)
        out.update((a, b) for i, a in enumerate(keys) for b in keys[i + 1:])
    return out


# --- Synthetic raw indexes (metadata only) for the distributed dedup tests and measurements -------

SYNTH_KINDS = ("base", "failed", "url_dup", "pair_dup", "sha_dup", "same_phash", "near", "far",
               "null_phash", "empty_sha")
# Share of each kind among rows (the rest are base rows); duplicates copy a base row (round 1) or
# a round-1 duplicate (round 2), so clusters chain exact and near relations.
SYNTH_SHARES = {"failed": 0.02, "url_dup": 0.02, "pair_dup": 0.02, "sha_dup": 0.02, "same_phash": 0.01,
                "near": 0.03, "far": 0.01, "null_phash": 0.01, "empty_sha": 0.005}
_WORDS = ["猫", "狗", "风景", "城市", "夜景", "美食", "花", "山", "海", "天空", "汽车", "建筑", "人物", "街道",
          "高清", "壁纸", "摄影", "春天", "秋天", "雪"]


def _flip_bits(rng, h: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """`h` with lo..hi distinct random bits flipped in each value."""
    out = h.copy()
    for i in range(out.size):
        bits = rng.choice(64, size=int(rng.integers(lo, hi + 1)), replace=False)
        out[i] ^= np.uint64(sum(1 << int(b) for b in bits))
    return out


def synthetic_rows(n: int, seed: int = 0, radius: int = 4, file_index: int = 0) -> pa.Table:
    """`n` raw-index rows (RAW_INDEX_SCHEMA) with planted exact and near duplicates of every kind."""
    rng = np.random.default_rng(seed)
    kinds = np.zeros(n, dtype=np.int8)
    draw = rng.random(n)
    edge = 0.0
    for k, share in SYNTH_SHARES.items():
        kinds[(draw >= edge) & (draw < edge + share)] = SYNTH_KINDS.index(k)
        edge += share
    kinds[0] = 0
    phash = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    sha = rng.integers(0, 2**64, size=(n, 2), dtype=np.uint64)
    cap_id = rng.integers(0, 1 << 40, size=n)
    url_id = np.arange(n, dtype=np.int64)
    url_style = np.zeros(n, dtype=np.int8)
    ow = rng.integers(100, 2000, size=n)
    oh = rng.integers(100, 2000, size=n)
    has_phash = np.ones(n, dtype=bool)
    empty_sha = np.zeros(n, dtype=bool)
    dup = np.flatnonzero(kinds > 1)
    # Round 1 copies from base rows, round 2 (every other duplicate) from round-1 duplicates.
    sources = np.flatnonzero(kinds == 0)
    rounds = [dup[::2], dup[1::2]]
    for r, rows in enumerate(rounds):
        pool = sources if r == 0 else np.sort(rounds[0])
        k = np.searchsorted(pool, rows)  # pool members before each row
        ok = k > 0
        rows, k = rows[ok], k[ok]
        src = pool[(rng.random(rows.size) * k).astype(np.int64)]
        for name in SYNTH_KINDS[2:]:
            sel = kinds[rows] == SYNTH_KINDS.index(name)
            i, j = rows[sel], src[sel]
            if name == "url_dup":
                url_id[i], url_style[i] = url_id[j], rng.integers(1, 4, size=i.size)
            elif name in ("pair_dup", "sha_dup"):
                sha[i], phash[i], has_phash[i] = sha[j], phash[j], has_phash[j]
                if name == "pair_dup":
                    cap_id[i] = cap_id[j]
            elif name == "same_phash":
                phash[i], has_phash[i] = phash[j], has_phash[j]
            elif name == "near":
                phash[i] = _flip_bits(rng, phash[j], 1, radius)
            elif name == "far":
                phash[i] = _flip_bits(rng, phash[j], radius + 1, radius + 3)
            elif name == "null_phash":
                has_phash[i] = False
                half = rng.random(i.size) < 0.5
                sha[i[half]] = sha[j[half]]
            elif name == "empty_sha":
                empty_sha[i] = True
                phash[i] = phash[j]
    failed = kinds == SYNTH_KINDS.index("failed")
    hosts = url_id % 97

    def url(i: int) -> str:
        base = f"img{hosts[i]}.example.test/{file_index}/p/{url_id[i]}.jpg"
        return (f"http://{base}", f"https://{base.upper().split('/', 1)[0]}/{base.split('/', 1)[1]}",
                f"http://{base}?utm_source=feed", f"HTTP://{base}#top")[url_style[i]]

    ok = ~failed
    cols = {
        "key": [f"{file_index:03d}{i:09d}" for i in range(n)],
        "url": [url(i) for i in range(n)],
        "caption": [f"{_WORDS[c % len(_WORDS)]}{_WORDS[(c >> 5) % len(_WORDS)]} 第{c % 100003}张" * (1 + int(c % 3))
                    for c in cap_id.tolist()],
        "status": np.where(failed, "failed", "success").tolist(),
        "error": np.where(failed, "http_404", None).tolist(),
        "width": pa.array(np.minimum(ow, 224), mask=failed, type=pa.int32()),
        "height": pa.array(np.minimum(oh, 224), mask=failed, type=pa.int32()),
        "original_width": pa.array(ow, mask=failed, type=pa.int32()),
        "original_height": pa.array(oh, mask=failed, type=pa.int32()),
        "phash": pa.array(phash, mask=failed | ~has_phash, type=pa.uint64()),
        "sha256": [None if failed[i] else ("" if empty_sha[i] else f"{sha[i, 0]:016x}{sha[i, 1]:016x}" * 2)
                   for i in range(n)],
        "bytes": pa.array(ow * 10, mask=failed, type=pa.int64()),
        "format": pa.array(np.where(ok, "JPEG", None).tolist(), type=pa.string()),
        "source_file": ["input.parquet"] * n,
        "source_row": np.arange(n, dtype=np.int64),
    }
    cols["error_message"] = cols["error"]
    columns = {f.name: cols.get(f.name, pa.nulls(n, f.type)) for f in RAW_INDEX_SCHEMA}
    return pa.Table.from_pydict(columns, schema=RAW_INDEX_SCHEMA)


def write_synthetic_indexes(directory: str | Path, table: pa.Table, shards: int) -> list[Path]:
    """`table` split into `shards` contiguous raw indexes `{shard:05d}.parquet` (no tars: dedup
    reads only the indexes)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cuts = np.linspace(0, table.num_rows, shards + 1).astype(int)
    out = []
    for s in range(shards):
        path = directory / f"{s:05d}.parquet"
        pq.write_table(table.slice(cuts[s], cuts[s + 1] - cuts[s]), path)
        out.append(path)
    return out
