"""`wukong demo`: crawl, filter, dedup, shards, pretrain and evaluate on the bundled demo web,
then print a per-stage report checked against the demo web's ground truth."""

from __future__ import annotations

import os

# Passive OpenMP waiting keeps torch fast when Ray workers share the cores (see cmd_pretrain).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("demo", help="the whole pipeline on the bundled demo web, with a report")
    p.add_argument("--output", default="out/demo", metavar="DIR", help="all outputs go under DIR")
    p.add_argument("--pairs", type=int, metavar="N", help="image-text pairs on the demo web")
    p.add_argument("--train-seconds", type=float, metavar="S", help="training time budget")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.cli import config_from_args
    from pipelines.demo_job import REPORT_MD, run_demo

    extra = []
    if args.pairs:
        extra.append(f"demo_web.pairs={args.pairs}")
    if args.train_seconds:
        extra.append(f"demo.train_time_budget_s={args.train_seconds}")
    cfg = config_from_args(args, extra)
    report = run_demo(args.output, cfg)
    with open(os.path.join(report["output"], REPORT_MD), encoding="utf-8") as fh:
        print(fh.read(), end="")
    return 0
