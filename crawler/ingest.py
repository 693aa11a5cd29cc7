"""One partition of a URL list in, one raw shard out: `{shard}.tar`, `{shard}_stats.json`, `{shard}.parquet`.

Inside a partition, `concurrency` coroutines share one aiohttp session and pull rows from the
partition's reader; each fetched body is decoded, checked and re-encoded on the event loop's thread
when small (a few ms, cheaper than a thread hand-off and the GIL contention it brings) and on a
small thread pool when large (Pillow releases the GIL there, so the loop keeps serving sockets), or
when the caller signals idle cores (a run's last wave, where finished partitions left cores free).
Successful samples are hashed in batches (one DCT call for many images) and appended to the tar as
they complete.

Every input row ends as exactly one index row, success or failure, whatever happens to its URL: the
fetcher and the image path turn every failure into an error code, and an unexpected exception in
one row's handling becomes that row's `internal_error`. The parquet index is written last, after the
tar and stats are in place, so its presence means the shard is complete (a rerun skips it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from crawler.config import DownloadConfig
from crawler.fetch import Fetcher
from crawler.imaging import ImageError, ImageProcessor, ProcessedImage
from crawler.phash import phash_batch
from crawler.sources import Partition, Row, make_key, read_partition
from filters.config import ImageRulesConfig
from filters.image_rules import check_image_size
from shards.atomic import write_json_atomic, write_parquet_atomic
from shards.format import (IMAGE_EXT, META_EXT, RAW_INDEX_SCHEMA, RAW_SHARD_PATTERN, STATUS_FAILED, STATUS_SUCCESS,
                           AtomicTarWriter, phash_to_hex, sample_members)

INTERNAL_ERROR = "internal_error"
# Young-generation collections are this many times rarer while a partition runs.
GC_GEN0_FACTOR = 20

log = logging.getLogger(__name__)


@dataclass
class ProgressDelta:
    """What a partition did since its last progress report."""

    rows: int = 0
    successes: int = 0
    bytes: int = 0                     # of the bodies received
    errors: Counter = field(default_factory=Counter)   # failed rows by error code


ProgressFn = Callable[[ProgressDelta], None]
IdleCoresFn = Callable[[], bool]  # whether the run has cores that no partition uses now


def shard_name(shard: int) -> str:
    return RAW_SHARD_PATTERN.format(shard=shard)


def shard_paths(out_dir: str | Path, shard: int) -> dict[str, Path]:
    base = Path(out_dir) / shard_name(shard)
    return {"tar": base.with_suffix(".tar"), "parquet": base.with_suffix(".parquet"),
            "stats": base.parent / f"{base.name}_stats.json"}


def is_shard_done(out_dir: str | Path, shard: int) -> bool:
    return shard_paths(out_dir, shard)["parquet"].is_file()


def make_processor(cfg: DownloadConfig, rules: ImageRulesConfig) -> ImageProcessor:
    return ImageProcessor(
        image_size=cfg.image_size, resize_mode=cfg.resize_mode, jpeg_quality=cfg.jpeg_quality,
        max_image_pixels=cfg.max_image_pixels, resize_only_if_bigger=cfg.resize_only_if_bigger,
        downscale_filter=cfg.downscale_filter, upscale_filter=cfg.upscale_filter,
        decode_oversample=cfg.decode_oversample, border_color=tuple(cfg.border_color),
        size_check=partial(check_image_size, cfg=rules),
    )


@dataclass
class _Processed:
    """What the thread pool returns for one body."""

    sha256: str
    image: ProcessedImage | None = None
    error: str | None = None
    message: str | None = None


def _process_body(processor: ImageProcessor, body: bytes) -> _Processed:
    digest = hashlib.sha256(body).hexdigest()
    try:
        return _Processed(digest, processor.process(body))
    except ImageError as exc:
        return _Processed(digest, None, exc.code, exc.message[:500])
    except Exception as exc:  # noqa: BLE001 - one image's surprise is that image's error
        return _Processed(digest, None, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:500])


@dataclass
class _ShardWriter:
    """Accumulates index rows and writes samples to the tar, hashing them in batches."""

    part: Partition
    tar: AtomicTarWriter
    extra_cols: list[str]
    batch: int
    index: list[dict[str, Any]] = field(default_factory=list)
    pending: list[tuple[dict[str, Any], ProcessedImage]] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    successes: int = 0

    def base(self, row: Row) -> dict[str, Any]:
        rec = {name: None for name in RAW_INDEX_SCHEMA.names}
        rec.update(key=make_key(self.part.file_index, row.row), url=row.url, caption=row.caption,
                   source_file=self.part.path, source_row=row.row)
        rec.update({c: row.extra.get(c) for c in self.extra_cols})
        return rec

    def failure(self, rec: dict[str, Any], code: str, message: str | None) -> None:
        rec.update(status=STATUS_FAILED, error=code, error_message=message)
        self.errors[code] += 1
        self.index.append(rec)

    def success(self, rec: dict[str, Any], image: ProcessedImage) -> None:
        rec.update(status=STATUS_SUCCESS, width=image.width, height=image.height,
                   original_width=image.original_width, original_height=image.original_height,
                   format=image.format)
        self.pending.append((rec, image))
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        hashes = phash_batch(np.stack([img.phash_block for _, img in self.pending]))
        for (rec, img), h in zip(self.pending, hashes):
            rec["phash"] = int(h)
            meta = {k: rec[k] for k in ("key", "url", "caption", "status", "width", "height", "original_width",
                                        "original_height", "sha256", "bytes", "format")}
            meta["phash"] = phash_to_hex(rec["phash"])
            meta.update({c: rec.get(c) for c in self.extra_cols})
            where = self.tar.write_sample(rec["key"], sample_members(img.jpeg, rec["caption"] or "", meta))
            rec["jpg_offset"], rec["jpg_size"] = where[IMAGE_EXT]
            rec["json_offset"], rec["json_size"] = where[META_EXT]
            self.index.append(rec)
            self.successes += 1
        self.pending.clear()

    def table(self) -> pa.Table:
        rows = sorted(self.index, key=lambda r: r["key"])
        columns = {name: [r[name] for r in rows] for name in RAW_INDEX_SCHEMA.names}
        table = pa.Table.from_pydict(columns, schema=RAW_INDEX_SCHEMA)
        for c in self.extra_cols:
            if c not in RAW_INDEX_SCHEMA.names:
                table = table.append_column(c, pa.array([_plain(r.get(c)) for r in rows]))
        return table


def _plain(value: Any) -> Any:
    """Extra input columns may hold anything; keep scalars, serialise the rest."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class _Progress:
    def __init__(self, fn: ProgressFn | None, interval: float):
        self.fn, self.interval = fn, interval
        self.delta = ProgressDelta()
        self.last = time.monotonic()

    def add(self, error: str | None, nbytes: int) -> None:
        d = self.delta
        d.rows += 1
        d.bytes += nbytes
        if error is None:
            d.successes += 1
        else:
            d.errors[error] += 1
        if self.fn is not None and time.monotonic() - self.last >= self.interval:
            self.report()

    def report(self) -> None:
        if self.fn is not None and self.delta.rows:
            try:
                self.fn(self.delta)
            except Exception as exc:  # noqa: BLE001 - monitoring must never cost a sample
                log.warning("progress report failed: %s", exc)
        self.delta = ProgressDelta()
        self.last = time.monotonic()


