"""`wukong pretrain`: contrastive pretraining (CLIP, FILIP token-wise, Wukong reduced-token, LiT)
on WebDataset shards; ends by printing a JSON summary as its last line."""

from __future__ import annotations

import json
import os

# OpenMP threads that spin while waiting make torch on CPU 10x slower when other processes share
# the cores (measured here: 8 s instead of 0.6 s per tiny step); passive waiting costs little.
# libgomp reads this when torch loads, so it is set before any command imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("pretrain", help="train a contrastive image-text model on shards",
                       description=__doc__.replace("\n", " "))
    p.add_argument("--train-shards", required=True, metavar="SPEC",
                   help="a shard directory, a brace pattern such as out/{000000..000009}.tar, or several joined by ::")
    p.add_argument("--output", required=True, metavar="DIR", help="writes DIR/checkpoints/latest.pt")
    p.add_argument("--val-shards", metavar="SPEC", help="held-out shards scored for retrieval at the end")
    p.add_argument("--model", help="preset: tiny, vit-b-32, vit-l-14")
    p.add_argument("--head", choices=["global", "tokenwise", "reduced"])
    p.add_argument("--lock-image", metavar="CKPT", help="LiT: image tower from a checkpoint file or MODEL:TAG")
    p.add_argument("--steps", type=int, metavar="N")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--time-budget", type=float, metavar="SECONDS")
    p.add_argument("--batch-size", type=int, metavar="N", help="per trainer process")
    p.add_argument("--num-workers", type=int, metavar="N", help="trainer processes (Ray Train); 1 = this process")
    p.add_argument("--gpu", action="store_true", help="one GPU per trainer process, NCCL, bf16")
    p.add_argument("--resume", metavar="latest|CKPT", help="continue the run in --output (latest) or from a file")
    add_config_args(p)
    p.set_defaults(func=run)


def _overrides(args) -> list[str]:
    flags = {"model": args.model, "head": args.head, "lock_image": args.lock_image, "steps": args.steps,
             "epochs": args.epochs, "time_budget_s": args.time_budget, "batch_size": args.batch_size,
             "num_workers": args.num_workers, "use_gpu": True if args.gpu else None}
    return [f"train.{k}={v}" for k, v in flags.items() if v is not None]


def run(args) -> int:
    from pipelines.cli import UsageError, config_from_args
    from pipelines.train_job import run_pretrain
    from pipelines.train_usage import USAGE_ERRORS

    cfg = config_from_args(args, _overrides(args))
    try:
        summary = run_pretrain(args.train_shards, args.output, cfg, val_shards=args.val_shards, resume=args.resume)
    except USAGE_ERRORS as exc:
        raise UsageError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    print(json.dumps(summary, ensure_ascii=False))
    return 0
