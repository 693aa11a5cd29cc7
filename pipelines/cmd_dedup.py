"""`wukong dedup RAW_DIR... --output DIR [--kept DIR]`: exact and pHash near-duplicate decisions."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("dedup", help="find exact and near duplicates in raw shards (decisions/ parts)")
    p.add_argument("raw_dirs", nargs="+", metavar="RAW_DIR", help="raw shard directories (ingest output)")
    p.add_argument("--output", required=True, metavar="DIR", help="where decisions/ and stats.json go")
    p.add_argument("--kept", metavar="DIR", help="filter output directory (or its kept/ directory, or a legacy "
                   "kept.parquet): only these keys, with their cleaned captions")
    p.add_argument("--radius", type=int, help="pHash Hamming radius (dedup.radius)")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.cli import UsageError, config_from_args
    from pipelines.dedup_job import resolve_kept, run_dedup

    extra = [f"dedup.radius={args.radius}"] if args.radius is not None else []
    cfg = config_from_args(args, extra)
    problems = cfg.dedup.problems()
    if problems:
        raise UsageError(problems[0])
    for d in args.raw_dirs:
        if not Path(d).is_dir():
            raise UsageError(f"raw shard directory not found: {d}")
    kept = None
    if args.kept:
        try:
            kept = resolve_kept(args.kept)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--kept {args.kept}: {exc}") from None
    stats = run_dedup(args.raw_dirs, args.output, cfg, kept=kept)
    print(json.dumps({k: stats[k] for k in ("examined", "kept", "removed", "by_reason")}, ensure_ascii=False))
    return 0
