"""`wukong config`: print the effective configuration (defaults, file, overrides) as YAML."""

from __future__ import annotations

from pipelines.config import dump_yaml


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("config", help="print the effective configuration as YAML")
    p.add_argument("--doc", action="store_true", help="print the reference of every key (markdown) instead")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.cli import config_from_args
    if args.doc:
        from pipelines.config_doc import render
        print(render(), end="")
        return 0
    print(dump_yaml(config_from_args(args)), end="")
    return 0
