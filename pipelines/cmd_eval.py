"""`wukong eval zeroshot|retrieval`: score a checkpoint written by `wukong pretrain`; the last line
printed is a JSON summary."""

from __future__ import annotations

import json
import os

# OpenMP threads that spin while waiting make torch on CPU 10x slower when other processes share
# the cores (measured here: 8 s instead of 0.6 s per tiny step); passive waiting costs little.
# libgomp reads this when torch loads, so it is set before any command imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("eval", help="zero-shot classification or image-text retrieval of a checkpoint")
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    z = tasks.add_parser("zeroshot", help="classify an image folder (one sub-folder per class)")
    z.add_argument("--checkpoint", required=True, metavar="CKPT", help="e.g. OUT/model/checkpoints/latest.pt")
    z.add_argument("--images", required=True, metavar="DIR", help="one folder of images per class")
    z.add_argument("--classnames", required=True, metavar="FILE",
                   help='Chinese class names: "folder<TAB>name" lines, or one name per sorted folder')
    z.add_argument("--templates", metavar="FILE", help="prompt templates, one per line with {} (default: bundled)")
    z.add_argument("--output", metavar="DIR", help="also write DIR/stats.json")
    add_config_args(z)
    z.set_defaults(func=run)
    r = tasks.add_parser("retrieval", help="R@1/5/10 both ways on held-out shards")
    r.add_argument("--checkpoint", required=True, metavar="CKPT")
    r.add_argument("--shards", required=True, metavar="SPEC")
    r.add_argument("--max-samples", type=int, metavar="N", help="pairs read from the shards (default: all)")
    r.add_argument("--output", metavar="DIR", help="also write DIR/stats.json")
    add_config_args(r)
    r.set_defaults(func=run)


def run(args) -> int:
    from pipelines.cli import UsageError, config_from_args
    from pipelines.train_job import run_eval_retrieval, run_eval_zeroshot
    from pipelines.train_usage import USAGE_ERRORS

    extra = []
    if getattr(args, "templates", None):
        extra.append(f"eval.templates={args.templates}")
    if getattr(args, "max_samples", None):
        extra.append(f"eval.max_samples={args.max_samples}")
    cfg = config_from_args(args, extra)
    try:
        if args.task == "zeroshot":
            result = run_eval_zeroshot(args.checkpoint, args.images, args.classnames, cfg, args.output)
        else:
            result = run_eval_retrieval(args.checkpoint, args.shards, cfg, args.output)
    except USAGE_ERRORS as exc:
        raise UsageError(str(exc).splitlines()[0]) from exc
    print(json.dumps(result, ensure_ascii=False))
    return 0
