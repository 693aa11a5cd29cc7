"""`wukong`: one command-line program with a subcommand per stage.

Each subcommand lives in its own module `pipelines/cmd_<name>.py` exposing `register(subparsers)`;
the parser it adds sets `func(args) -> int`. Unusable input exits non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import pipelines
from pipelines.config import ConfigError, WukongConfig, load_config


class UsageError(Exception):
    """Unusable input (missing file, no url column, unwritable output): one line, exit status 2."""


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any configuration key, e.g. --set download.retries=3")


def config_from_args(args: argparse.Namespace, extra: list[str] | None = None) -> WukongConfig:
    """Config file, then `--set`, then the subcommand's own flags (passed as overrides in `extra`)."""
    return load_config(getattr(args, "config", None), list(getattr(args, "overrides", [])) + list(extra or []))


def command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(pipelines.__path__) if m.name.startswith("cmd_"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wukong", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in command_modules():
        importlib.import_module(f"pipelines.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A caller that connected to Ray before (a test session, a notebook) keeps its connection.
    connected_before = _ray_connected()
    try:
        return int(args.func(args) or 0)
    except (UsageError, ConfigError) as exc:
        print(f"wukong {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wukong {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if not connected_before and _ray_connected():
            from pipelines.ray_runtime import shutdown_ray
            shutdown_ray()


def _ray_connected() -> bool:
    ray = sys.modules.get("ray")  # only commands that use Ray import it
    return ray is not None and ray.is_initialized()


if __name__ == "__main__":
    sys.exit(main())
