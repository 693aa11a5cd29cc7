"""Decoding and validation on real encoded images: formats, modes, orientation, resizing, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from crawler import imaging
from crawler.imaging import ImageError, ImageProcessor, sniff_format
from filters.config import ImageRulesConfig
from filters.image_rules import check_image_size
from tests.crawler import images


def _decode(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(np.int32)


def _error(proc: ImageProcessor, data: bytes) -> str:
    with pytest.raises(ImageError) as info:
        proc.process(data)
    return info.value.code


def test_sniff_from_bytes_not_from_name():
    im = images.photo(64, 48)
    assert sniff_format(images.encode(im, "JPEG")) == "JPEG"
    assert sniff_format(images.encode(im, "PNG")) == "PNG"
    assert sniff_format(images.encode(im, "GIF")) == "GIF"
    assert sniff_format(images.encode(im, "WEBP")) == "WEBP"
    assert sniff_format(images.encode(im, "BMP")) == "BMP"
    assert sniff_format(images.encode(im, "TIFF")) == "TIFF"
    assert sniff_format(images.HTML_ERROR_PAGE) is None
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff_format(b"") is None


@pytest.mark.parametrize("mode,size", [
    ("border", (224, 224)), ("center_crop", (224, 224)), ("keep_ratio", (299, 224)),
    ("keep_ratio_largest", (224, 168)), ("no", (1600, 1200)),
])
def test_resize_modes_sizes(mode, size):
    data = images.jpeg(1600, 1200, seed=1)
    out = ImageProcessor(resize_mode=mode).process(data)
    assert (out.width, out.height) == size
    assert (out.original_width, out.original_height) == (1600, 1200)
    assert out.format == "JPEG"
    assert Image.open(io.BytesIO(out.jpeg)).size == size


def test_border_pads_with_border_color_and_keeps_content():
    src = images.photo(900, 300, seed=2)
    out = ImageProcessor(resize_mode="border", image_size=240).process(images.encode(src, "PNG"))
    arr = _decode(out.jpeg)
    assert arr.shape == (240, 240, 3)
    # 900x300 -> 240x80 centred: 80 rows of content, white above and below.
    assert np.abs(arr[:70] - 255).mean() < 2 and np.abs(arr[-70:] - 255).mean() < 2
    ref = np.asarray(src.resize((240, 80), Image.Resampling.BOX)).astype(np.int32)
    assert np.abs(arr[80:160] - ref).mean() < 4


def test_reduced_decoding_matches_full_decoding():
    data = images.jpeg(1600, 1200, seed=3, quality=92)
    out = ImageProcessor(resize_mode="keep_ratio_largest", image_size=224).process(data)
    full = Image.open(io.BytesIO(data)).convert("RGB").resize((224, 168), Image.Resampling.BOX)
    assert np.abs(_decode(out.jpeg) - np.asarray(full).astype(np.int32)).mean() < 3


def test_small_images_are_upscaled_like_img2dataset_unless_asked_not_to():
    data = images.jpeg(210, 205, seed=4)
    assert ImageProcessor(resize_mode="keep_ratio").process(data).height == 224
    kept = ImageProcessor(resize_mode="keep_ratio", resize_only_if_bigger=True).process(data)
    assert (kept.width, kept.height) == (210, 205)


def _quadrants() -> Image.Image:
    """Four distinct colours, so every flip and rotation is told apart."""
    arr = np.zeros((300, 400, 3), np.uint8)
    arr[:150, :200] = (255, 0, 0)
    arr[:150, 200:] = (0, 255, 0)
    arr[150:, :200] = (0, 0, 255)
    arr[150:, 200:] = (255, 255, 0)
    return Image.fromarray(arr)


# The stored pixels for EXIF orientation o are the displayed image under the inverse transform.
_STORE = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
          7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["no", "keep_ratio_largest"])
def test_exif_orientation_is_applied(orientation, mode):
    shown = _quadrants()
    stored = shown if _STORE[orientation] is None else shown.transpose(_STORE[orientation])
    out = ImageProcessor(resize_mode=mode, image_size=200).process(images.jpeg_with_orientation(stored, orientation))
    assert (out.original_width, out.original_height) == (400, 300)
    arr = _decode(out.jpeg)
    h, w = arr.shape[:2]
    assert w > h
    for (y, x), colour in {(0, 0): (255, 0, 0), (0, 1): (0, 255, 0), (1, 0): (0, 0, 255), (1, 1): (255, 255, 0)}.items():
        cell = arr[y * h // 2 + h // 8: (y + 1) * h // 2 - h // 8, x * w // 2 + w // 8: (x + 1) * w // 2 - w // 8]
        assert np.abs(cell.mean(axis=(0, 1)) - colour).max() < 20, (orientation, y, x)


def test_cmyk_jpeg_comes_out_as_rgb():
    src = images.photo(400, 300, seed=5)
    data = images.encode(src.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = ImageProcessor(resize_mode="no").process(data)
    assert np.abs(_decode(out.jpeg) - np.asarray(src).astype(np.int32)).mean() < 6


def test_palette_with_transparency_is_flattened_on_white():
    arr = np.zeros((300, 400), np.uint8)
    arr[:, 200:] = 1
    pal = Image.fromarray(arr, "P")
    pal.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    data = images.encode(pal, "PNG", transparency=0)
    out = _decode(ImageProcessor(resize_mode="no").process(data).jpeg)
    assert np.abs(out[:, :190].mean(axis=(0, 1)) - 255).max() < 3          # transparent -> white
    assert np.abs(out[:, 210:].mean(axis=(0, 1)) - (255, 0, 0)).max() < 5  # opaque red stays


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_white(mode):
    base = images.photo(400, 300, seed=6).convert(mode[:-1] if mode == "LA" else "RGB")
    alpha = np.full((300, 400), 255, np.uint8)
    alpha[:, :200] = 0
    alpha[:, 200:300] = 128
    im = base.copy()
    im.putalpha(Image.fromarray(alpha))
    out = _decode(ImageProcessor(resize_mode="no").process(images.encode(im, "PNG")).jpeg)
    ref = np.asarray(base.convert("RGB")).astype(np.int32)
    assert np.abs(out[:, :190] - 255).mean() < 3
    assert np.abs(out[:, 310:] - ref[:, 310:]).mean() < 5
    half = (ref[:, 210:290] * 128 + 255 * 127) / 255
    assert np.abs(out[:, 210:290] - half).mean() < 5


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 400).astype(np.uint16), (300, 1))
    data = images.encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = _decode(ImageProcessor(resize_mode="no").process(data).jpeg)
    expected = ramp.astype(np.int32) // 257
    assert np.abs(out[..., 0] - expected).mean() < 3
    assert np.abs(out[..., 0] - out[..., 2]).max() < 4


def test_grayscale_and_other_formats_become_rgb():
    src = images.photo(320, 240, seed=7)
    for fmt, im in [("JPEG", src.convert("L")), ("GIF", src), ("WEBP", src), ("BMP", src), ("TIFF", src)]:
        out = ImageProcessor(resize_mode="no").process(images.encode(im, fmt))
        decoded = Image.open(io.BytesIO(out.jpeg))
        assert decoded.mode == "RGB" and decoded.size == (320, 240), fmt
        assert out.format == fmt
        tolerance = 25 if fmt == "GIF" else 8  # GIF quantises to 256 colours
        assert np.abs(_decode(out.jpeg) - np.asarray(im.convert("RGB")).astype(np.int32)).mean() < tolerance, fmt


def test_icons_and_other_web_formats_decode_instead_of_not_image():
    """Favicons (ICO), AVIF, JPEG 2000 and QOI: formats browsers show and Pillow decodes safely."""
    src = images.photo(300, 280, seed=9)
    bodies = {"ICO": images.encode(src, "ICO", sizes=[(256, 256)]), "AVIF": images.encode(src, "AVIF", quality=90),
              "JPEG2000": images.encode(src, "JPEG2000"), "QOI": images.encode(src, "QOI")}
    for fmt, data in bodies.items():
        assert sniff_format(data) == fmt
        out = ImageProcessor(resize_mode="no").process(data)
        assert out.format == fmt
        decoded = _decode(out.jpeg)
        expected = np.asarray(src.resize((out.width, out.height)).convert("RGB")).astype(np.int32)
        assert decoded.shape == expected.shape, fmt
        assert np.abs(decoded - expected).mean() < 12, fmt
    # An icon is still subject to the size rules, decided on its header.
    rules = ImageRulesConfig()
    small_icon = images.encode(src, "ICO", sizes=[(32, 32)])
    assert _error(ImageProcessor(size_check=lambda w, h: check_image_size(w, h, rules)), small_icon) == "too_small"


def test_formats_that_run_programs_or_are_not_pictures_stay_refused():
    proc = ImageProcessor()
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 300 300\nshowpage\n"
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    psd = b"8BPS\x00\x01" + bytes(64)
    for body in (eps, heic, psd):
        assert sniff_format(body) is None
        assert _error(proc, body) == imaging.NOT_IMAGE
    # AVIF named only among the compatible brands is still AVIF.
    assert sniff_format(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf") == "AVIF"


def test_each_bad_body_gets_its_own_code():
    proc = ImageProcessor()
    good = images.jpeg(800, 600, seed=8)
    png = images.encode(images.photo(800, 600, seed=8), "PNG")
    assert _error(proc, b"") == imaging.EMPTY_BODY
    assert _error(proc, images.HTML_ERROR_PAGE) == imaging.NOT_IMAGE
    assert _error(proc, b"GIF89a" + b"\x00" * 5) == imaging.TRUNCATED
    assert _error(proc, good[: len(good) * 2 // 3]) == imaging.TRUNCATED
    assert _error(proc, good[:400]) == imaging.TRUNCATED
    assert _error(proc, png[: len(png) // 2]) == imaging.TRUNCATED
    assert _error(proc, images.png_bomb()) == imaging.DECOMPRESSION_BOMB
    assert _error(ImageProcessor(max_image_pixels=500 * 500), good) == imaging.DECOMPRESSION_BOMB
    corrupt = bytearray(png)
    corrupt[100:2000] = bytes(1900)  # zeroed compressed data: a PNG that is not truncated but broken
    assert _error(proc, bytes(corrupt)) == imaging.DECODE_ERROR
    assert len({imaging.EMPTY_BODY, imaging.NOT_IMAGE, imaging.TRUNCATED, imaging.DECOMPRESSION_BOMB,
                imaging.DECODE_ERROR}) == len(imaging.ERRORS)


def test_size_rules_are_applied_before_decoding():
    rules = ImageRulesConfig()
    proc = ImageProcessor(size_check=lambda w, h: check_image_size(w, h, rules))
    assert _error(proc, images.jpeg(200, 400)) == "too_small"
    assert _error(proc, images.jpeg(901, 300)) == "aspect_ratio"
    assert proc.process(images.jpeg(900, 300)).original_width == 900
    assert proc.process(images.jpeg(201, 201)).width == 224
    # Rejected on the header alone: a body cut after the header still reports the rule.
    assert _error(proc, images.jpeg(150, 150)[:700]) == "too_small"


def test_image_rules_boundaries():
    rules = ImageRulesConfig()
    assert check_image_size(201, 201, rules) is None
    assert check_image_size(200, 201, rules) == "too_small"
    assert check_image_size(201, 200, rules) == "too_small"
    assert check_image_size(603, 201, rules) is None       # exactly 3:1
    assert check_image_size(604, 201, rules) == "aspect_ratio"
    assert check_image_size(201, 604, rules) == "aspect_ratio"
    assert check_image_size(0, 300, rules) == "invalid_size"
    capped = ImageRulesConfig(max_pixels=400 * 400)
    assert check_image_size(400, 400, capped) is None
    assert check_image_size(401, 400, capped) == "too_many_pixels"
    assert check_image_size(250, 250, ImageRulesConfig(min_side=300)) == "too_small"
    assert check_image_size(500, 201, ImageRulesConfig(max_aspect_ratio=2.0)) == "aspect_ratio"


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError):
        ImageProcessor(resize_mode="stretch")
    with pytest.raises(ValueError):
        ImageProcessor(downscale_filter="cubic-ish")
