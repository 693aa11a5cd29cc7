"""Final shards on Ray, as a shuffle in three steps of plain Ray tasks, with a bounded driver.

1. `shards-plan`, one task per raw index (`shards.plan`): join with the filter's kept rows and the
   dedup decisions of its key range, locate members in the raw tar, give each sample its split and
   shuffle position; write `_work/plan/NNNNN.arrow` (a batch per gather group); return counts.
2. `shards-gather`, one task per gather group (`shards.gather`): read its batch of every plan file,
   rank the rows in their split's shuffled order, write one piece per final shard it touches.
3. `shards-write`, one task per final shard (`shards.writer`): read its pieces, shuffle locally,
   copy members from the raw tars by offset, write tar + parquet index atomically.

The driver reads raw index footers (rows, key range), the stages' manifests, and the tasks' small
results: O(raw shards + final shards + gather groups), never a row. Every step's files are written
atomically and recorded with their inputs' fingerprint, so a rerun after `kill -9` skips what is
done and finishes with every kept sample exactly once; `_work/` is removed after a successful run.
See docs/scale.md ("Final shards") for the sizes at 100M.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipelines import metrics
from pipelines.config import WukongConfig
from pipelines.ray_runtime import cluster_cpus, init_ray
from shards.atomic import remove_stale_temporaries, write_bytes_atomic, write_json_atomic
from shards.gather import gather_group, piece_name
from shards.parts import RangeIndex
from shards.plan import PlanInputs, PlanParams, plan_partition
from shards.report import dataset_card, write_plots
from shards.sources import index_summary, raw_shard_indexes, stage_output
from shards.splits import SPLITS
from shards.summary import PlanSummary, ShardPieces
from shards.writer import write_final_shard

log = logging.getLogger(__name__)

STAGE = "shards"
WORK_DIR = "_work"
# Parallel footer reads on the driver (I/O bound: pyarrow releases the GIL).
FOOTER_THREADS = 8


def _plan_task(inputs: PlanInputs, params: PlanParams, out_path: str) -> dict:
    result = plan_partition(inputs, params, out_path)
    if not result["reused"]:
        metrics.count_many(STAGE, "rows_planned", {SPLITS[s]: sum(c) for s, c in enumerate(result["counts"])}, "split")
    return result


def _gather_task(*args) -> dict:
    result = gather_group(*args)
    if not result["reused"]:
        metrics.count(STAGE, "rows_gathered", sum(n for _, _, n in result["pieces"]))
    return result


def _write_task(tar_path, index_path, split, split_index, shard, pieces, seed, read_threads, read_batch) -> dict:
    result = write_final_shard(tar_path, index_path, split, split_index, shard, pieces, seed, read_threads, read_batch)
    if result["skipped"]:
        metrics.count(STAGE, "shards_skipped", 1, split=split)
    else:
        metrics.count(STAGE, "samples_written", result["samples"], split=split)
        metrics.count(STAGE, "shards_written", 1, split=split)
    return result


def _map_bounded(remote, calls, limit: int, consume) -> None:
    """Run `remote` over `calls` (argument tuples) with at most `limit` tasks in flight, handing
    each result to `consume` as it arrives; the first failure raises (a rerun resumes)."""
    import ray

    pending = []
    for args in calls:
        pending.append(remote.remote(*args))
        while len(pending) >= limit:
            ready, pending = ray.wait(pending, num_returns=1)
            consume(ray.get(ready[0]))
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        consume(ray.get(ready[0]))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remove_extra_shards(split_dir: Path, count: int) -> None:
    """Shards of an earlier, larger plan would otherwise sit beside the new ones."""
    for p in split_dir.glob("*.tar"):
        if p.stem.isdigit() and int(p.stem) >= count:
            p.unlink()
            p.with_suffix(".parquet").unlink(missing_ok=True)


def _stage_parts(filter_dir, dedup_dir) -> dict[str, RangeIndex | None]:
    """Range indexes of the previous stages' outputs (manifests only); rejected rows are optional."""
    out: dict[str, RangeIndex | None] = {"kept": None, "rejected": None, "decisions": None}
    if filter_dir is not None:
        out["kept"] = RangeIndex(stage_output(filter_dir, "kept", "filter"))
        base = Path(filter_dir)
        if (base / "rejected").is_dir() or (base / "rejected.parquet").is_file():
            out["rejected"] = RangeIndex(stage_output(filter_dir, "rejected", "filter"))
    if dedup_dir is not None:
        out["decisions"] = RangeIndex(stage_output(dedup_dir, "decisions", "dedup"))
    return out


