"""Streaming the shards into (images, token ids) batches with webdataset, without hangs.

Every trainer process (rank) yields exactly `steps` batches per epoch, the count that the shards'
index gives, so all ranks stop together and DDP never waits on a rank that ran dry. Each
data-loader process (a "slot": rank x worker) reads its own share of the epoch's shuffled shard
list; when shards are fewer than slots, every slot reads all shards and keeps every S-th sample.
A slot that runs out of samples before its quota starts another pass; a slot whose shards hold no
valid sample falls back to reading everything, and only if nothing at all is valid does it raise
`DataError`: the loader never loops forever on empty input. Bad samples are counted by reason.
"""

from __future__ import annotations

import io
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from train.shardspec import IMAGE_EXTS
from train.tokenizer import ChineseTokenizer

# CLIP's normalisation, applied on the device so batches travel as uint8.
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


class DataError(RuntimeError):
    """The shards hold no usable sample at all."""


@dataclass
class StreamSpec:
    shards: list[str]
    batch_size: int
    image_size: int
    tokenizer_json: str
    context_length: int
    seed: int = 0
    epoch: int = 0
    steps: int = 0               # batches this rank yields in the epoch (training); 0 = one pass (eval)
    skip_batches: int = 0        # batches of this epoch already trained (resume)
    world: int = 1
    rank: int = 0
    shuffle_buffer: int = 0
    resample: bool = False
    indexed_samples: int = 0     # samples the index counts in all shards (bounds a run of bad images)


def decode_image(data: bytes, size: int) -> np.ndarray:
    """JPEG/PNG bytes -> (3, size, size) uint8: shorter side resized to `size`, centre crop."""
    with Image.open(io.BytesIO(data)) as im:
        # DCT-domain downscaling makes large JPEGs several times cheaper to decode.
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        w, h = im.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        im = im.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        im = im.crop((left, top, left + size, top + size))
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def sample_caption(sample: dict) -> str | None:
    if "txt" in sample:
        return sample["txt"].decode("utf-8", errors="replace").strip()
    if "json" in sample:
        import json
        try:
            cap = json.loads(sample["json"]).get("caption")
        except (ValueError, AttributeError):
            return None
        return cap.strip() if isinstance(cap, str) else None
    return None


def sample_image_bytes(sample: dict) -> bytes | None:
    for ext in IMAGE_EXTS:
        if ext in sample:
            return sample[ext]
    return None


class _Counting:
    """A webdataset error handler that counts and continues (a bad tar never stops the stream)."""

    def __init__(self, errors: Counter):
        self.errors = errors

    def __call__(self, exn: Exception) -> bool:
        self.errors["bad_tar"] += 1
        return True


def _raw_samples(shards: list[str], errors: Counter) -> Iterator[dict]:
    """Samples with image bytes and a caption, in shard order; structural defects counted."""
    for s in wds.tarfile_samples([{"url": u} for u in shards], handler=_Counting(errors)):
        if sample_image_bytes(s) is None:
            errors["missing_image"] += 1
            continue
        cap = sample_caption(s)
        if cap is None:
            errors["missing_text"] += 1
            continue
        if not cap:
            errors["empty_caption"] += 1
            continue
        s["__caption__"] = cap
        yield s


def _shuffled(src: Iterator[dict], size: int, rng: random.Random) -> Iterator[dict]:
    if size <= 1:
        yield from src
        return
    buf: list[dict] = []
    for s in src:
        if len(buf) < size:
            buf.append(s)
            continue
        i = rng.randrange(size)
        buf[i], s = s, buf[i]
        yield s
    rng.shuffle(buf)
    yield from buf