class _IdleCores:
    """The caller's idle-cores signal, asked at most once per `interval` seconds."""

    def __init__(self, fn: IdleCoresFn | None, interval: float):
        self.fn, self.interval = fn, interval
        self.value = False
        self.checked = float("-inf")

    def __call__(self) -> bool:
        if self.fn is None:
            return False
        now = time.monotonic()
        if now - self.checked >= self.interval:
            self.checked = now
            try:
                self.value = bool(self.fn())
            except Exception as exc:  # noqa: BLE001 - a hint only: without it, decode inline
                log.warning("idle-cores signal failed: %s", exc)
                self.value = False
        return self.value


async def _run_partition(part: Partition, rows: Iterator[Row], writer: _ShardWriter, cfg: DownloadConfig,
                         processor: ImageProcessor, progress: _Progress, idle_cores: _IdleCores) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    traffic = Counter()
    with ThreadPoolExecutor(max_workers=max(1, cfg.decode_threads), thread_name_prefix="decode") as pool:
        async with Fetcher(cfg) as fetcher:

            async def outcome(row: Row, rec: dict[str, Any]) -> tuple[ProcessedImage | None, str | None, str | None]:
                """(image, None, None) or (None, error code, message) for one row."""
                if row.error:
                    return None, row.error, row.message
                try:
                    res = await fetcher.fetch(row.url)
                    traffic["attempts"] += res.attempts
                    if not res.ok:
                        return None, res.error, res.message
                    traffic["bytes"] += len(res.body)
                    rec["bytes"] = len(res.body)
                    if cfg.decode_threads > 0 and (len(res.body) > cfg.inline_decode_max_bytes or idle_cores()):
                        done = await loop.run_in_executor(pool, _process_body, processor, res.body)
                        traffic["threaded_decodes"] += 1
                    else:
                        # A typical image takes a few ms: cheaper here than a hand-off to a thread and
                        # the GIL contention that follows, unless other cores sit idle; only large
                        # bodies would stall the sockets.
                        done = _process_body(processor, res.body)
                    rec["sha256"] = done.sha256
                    return done.image, done.error, done.message
                except Exception as exc:  # noqa: BLE001 - the row is recorded, the partition goes on
                    return None, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:500]

            async def handle(row: Row) -> None:
                rec = writer.base(row)
                image, code, message = await outcome(row, rec)
                # Recorded exactly once, outside the try above: nothing after this can re-record it.
                if image is None:
                    code = code or INTERNAL_ERROR
                    writer.failure(rec, code, message)
                else:
                    code = None
                    writer.success(rec, image)
                progress.add(code, rec.get("bytes") or 0)

            async def worker() -> None:
                for row in rows:  # one shared iterator: each row is taken by exactly one worker
                    await handle(row)

            workers = min(cfg.concurrency, max(1, part.num_rows))
            await asyncio.gather(*(worker() for _ in range(workers)))
    writer.flush()
    return dict(traffic)