def _plan_inputs(files: list[Path], summaries, parts: dict) -> list[PlanInputs]:
    """Each raw index with the parts that meet its key range (every part when its footer could
    not be read here: the task decides with the rows it reads)."""
    inputs = []
    for source, (f, (rows, lo, hi)) in enumerate(zip(files, summaries)):
        def paths(name):
            index = parts[name]
            if index is None:
                return None
            return () if rows == 0 else tuple(index.paths(lo, hi))
        inputs.append(PlanInputs(str(f), source, paths("kept"), paths("rejected"), paths("decisions")))
    return inputs


def _gather_calls(summary: PlanSummary, plan_dir: Path, gather_dir: Path, sps: int):
    import ray

    # One copy of the plan file list in the object store (P paths), not one per gather task.
    plan_files = ray.put(summary.plan_files(lambda s: str(plan_dir / f"{s:05d}.arrow")))
    offsets = summary.group_offsets()
    base = summary.digest()
    for g in range(summary.params.groups):
        if not summary.counts[:, g].any():
            continue
        fp = f"{base}:{sps}:{summary.params.groups}:{g}"
        yield (g, plan_files, [int(o) for o in offsets[:, g]], sps, str(gather_dir / f"{g:05d}"), fp)


def _write_calls(out: Path, shard_counts: list[int], pieces: ShardPieces, gather_dir: Path, sc):
    for s, split in enumerate(SPLITS):
        for i in range(shard_counts[s]):
            name = f"{i:06d}"
            paths = [str(gather_dir / f"{g:05d}" / piece_name(split, i)) for g in pieces.of(s, i)]
            yield (str(out / split / f"{name}.tar"), str(out / split / f"{name}.parquet"), split, s, i, paths,
                   sc.seed, sc.read_threads, sc.read_batch)


