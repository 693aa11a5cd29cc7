"""Benchmark: the filter stage end to end against its bare rule chain, CPU per row (`make bench-filter-stage`).

Synthetic raw shard indexes in the project's format (RAW_INDEX_SCHEMA, `--rows-per-file` rows per
index as the downloader writes them) hold the realistic caption mix of `bench/filters.py` (jieba's
dictionary words in web-caption shapes), failed downloads and images the image rules drop.
`run_filter` runs on a local Ray started by this process; its CPU is the whole process tree's
(driver, Ray's daemons and workers, read from /proc), from the call to its return. It runs twice,
on two halves of one corpus: first with fresh workers (each pays its jieba / OpenCC / fastText
start-up, a fixed cost per worker), then with warm ones (the per-row cost a long run converges
to). In the same process the bare chain (`filters.chain.filter_captions`, loaded before timing,
best of `--repeats`) filters the same captions as each run. Printed per run: stage CPU-us/row,
chain us/row, their ratio, and the stage's CPU by process kind."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.filters as caption_bench  # noqa: E402
from bench.proctree import process_tree  # noqa: E402

SUCCESS_SHARE = 0.88   # downloads that succeeded (the rest are rows the stage skips)
# (width, height, weight) of the original images: most pass, some too small or too thin.
SIZES = [((640, 480), 30), ((1024, 768), 25), ((800, 800), 15), ((1280, 720), 15), ((150, 120), 8),
         ((1200, 300), 4), ((300, 1000), 3)]


class _CachedWeightsRandom(random.Random):
    """`random.Random` whose `choices(weights=...)` reuses the cumulative weights of a list it saw:
    the same draws as `random.Random` (it computes exactly these sums each call), without
    re-summing 20,000 weights per word, which made building the corpus the slowest part."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cumulative: dict[int, tuple[list, list]] = {}

    def choices(self, population, weights=None, *, cum_weights=None, k=1):
        if weights is not None and cum_weights is None:
            cached = self._cumulative.get(id(weights))
            if cached is None or cached[0] is not weights:
                cached = self._cumulative[id(weights)] = (weights, list(itertools.accumulate(weights)))
            weights, cum_weights = None, cached[1]
        return super().choices(population, cum_weights=cum_weights, k=k)


def build_captions(n: int, seed: int = 0) -> list[str]:
    """bench/filters.py's corpus (identical captions for the same n and seed)."""
    saved = caption_bench.random
    caption_bench.random = types.SimpleNamespace(Random=_CachedWeightsRandom)
    try:
        return caption_bench.build_corpus(n, seed)
    finally:
        caption_bench.random = saved


def write_raw_indexes(captions: list[str], directory: Path, rows_per_file: int, seed: int = 1) -> int:
    """Raw shard indexes of the captions; returns the number of successful rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shards.format import RAW_INDEX_SCHEMA

    rng = random.Random(seed)
    sizes, weights = [s for s, _ in SIZES], [w for _, w in SIZES]
    directory.mkdir(parents=True, exist_ok=True)
    success = 0
    for f, start in enumerate(range(0, len(captions), rows_per_file)):
        rows = []
        for i, caption in enumerate(captions[start:start + rows_per_file]):
            ok = rng.random() < SUCCESS_SHARE
            success += ok
            w, h = rng.choices(sizes, weights)[0] if ok else (None, None)
            rows.append({
                "key": f"{f:03d}{i:09d}", "url": f"https://img{rng.randrange(500)}.example.cn/p/{start + i}.jpg",
                "caption": caption, "status": "success" if ok else "failed",
                "error": None if ok else rng.choice(["http_404", "timeout", "not_image"]),
                "error_message": None if ok else "synthetic failure",
                "width": 256 if ok else None, "height": 256 if ok else None,
                "original_width": w, "original_height": h,
                "phash": rng.getrandbits(64) if ok else None,
                "sha256": f"{rng.getrandbits(256):064x}" if ok else None,
                "bytes": rng.randrange(8_000, 400_000) if ok else None, "format": "JPEG" if ok else None,
                "source_file": "urls.csv", "source_row": start + i})
        pq.write_table(pa.Table.from_pylist(rows, schema=RAW_INDEX_SCHEMA), directory / f"{f:05d}.parquet")
    return success


def _process_cpu(pid: int) -> tuple[str, float] | None:
    """(kind, user + system CPU seconds) of a live process: driver, worker or daemon."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            head, tail = fh.read().rsplit(")", 1)
        fields = tail.split()
        name = head.split("(", 1)[1]
    except (OSError, ValueError, IndexError):
        return None  # it ended while we read
    kind = "driver" if pid == os.getpid() else "daemons"
    if name.startswith("ray::"):  # task workers; Ray's agents (ray::DashboardAgent, ...) are daemons
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                kind = "daemons" if b"Agent" in fh.read().split(b"\0")[0] else "workers"
        except OSError:
            return None
    return kind, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu() -> dict[int, tuple[str, float]]:
    out = {}
    for pid in process_tree(os.getpid()):
        got = _process_cpu(pid)
        if got is not None:
            out[pid] = got
    return out