@contextlib.contextmanager
def _fewer_gc_passes(gen0: int):
    """A partition allocates millions of short-lived objects (requests, headers, chunks) that
    reference counting frees; the cycle collector's young-generation passes over them are pure
    cost, so they run `gen0` times less often for the partition's duration."""
    old = gc.get_threshold()
    gc.set_threshold(old[0] * gen0, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def ingest_partition(part: Partition, out_dir: str | Path, cfg: DownloadConfig,
                     rules: ImageRulesConfig | None = None, progress: ProgressFn | None = None,
                     idle_cores: IdleCoresFn | None = None) -> dict[str, Any]:
    """Download one partition into its raw shard; returns the shard's stats (also written beside it).

    `progress` receives what completed (rows, successes, bytes, errors) every `progress_interval` s; `idle_cores`, asked every `progress_interval`
    seconds, says when the run has cores no partition uses (its last wave): bodies then decode on the
    thread pool, in parallel, rather than on the event loop's thread.
    """
    t0, cpu0 = time.monotonic(), time.process_time()
    rules = rules or ImageRulesConfig()
    paths = shard_paths(out_dir, part.shard)
    processor = make_processor(cfg, rules)
    tracker = _Progress(progress, cfg.progress_interval)
    idle = _IdleCores(idle_cores if cfg.use_idle_cores else None, cfg.progress_interval)
    rows = read_partition(part, cfg)
    with AtomicTarWriter(paths["tar"]) as tar, _fewer_gc_passes(GC_GEN0_FACTOR):
        writer = _ShardWriter(part, tar, list(cfg.save_additional_columns), max(1, cfg.phash_batch))
        traffic = asyncio.run(_run_partition(part, rows, writer, cfg, processor, tracker, idle))
    tracker.report()
    if len(writer.index) != part.num_rows:
        raise RuntimeError(f"shard {part.shard}: {len(writer.index)} index rows for {part.num_rows} input rows")
    failed = len(writer.index) - writer.successes
    stats = {
        "shard": part.shard, "source_file": part.path, "start_row": part.start_row, "rows": part.num_rows,
        "by_status": {STATUS_SUCCESS: writer.successes, STATUS_FAILED: failed},
        "by_error": dict(sorted(writer.errors.items())),
        "bytes_downloaded": traffic.get("bytes", 0), "http_attempts": traffic.get("attempts", 0),
        # Bodies decoded on the thread pool (large ones, and all of them while cores sat idle).
        "threaded_decodes": traffic.get("threaded_decodes", 0),
        "elapsed_s": round(time.monotonic() - t0, 3),
        # CPU of the whole worker process meanwhile (event loop, decode threads, Ray's own threads).
        "cpu_s": round(time.process_time() - cpu0, 3),
    }
    write_json_atomic(paths["stats"], stats)
    write_parquet_atomic(paths["parquet"], writer.table())
    return stats
