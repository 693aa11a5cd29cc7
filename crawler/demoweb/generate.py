"""Generates the demo web: pages, images, search index, robots.txt, and the ground truth beside it.

Layout of the generated directory (served by `crawler.demoweb.server`):
- `routes.json`: path -> how to answer (status, body file, content type, delay, headers, fail_first)
- `files/`: bodies (pages, images, corrupt bytes, ...); `search_index.json`: query -> results
- `queries.txt`: the queries that find every listed pair (the demo's query list)
- `ground_truth.parquet`: one row per image of the site (see `GROUND_TRUTH_COLUMNS`)
- `manifest.json`: the configuration it was generated from and counts per category.
Generation is deterministic for a seed; an existing site with the same configuration is reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import io
import json
import random
from pathlib import Path

import imagehash
import numpy as np
import pyarrow as pa
from PIL import Image, ImageEnhance

from crawler.config import DemoWebConfig
from crawler.demoweb import content as C
from shards.atomic import write_bytes_atomic, write_json_atomic, write_parquet_atomic

GROUND_TRUTH_FILE = "ground_truth.parquet"
ROUTES_FILE = "routes.json"
SEARCH_INDEX_FILE = "search_index.json"
QUERIES_FILE = "queries.txt"
MANIFEST_FILE = "manifest.json"
GENERATOR_VERSION = 5

# Category -> (stage expected to drop or change the pair, action, reason). Stage None: kept as is.
# Reasons are the codes of the stage that acts (filters/reasons.py, crawler/fetch.py, imaging.py).
EXPECTED = {
    "good": (None, "keep", ""),
    "slow": (None, "keep", ""),
    "mixed": (None, "keep", ""),
    "traditional": ("filter", "rewrite", "converted_t2s"),
    "person_name": ("filter", "rewrite", "masked_name"),
    "phone": ("filter", "rewrite", "masked_phone"),
    "email": ("filter", "rewrite", "masked_email"),
    "english": ("filter", "drop", "no_chinese"),
    "japanese": ("filter", "drop", "no_chinese"),
    "korean": ("filter", "drop", "no_chinese"),
    "boilerplate": ("filter", "drop", "boilerplate"),
    "sensitive": ("filter", "drop", "sensitive"),
    "too_small": ("download", "drop", "too_small"),
    "too_thin": ("download", "drop", "aspect_ratio"),
    # Half truncated (reason truncated), half garbage after a JPEG header (decode_error).
    "corrupt": ("download", "drop", "decode_error"),
    "not_image": ("download", "drop", "not_image"),
    "broken_link": ("download", "drop", "http_404"),
    "http_500": ("download", "drop", "http_500"),
    "opted_out_image": ("download", "drop", "robots_opt_out"),
    "exact_dup_of": ("dedup", "drop", "exact_sha256"),
    "near_dup_of": ("dedup", "drop", "near_phash"),
    "robots_disallowed": ("discover", "drop", "robots_disallowed"),
    "opted_out": ("discover", "drop", "opted_out"),
    "tracking_pixel": ("discover", "drop", "declared_too_small"),
    "site_logo": ("discover", "drop", "declared_too_small"),
    # A 32 px share icon captioned 分享: page chrome, never paired by discovery.
    "site_icon": ("discover", "drop", "chrome"),
}
# Config share field -> category.
SHARES = {
    "share_too_small": "too_small", "share_too_thin": "too_thin", "share_corrupt": "corrupt",
    "share_not_image": "not_image", "share_broken_link": "broken_link", "share_http_500": "http_500",
    "share_slow": "slow", "share_opted_out_image": "opted_out_image", "share_exact_dup": "exact_dup_of",
    "share_near_dup": "near_dup_of", "share_traditional": "traditional", "share_english": "english",
    "share_japanese": "japanese", "share_korean": "korean", "share_mixed": "mixed",
    "share_boilerplate": "boilerplate", "share_sensitive": "sensitive", "share_person_name": "person_name",
    "share_phone": "phone", "share_email": "email", "share_robots_disallowed": "robots_disallowed",
    "share_opted_out": "opted_out",
}
GROUND_TRUTH_SCHEMA = pa.schema([
    ("pair_id", pa.int32()),
    ("category", pa.string()),
    ("url", pa.string()),             # absolute image URL, filled when the site is served
    ("page_url", pa.string()),        # absolute URL of the page showing it, filled when served
    ("image_path", pa.string()),
    ("page_path", pa.string()),        # site chrome (logo, icons) is on every page: the first one
    ("caption", pa.string()),         # as written on the page
    ("kind", pa.string()),            # shape, photo, chrome
    ("shape", pa.string()),
    ("colour", pa.string()),
    ("count", pa.int32()),
    ("object", pa.string()),
    ("dup_of", pa.int32()),           # pair_id of the original of an exact or near duplicate
    ("dup_distance", pa.int32()),     # pHash Hamming distance to that original
    ("phash", pa.string()),           # 16 hex digits (imagehash.phash of the served image)
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("format", pa.string()),
    ("markup", pa.string()),          # how the page embeds it (alt, figure, lazy, srcset, og, ...)
    ("declared_size", pa.bool_()),    # width/height attributes given on the page
    ("in_search", pa.bool_()),        # listed by the search endpoint
    ("query", pa.string()),           # the query that lists it (or would, for unlisted pairs)
    ("discoverable", pa.bool_()),     # a polite crawler must find it (robots-allowed, not opted out)
    ("discoverable_on_page", pa.bool_()),  # ... on its article page too (not only in search results)
    ("expected_stage", pa.string()),  # discover, filter, download, dedup; null: kept unchanged
    ("expected_action", pa.string()), # keep, drop, rewrite
    ("expected_reason", pa.string()),
])
BOILERPLATE = ["查看源网页", "展开全文", "点击查看大图", "查看原图", "图片来源网络"]
SURNAMES = ["张", "王", "李", "刘", "陈", "杨", "赵", "黄", "周", "吴", "欧阳", "司马"]
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "艳", "杰", "娟", "涛", "明"]
NAME_TEMPLATES = ["摄影师{name}拍摄的{cap}", "{cap}，作者{name}", "{name}分享：{cap}", "{cap}（{name}摄）"]
PHONE_TEMPLATES = ["{cap} 联系电话{phone}", "{cap}，咨询{phone}", "{cap} 电话：{phone}"]
EMAIL_TEMPLATES = ["{cap} 投稿邮箱{email}", "{cap}，联系{email}", "{cap} 邮箱：{email}"]
SENSITIVE_TEMPLATES = ["{cap} {word}", "{word}：{cap}", "{cap}，{word}请联系"]
# How article pages caption their images: attributes, figure, lazy loading, and the conventions of
# Chinese sites (a caption-class line below, a centred line below, text after <br> in the image's own
# centred paragraph).
MARKUPS = [("alt", 0.33), ("figure", 0.14), ("lazy", 0.1), ("original", 0.05), ("srcset", 0.1),
           ("title", 0.06), ("nearby", 0.12), ("below", 0.05), ("br", 0.05)]
# Article links per list page; the home page links the lists, whose pages link each other.
ARTICLES_PER_LIST_PAGE = 10
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n\nUser-agent: BadBot\nDisallow: /\n"
_FORMATS = [("JPEG", "jpg", "image/jpeg", 0.8), ("PNG", "png", "image/png", 0.12), ("WEBP", "webp", "image/webp", 0.08)]
# Photos are a third of the drawings; shapes the rest.
PHOTO_SHARE = 0.35
# Captions of kept pairs repeat at most this often (the filter drops captions seen > 10 times).
MAX_CAPTION_REPEATS = 4
_DISTINCT_TRIES = 60


def phash_int(img: Image.Image) -> int:
    return int(str(imagehash.phash(img)), 16)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class _Builder:
    def __init__(self, root: Path, cfg: DemoWebConfig, sensitive_words: list[str]):
        self.root = root
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.sensitive = sensitive_words
        self.files = root / "files"
        self.routes: dict[str, dict] = {}
        self.rows: list[dict] = []
        self.hashes = np.zeros(0, dtype=np.uint64)
        self.caption_uses: dict[str, int] = {}
        self._opencc = None

    # ------------------------------------------------------------ bodies and routes
    def body(self, data: bytes) -> str:
        name = hashlib.sha256(data).hexdigest()[:24]
        path = self.files / name
        if not path.exists():
            write_bytes_atomic(path, data)
        return name

    def route(self, path: str, *, data: bytes | None = None, ctype: str = "text/html; charset=utf-8",
              status: int = 200, delay: float = 0.0, headers: dict | None = None, fail_first: int = 0) -> None:
        self.routes[path] = {"status": status, "file": self.body(data) if data is not None else None,
                             "content_type": ctype, "delay": delay, "headers": headers or {},
                             "fail_first": fail_first}

    # ------------------------------------------------------------ images
    def size(self, rng: random.Random) -> tuple[int, int]:
        short = rng.randint(self.cfg.image_min_side, self.cfg.image_max_side)
        long = int(short * rng.uniform(1.0, 1.4))
        return (long, short) if rng.random() < 0.6 else (short, long)

    def distinct_drawing(self) -> tuple[C.Drawing, bytes, int, tuple[str, str, str]]:
        """A drawing whose pHash is far from every other distinct image of the site."""
        rng = self.rng
        fmt = self._format()
        best = None
        for _ in range(_DISTINCT_TRIES):
            d = C.random_drawing(rng, self.size(rng), PHOTO_SHARE)
            data = C.encode(d.image, fmt[0], self.cfg.jpeg_quality)
            h = phash_int(Image.open(io.BytesIO(data)))
            dist = self._min_distance(h)
            if dist >= self.cfg.min_distinct_phash_distance:
                best = (d, data, h)
                break
            if best is None or dist > best[3]:
                best = (d, data, h, dist)
        d, data, h = best[:3]
        self.hashes = np.append(self.hashes, np.uint64(h))
        return d, data, h, fmt

    def _min_distance(self, h: int) -> int:
        if not len(self.hashes):
            return 64
        x = np.bitwise_xor(self.hashes, np.uint64(h))
        return int(np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1).min())

    def _format(self) -> tuple[str, str, str]:
        r = self.rng.random()
        acc = 0.0
        for fmt, ext, ctype, share in _FORMATS:
            acc += share
            if r < acc:
                return fmt, ext, ctype
        return _FORMATS[0][:3]

    def near_copy(self, data: bytes, original_hash: int) -> tuple[bytes, int]:
        """Re-encoded, rescaled, slightly cropped or brightened copy within the near-dup radius."""
        src = Image.open(io.BytesIO(data)).convert("RGB")
        limit = self.cfg.near_dup_max_distance
        for strength in (1.0, 0.6, 0.3, 0.0):
            img = src
            w, h = img.size
            ops = self.rng.sample(["scale", "crop", "bright"], k=self.rng.randint(1, 3))
            if "crop" in ops and strength:
                dx, dy = int(w * 0.04 * strength), int(h * 0.04 * strength)
                img = img.crop((dx, dy, w - dx, h - dy))
            if "scale" in ops and strength:
                f = 1 - 0.2 * strength * self.rng.random()
                img = img.resize((max(self.cfg.image_min_side, int(img.width * f)),
                                  max(self.cfg.image_min_side, int(img.height * f))), Image.Resampling.BILINEAR)
            if "bright" in ops and strength:
                img = ImageEnhance.Brightness(img).enhance(1 + 0.12 * strength)
            out = C.encode(img, "JPEG", self.rng.randint(60, 80))
            h2 = phash_int(Image.open(io.BytesIO(out)))
            if hamming(h2, original_hash) <= limit and out != data:
                return out, h2
        out = C.encode(src, "JPEG", 70)
        return out, phash_int(Image.open(io.BytesIO(out)))

    # ------------------------------------------------------------ captions
    def zh_caption(self, d: C.Drawing) -> str:
        for _ in range(50):
            cap = C.caption_zh(self.rng, d)
            if self.caption_uses.get(cap, 0) < MAX_CAPTION_REPEATS:
                break
        self.caption_uses[cap] = self.caption_uses.get(cap, 0) + 1
        return cap

    def traditional(self, d: C.Drawing) -> str:
        if self._opencc is None:
            import opencc
            self._opencc = opencc.OpenCC("s2t")
        for _ in range(50):
            cap = self.zh_caption(d)
            trad = self._opencc.convert(cap)
            if trad != cap:
                return trad
        return trad

    def caption_for(self, category: str, d: C.Drawing) -> str:
        rng = self.rng
        if category in ("english", "japanese", "korean"):
            return C.caption_foreign(d, {"english": "en", "japanese": "ja", "korean": "ko"}[category])
        if category == "traditional":
            return self.traditional(d)
        if category == "mixed":
            return C.caption_mixed(rng, d)
        if category == "boilerplate":
            return rng.choice(BOILERPLATE)
        cap = self.zh_caption(d)
        if category == "sensitive":
            return rng.choice(SENSITIVE_TEMPLATES).format(cap=cap, word=rng.choice(self.sensitive))
        if category == "person_name":
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.5 else "")
            return rng.choice(NAME_TEMPLATES).format(cap=cap, name=name)
        if category == "phone":
            phone = rng.choice(["138", "139", "150", "186", "177"]) + "".join(rng.choice("0123456789") for _ in range(8))
            return rng.choice(PHONE_TEMPLATES).format(cap=cap, phone=phone)
        if category == "email":
            user = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9)))
            return rng.choice(EMAIL_TEMPLATES).format(cap=cap, email=f"{user}{rng.randint(1, 99)}@example.com")
        return cap


def _labels(d: C.Drawing) -> dict:
    lab = d.labels
    return {"kind": d.kind, "shape": lab.get("shape"), "colour": lab.get("colour"), "count": lab.get("count"),
            "object": lab.get("object")}


def _query_for(rng: random.Random, d: C.Drawing) -> str:
    if d.kind == "photo":
        return C.PHOTOS[d.labels["object"]]["zh"][0]
    return rng.choice([C.SHAPES[d.labels["shape"]]["zh"][0], C.COLOURS[d.labels["colour"]]["zh"][0]])


def _categories(cfg: DemoWebConfig) -> list[str]:
    n = cfg.pairs
    cats: list[str] = []
    for fld, cat in SHARES.items():
        share = getattr(cfg, fld)
        if not 0 <= share <= 1:
            raise ValueError(f"demo_web.{fld} must be within 0..1, got {share}")
        cats += [cat] * int(round(n * share))
    if len(cats) > n * 0.9:
        raise ValueError("demo_web shares leave fewer than 10% good pairs; lower them")
    return cats + ["good"] * (n - len(cats))


def _escape_text(text: str, rng: random.Random) -> str:
    """HTML-escaped, sometimes with a character as a numeric entity (pages do that)."""
    out = html.escape(text, quote=True)
    if rng.random() < 0.2 and out:
        i = rng.randrange(len(out))
        if "\u4e00" <= out[i] <= "\u9fff":
            out = out[:i] + f"&#x{ord(out[i]):X};" + out[i + 1:]
    return out


def _split_markup(text: str, rng: random.Random) -> str:
    """Caption split over inline elements and a line break between Chinese characters."""
    esc = html.escape(text, quote=False)
    cut = [i for i in range(1, len(text)) if "\u4e00" <= text[i - 1] <= "\u9fff" and "\u4e00" <= text[i] <= "\u9fff"]
    if not cut or esc != text:
        return esc
    i = rng.choice(cut)
    return f"{text[:i]}\n      <b>{text[i:]}</b>" if rng.random() < 0.5 else f"<span>{text[:i]}</span><em>{text[i:]}</em>"


def generate_demo_web(root: str | Path, cfg: DemoWebConfig | None = None,
                      sensitive_words: list[str] | None = None) -> dict:
    """Generate (or reuse) the demo web under `root`; returns the manifest."""
    cfg = cfg or DemoWebConfig()
    root = Path(root)
    words = sensitive_words or ["网络赌博", "代开发票", "出售枪支", "信用卡套现", "刷单兼职"]
    settings = {"config": dataclasses.asdict(cfg), "sensitive_words": words, "version": GENERATOR_VERSION}
    manifest_path = root / MANIFEST_FILE
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        if old.get("settings") == settings and (root / GROUND_TRUTH_FILE).exists():
            return old
        manifest_path.unlink()
    b = _Builder(root, cfg, words)
    rng = b.rng
    cats = _categories(cfg)
    rng.shuffle(cats)
    # Originals of duplicates are good pairs: make those first.
    order = sorted(range(len(cats)), key=lambda i: cats[i] in ("exact_dup_of", "near_dup_of"))
    pairs: list[dict] = [None] * len(cats)  # type: ignore[list-item]
    originals: list[int] = []
    for i in order:
        pairs[i] = _make_pair(b, i, cats[i], originals, pairs)
        if cats[i] == "good":
            originals.append(i)
    pages = _layout_pages(b, pairs)
    _write_site(b, pairs, pages)
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p["category"]] = counts.get(p["category"], 0) + 1
    manifest = {"settings": settings, "pairs": len(pairs), "categories": dict(sorted(counts.items())),
                "pages": len(pages), "discoverable": sum(1 for r in b.rows if r["discoverable"]),
                "queries": len(b.queries)}
    write_json_atomic(manifest_path, manifest)
    return manifest


def _make_pair(b: _Builder, pid: int, category: str, originals: list[int], pairs: list[dict]) -> dict:
    rng, cfg = b.rng, b.cfg
    p: dict = {"pair_id": pid, "category": category, "dup_of": None, "dup_distance": None,
               "declared_size": False}
    if category in ("exact_dup_of", "near_dup_of") and originals:
        orig = pairs[rng.choice(originals)]
        p.update({k: orig[k] for k in ("drawing", "fmt", "labels")})
        p["dup_of"] = orig["pair_id"]
        if category == "exact_dup_of":
            p["data"], p["phash"], p["dup_distance"] = orig["data"], orig["phash"], 0
        else:
            p["data"], p["phash"] = b.near_copy(orig["data"], orig["phash"])
            p["fmt"] = ("JPEG", "jpg", "image/jpeg")
            p["dup_distance"] = hamming(p["phash"], orig["phash"])
        # Half the copies keep the caption (an exact pair), half say it in other words.
        p["caption"] = orig["caption"] if rng.random() < 0.5 else b.zh_caption(orig["drawing"])
        return p
    if category in ("exact_dup_of", "near_dup_of"):
        category = p["category"] = "good"
    if category in ("too_small", "too_thin"):
        if category == "too_small":
            side = rng.randint(60, 190)
            size = (side, int(side * rng.uniform(0.7, 1.0)))
        else:
            short = rng.randint(205, 240)
            size = (int(short * rng.uniform(3.3, 4.0)), short)
            size = size if rng.random() < 0.5 else size[::-1]
        d = C.random_drawing(rng, size, PHOTO_SHARE)
        p["fmt"] = ("JPEG", "jpg", "image/jpeg")
        p["data"] = C.encode(d.image, "JPEG", cfg.jpeg_quality)
        p["phash"] = phash_int(d.image)
        p["declared_size"] = rng.random() < 0.4
    else:
        d, data, h, fmt = b.distinct_drawing()
        p["fmt"], p["data"], p["phash"] = fmt, data, h
    p["drawing"] = d
    p["labels"] = _labels(d)
    p["caption"] = b.caption_for(category, d)
    return p


def _layout_pages(b: _Builder, pairs: list[dict]) -> list[dict]:
    rng, cfg = b.rng, b.cfg
    groups = {"allowed": [], "private": [], "opted_out": []}
    for p in pairs:
        groups["private" if p["category"] == "robots_disallowed" else
               "opted_out" if p["category"] == "opted_out" else "allowed"].append(p)
    pages: list[dict] = []
    numbers = list(range(1, 10 * len(pairs) + 10))
    rng.shuffle(numbers)
    for kind, members in groups.items():
        rng.shuffle(members)
        i = 0
        while i < len(members):
            k = rng.randint(cfg.pairs_per_page_min, cfg.pairs_per_page_max)
            chunk = members[i:i + k]
            i += k
            n = numbers.pop()
            path = f"/private/a/{n:05d}.html" if kind == "private" else f"/a/{n:05d}.html"
            page = {"path": path, "kind": kind, "pairs": chunk, "base": rng.random() < 0.2,
                    "slow": False, "flaky": False,
                    "opt_out_via": rng.choice(["header", "meta"]) if kind == "opted_out" else None}
            for p in chunk:
                p["page_path"] = path
            pages.append(page)
    allowed = [pg for pg in pages if pg["kind"] == "allowed"]
    # At least one slow and one flaky page whenever their share is above zero.
    for flag, share in (("slow", cfg.share_slow_pages), ("flaky", cfg.share_flaky_pages)):
        n = max(1, round(share * len(allowed))) if share > 0 else 0
        for pg in rng.sample(allowed, k=min(n, len(allowed))):
            pg[flag] = True
    return pages


def _image_path(p: dict) -> str:
    return f"/img/b{p['pair_id'] % 7}/{p['pair_id']:05d}.{p['fmt'][1]}"


def _write_site(b: _Builder, pairs: list[dict], pages: list[dict]) -> None:
    rng, cfg = b.rng, b.cfg
    allowed = [pg for pg in pages if pg["kind"] == "allowed"]
    hidden = [pg for pg in pages if pg["kind"] != "allowed"]
    # Image routes, by category.
    for p in pairs:
        p["image_path"] = _image_path(p)
        cat = p["category"]
        ctype = p["fmt"][2]
        if cat == "broken_link":
            continue  # no route: 404
        if cat == "http_500":
            b.route(p["image_path"], data=b"<h1>500 Internal Server Error</h1>", status=500)
        elif cat == "corrupt":
            data = p["data"]
            p["truncated"] = rng.random() < 0.5
            bad = data[:len(data) // 2] if p["truncated"] else data[:64] + rng.randbytes(len(data) // 3)
            b.route(p["image_path"], data=bad, ctype=ctype)
        elif cat == "not_image":
            body = "<!DOCTYPE html><html><body><h1>图片不存在</h1><p>您访问的图片已被删除。</p></body></html>".encode()
            b.route(p["image_path"], data=body, ctype=rng.choice(["text/html; charset=utf-8", "image/jpeg"]))
        elif cat == "slow":
            b.route(p["image_path"], data=p["data"], ctype=ctype, delay=cfg.slow_seconds)
        elif cat == "opted_out_image":
            b.route(p["image_path"], data=p["data"], ctype=ctype, headers={"X-Robots-Tag": rng.choice(["noai", "noimageai"])})
        else:
            b.route(p["image_path"], data=p["data"], ctype=ctype)
    # Markup of each pair.
    for pg in pages:
        for p in pg["pairs"]:
            m = "alt" if p["declared_size"] else _pick_markup(rng)
            # A srcset's w descriptor declares the size: images meant to fail only when downloaded
            # are embedded without one.
            if m == "srcset" and p["category"] in ("too_small", "too_thin"):
                m = "alt"
            p["markup"] = m
    # Discoverability and search listing. A boilerplate caption ("点击查看大图") on a page is
    # interface text to discovery; a search engine still lists it, and the text rules drop it.
    for p in pairs:
        on_allowed = not p["page_path"].startswith("/private/") and p["category"] != "opted_out"
        p["discoverable"] = on_allowed and not p["declared_size"]
        p["discoverable_on_page"] = p["discoverable"] and p["category"] != "boilerplate"
        p["query"] = _query_for(rng, p["drawing"])
        p["in_search"] = p["discoverable"] and (p["category"] == "boilerplate" or rng.random() < cfg.search_coverage)
    for pg in allowed:
        listed = [p for p in pg["pairs"] if p["discoverable"]]
        if listed and not any(p["in_search"] for p in listed):
            rng.choice(listed)["in_search"] = True
    index: dict[str, list[dict]] = {}
    for p in pairs:
        if not p["in_search"]:
            continue
        entry = {"image_path": p["image_path"], "caption": p["caption"], "page_path": p["page_path"]}
        index.setdefault(p["query"], []).append(entry)
        d = p["drawing"]
        if d.kind == "shape" and rng.random() < 0.2:
            other = {C.SHAPES[d.labels["shape"]]["zh"][0], C.COLOURS[d.labels["colour"]]["zh"][0]} - {p["query"]}
            index.setdefault(other.pop(), []).append(entry)
    for entries in index.values():
        rng.shuffle(entries)
    b.queries = sorted(index) + ["不存在的词语"]
    write_json_atomic(b.root / SEARCH_INDEX_FILE, {"results_per_page": cfg.results_per_page, "index": index})
    write_bytes_atomic(b.root / QUERIES_FILE, "".join(q + "\n" for q in b.queries).encode("utf-8"))
    # Pages: links among allowed pages, and to hidden and broken ones.
    broken = [f"/a/missing-{k}.html" for k in range(cfg.broken_page_links)]
    broken += [f"/a/error-{k}.html" for k in range(cfg.broken_page_links)]
    for path in broken:
        if "error" in path:
            b.route(path, data=b"<h1>500</h1>", status=500)
    extra_links: dict[str, list[str]] = {pg["path"]: [] for pg in allowed}
    for target in [pg["path"] for pg in hidden] + broken:
        extra_links[rng.choice(allowed)["path"]].append(target)
    for pg in pages:
        related = [q["path"] for q in rng.sample(allowed, k=min(3, len(allowed)))]
        links = related + (extra_links.get(pg["path"], []))
        body = _render_page(pg, links, rng).encode("utf-8")
        headers = {}
        if pg["opt_out_via"] == "header":
            headers["X-Robots-Tag"] = rng.choice(["noai", "noindex, nofollow", "noimageai"])
        b.route(pg["path"], data=body, headers=headers, delay=cfg.slow_seconds if pg["slow"] else 0.0,
                fail_first=1 if pg["flaky"] else 0)
        # srcset pairs also have a small rendition at another URL (never the pair's URL).
        for p in pg["pairs"]:
            if p["markup"] == "srcset" and p["category"] not in ("broken_link",):
                small = p["drawing"].image.copy()
                small.thumbnail((160, 160))
                b.route(_small_path(p), data=C.encode(small), ctype="image/jpeg")
    _list_routes(b, [pg["path"] for pg in pages if not pg["path"].startswith("/private/")])
    b.route("/private/index.html", data="".join(
        ["<html><body>"] + [f"<a href=\"{pg['path']}\">内部</a>" for pg in hidden if pg["kind"] == "private"]
        + ["</body></html>"]).encode("utf-8"))
    b.route("/robots.txt", data=ROBOTS_TXT.encode(), ctype="text/plain")
    _chrome_routes(b)
    _write_ground_truth(b, pairs, pages)
    write_json_atomic(b.root / ROUTES_FILE, b.routes)


def _list_routes(b: _Builder, article_paths: list[str]) -> None:
    """The home page links the first page of the article list; list pages link each other with a
    pager (上一页, numbers, 下一页), so most articles sit behind several list pages."""
    n_pages = max(1, -(-len(article_paths) // ARTICLES_PER_LIST_PAGE))
    home = ("<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>演示图库</title></head><body>"
            "<h1>演示图库</h1><p><a href=\"/list/1.html\">全部图集</a></p>"
            "<p><a href=\"/private/index.html\">会员专区</a></p></body></html>")
    b.route("/", data=home.encode("utf-8"))
    for k in range(1, n_pages + 1):
        chunk = article_paths[(k - 1) * ARTICLES_PER_LIST_PAGE:k * ARTICLES_PER_LIST_PAGE]
        items = "".join(f"<li><a href=\"{path}\">图集 {path[3:8]}</a></li>" for path in chunk)
        pager = [f"<a href=\"/list/{k - 1}.html\">上一页</a>"] if k > 1 else []
        # A window of page numbers around this one, as list pages show.
        pager += [f"<a href=\"/list/{j}.html\">{j}</a>" if j != k else f"<span>{j}</span>"
                  for j in range(max(1, k - 2), min(n_pages, k + 2) + 1)]
        pager += [f"<a href=\"/list/{k + 1}.html\">下一页</a>"] if k < n_pages else []
        page = (f"<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>图集列表 第{k}页 - 演示图库"
                f"</title></head><body><div class=\"nav\"><a href=\"/\">首页</a></div><h1>图集列表</h1><ul>{items}</ul>"
                f"<div class=\"pager\">{' '.join(pager)}</div></body></html>")
        b.route(f"/list/{k}.html", data=page.encode("utf-8"))


def _small_path(p: dict) -> str:
    return f"/img/b{p['pair_id'] % 7}/{p['pair_id']:05d}_small.jpg"


def _pick_markup(rng: random.Random) -> str:
    r = rng.random() * sum(w for _, w in MARKUPS)
    for name, w in MARKUPS:
        r -= w
        if r < 0:
            return name
    return MARKUPS[0][0]


def _src(pg: dict, path: str, rng: random.Random) -> str:
    if pg["base"]:
        return path[len("/img/"):]          # relative to <base href="/img/">
    if rng.random() < 0.5 and not pg["path"].startswith("/private/"):
        return ".." + path                   # relative to /a/
    return path


def _render_page(pg: dict, links: list[str], rng: random.Random) -> str:
    head = ["<!DOCTYPE html>", "<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">",
            f"<title>图集 {pg['path'][-10:-5]} - 演示图库</title>"]
    if pg["base"]:
        head.append("<base href=\"/img/\">")
    if pg["opt_out_via"] == "meta":
        head.append(f"<meta name=\"robots\" content=\"{rng.choice(['noai', 'noindex', 'noimageai'])}\">")
    body = ["<div class=\"nav\"><a href=\"/\">首页</a>",
            "<img src=\"/static/logo.png\" width=\"120\" height=\"40\" alt=\"演示图库\"></div>",
            f"<h1>精选图集第{pg['path'][-10:-5]}期</h1><p>本期为大家整理了一组图片，欢迎欣赏。</p>"]
    for p in pg["pairs"]:
        src = _src(pg, p["image_path"], rng)
        cap = p["caption"]
        m = p["markup"]
        w, h = p["drawing"].image.size if p["category"] in ("too_small", "too_thin") else (None, None)
        if m == "alt":
            size = f" width=\"{w}\" height=\"{h}\"" if p["declared_size"] else ""
            body.append(f"<p><img src=\"{src}\"{size} alt=\"{_escape_text(cap, rng)}\"></p>")
        elif m == "title":
            body.append(f"<div><img src=\"{src}\" title=\"{_escape_text(cap, rng)}\"></div>")
        elif m == "figure":
            body.append(f"<figure class=\"photo\"><img src=\"{src}\">\n  <figcaption>{_split_markup(cap, rng)}</figcaption></figure>")
        elif m == "lazy":
            body.append(f"<img class=\"lazy\" src=\"/static/placeholder.gif\" data-src=\"{src}\" alt=\"{_escape_text(cap, rng)}\">")
        elif m == "original":
            body.append(f"<img src=\"/static/loading.gif\" data-original=\"{src}\" alt=\"{_escape_text(cap, rng)}\">")
        elif m == "srcset":
            small = _src(pg, _small_path(p), rng)
            big_w = p["drawing"].image.size[0]
            body.append(f"<img src=\"{small}\" srcset=\"{small} 160w, {src} {big_w}w\" sizes=\"50vw\" "
                        f"alt=\"{_escape_text(cap, rng)}\">")
        elif m == "nearby":
            body.append(f"<div class=\"pic\"><img src=\"{src}\"></div>\n<p class=\"caption\">{html.escape(cap)}</p>")
        elif m == "below":
            body.append(f"<p style=\"text-align: center\"><img src=\"{src}\"></p>\n"
                        f"<p style=\"text-align: center\">{html.escape(cap)}</p>")
        elif m == "br":
            body.append(f"<p align=\"center\"><img src=\"{src}\"><br>{html.escape(cap)}</p>")
    body.append("<div class=\"related\">相关图集：" + " ".join(f"<a href=\"{u}\">阅读更多</a>" for u in links) + "</div>")
    body.append(f"<img src=\"/static/pixel.gif?p={pg['path'][-10:-5]}\" width=\"1\" height=\"1\" alt=\"\">")
    body.append("<a class=\"share\" href=\"/\"><img src=\"/static/share.png\" alt=\"分享\"></a>")
    return "\n".join(head) + "\n</head><body>\n" + "\n".join(body) + "\n</body></html>\n"


def _chrome_routes(b: _Builder) -> None:
    logo = Image.new("RGB", (120, 40), (30, 90, 160))
    b.route("/static/logo.png", data=C.encode(logo, "PNG"), ctype="image/png")
    b.route("/static/share.png", data=C.encode(Image.new("RGB", (32, 32), (200, 60, 60)), "PNG"), ctype="image/png")
    gif = io.BytesIO()
    Image.new("P", (1, 1)).save(gif, "GIF")
    for name in ("pixel.gif", "placeholder.gif", "loading.gif"):
        b.route(f"/static/{name}", data=gif.getvalue(), ctype="image/gif")


def _write_ground_truth(b: _Builder, pairs: list[dict], pages: list[dict]) -> None:
    rows = []
    for p in sorted(pairs, key=lambda p: p["pair_id"]):
        stage, action, reason = EXPECTED[p["category"]]
        if p["declared_size"]:
            stage, action, reason = "discover", "drop", (
                "declared_too_small" if p["category"] == "too_small" else "declared_bad_aspect")
        if p.get("truncated"):
            reason = "truncated"
        w, h = Image.open(io.BytesIO(p["data"])).size
        lab = p["labels"]
        rows.append({"pair_id": p["pair_id"], "category": p["category"], "url": None, "page_url": None,
                     "image_path": p["image_path"], "page_path": p["page_path"], "caption": p["caption"],
                     "kind": lab["kind"], "shape": lab["shape"], "colour": lab["colour"], "count": lab["count"],
                     "object": lab["object"], "dup_of": p["dup_of"], "dup_distance": p["dup_distance"],
                     "phash": f"{p['phash']:016x}", "width": w, "height": h, "format": p["fmt"][0],
                     "markup": p["markup"], "declared_size": p["declared_size"], "in_search": p["in_search"],
                     "query": p["query"], "discoverable": p["discoverable"],
                     "discoverable_on_page": p["discoverable_on_page"], "expected_stage": stage,
                     "expected_action": action, "expected_reason": reason})
    first_page = next(pg["path"] for pg in pages if pg["kind"] == "allowed")
    chrome = [("tracking_pixel", "/static/pixel.gif", "", 1, 1, "GIF"),
              ("site_logo", "/static/logo.png", "演示图库", 120, 40, "PNG"),
              ("site_icon", "/static/share.png", "分享", 32, 32, "PNG")]
    for i, (cat, path, cap, w, h, fmt) in enumerate(chrome):
        stage, action, reason = EXPECTED[cat]
        rows.append({"pair_id": len(pairs) + i, "category": cat, "url": None, "page_url": None, "image_path": path,
                     "page_path": first_page, "caption": cap, "kind": "chrome", "shape": None, "colour": None,
                     "count": None, "object": None, "dup_of": None, "dup_distance": None, "phash": None,
                     "width": w, "height": h, "format": fmt, "markup": "alt", "declared_size": cat != "site_icon",
                     "in_search": False, "query": None, "discoverable": False, "discoverable_on_page": False,
                     "expected_stage": stage, "expected_action": action, "expected_reason": reason})
    b.rows = rows
    table = pa.Table.from_pylist(rows, schema=GROUND_TRUTH_SCHEMA)
    write_parquet_atomic(b.root / GROUND_TRUTH_FILE, table)
