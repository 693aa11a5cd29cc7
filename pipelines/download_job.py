"""`run_download`: URL lists to raw shards, one Ray task per partition.

The plan (which file rows make which shard) is computed once, by one Ray task per input file, and
kept in the output directory (`_plan.json`); a rerun reuses it, so shard boundaries and keys cannot
move, skips every shard whose parquet index exists, and redoes the rest from scratch. Together with
the shard writers' temporary-name-then-rename, that gives exactly-once output after a crash.
Progress: partition tasks keep their running row counts in `_progress/SHARD.json` (on the output
storage every node shares), which the driver sums for its progress line, and report rows by status,
errors by code and bytes through `pipelines.metrics` (the Ray metrics endpoint, labelled with the
partition). Every partition task is named `download` (file scans `download-scan`), so the
dashboard shows one row per stage; the partition is in the task's arguments, logs and labels.
In a run's last wave, when fewer partitions remain than slots, the driver leaves a marker file in
`_progress/` that lets the running partitions decode on their thread pools, on the idle cores.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import ray

from crawler.config import DownloadConfig
from crawler.ingest import ProgressDelta, ingest_partition, is_shard_done, make_processor, shard_paths
from crawler.netguard import AddressGuard
from crawler.sources import (FileScan, Partition, SourceError, describe_partition, detect_format,
                             plan_partitions, probe_file, scan_file)
from filters.config import ImageRulesConfig
from pipelines import metrics
from pipelines.config import WukongConfig
from pipelines.progress import ProgressLine
from pipelines.ray_runtime import cluster_cpus, init_ray, task_logging
from shards.atomic import remove_stale_temporaries, write_json_atomic
from shards.format import STATUS_FAILED, STATUS_SUCCESS

log = logging.getLogger(__name__)

PLAN_FILE = "_plan.json"
PROGRESS_DIR = "_progress"
# Written by the driver in `PROGRESS_DIR` while fewer partitions run than there are slots.
IDLE_CORES_FILE = "_idle_cores"
STATS_FILE = "stats.json"
PLAN_VERSION = 1
# How often the driver refreshes the progress bar while tasks run (seconds).
POLL_INTERVAL_S = 0.5
# Config keys that decide the plan; a rerun with other values would move shard boundaries.
_PLAN_KEYS = ("rows_per_shard", "url_col", "caption_col", "input_format", "input_has_header",
              "save_additional_columns")


class DownloadError(ValueError):
    """Unusable input or output for a download run (shown as one line)."""


def _progress_path(output: str | Path, shard: int) -> Path:
    return Path(output) / PROGRESS_DIR / f"{shard:05d}.json"


def _write_progress(path: Path, done: int, ok: int) -> None:
    """Advisory counts for the driver's bar: replaced whole, never fsynced (losing one is harmless)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"done": done, "ok": ok}))
    os.replace(tmp, path)


