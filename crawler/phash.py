"""64-bit DCT perceptual hash, bit-for-bit equal to `imagehash.phash` (hash_size 8, factor 4).

Split in two so the DCT runs batched: `phash_input` does the per-image part exactly as imagehash does
(grayscale, Lanczos to 32x32); `phash_batch` computes the 8x8 low-frequency DCT block of a whole stack
at once as two small matrix products, and the median over each. imagehash takes those from
scipy.fftpack's full DCT, whose rounding differs from a matrix product's by about 1e-8 at most; a
bit can only differ where a coefficient lies that close to its median, as on flat images. Rows
with any coefficient within `_TIE_MARGIN` of the median are therefore recomputed with scipy.fftpack
itself, so every bit agrees, ties included, and processes that never meet one skip scipy's import.

The Lanczos step reproduces Pillow's 8-bit resampler (libImaging/Resample.c) exactly rather than
calling it: Pillow spends most of its time on the 42-tap windows of a 7x reduction, one pixel at a
time, while here each pass is two matrix products (one per band of the weight matrix, see `_Bands`).
Pillow's weights are fixed-point integers (22 fractional bits) and every product of a pixel and a
weight, and every sum of them, stays an integer below 2**53, so float64 products are exact whatever
order BLAS adds them in; rounding, clipping and the pass order then follow Pillow's code. The weights depend only on the two sizes and are cached.
The products are small: Ray workers run them on one BLAS thread (Ray sets OMP_NUM_THREADS=1), and
other callers get the same cost with OPENBLAS_NUM_THREADS=1.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from PIL import Image

HASH_SIZE = 8
HIGHFREQ_FACTOR = 4
INPUT_SIZE = HASH_SIZE * HIGHFREQ_FACTOR

# Pillow's fixed-point resampling (Resample.c): 32 bits minus 8 for the pixel, minus 2 of headroom.
_PRECISION_BITS = 32 - 8 - 2
_ONE = 1 << _PRECISION_BITS
_LANCZOS_SUPPORT = 3.0
# Memory for cached weight matrices. Hashing at output scale meets at most `image_size` input sizes
# (13 MB at 224 px); resize mode "no" meets any size, and the cache then starts over when full.
_WEIGHT_CACHE_BYTES = 64 << 20
_weights: dict[tuple[int, int], "_Bands"] = {}
_weights_lock = threading.Lock()  # decode threads hash large images too
# Pixels converted to float64 at a time (8 MB): resize mode "no" hashes images of any size.
_CHUNK_ELEMENTS = 1 << 20
# Row blocks per weight matrix: 2 halves the multiplications at 224 -> 32; more blocks cost more calls
# than they save.
_BANDS = 2


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    if -_LANCZOS_SUPPORT <= x < _LANCZOS_SUPPORT:
        return _sinc(x) * _sinc(x / _LANCZOS_SUPPORT)
    return 0.0


class _Bands:
    """A weight matrix as `_BANDS` row blocks, each with only the input columns it touches.

    Lanczos weights are banded (each output reads about 6 x scale inputs), so products with the
    blocks skip most of the zeros a dense product would multiply: half the work at 224 -> 32.
    Sums stay exact in any order (see the module docstring), so the split changes no bit.
    """

    def __init__(self, weights: np.ndarray):
        self.out_size = weights.shape[0]
        self.blocks: list[tuple[int, int, int, int, np.ndarray]] = []
        step = -(-self.out_size // _BANDS)
        for o0 in range(0, self.out_size, step):
            rows = weights[o0:o0 + step]
            touched = np.flatnonzero(rows.any(axis=0))
            i0, i1 = (int(touched[0]), int(touched[-1]) + 1) if len(touched) else (0, 1)
            block = np.ascontiguousarray(rows[:, i0:i1])
            block.setflags(write=False)
            self.blocks.append((o0, o0 + len(rows), i0, i1, block))
        self.nbytes = sum(b[-1].nbytes for b in self.blocks)

    def right_multiply(self, x: np.ndarray) -> np.ndarray:
        """x @ W.T for x of shape (n, in_size): the horizontal pass."""
        out = np.empty((x.shape[0], self.out_size))
        for o0, o1, i0, i1, block in self.blocks:
            np.matmul(x[:, i0:i1], block.T, out=out[:, o0:o1])
        return out

    def left_multiply(self, x: np.ndarray) -> np.ndarray:
        """W @ x for x of shape (in_size, n): the vertical pass."""
        out = np.empty((self.out_size, x.shape[1]))
        for o0, o1, i0, i1, block in self.blocks:
            np.matmul(block, x[i0:i1], out=out[o0:o1])
        return out


def _lanczos_weights(in_size: int, out_size: int) -> _Bands:
    """The cached `_pillow_lanczos_weights`, as bands."""
    key = (in_size, out_size)
    found = _weights.get(key)
    if found is not None:
        return found
    weights = _Bands(_pillow_lanczos_weights(in_size, out_size))
    with _weights_lock:
        if sum(w.nbytes for w in _weights.values()) + weights.nbytes > _WEIGHT_CACHE_BYTES:
            _weights.clear()
        _weights[key] = weights
    return weights


def weight_tables() -> int:
    """How many weight matrices are cached (the benchmark reports it)."""
    return len(_weights)


def clear_weight_tables() -> None:
    with _weights_lock:
        _weights.clear()


def _pillow_lanczos_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) matrix of Pillow's integer Lanczos weights, as float64.

    Same double arithmetic in the same order as Pillow's precompute_coeffs and
    normalize_coeffs_8bpc, so every weight is the integer Pillow uses.
    """
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = _LANCZOS_SUPPORT * filterscale
    inv_filterscale = 1.0 / filterscale
    weights = np.zeros((out_size, in_size))
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        ks = [_lanczos((x + xmin - center + 0.5) * inv_filterscale) for x in range(xmax)]
        ww = 0.0
        for k in ks:
            ww += k
        for x, k in enumerate(ks):
            k = k / ww if ww != 0.0 else k
            weights[xx, xmin + x] = int(-0.5 + k * _ONE) if k < 0 else int(0.5 + k * _ONE)
    weights.setflags(write=False)
    return weights


