"""Our batched pHash equals imagehash.phash bit for bit, on many images including the tie-prone ones."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image

from crawler.imaging import ImageProcessor
from crawler.phash import lanczos_gray, phash, phash_batch, phash_input
from tests.crawler import images


def _reference(im: Image.Image) -> int:
    return int(str(imagehash.phash(im)), 16)


def _corpus() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    out = []
    for seed in range(120):
        w, h = int(rng.integers(33, 700)), int(rng.integers(33, 700))
        im = images.photo(w, h, seed=seed, noise=int(rng.integers(0, 20)))
        out.append(im if seed % 3 else im.convert(["L", "RGBA", "P"][seed % 9 // 3]))
    # Flat, two-tone, gradient and pure-noise images, where DCT coefficients tie around the median.
    out += [Image.new("RGB", (64, 64), (v, v, v)) for v in (0, 37, 128, 255)]
    out += [Image.new("L", (40, 90), 200), Image.new("RGB", (32, 32), (10, 200, 30))]
    half = np.zeros((64, 64), np.uint8)
    half[:, 32:] = 255
    out += [Image.fromarray(half), Image.fromarray(half.T.copy())]
    out += [Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (50, 1)))]
    out += [Image.fromarray(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)) for _ in range(10)]
    out += [Image.fromarray(np.eye(64, dtype=np.uint8) * 255), Image.new("1", (50, 50), 1)]
    return out


def test_single_image_hash_equals_imagehash():
    for im in _corpus():
        assert phash(im) == _reference(im)


def test_batched_hashes_equal_imagehash():
    corpus = _corpus()
    blocks = np.stack([phash_input(im) for im in corpus])
    got = phash_batch(blocks)
    assert got.dtype == np.uint64 and got.shape == (len(corpus),)
    assert [int(v) for v in got] == [_reference(im) for im in corpus]
    # Different images hash differently (the hash is not constant).
    assert len(set(got.tolist())) > len(corpus) * 0.8


def test_ingest_hash_is_imagehash_of_the_decoded_image_at_output_scale():
    for mode in ["border", "center_crop", "no"]:
        proc = ImageProcessor(resize_mode=mode)
        for seed, (w, h) in enumerate([(1600, 1200), (900, 700), (300, 200), (1000, 1500), (640, 480)]):
            data = images.jpeg(w, h, seed=seed)
            decoded, _, _ = proc.decode_rgb(data)
            if mode != "no":
                assert decoded.size[0] < w or w < 448  # reduced decoding was used for the large ones
            scaled = proc.scale(decoded)
            assert scaled.size == (proc.target_size(*decoded.size) or decoded.size)
            block = proc.process(data).phash_block
            assert int(phash_batch(block[None])[0]) == _reference(scaled)


def test_numpy_lanczos_equals_pillow_on_every_shape():
    """Up- and downscales, both pass orders (tall, wide, square), one-pixel edges, flat and noisy
    content, to 32x32 and to other sizes: byte-equal to Pillow's resampler."""
    rng = np.random.default_rng(7)
    shapes = [(1, 1), (1, 500), (500, 1), (31, 33), (32, 32), (224, 75), (75, 224), (194, 224), (3000, 40)]
    shapes += [(int(rng.integers(1, 900)), int(rng.integers(1, 900))) for _ in range(300)]
    for i, (h, w) in enumerate(shapes):
        kind = i % 4
        if kind == 0:
            px = rng.integers(0, 256, (h, w), dtype=np.uint8)
        elif kind == 1:
            px = (np.add.outer(np.arange(h), 3 * np.arange(w)) % 256).astype(np.uint8)
        elif kind == 2:
            px = np.where(rng.random((h, w)) < 0.5, 0, 255).astype(np.uint8)  # ringing at every edge
        else:
            px = np.full((h, w), int(rng.integers(0, 256)), np.uint8)
        out_w, out_h = (32, 32) if i % 5 else (int(rng.integers(1, 300)), int(rng.integers(1, 300)))
        want = np.asarray(Image.fromarray(px, "L").resize((out_w, out_h), Image.Resampling.LANCZOS))
        got = lanczos_gray(px, out_w, out_h)
        assert got.dtype == np.uint8 and np.array_equal(got, want), (h, w, out_w, out_h, kind)


