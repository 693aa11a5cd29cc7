"""Generated test images: photographic crops of scikit-image's sample photos, and bad bodies."""

from __future__ import annotations

import io
import struct
import zlib
from functools import lru_cache

import numpy as np
from PIL import Image


@lru_cache(maxsize=1)
def _sources() -> tuple[np.ndarray, ...]:
    from skimage import data
    return (data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry())


def photo(width: int, height: int, seed: int = 0, noise: int = 6) -> Image.Image:
    """A realistic RGB image: a random crop of a sample photo, scaled, with a little noise."""
    rng = np.random.default_rng(seed)
    src = _sources()[seed % len(_sources())]
    h, w = src.shape[:2]
    cw, ch = int(rng.integers(w // 2, w + 1)), int(rng.integers(h // 2, h + 1))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    im = Image.fromarray(src[y:y + ch, x:x + cw]).resize((width, height), Image.Resampling.BILINEAR)
    if noise:
        arr = np.asarray(im).astype(np.int16) + rng.integers(-noise, noise + 1, size=(height, width, 3))
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return im


def encode(im: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def jpeg(width: int, height: int, seed: int = 0, quality: int = 90) -> bytes:
    return encode(photo(width, height, seed), "JPEG", quality=quality)


def jpeg_with_orientation(im: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(im, "JPEG", quality=95, exif=exif.tobytes())


def png_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A valid PNG header declaring a huge image, with almost no data: a decompression bomb."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


HTML_ERROR_PAGE = (b"<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
                   b"<body><h1>Not Found</h1><p>The image you requested is gone.</p></body></html>")
