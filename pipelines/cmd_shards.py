"""`wukong shards RAW_DIR... --output DIR [--filter DIR] [--dedup DIR]`: the final WebDataset shards."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("shards", help="write the final train/val WebDataset shards, dataset card and plots")
    p.add_argument("raw_dirs", nargs="+", metavar="RAW_DIR", help="raw shard directories (ingest output)")
    p.add_argument("--output", required=True, metavar="DIR", help="output directory ({split}/NNNNNN.tar)")
    p.add_argument("--filter", dest="filter_dir", metavar="DIR", help="filter output (kept/ parts, or a legacy kept.parquet: keys and cleaned captions)")
    p.add_argument("--dedup", dest="dedup_dir", metavar="DIR", help="dedup output (decisions/ parts, or a legacy decisions.parquet)")
    p.add_argument("--samples-per-shard", type=int, help="shards.samples_per_shard")
    p.add_argument("--seed", type=int, help="shards.seed")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.cli import UsageError, config_from_args
    from pipelines.shards_job import run_shards
    from shards.sources import MissingStageOutput, stage_output

    extra = []
    if args.samples_per_shard is not None:
        extra.append(f"shards.samples_per_shard={args.samples_per_shard}")
    if args.seed is not None:
        extra.append(f"shards.seed={args.seed}")
    cfg = config_from_args(args, extra)
    problems = cfg.shards.problems()
    if problems:
        raise UsageError(problems[0])
    for d in args.raw_dirs:
        if not Path(d).is_dir():
            raise UsageError(f"raw shard directory not found: {d}")
    try:
        if args.filter_dir:
            stage_output(args.filter_dir, "kept", "filter")
        if args.dedup_dir:
            stage_output(args.dedup_dir, "decisions", "dedup")
    except MissingStageOutput as exc:
        raise UsageError(str(exc)) from None
    stats = run_shards(args.raw_dirs, args.output, cfg, filter_dir=args.filter_dir, dedup_dir=args.dedup_dir)
    print(json.dumps({"splits": stats["splits"], "funnel": stats["funnel"]}, ensure_ascii=False))
    return 0
