"""`run_download`: URL lists to raw shards, one Ray task per partition.

The plan (which file rows make which shard) is computed once, by one Ray task per input file, and
kept in the output directory (`_plan.json`); a rerun reuses it, so shard boundaries and keys cannot
move, skips every shard whose parquet index exists, and redoes the rest from scratch. Together with
the shard writers' temporary-name-then-rename, that gives exactly-once output after a crash.
Progress: partition tasks keep their running row counts in `_progress/SHARD.json` (on the output
storage every node shares), which the driver sums for the terminal bar, and export Prometheus
counters through `ray.util.metrics` (shown by the Ray dashboard), beside the tasks themselves.
In a run's last wave, when fewer partitions remain than slots, the driver leaves a marker file in
`_progress/` that lets the running partitions decode on their thread pools, on the idle cores.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import ray

from crawler.config import DownloadConfig
from crawler.ingest import ingest_partition, is_shard_done, make_processor, shard_paths
from crawler.netguard import AddressGuard
from crawler.sources import (FileScan, Partition, SourceError, detect_format, plan_partitions, probe_file,
                             scan_file)
from filters.config import ImageRulesConfig
from pipelines.config import WukongConfig
from pipelines.ray_runtime import cluster_cpus, init_ray
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


_METRICS: dict[str, Any] = {}


def _metrics() -> dict[str, Any]:
    """Counters created once per worker process (ray.util.metrics needs a connected worker)."""
    if not _METRICS:
        from ray.util.metrics import Counter as RayCounter
        _METRICS["rows"] = RayCounter("wukong_download_rows", "Input rows handled by wukong download",
                                      tag_keys=("status",))
        _METRICS["shards"] = RayCounter("wukong_download_shards", "Raw shards completed by wukong download")
    return _METRICS


@ray.remote
def _scan_task(path: str, cfg: DownloadConfig) -> FileScan:
    return scan_file(path, cfg)


@ray.remote
def _ingest_task(part: dict, output: str, cfg: DownloadConfig, rules: ImageRulesConfig) -> dict:
    metrics = _metrics()
    partition = Partition.from_dict(part)
    progress_file = _progress_path(output, partition.shard)
    progress_file.parent.mkdir(parents=True, exist_ok=True)
    totals = [0, 0]

    def report(done: int, ok: int) -> None:
        totals[0] += done
        totals[1] += ok
        # A file per shard rather than an actor: no extra Ray process, and a retried task simply
        # overwrites its own counts.
        _write_progress(progress_file, *totals)
        if ok:  # Ray counters reject increments of 0
            metrics["rows"].inc(ok, tags={"status": STATUS_SUCCESS})
        if done - ok:
            metrics["rows"].inc(done - ok, tags={"status": STATUS_FAILED})

    stats = ingest_partition(partition, output, cfg, rules, progress=report,
                             idle_cores=lambda: _idle_cores_signalled(output))
    metrics["shards"].inc()
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
    refs = [_scan_task.options(name=f"download-scan-{i:03d}").remote(f, cfg) for i, f in enumerate(files)]
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


class _Bar:
    """tqdm bar with samples/s and success rate; silent when progress is off."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        self.t0 = time.monotonic()
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="row", desc="download", file=sys.stderr, dynamic_ncols=True,
                            smoothing=0.1)

    def update(self, done: int, ok: int) -> None:
        if self.bar is None:
            return
        self.bar.n = min(done, self.bar.total)
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"{ok / elapsed:.0f} samples/s, success {ok / done:.1%}" if done else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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

    bar = _Bar(sum(p.num_rows for p in todo), progress)
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
                    name=f"download-shard-{part.shard:05d}", num_cpus=1, max_retries=dl.task_max_retries,
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
