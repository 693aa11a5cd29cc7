"""`wukong filter INPUT... --output DIR`: Wukong's text and image rules; kept/ and rejected/ parts."""

from __future__ import annotations

import json


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("filter", help="apply the text and image rules (kept/ and rejected/ parquet parts)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="tables with a caption column (parquet/csv/tsv/jsonl) or raw shard directories")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="where kept/ and rejected/ (parquet parts + _manifest.json, one part per "
                        "partition) and stats.json go; a rerun after an interruption resumes")
    p.add_argument("--rules", choices=("all", "text", "image"), default="all",
                   help="which rules drop rows (captions are cleaned and masked in every case)")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from filters.tables import InputError
    from pipelines.cli import UsageError, config_from_args
    from pipelines.filter_job import run_filter

    cfg = config_from_args(args)
    if cfg.filter.rows_per_partition < 1:
        raise UsageError("filter.rows_per_partition must be at least 1")
    try:
        stats = run_filter(args.inputs, args.output, cfg, rules=args.rules)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    print(json.dumps({k: stats[k] for k in ("rows_in", "kept", "rejected", "by_reason")}, ensure_ascii=False))
    return 0