def run_shards(raw_dirs, output, cfg: WukongConfig, filter_dir=None, dedup_dir=None) -> dict:
    import ray

    sc = cfg.shards
    problems = sc.problems()
    if problems:
        raise ValueError(problems[0])
    parts = _stage_parts(filter_dir, dedup_dir)  # fails fast, before Ray starts
    files = raw_shard_indexes(raw_dirs)
    init_ray(cfg.ray)
    t0 = time.perf_counter()
    out = Path(output)
    work = out / WORK_DIR
    plan_dir, gather_dir = work / "plan", work / "gather"
    for d in (out, plan_dir, gather_dir):
        d.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(d)
    limit = sc.processes or 2 * cluster_cpus()

    # 1. Plan: one task per raw index. Gather groups are fixed first, from the raw row count (an
    # upper bound of the kept rows), so that no plan task needs the final number of shards.
    with ThreadPoolExecutor(FOOTER_THREADS) as pool:
        summaries = list(pool.map(index_summary, files))
    raw_rows = sum(r or 0 for r, _, _ in summaries)
    groups = max(1, -(-raw_rows // sc.gather_rows))
    params = PlanParams.from_config(sc, groups)
    summary = PlanSummary(params)
    plan = ray.remote(_plan_task).options(name="shards-plan", max_retries=2)
    _map_bounded(plan, ((i, params, str(plan_dir / f"{i.source:05d}.arrow"))
                        for i in _plan_inputs(files, summaries, parts)), limit, summary.add)
    for f, e in summary.errors.items():
        log.warning("shards: unreadable raw index %s: %s", f, e)
    for f, e in summary.tar_errors.items():
        log.warning("shards: damaged raw tar of %s: %s", f, e)
    t_plan = time.perf_counter()

    # 2. Gather: one task per group; shard count per split from the plan counts.
    shard_counts = summary.shards_per_split(sc.samples_per_shard)
    pieces = ShardPieces()
    gather = ray.remote(_gather_task).options(name="shards-gather", max_retries=2)
    _map_bounded(gather, _gather_calls(summary, plan_dir, gather_dir, sc.samples_per_shard), limit, pieces.add)
    t_gather = time.perf_counter()

    # 3. Write: one task per final shard.
    for s, split in enumerate(SPLITS):
        split_dir = out / split
        if shard_counts[s] or split_dir.is_dir():
            split_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(split_dir)
            _remove_extra_shards(split_dir, shard_counts[s])
    sizes: dict[str, dict[str, int]] = {split: {} for split in SPLITS}
    written = {"skipped": 0, "duplicate_key": 0, "bytes": 0, "missing_image_in_tar": 0}

    def consume(r: dict) -> None:
        sizes[r["split"]][f"{r['shard']:06d}.tar"] = r["samples"]
        written["skipped"] += r["skipped"]
        written["duplicate_key"] += r["duplicate_key"]
        written["bytes"] += r["bytes"]
        written["missing_image_in_tar"] += r.get("missing_image_in_tar", 0)

    write = ray.remote(_write_task).options(name="shards-write", max_retries=2)
    _map_bounded(write, _write_calls(out, shard_counts, pieces, gather_dir, sc), limit, consume)
    t_write = time.perf_counter()

    splits = {}
    for s, split in enumerate(SPLITS):
        if not shard_counts[s]:
            for stale in ("sizes.json", "__len__"):
                (out / split / stale).unlink(missing_ok=True)
            continue
        split_sizes = dict(sorted(sizes[split].items()))
        write_json_atomic(out / split / "sizes.json", split_sizes)
        write_bytes_atomic(out / split / "__len__", str(sum(split_sizes.values())).encode())
        splits[split] = {"samples": sum(split_sizes.values()), "shards": shard_counts[s]}
    funnel = summary.funnel_steps()
    for split, st in splits.items():
        funnel[f"written: {split}"] = st["samples"]
    reasons = summary.reasons_dict()
    if written["duplicate_key"]:
        reasons.setdefault("input", {})
        reasons["input"]["duplicate_key"] = reasons["input"].get("duplicate_key", 0) + written["duplicate_key"]
    if written["missing_image_in_tar"]:
        lost = reasons.setdefault("shards", {})
        lost["missing_image_in_tar"] = lost.get("missing_image_in_tar", 0) + written["missing_image_in_tar"]
        log.warning("shards: %d samples' images were not where their raw index or plan said and not "
                    "found in their tar on a rescan (tar changed since?)", written["missing_image_in_tar"])
    if reasons.get("input", {}).get("duplicate_key"):
        log.warning("shards: %d rows repeat a key seen in an earlier shard; the first is used",
                    reasons["input"]["duplicate_key"])
    hist = summary.histograms
    stats = {
        "input": {"index_files": len(files), "unreadable_index_files": summary.errors},
        "funnel": funnel, "reasons": reasons, "splits": splits,
        "seed": sc.seed, "samples_per_shard": sc.samples_per_shard,
        "shards_skipped_as_done": written["skipped"],
        "exchange": {"plan_files": len(summary.plan_files(str)), "plans_reused": summary.reused,
                     "gather_groups": groups, "groups_reused": pieces.reused, "pieces": pieces.pieces},
        "caption_length": {"samples": hist.samples, "mean": hist.mean_caption_length(),
                           "median": hist.median_caption_length()},
        "seconds": round(time.perf_counter() - t0, 3),
        "seconds_by_step": {"plan": round(t_plan - t0, 3), "gather": round(t_gather - t_plan, 3),
                            "write": round(t_write - t_gather, 3)},
    }
    stage_stats = {}
    for d in raw_dirs:
        stage_stats[f"ingest ({Path(d).name})"] = _read_json(Path(d) / "stats.json")
    if filter_dir is not None:
        stage_stats["filter"] = _read_json(Path(filter_dir) / "stats.json")
    if dedup_dir is not None:
        stage_stats["dedup"] = _read_json(Path(dedup_dir) / "stats.json")
    stats["plots"] = write_plots(out, hist, funnel, sc.plot_bins)
    command = "wukong shards " + " ".join(shlex.quote(str(d)) for d in raw_dirs) + f" --output {shlex.quote(str(out))}" \
        + (f" --filter {shlex.quote(str(filter_dir))}" if filter_dir else "") \
        + (f" --dedup {shlex.quote(str(dedup_dir))}" if dedup_dir else "")
    write_bytes_atomic(out / "README.md", dataset_card(sc, stats, stage_stats, command).encode("utf-8"))
    write_json_atomic(out / "stats.json", stats)
    if not sc.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    log.info("shards: %s", {k: v["samples"] for k, v in splits.items()})
    return stats