def cpu_between(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds by kind spent between two samples (processes started in between count whole),
    and `busy_workers`: how many worker processes spent a CPU tenth or more."""
    by_kind: dict[str, float] = {}
    busy = 0
    for pid, (kind, seconds) in after.items():
        spent = seconds - (before[pid][1] if pid in before else 0.0)
        by_kind[kind] = by_kind.get(kind, 0.0) + spent
        busy += kind == "workers" and spent >= 0.1
    return by_kind, busy


def measure_stage(raw: Path, output: Path, cfg) -> dict:
    from pipelines.filter_job import run_filter

    shutil.rmtree(output, ignore_errors=True)
    before, t0 = tree_cpu(), time.perf_counter()
    stats = run_filter([str(raw)], output, cfg)
    wall, after = time.perf_counter() - t0, tree_cpu()
    # Processes that ended during the run (none expected: Ray keeps its workers) are left out.
    cpu, busy = cpu_between(before, after)
    return {"stats": stats, "wall_s": wall, "cpu_s": cpu, "busy_workers": busy}


def measure_chain(captions: list[str], repeats: int) -> float:
    """Best CPU seconds of the bare chain over `captions` in this process (loaded beforehand)."""
    from filters.chain import filter_captions
    from filters.config import TextRulesConfig

    cfg = TextRulesConfig()
    jieba_dir = str(ROOT / ".cache" / "jieba")
    filter_captions(captions[:200], cfg, jieba_cache_dir=jieba_dir)
    best = None
    for _ in range(repeats):
        t0 = time.process_time()
        filter_captions(captions, cfg, jieba_cache_dir=jieba_dir)
        seconds = time.process_time() - t0
        best = seconds if best is None else min(best, seconds)
    return best


def _successful_captions(raw: Path) -> list[str]:
    import pyarrow.parquet as pq
    return [r["caption"] for f in sorted(raw.glob("*.parquet"))
            for r in pq.read_table(f, columns=["caption", "status"]).to_pylist() if r["status"] == "success"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300_000, help="raw index rows per stage run")
    ap.add_argument("--rows-per-file", type=int, default=10_000, help="rows per raw index (download.rows_per_shard)")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes of the bare chain (best counts)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs Ray may use")
    ap.add_argument("--workdir", help="where the raw indexes and outputs go (default: a temporary directory)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    from pipelines.config import load_config
    from pipelines.ray_runtime import init_ray, shutdown_ray

    work = Path(args.workdir or tempfile.mkdtemp(prefix="wukong-filter-stage-"))
    t0 = time.perf_counter()
    # Two halves of one corpus: the cold run filters the first, the warm run the second (the
    # workers' memo of repeated captions then holds only what a new shard would find there too).
    captions = build_captions(2 * args.rows)
    runs = {}
    for name, part in (("cold", captions[:args.rows]), ("warm", captions[args.rows:])):
        raw = work / f"raw-{name}"
        shutil.rmtree(raw, ignore_errors=True)
        runs[name] = {"raw": raw, "success": write_raw_indexes(part, raw, args.rows_per_file)}
    print(f"filter stage: 2 runs of {args.rows} raw rows in {-(-args.rows // args.rows_per_file)} indexes "
          f"(corpus built in {time.perf_counter() - t0:.0f} s)", flush=True)

    ray_temp = Path(tempfile.mkdtemp(prefix="wkfs-", dir="/tmp"))
    cfg = load_config(None, [f"ray.temp_dir={ray_temp}", "ray.include_dashboard=false",
                             f"ray.num_cpus={args.cpus}", "ray.object_store_memory_mb=512",
                             f"filter.jieba_cache_dir={ROOT / '.cache' / 'jieba'}"])
    before = tree_cpu()
    init_ray(cfg.ray)
    ray_start = sum(cpu_between(before, tree_cpu())[0].values())
    try:
        for name, run in runs.items():
            run.update(measure_stage(run["raw"], work / f"out-{name}", cfg))
    finally:
        shutdown_ray()
        shutil.rmtree(ray_temp, ignore_errors=True)

    fig = {"raw_rows_per_run": args.rows, "cpus": args.cpus, "ray_start_cpu_s": round(ray_start, 1)}
    print(f"  {'':29s} {'stage':>9s} {'chain':>9s} {'ratio':>6s}")
    for name, label in (("cold", "fresh Ray workers"), ("warm", "warm workers (next corpus)")):
        run = runs[name]
        rows = run["stats"]["rows_in"]
        assert rows == run["success"], (rows, run["success"])
        chain_us = measure_chain(_successful_captions(run["raw"]), args.repeats) / rows * 1e6
        cpu = sum(run["cpu_s"].values())
        stage_us = cpu / rows * 1e6
        fig[name] = {"rows_in": rows, "partitions": run["stats"]["partitions"], "kept": run["stats"]["kept"],
                     "wall_s": round(run["wall_s"], 1), "cpu_s": round(cpu, 1),
                     "stage_cpu_us_per_row": round(stage_us, 1), "chain_us_per_row": round(chain_us, 1),
                     "ratio_stage_to_chain": round(stage_us / chain_us, 2), "busy_workers": run["busy_workers"],
                     "cpu_s_by_process": {k: round(v, 1) for k, v in sorted(run["cpu_s"].items())}}
        by = ", ".join(f"{k} {v} s" for k, v in fig[name]["cpu_s_by_process"].items())
        print(f"  {label:29s} {stage_us:6.1f} us {chain_us:6.1f} us {stage_us / chain_us:6.2f}  "
              f"({rows} rows, wall {run['wall_s']:.1f} s; CPU {by}; {run['busy_workers']} busy workers)",
              flush=True)
    print(f"  Ray start-up (in neither run): {ray_start:.1f} CPU-s")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, ensure_ascii=False, indent=2))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
