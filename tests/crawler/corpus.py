"""URL lists over a LoopbackServer: good images and one of every bad kind, with the expected outcome."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from PIL import Image

from tests.crawler import images
from tests.crawler.servers import LoopbackServer

# (route or image name, expected error code) for every failure class ingest must tell apart.
BAD_KINDS: list[tuple[str, str]] = [
    ("/status/404", "http_404"),
    ("/status/500", "http_500"),
    ("/reset", "connection_reset"),
    ("/loop/A", "redirect_loop"),
    ("/redirect/9/good0.jpg", "too_many_redirects"),
    ("/endless", "too_large"),
    ("/robots/noai/good0.jpg", "robots_opt_out"),
    ("/img/html.jpg", "not_image"),
    ("/img/truncated.jpg", "truncated"),
    ("/img/empty.jpg", "empty_body"),
    ("/img/bomb.png", "decompression_bomb"),
    ("/img/small.jpg", "too_small"),
    ("/img/wide.jpg", "aspect_ratio"),
]
GOOD_COUNT = 24


def populate(srv: LoopbackServer) -> dict[str, bytes]:
    """Register the good and bad bodies; returns the good ones by name."""
    good = {}
    for i in range(GOOD_COUNT):
        w, h = 260 + (i * 53) % 700, 230 + (i * 37) % 500
        if i % 6 == 1:
            body = images.encode(images.photo(w, h, seed=i).convert("RGBA"), "PNG")
        elif i % 6 == 2:
            body = images.jpeg_with_orientation(images.photo(w, h, seed=i), 6)
        else:
            body = images.jpeg(w, h, seed=i)
        good[f"good{i}.jpg"] = body
        srv.add(f"good{i}.jpg", body)
    srv.add("html.jpg", images.HTML_ERROR_PAGE, "image/jpeg")
    whole = images.jpeg(640, 480, seed=99)
    srv.add("truncated.jpg", whole[: len(whole) // 2])
    srv.add("empty.jpg", b"")
    srv.add("bomb.png", images.png_bomb(), "image/png")
    srv.add("small.jpg", images.jpeg(200, 320, seed=5))
    srv.add("wide.jpg", images.jpeg(1000, 300, seed=6))
    return good


def write_wukong_csv(path: Path, srv: LoopbackServer, rows: int, bad_every: int = 10,
                     tag: str = "") -> dict[str, str | None]:
    """A Wukong-format CSV (header url,caption); returns url -> expected error (None: good)."""
    expected: dict[str, str | None] = {}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "caption"])
        for i in range(rows):
            if i % bad_every == bad_every - 1:
                route, code = BAD_KINDS[(i // bad_every) % len(BAD_KINDS)]
                url = srv.url(f"{route}?row={i}{tag}")
            else:
                url, code = srv.url(f"/img/good{i % GOOD_COUNT}.jpg?row={i}{tag}"), None
            expected[url] = code
            w.writerow([url, f"第{i}张图片, 描述 \"{tag}\""])
    return expected


def sha256_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def decode_size(jpeg: bytes) -> tuple[int, int]:
    import io
    return Image.open(io.BytesIO(jpeg)).size
