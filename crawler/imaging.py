"""Bytes in, a validated RGB JPEG out: sniff, guard, decode (reduced), orient, convert, resize, encode.

Cheap checks come first, on the header alone: the format is sniffed from the magic bytes (never
the Content-Type), the size is checked against the caller's rules and the pixel limit, and only then
is anything decoded. JPEGs are decoded with libjpeg's DCT scaling (`Image.draft`) to the smallest
scale still at least as large as the output needs, which roughly halves decode and resize time.
Every failure raises `ImageError` with one code from `ERRORS`.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from crawler.config import RESIZE_MODES
from crawler.phash import phash_input

# Error codes, one per failure class.
EMPTY_BODY = "empty_body"
NOT_IMAGE = "not_image"              # bytes of no allowed image format (an HTML error page, ...)
TRUNCATED = "truncated"              # a known format whose data ends early
DECOMPRESSION_BOMB = "decompression_bomb"
DECODE_ERROR = "decode_error"        # a known format that fails to decode for another reason
ERRORS = (EMPTY_BODY, NOT_IMAGE, TRUNCATED, DECOMPRESSION_BOMB, DECODE_ERROR)


# Magic numbers of the formats we accept, checked in order: every raster format browsers show
# that Pillow decodes in its own, fuzzed code (ICO/CUR favicons and icons, QOI) or through libavif and
# OpenJPEG (AVIF, JPEG 2000). Never formats that run external programs (EPS: Ghostscript) or that
# are layered documents (PSD), whatever their bytes claim.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"\x00\x00\x02\x00", 0, "CUR"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG2000"),   # JP2 container
    (b"\xff\x4f\xff\x51", 0, "JPEG2000"),                  # bare J2K codestream
    (b"qoif", 0, "QOI"),
)
# ISO base media files (AVIF, HEIC, MP4) share the `ftyp` box; its brands tell them apart.
_FTYP = b"ftyp"
_FTYP_OFFSET = 4
_AVIF_BRANDS = (b"avif", b"avis")
# Pillow plugins allowed to open a body: only the sniffed formats (never EPS, PSD, ...). MPO is how
# Pillow opens some multi-picture JPEGs.
_PIL_FORMATS = {"JPEG": ("JPEG", "MPO"), "PNG": ("PNG",), "GIF": ("GIF",), "WEBP": ("WEBP",),
                "BMP": ("BMP",), "TIFF": ("TIFF",), "ICO": ("ICO",), "CUR": ("CUR",),
                "JPEG2000": ("JPEG2000",), "QOI": ("QOI",), "AVIF": ("AVIF",)}

_EXIF_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {5, 6, 7, 8}
_FILTERS = {
    "nearest": Image.Resampling.NEAREST, "box": Image.Resampling.BOX, "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING, "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_MAX_8BIT = 255
_SIXTEEN_TO_EIGHT = 257  # 65535 / 255

# We enforce our own pixel limit before decoding; Pillow's warning would only repeat it.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


class ImageError(Exception):
    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message or code


@dataclass
class ProcessedImage:
    jpeg: bytes
    width: int                 # of the stored image
    height: int
    original_width: int        # as displayed, i.e. after EXIF orientation
    original_height: int
    format: str                # sniffed: JPEG, PNG, GIF, WEBP, BMP, TIFF, ICO, AVIF, ...
    # 32x32 grayscale input of the pHash (crawler.phash.phash_batch), taken from the image scaled to the
    # output size before padding/cropping: its hash equals imagehash.phash of that image.
    phash_block: np.ndarray


def _is_avif(data: bytes) -> bool:
    """An ISO-BMFF `ftyp` box naming AVIF as its major or a compatible brand."""
    if data[_FTYP_OFFSET:_FTYP_OFFSET + len(_FTYP)] != _FTYP:
        return False
    box_size = int.from_bytes(data[:_FTYP_OFFSET], "big")
    brands = data[_FTYP_OFFSET + len(_FTYP):min(box_size, len(data))]
    return any(brands[i:i + 4] in _AVIF_BRANDS for i in range(0, len(brands) - 3, 4))


def sniff_format(data: bytes) -> str | None:
    if _is_avif(data):
        return "AVIF"
    for magic, offset, name in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            if name == "WEBP" and data[:4] != b"RIFF":
                continue
            return name
    return None


def _is_truncation(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, EOFError) or "truncated" in text or "premature end" in text


@dataclass
class ImageProcessor:
    """Turns one body into a `ProcessedImage`; thread-safe (no shared mutable state)."""

    image_size: int = 224
    resize_mode: str = "border"
    jpeg_quality: int = 95
    max_image_pixels: int = 89_478_485
    resize_only_if_bigger: bool = False
    downscale_filter: str = "box"
    upscale_filter: str = "lanczos"
    # Decode JPEGs at least this many times larger than the output (1.0: just large enough).
    decode_oversample: float = 1.0
    border_color: tuple[int, int, int] = (255, 255, 255)
    # Called with the original (width, height); returns a rule's reason code to reject before decoding.
    size_check: Callable[[int, int], str | None] | None = None

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}")
        for name in (self.downscale_filter, self.upscale_filter):
            if name not in _FILTERS:
                raise ValueError(f"unknown resize filter {name!r} (known: {', '.join(_FILTERS)})")
        if self.image_size <= 0:
            raise ValueError("image_size must be positive")
        self.border_color = tuple(int(c) for c in self.border_color)

    # -- steps -------------------------------------------------------------------------------
    def open(self, data: bytes) -> tuple[Image.Image, str]:
        if not data:
            raise ImageError(EMPTY_BODY, "zero-byte body")
        fmt = sniff_format(data)
        if fmt is None:
            head = data[:16].hex()
            raise ImageError(NOT_IMAGE, f"no image signature (first bytes {head})")
        try:
            return Image.open(io.BytesIO(data), formats=_PIL_FORMATS[fmt]), fmt
        except Image.DecompressionBombError as exc:
            raise ImageError(DECOMPRESSION_BOMB, str(exc)) from exc
        except UnidentifiedImageError as exc:
            # The magic matched but the header did not parse: cut short or corrupt.
            code = TRUNCATED if len(data) < 1024 else DECODE_ERROR
            raise ImageError(code, f"{fmt} header unreadable ({len(data)} bytes)") from exc
        except Exception as exc:  # noqa: BLE001 - any parser failure is this body's error
            raise ImageError(TRUNCATED if _is_truncation(exc) else DECODE_ERROR, f"{fmt}: {exc}") from exc

    def target_size(self, width: int, height: int) -> tuple[int, int] | None:
        """Size the image is scaled to before cropping or padding, or None to keep it as it is."""
        mode = self.resize_mode
        if mode == "no":
            return None
        side = min(width, height) if mode in ("keep_ratio", "center_crop") else max(width, height)
        scale = self.image_size / side
        if self.resize_only_if_bigger and scale >= 1:
            return None
        return max(1, round(width * scale)), max(1, round(height * scale))

    def decode(self, im: Image.Image, orientation: int) -> Image.Image:
        target = self.target_size(*_displayed(im.size, orientation))
        if target is not None and im.format in ("JPEG", "MPO"):
            need = [math.ceil(v * self.decode_oversample) for v in target]
            if orientation in _SWAPS_AXES:
                need.reverse()
            im.draft(None, tuple(need))
        try:
            im.load()
        except Exception as exc:  # noqa: BLE001 - classify every decoder failure
            raise ImageError(TRUNCATED if _is_truncation(exc) else DECODE_ERROR, str(exc)) from exc
        return im

    @staticmethod
    def to_rgb(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
        mode = im.mode
        if mode == "RGB" and "transparency" not in im.info:
            return im
        if mode in _SIXTEEN_BIT_MODES or mode == "I":
            arr = np.asarray(im)
            if mode in _SIXTEEN_BIT_MODES or arr.max(initial=0) > _MAX_8BIT:
                arr = arr.astype(np.uint32) // _SIXTEEN_TO_EIGHT
            return Image.fromarray(np.clip(arr, 0, _MAX_8BIT).astype(np.uint8), "L").convert("RGB")
        if mode == "F":
            arr = np.nan_to_num(np.asarray(im), nan=0.0)
            if arr.max(initial=0.0) <= 1.0:  # float images are usually 0..1
                arr = arr * _MAX_8BIT
            return Image.fromarray(np.clip(arr, 0, _MAX_8BIT).astype(np.uint8), "L").convert("RGB")
        if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
            rgba = im.convert("RGBA")
            flat = Image.new("RGB", rgba.size, background)
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return im.convert("RGB")

    def scale(self, im: Image.Image) -> Image.Image:
        """Scaled to the mode's target size, before any cropping or padding."""
        target = self.target_size(*im.size)
        if target is None or target == im.size:
            return im
        upscale = target[0] > im.width or target[1] > im.height
        return im.resize(target, _FILTERS[self.upscale_filter if upscale else self.downscale_filter])

    def frame(self, im: Image.Image) -> Image.Image:
        """The scaled image cropped (center_crop) or padded (border) to a square, as the mode says."""
        size = self.image_size
        if self.resize_mode == "center_crop" and (im.width > size or im.height > size):
            left, top = (im.width - size) // 2, (im.height - size) // 2
            return im.crop((left, top, left + min(size, im.width), top + min(size, im.height)))
        if self.resize_mode == "border" and (im.width, im.height) != (size, size):
            canvas = Image.new("RGB", (max(size, im.width), max(size, im.height)), self.border_color)
            canvas.paste(im, ((canvas.width - im.width) // 2, (canvas.height - im.height) // 2))
            return canvas
        return im

    def resize(self, im: Image.Image) -> Image.Image:
        return self.frame(self.scale(im))

    def encode(self, im: Image.Image) -> bytes:
        out = io.BytesIO()
        im.save(out, "JPEG", quality=self.jpeg_quality)
        return out.getvalue()

    # -- the whole path ----------------------------------------------------------------------
    def decode_rgb(self, data: bytes) -> tuple[Image.Image, str, tuple[int, int]]:
        """Checked, decoded (reduced for JPEG), oriented RGB image, its format and displayed size."""
        im, fmt = self.open(data)
        width, height = im.size
        if width * height > self.max_image_pixels:
            raise ImageError(DECOMPRESSION_BOMB, f"{width}x{height} exceeds {self.max_image_pixels} pixels")
        if self.size_check is not None:
            reason = self.size_check(width, height)
            if reason:
                raise ImageError(reason, f"{width}x{height}")
        # JPEG carries EXIF in its header, needed before decoding to aim the reduced decode; other
        # formats may keep it after the pixels (PNG's eXIf), so read it once decoded.
        is_jpeg = fmt == "JPEG"
        orientation = _orientation(im) if is_jpeg else 1
        im = self.decode(im, orientation)
        if not is_jpeg:
            orientation = _orientation(im)
        try:
            rgb = self.to_rgb(im, self.border_color)
            if orientation in _TRANSPOSE:
                rgb = rgb.transpose(_TRANSPOSE[orientation])
        except Exception as exc:  # noqa: BLE001 - e.g. a corrupt palette: this body's error
            raise ImageError(DECODE_ERROR, f"{type(exc).__name__}: {exc}") from exc
        return rgb, fmt, _displayed((width, height), orientation)

    def process(self, data: bytes) -> ProcessedImage:
        rgb, fmt, (ow, oh) = self.decode_rgb(data)
        try:
            scaled = self.scale(rgb)
            # Hashed at output scale (before padding or cropping): the stored picture's content, and
            # a third of the cost of hashing the larger decoded image.
            block = phash_input(scaled)
            out = self.frame(scaled)
            jpeg = self.encode(out)
        except Exception as exc:  # noqa: BLE001 - this body's error, never the run's
            raise ImageError(DECODE_ERROR, f"{type(exc).__name__}: {exc}") from exc
        return ProcessedImage(jpeg=jpeg, width=out.width, height=out.height, original_width=ow,
                              original_height=oh, format=fmt, phash_block=block)


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not cost the image
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _displayed(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in _SWAPS_AXES else size
