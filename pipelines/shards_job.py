"""Final shards on Ray: read raw indexes (a task per raw shard), apply the filter and dedup
decisions, locate member offsets (a task per raw tar), plan splits and shuffle on the driver,
write each final shard as a task, then sizes, the dataset card and plots.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipelines.config import WukongConfig
from pipelines.ray_runtime import cluster_cpus, init_ray
from shards.atomic import remove_stale_temporaries, write_bytes_atomic, write_json_atomic
from shards.plan import plan_shards
from shards.report import dataset_card, write_plots
from shards.sources import locate, raw_shard_indexes, read_raw_index, successful
from shards.splits import SPLITS
from shards.writer import write_shard

log = logging.getLogger(__name__)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _load_raw(raw_dirs) -> tuple[pd.DataFrame, dict]:
    import ray

    files = raw_shard_indexes(raw_dirs)
    task = ray.remote(read_raw_index)
    results = ray.get([task.remote(str(f)) for f in files])
    errors = {str(f): r[1]["error"] for f, r in zip(files, results) if r[0] is None}
    for f, e in errors.items():
        log.warning("shards: unreadable raw index %s: %s", f, e)
    frames = [r[0] for r in results if r[0] is not None]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["key", "status", "error", "tar"])
    return df, {"index_files": len(files), "unreadable_index_files": errors}


def _select(raw: pd.DataFrame, filter_dir, dedup_dir, reasons: dict, funnel: dict) -> pd.DataFrame:
    funnel["raw rows"] = int(len(raw))
    failed = raw[~successful(raw)]
    reasons["ingest"] = {str(k): int(v) for k, v in failed["error"].fillna("unknown").value_counts().items()}
    df = raw[successful(raw)].copy()
    funnel["downloaded"] = int(len(df))
    dup = df["key"].duplicated(keep="first")
    if dup.any():
        log.warning("shards: %d rows repeat a key seen in an earlier shard; the first is used", int(dup.sum()))
        reasons["input"] = {"duplicate_key": int(dup.sum())}
        df = df[~dup]
    df["caption_original"] = df["caption"]
    if filter_dir is not None:
        kept = pq.read_table(Path(filter_dir) / "kept.parquet").to_pandas()
        cols = ["key", "caption"] + (["caption_original"] if "caption_original" in kept else [])
        kept = kept[cols].drop_duplicates("key")
        df = df.drop(columns=["caption"] + (["caption_original"] if "caption_original" in kept else []))
        df = df.merge(kept, on="key", how="inner")
        funnel["kept by filter"] = int(len(df))
        rejected = Path(filter_dir) / "rejected.parquet"
        if rejected.is_file():
            r = pq.read_table(rejected, columns=["reason"]).to_pandas()
            reasons["filter"] = {str(k): int(v) for k, v in r["reason"].value_counts().items()}
    if dedup_dir is not None:
        dec = pq.read_table(Path(dedup_dir) / "decisions.parquet", columns=["key", "keep", "reason"]).to_pandas()
        reasons["dedup"] = {str(k): int(v) for k, v in dec["reason"].value_counts().items()}
        df = df[df["key"].isin(set(dec.loc[dec["keep"], "key"]))]
        funnel["kept by dedup"] = int(len(df))
    return df


def _locate_all(df: pd.DataFrame, reasons: dict) -> pd.DataFrame:
    import ray

    task = ray.remote(locate)
    groups = list(df.groupby("tar", sort=True)["key"])
    results = ray.get([task.remote(tar, keys.tolist()) for tar, keys in groups])
    offsets = {}
    missing = 0
    tar_errors = {}
    for (tar, _), (found, st) in zip(groups, results):
        offsets.update(found)
        missing += st["missing_image_in_tar"]
        if st["tar_error"]:
            tar_errors[tar] = st["tar_error"]
            log.warning("shards: damaged raw tar %s: %s", tar, st["tar_error"])
    if missing:
        reasons.setdefault("shards", {})["missing_image_in_tar"] = missing
    df = df[df["key"].isin(offsets)].copy()
    cols = np.array([offsets[k] for k in df["key"]], dtype=np.int64).reshape(-1, 4)
    df["jpg_off"], df["jpg_len"], df["json_off"], df["json_len"] = cols.T
    reasons.setdefault("shards", {}).update({"damaged_tars": len(tar_errors)} if tar_errors else {})
    return df


def _remove_extra_shards(split_dir: Path, count: int) -> None:
    """Shards of an earlier, larger plan would otherwise sit beside the new ones."""
    for p in split_dir.glob("*.tar"):
        if p.stem.isdigit() and int(p.stem) >= count:
            p.unlink()
            p.with_suffix(".parquet").unlink(missing_ok=True)


def run_shards(raw_dirs, output, cfg: WukongConfig, filter_dir=None, dedup_dir=None) -> dict:
    import ray

    sc = cfg.shards
    problems = sc.problems()
    if problems:
        raise ValueError(problems[0])
    init_ray(cfg.ray)
    t0 = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    raw, load_stats = _load_raw(raw_dirs)
    reasons: dict[str, dict] = {}
    funnel: dict[str, int] = {}
    selected = _locate_all(_select(raw, filter_dir, dedup_dir, reasons, funnel), reasons)
    plans = plan_shards(selected, sc)

    task = ray.remote(write_shard).options(max_retries=2)
    limit = sc.processes or cluster_cpus()
    splits = {}
    pending = []
    written = []
    for split in SPLITS:
        split_dir = out / split
        if split not in plans:
            continue
        split_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(split_dir)
        _remove_extra_shards(split_dir, len(plans[split]))
        for p in plans[split]:
            pending.append(task.remote(str(split_dir / f"{p.name}.tar"), str(split_dir / f"{p.name}.parquet"),
                                       split, p.rows, p.digest))
            # Bounded in-flight tasks: shard rows are shipped with each task.
            if len(pending) >= 2 * limit:
                ready, pending = ray.wait(pending, num_returns=1)
                written.extend(ray.get(ready))
        splits[split] = {"samples": sum(len(p.rows) for p in plans[split]), "shards": len(plans[split])}
    written.extend(ray.get(pending))  # raises on a failed shard; a rerun resumes
    for split, plist in plans.items():
        sizes = {f"{p.name}.tar": len(p.rows) for p in plist}
        write_json_atomic(out / split / "sizes.json", sizes)
        write_bytes_atomic(out / split / "__len__", str(sum(sizes.values())).encode())
    for split, s in splits.items():
        funnel[f"written: {split}"] = s["samples"]

    stats = {
        "input": load_stats, "funnel": funnel, "reasons": reasons, "splits": splits,
        "seed": sc.seed, "samples_per_shard": sc.samples_per_shard,
        "shards_skipped_as_done": sum(1 for w in written if w.get("skipped")),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    stage_stats = {}
    for d in raw_dirs:
        stage_stats[f"ingest ({Path(d).name})"] = _read_json(Path(d) / "stats.json")
    if filter_dir is not None:
        stage_stats["filter"] = _read_json(Path(filter_dir) / "stats.json")
    if dedup_dir is not None:
        stage_stats["dedup"] = _read_json(Path(dedup_dir) / "stats.json")
    stats["plots"] = write_plots(
        out, selected["caption"].fillna("").str.len().to_numpy(),
        selected["original_width"].fillna(0).to_numpy(), selected["original_height"].fillna(0).to_numpy(),
        funnel, sc.plot_bins)
    command = "wukong shards " + " ".join(shlex.quote(str(d)) for d in raw_dirs) + f" --output {shlex.quote(str(out))}" \
        + (f" --filter {shlex.quote(str(filter_dir))}" if filter_dir else "") \
        + (f" --dedup {shlex.quote(str(dedup_dir))}" if dedup_dir else "")
    write_bytes_atomic(out / "README.md", dataset_card(sc, stats, stage_stats, command).encode("utf-8"))
    write_json_atomic(out / "stats.json", stats)
    log.info("shards: %s", {k: v["samples"] for k, v in splits.items()})
    return stats