class ShardStream(IterableDataset):
    """Yields batches dicts: images (B,3,H,W) uint8, text (B,L) int64, keys, errors (counts)."""

    def __init__(self, spec: StreamSpec):
        super().__init__()
        self.spec = spec

    # --- which samples this slot reads ---
    def _slot(self) -> tuple[int, int, int, int]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        s = self.spec
        return s.rank * nw + wid, s.world * nw, wid, nw

    def _pass_samples(self, slot: int, slots: int, pass_no: int, mode: str, errors: Counter) -> Iterator[dict]:
        s = self.spec
        rng = random.Random(f"{s.seed}/{s.epoch}/{pass_no}")
        order = list(s.shards)
        if s.steps:  # training shuffles shards; evaluation reads them in order
            rng.shuffle(order)
        if mode == "own":
            if s.resample:
                r = random.Random(f"{s.seed}/{s.epoch}/{pass_no}/{slot}")
                order = [r.choice(order) for _ in range(max(1, len(order) // slots))]
                yield from _raw_samples(order, errors)
            else:
                yield from _raw_samples(order[slot::slots], errors)
        else:  # "strided" and "all" read every shard; the caller keeps its share
            yield from _raw_samples(order, errors)

    def _owner(self, i: int, nw: int) -> tuple[int, int]:
        """(rank, worker) that batches the i-th sample of the common stream: the epoch's global batch
        g = i // B goes to rank g % world as its batch b = g // world, made by worker b % nw."""
        g = i // self.spec.batch_size
        return g % self.spec.world, (g // self.spec.world) % nw

    def _slot_samples(self, slot: int, slots: int, errors: Counter, endless: bool) -> Iterator[dict]:
        s = self.spec
        rank, wid, nw = slot // (slots // s.world), slot % (slots // s.world), slots // s.world
        mode = "own" if len(s.shards) >= slots else "strided"
        pass_no = 0
        i = 0  # position in the common stream (strided mode), continued across passes
        while True:
            got = 0
            for sample in self._pass_samples(slot, slots, pass_no, mode, errors):
                if mode == "strided":
                    mine = self._owner(i, nw) == (rank, wid)
                    i += 1
                    if not mine:
                        continue
                got += 1
                yield sample
            pass_no += 1
            if not endless:
                return
            if got == 0:
                if mode == "all":
                    raise DataError(f"no valid sample in {len(s.shards)} shard(s) "
                                    f"(errors: {dict(errors) or 'none'}), e.g. {s.shards[0]}")
                # This slot's share was empty: widen it rather than spin on nothing.
                mode = "strided" if mode == "own" else "all"

    def __iter__(self) -> Iterator[dict]:
        s = self.spec
        slot, slots, wid, nw = self._slot()
        errors: Counter = Counter()
        tok = ChineseTokenizer.from_json(s.tokenizer_json, s.context_length)
        training = s.steps > 0
        # Batches b of this rank's epoch go to worker b % nw (the DataLoader's round-robin).
        my_batches = [b for b in range(wid, s.steps, nw)] if training else None
        done = sum(1 for b in my_batches if b < s.skip_batches) if training else 0
        todo = len(my_batches) - done if training else None
        if training and todo <= 0:
            return
        rng = random.Random(f"{s.seed}/{s.epoch}/shuffle/{slot}")
        samples = _shuffled(self._slot_samples(slot, slots, errors, endless=training), s.shuffle_buffer, rng)
        skip = done * s.batch_size
        images, captions, keys = [], [], []
        yielded = 0
        # Undecodable images in a row beyond two passes' worth: nothing here decodes, stop looping.
        bad_limit = 2 * max(1, s.indexed_samples) + s.shuffle_buffer
        bad_streak = 0
        for sample in samples:
            if skip:
                skip -= 1
                continue
            try:
                img = decode_image(sample_image_bytes(sample), s.image_size)
            except Exception:  # any undecodable image is one counted, skipped sample
                errors["bad_image"] += 1
                bad_streak += 1
                if bad_streak > bad_limit:
                    raise DataError(f"no decodable image in {len(s.shards)} shard(s) after {bad_streak} tries "
                                    f"(errors: {dict(errors)}), e.g. {s.shards[0]}") from None
                continue
            bad_streak = 0
            images.append(img)
            captions.append(sample["__caption__"])
            keys.append(sample["__key__"])
            if len(images) == s.batch_size:
                yield self._batch(images, captions, keys, tok, errors)
                errors = Counter()
                images, captions, keys = [], [], []
                yielded += 1
                if training and yielded >= todo:
                    return
        if images and not training:
            yield self._batch(images, captions, keys, tok, errors)
            errors = Counter()
        elif errors and not training:
            # Evaluation reports defects even when no batch follows them.
            yield {"images": None, "text": None, "keys": [], "captions": [], "errors": dict(errors)}

    @staticmethod
    def _batch(images, captions, keys, tok: ChineseTokenizer, errors: Counter) -> dict:
        return {"images": torch.from_numpy(np.stack(images)), "text": torch.from_numpy(tok(captions)),
                "keys": list(keys), "captions": list(captions), "errors": dict(errors)}


def make_loader(spec: StreamSpec, workers: int, *, pin_memory: bool = False, prefetch_factor: int = 4,
                timeout_s: float = 0.0) -> DataLoader:
    kw = {}
    if workers > 0:
        kw = dict(prefetch_factor=prefetch_factor, timeout=timeout_s, persistent_workers=False)
    return DataLoader(ShardStream(spec), batch_size=None, num_workers=workers, pin_memory=pin_memory, **kw)


def normalize_images(images: torch.Tensor, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    mean = torch.tensor(IMAGE_MEAN, device=device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=device, dtype=dtype).view(1, 3, 1, 1)
    x = images.to(device, non_blocking=True).to(dtype) / 255.0
    return (x - mean) / std


def steps_per_epoch(total_samples: int, batch_size: int, world: int) -> int:
    """Whole global batches in one pass; at least one (a tiny set wraps around)."""
    return max(1, total_samples // (batch_size * world))


def iter_captions(shards: list[str], limit: int) -> Iterator[str]:
    """Captions in shard order, for building the offline vocabulary."""
    errors: Counter = Counter()
    for i, s in enumerate(_raw_samples(shards, errors)):
        if i >= limit:
            return
        yield s["__caption__"]
