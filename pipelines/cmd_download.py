"""`wukong download INPUT... --output DIR`: URL lists (csv, tsv, parquet, jsonl) to raw shards."""

from __future__ import annotations

import json
import sys

from crawler.config import RESIZE_MODES


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("download", help="download URL lists into validated, hashed WebDataset shards",
                       description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="URL-list files (or directories of them)")
    p.add_argument("--output", required=True, metavar="DIR", help="directory of the raw shards")
    add_config_args(p)
    p.add_argument("--allow-private", action="store_true",
                   help="permit private, loopback and link-local targets (download.allow_private)")
    p.add_argument("--image-size", type=int, metavar="N", help="output image size (download.image_size)")
    p.add_argument("--resize-mode", choices=RESIZE_MODES, help="resize mode (download.resize_mode)")
    p.add_argument("--processes", type=int, metavar="N",
                   help="partitions downloaded in parallel, one Ray task each (download.processes)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.cli import UsageError, config_from_args
    from pipelines.download_job import DownloadError, run_download

    extra = []
    if args.allow_private:
        extra.append("download.allow_private=true")
    if args.image_size is not None:
        if args.image_size <= 0:
            raise UsageError("--image-size must be positive")
        extra.append(f"download.image_size={args.image_size}")
    if args.resize_mode:
        extra.append(f"download.resize_mode={args.resize_mode}")
    if args.processes is not None:
        if args.processes < 0:
            raise UsageError("--processes must be 0 (all CPUs) or more")
        extra.append(f"download.processes={args.processes}")
    cfg = config_from_args(args, extra)
    try:
        stats = run_download(args.inputs, args.output, cfg, progress=not args.no_progress)
    except DownloadError as exc:
        raise UsageError(str(exc)) from None
    ok = stats["by_status"].get("success", 0)
    print(json.dumps({"output": args.output, "rows": stats["rows"], "success": ok,
                      "failed": stats["by_status"].get("failed", 0), "shards_done": stats["shards_done"],
                      "shards": stats["shards"], "samples_per_s": stats["samples_per_s"],
                      "by_error": stats["by_error"]}, ensure_ascii=False))
    if stats["failed_shards"]:
        first = stats["failed_shards"][0]
        print(f"wukong download: {len(stats['failed_shards'])} shard(s) failed (first: {first['shard']:05d}: "
              f"{first['error']}); rerun the same command to finish them", file=sys.stderr)
        return 1
    return 0
