"""`wukong demo-web --output DIR [--port N]`: generate the demo web (with its ground truth) and serve it."""

from __future__ import annotations

import json


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("demo-web", help="generate and serve the bundled demo web on 127.0.0.1")
    p.add_argument("--output", required=True, metavar="DIR", help="where the site and ground_truth.parquet go")
    p.add_argument("--port", type=int, metavar="N", help="port to serve on (default demo_web.port; 0: a free one)")
    p.add_argument("--generate-only", action="store_true", help="write the site and exit without serving")
    p.add_argument("--evalset", metavar="DIR",
                   help="also write the zero-shot evaluation sets (one folder per class) under DIR")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from crawler.demoweb.evalset import TASKS, generate_evalset
    from crawler.demoweb.generate import generate_demo_web
    from crawler.demoweb.server import serve_forever
    from pipelines.cli import UsageError, config_from_args

    cfg = config_from_args(args, [f"demo_web.port={args.port}"] if args.port is not None else [])
    d = cfg.demo_web
    if not 0 <= d.port < 65536:
        raise UsageError(f"port must be within 0..65535, got {d.port}")
    if d.pairs < 10:
        raise UsageError("demo_web.pairs must be at least 10")
    try:
        manifest = generate_demo_web(args.output, d)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(json.dumps({k: v for k, v in manifest.items() if k != "settings"}, ensure_ascii=False), flush=True)
    if args.evalset:
        for task in TASKS:
            print(f"evaluation set: {generate_evalset(args.evalset, task, d.eval_images_per_class, d.seed)}", flush=True)
    if args.generate_only:
        return 0
    try:
        serve_forever(args.output, d.host, d.port)
    except OSError as exc:
        raise UsageError(f"cannot serve on {d.host}:{d.port}: {exc}") from exc
    return 0