def test_numpy_lanczos_on_images_larger_than_one_chunk():
    """Huge images (resize mode "no" hashes them whole) go through in bounded row/column chunks."""
    rng = np.random.default_rng(11)
    for h, w in [(2100, 1700), (4500, 260), (260, 4500)]:  # both pass orders, many chunks each
        px = rng.integers(0, 256, (h, w), dtype=np.uint8)
        want = np.asarray(Image.fromarray(px, "L").resize((32, 32), Image.Resampling.LANCZOS))
        assert np.array_equal(lanczos_gray(px, 32, 32), want), (h, w)


def test_weight_cache_is_bounded(monkeypatch):
    from crawler import phash as ph
    ph.clear_weight_tables()
    one = ph._Bands(ph._pillow_lanczos_weights(610, 32)).nbytes  # the largest table below
    assert one < 32 * 610 * 8 * 0.7  # banded: well under the dense matrix
    monkeypatch.setattr(ph, "_WEIGHT_CACHE_BYTES", 3 * one)  # room for three tables
    for width in range(600, 610):
        lanczos_gray(np.zeros((40, width), np.uint8), 32, 32)
        assert sum(w.nbytes for w in ph._weights.values()) <= ph._WEIGHT_CACHE_BYTES
        assert 1 <= ph.weight_tables() <= 3
    ph.clear_weight_tables()
    assert ph.weight_tables() == 0


def test_empty_batch_and_bad_shape():
    assert phash_batch(np.zeros((0, 32, 32), np.uint8)).shape == (0,)
    with pytest.raises(ValueError):
        phash_batch(np.zeros((2, 16, 16), np.uint8))


def _scipy_hashes(blocks: np.ndarray) -> list[int]:
    """imagehash's own arithmetic (scipy.fftpack DCT, numpy median) on 32x32 blocks."""
    import scipy.fftpack
    out = []
    for b in blocks.astype(np.float64):
        low = scipy.fftpack.dct(scipy.fftpack.dct(b, axis=0), axis=1)[:8, :8]
        bits = (low > np.median(low)).ravel()
        out.append(int("".join("1" if x else "0" for x in bits), 2))
    return out


def test_matrix_dct_with_tie_fallback_equals_scipy_on_tie_prone_blocks():
    """Blocks with few distinct values, symmetric patterns and flat areas put coefficients on or near
    the median; the batch must give scipy's bits on all of them, and on smooth photo-like blocks."""
    rng = np.random.default_rng(3)
    blocks = [np.full((32, 32), v, np.uint8) for v in (0, 1, 127, 255)]
    blocks += [rng.integers(0, 2, (32, 32)).astype(np.uint8) * 255 for _ in range(40)]
    blocks += [np.kron(rng.integers(0, 256, (4, 4)), np.ones((8, 8))).astype(np.uint8) for _ in range(40)]
    sym = rng.integers(0, 256, (32, 16)).astype(np.uint8)
    blocks += [np.hstack([sym, sym[:, ::-1]]), np.vstack([sym.T, sym.T[::-1]])]
    yy, xx = np.mgrid[0:32, 0:32]
    blocks += [((xx * a + yy * b) % 256).astype(np.uint8) for a in range(0, 9, 2) for b in range(0, 9, 3)]
    smooth = [np.clip(np.cumsum(rng.normal(0, 6, (32, 32)), axis=1) + 128, 0, 255).astype(np.uint8)
              for _ in range(300)]
    stack = np.stack(blocks + smooth)
    assert [int(v) for v in phash_batch(stack)] == _scipy_hashes(stack)


def test_ordinary_images_are_hashed_without_importing_scipy():
    """scipy is loaded only for near-tie rows: a worker hashing photos never pays for its import."""
    import subprocess
    import sys
    code = (
        "import sys, numpy as np\n"
        "from PIL import Image\n"
        "from crawler.phash import phash_batch, phash_input\n"
        "rng = np.random.default_rng(5)\n"
        "walks = [np.cumsum(rng.normal(0, 4, (200 + 5 * s, 300 + 7 * s, 3)), axis=1) for s in range(20)]\n"
        "ims = [Image.fromarray(np.clip(w + 128, 0, 255).astype(np.uint8)) for w in walks]\n"
        "blocks = np.stack([phash_input(im) for im in ims])\n"
        "h = phash_batch(blocks)\n"
        "assert len(set(h.tolist())) == 20, h\n"
        "assert 'scipy' not in sys.modules, 'scipy imported'\n"
        "phash_batch(np.full((1, 32, 32), 9, np.uint8))\n"
        "assert 'scipy.fftpack' in sys.modules, 'flat block did not take the exact path'\n"
    )
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