def _read_progress(output: Path, shard: int) -> tuple[int, int]:
    try:
        d = json.loads(_progress_path(output, shard).read_text())
        return int(d["done"]), int(d["ok"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


def _signal_idle_cores(output: Path, idle: bool) -> None:
    """Tell running partitions whether slots sit idle (the run's last wave): present file = yes."""
    path = Path(output) / PROGRESS_DIR / IDLE_CORES_FILE
    if idle:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    else:
        path.unlink(missing_ok=True)


def _idle_cores_signalled(output: str | Path) -> bool:
    return (Path(output) / PROGRESS_DIR / IDLE_CORES_FILE).exists()


STAGE = "download"
SCAN_STAGE = "download-scan"


@ray.remote
def _scan_task(file_index: int, path: str, cfg: DownloadConfig) -> FileScan:
    task_logging()
    log.info("%s: file %03d %s", SCAN_STAGE, file_index, path)
    return scan_file(path, cfg)


@ray.remote
def _ingest_task(part: dict, output: str, cfg: DownloadConfig, rules: ImageRulesConfig) -> dict:
    task_logging()
    partition = Partition.from_dict(part)
    label = f"{partition.shard:05d}"
    log.info("%s: partition %s (%s, %d rows) starts", STAGE, label, describe_partition(partition),
             partition.num_rows)
    progress_file = _progress_path(output, partition.shard)
    progress_file.parent.mkdir(parents=True, exist_ok=True)
    totals = [0, 0]

    def report(delta: ProgressDelta) -> None:
        totals[0] += delta.rows
        totals[1] += delta.successes
        # A file per shard rather than an actor: no extra Ray process, and a retried task simply
        # overwrites its own counts.
        _write_progress(progress_file, *totals)
        metrics.count_many(STAGE, "rows", {STATUS_SUCCESS: delta.successes,
                                           STATUS_FAILED: delta.rows - delta.successes},
                           "status", partition=label)
        metrics.count_many(STAGE, "errors", delta.errors, "error", partition=label)
        metrics.count(STAGE, "bytes", delta.bytes, partition=label)

    stats = ingest_partition(partition, output, cfg, rules, progress=report,
                             idle_cores=lambda: _idle_cores_signalled(output))
    metrics.count(STAGE, "shards", 1, partition=label)
    log.info("%s: partition %s done: %s", STAGE, label,
             {k: stats[k] for k in ("by_status", "bytes_downloaded", "elapsed_s")})
    return stats


def expand_inputs(inputs: list[str], cfg: DownloadConfig) -> list[str]:
    """Files as given, directories as their URL-list files; sorted, so file indexes are stable."""
    files: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = []
            for child in sorted(p.iterdir()):
                try:
                    if child.is_file() and not child.name.startswith(("_", ".")):
                        detect_format(child, cfg.input_format)
                        found.append(str(child.resolve()))
                except SourceError:
                    continue
            if not found:
                raise DownloadError(f"no URL-list files (csv, tsv, parquet, jsonl, json, txt) in {p}")
            files += found
        elif p.is_file():
            files.append(str(p.resolve()))
        else:
            raise DownloadError(f"input file not found: {item}")
    if not files:
        raise DownloadError("no input files given")
    files = sorted(dict.fromkeys(files))
    for f in files:  # header checks here, so a bad input fails before Ray starts
        try:
            probe_file(f, cfg)
        except SourceError as exc:
            raise DownloadError(str(exc)) from None
    return files


def _check_output(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DownloadError(f"output directory {output} is not writable ({exc.strerror or exc})") from exc


def validate_config(cfg: WukongConfig) -> None:
    """Refuse settings every shard would fail on, before any work starts."""
    dl = cfg.download
    try:
        make_processor(dl, cfg.filter.image)
        AddressGuard.from_config(dl)
    except ValueError as exc:
        raise DownloadError(f"bad download configuration: {exc}") from None
    for name in ("rows_per_shard", "concurrency", "per_host_connections", "max_bytes", "image_size"):
        if getattr(dl, name) <= 0:
            raise DownloadError(f"download.{name} must be positive")
    if not 1 <= dl.jpeg_quality <= 100:
        raise DownloadError("download.jpeg_quality must be within 1..100")


def _plan_identity(files: list[str], cfg: DownloadConfig) -> dict:
    return {"version": PLAN_VERSION,
            "inputs": [{"path": f, "size": os.path.getsize(f)} for f in files],
            "config": {k: getattr(cfg, k) for k in _PLAN_KEYS}}


def _scan_all(files: list[str], cfg: DownloadConfig) -> list[FileScan]:
    refs = [_scan_task.options(name=SCAN_STAGE).remote(i, f, cfg) for i, f in enumerate(files)]
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, SourceError):
            raise DownloadError(str(cause)) from None
        raise


def load_or_make_plan(files: list[str], output: Path, cfg: DownloadConfig) -> list[Partition]:
    identity = _plan_identity(files, cfg)
    plan_path = output / PLAN_FILE
    if plan_path.is_file():
        saved = json.loads(plan_path.read_text(encoding="utf-8"))
        if saved.get("identity") != identity:
            raise DownloadError(f"{output} holds shards of another run (other inputs or partitioning); "
                                "use a new output directory")
        return [Partition.from_dict(p) for p in saved["partitions"]]
    parts = plan_partitions(_scan_all(files, cfg), cfg.rows_per_shard)
    write_json_atomic(plan_path, {"identity": identity, "partitions": [p.to_dict() for p in parts]})
    return parts


def _aggregate(output: Path, parts: list[Partition]) -> dict:
    by_status: Counter = Counter()
    by_error: Counter = Counter()
    done = 0
    for part in parts:
        stats_path = shard_paths(output, part.shard)["stats"]
        if not is_shard_done(output, part.shard) or not stats_path.is_file():
            continue
        s = json.loads(stats_path.read_text(encoding="utf-8"))
        by_status.update(s["by_status"])
        by_error.update(s["by_error"])
        done += 1
    return {"rows": sum(by_status.values()), "by_status": dict(by_status),
            "by_error": dict(sorted(by_error.items())), "shards": len(parts), "shards_done": done}


def run_download(inputs: list[str], output: str | Path, cfg: WukongConfig | None = None,
                 progress: bool = True) -> dict:
    """Download every row of `inputs` into raw shards under `output`; returns the run's stats."""
    cfg = cfg or WukongConfig()
    dl = cfg.download
    t0 = time.monotonic()
    validate_config(cfg)
    files = expand_inputs(list(inputs), dl)
    output = Path(output)
    _check_output(output)
    init_ray(cfg.ray)
    parts = load_or_make_plan(files, output, dl)
    remove_stale_temporaries(output)
    todo = [p for p in parts if not is_shard_done(output, p.shard)]
    slots = dl.processes if dl.processes > 0 else cluster_cpus()
    log.info("download: %d files, %d shards, %d to do, %d in parallel", len(files), len(parts), len(todo), slots)

    bar = ProgressLine(STAGE, sum(p.num_rows for p in todo), unit="row", enabled=progress)
    pending: dict[Any, Partition] = {}
    queue = list(reversed(todo))
    failures: list[dict] = []
    finished_rows = finished_ok = 0
    run_stats: list[dict] = []
    _signal_idle_cores(output, False)  # a killed run may have left it
    idle_signalled = False
    try:
        while queue or pending:
            while queue and len(pending) < slots:
                part = queue.pop()
                ref = _ingest_task.options(
                    name=STAGE, num_cpus=1, max_retries=dl.task_max_retries,
                ).remote(part.to_dict(), str(output), dl, cfg.filter.image)
                pending[ref] = part
            idle = not queue and len(pending) < slots
            if idle != idle_signalled:
                _signal_idle_cores(output, idle)
                idle_signalled = idle
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_INTERVAL_S)
            for ref in ready:
                part = pending.pop(ref)
                try:
                    run_stats.append(ray.get(ref))
                    finished_rows += part.num_rows
                    finished_ok += run_stats[-1]["by_status"].get(STATUS_SUCCESS, 0)
                except Exception as exc:  # noqa: BLE001 - one shard's failure is reported, the rest go on
                    message = str(getattr(exc, "cause", None) or exc).strip().splitlines()[-1][:500]
                    failures.append({"shard": part.shard, "error": message})
                    log.error("shard %05d failed: %s", part.shard, message)
            running = [_read_progress(output, p.shard) for p in pending.values()]
            bar.update(finished_rows + sum(d for d, _ in running), finished_ok + sum(o for _, o in running))
    finally:
        bar.close()
        shutil.rmtree(output / PROGRESS_DIR, ignore_errors=True)

    elapsed = time.monotonic() - t0
    this_run_ok = sum(s["by_status"].get(STATUS_SUCCESS, 0) for s in run_stats)
    stats = _aggregate(output, parts)
    stats.update({
        "inputs": files, "shards_written": len(run_stats), "shards_skipped": len(parts) - len(todo),
        "failed_shards": failures, "elapsed_s": round(elapsed, 3),
        "samples_per_s": round(this_run_ok / elapsed, 2) if elapsed > 0 else 0.0,
        "config": dataclasses.asdict(dl),
    })
    write_json_atomic(output / STATS_FILE, stats)
    return stats