def _to_8bit(acc: np.ndarray) -> np.ndarray:
    """Pillow's clip8 (add half, shift right, clamp to 0..255), in place on float64 sums.

    `acc` holds exact integers, so scaling by 2**-22 and adding 0.5 are exact: the same value as
    Pillow's (acc + 2**21) >> 22. Element-wise ufuncs with `out=`: np.clip's dispatch would cost more
    than the arithmetic on these small arrays.
    """
    acc *= 1.0 / _ONE
    acc += 0.5
    np.floor(acc, out=acc)
    np.minimum(acc, 255.0, out=acc)
    return np.maximum(acc, 0.0, out=acc)


def _horizontal(pixels: np.ndarray, width: int) -> np.ndarray:
    bands = _lanczos_weights(pixels.shape[1], width)
    if pixels.size <= _CHUNK_ELEMENTS:  # the usual case: one product, no chunk list
        return _to_8bit(bands.right_multiply(pixels.astype(np.float64, copy=False)))
    rows = max(1, _CHUNK_ELEMENTS // pixels.shape[1])  # float64 copies stay small on huge images
    return np.concatenate([_to_8bit(bands.right_multiply(pixels[i:i + rows].astype(np.float64)))
                           for i in range(0, pixels.shape[0], rows)], axis=0)


def _vertical(pixels: np.ndarray, height: int) -> np.ndarray:
    bands = _lanczos_weights(pixels.shape[0], height)
    if pixels.size <= _CHUNK_ELEMENTS:
        return _to_8bit(bands.left_multiply(pixels.astype(np.float64, copy=False)))
    cols = max(1, _CHUNK_ELEMENTS // pixels.shape[0])
    return np.concatenate([_to_8bit(bands.left_multiply(pixels[:, j:j + cols].astype(np.float64)))
                           for j in range(0, pixels.shape[1], cols)], axis=1)


def lanczos_gray(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W) uint8 -> (height, width) uint8, equal to Pillow's `resize((width, height), LANCZOS)`
    of the same mode-L image."""
    in_h, in_w = pixels.shape
    out = pixels
    # Pillow runs the vertical pass first when the height shrinks over twice as much as the width.
    horizontal_first = not (in_h - height > 0 and in_h - height > (in_w - width) * 2)
    for horizontal in ((True, False) if horizontal_first else (False, True)):
        if horizontal and width != in_w:
            out = _horizontal(out, width)
        elif not horizontal and height != in_h:
            out = _vertical(out, height)
    return out.astype(np.uint8)


def phash_input(image: Image.Image) -> np.ndarray:
    """The 32x32 uint8 grayscale block imagehash.phash hashes."""
    return lanczos_gray(np.asarray(image.convert("L")), INPUT_SIZE, INPUT_SIZE)


def _dct_rows(n_out: int, n_in: int) -> np.ndarray:
    """The first `n_out` rows of scipy.fftpack's unnormalised DCT-II matrix: 2 cos(pi k (2n+1) / 2N)."""
    k = np.arange(n_out, dtype=np.float64)[:, None]
    n = np.arange(n_in, dtype=np.float64)[None, :]
    return 2.0 * np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * n_in))


_DCT_LOW = _dct_rows(HASH_SIZE, INPUT_SIZE)
# Coefficients are at most 255 * 32 * 32 * 4 ~ 1e6; a matrix product and scipy's FFT-based DCT each
# stay within ~1e-8 of the exact value there, so a margin of 1e-5 leaves a factor of 500.
_TIE_MARGIN = 1e-5


def _low_frequencies_scipy(blocks: np.ndarray) -> np.ndarray:
    import scipy.fftpack  # only for the rare near-tie rows: a fifth of a second to import

    dct = scipy.fftpack.dct(scipy.fftpack.dct(blocks, axis=1), axis=2)
    return dct[:, :HASH_SIZE, :HASH_SIZE]


def phash_batch(blocks: np.ndarray) -> np.ndarray:
    """(N, 32, 32) grayscale blocks -> (N,) uint64 hashes, bits row-major, first bit most significant."""
    blocks = np.asarray(blocks)
    if blocks.ndim != 3 or blocks.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"expected (N, {INPUT_SIZE}, {INPUT_SIZE}) blocks, got {blocks.shape}")
    if len(blocks) == 0:
        return np.zeros(0, dtype=np.uint64)
    low = _DCT_LOW @ blocks.astype(np.float64) @ _DCT_LOW.T
    low = low.reshape(len(blocks), HASH_SIZE * HASH_SIZE)
    med = np.median(low, axis=1, keepdims=True)
    near = np.abs(low - med).min(axis=1) <= _TIE_MARGIN
    if near.any():
        exact = _low_frequencies_scipy(blocks[near]).reshape(int(near.sum()), HASH_SIZE * HASH_SIZE)
        low[near] = exact
        med[near] = np.median(exact, axis=1, keepdims=True)
    bits = np.packbits(low > med, axis=1)
    return bits.view(">u8").ravel().astype(np.uint64)


def phash(image: Image.Image) -> int:
    """The hash of one image, as an unsigned 64-bit int (int(str(imagehash.phash(image)), 16))."""
    return int(phash_batch(phash_input(image)[None])[0])
