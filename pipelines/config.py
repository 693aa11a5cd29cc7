"""The one typed configuration of the whole pipeline.

Each stage package owns a dataclass with its own documented defaults (the Wukong thresholds);
this module composes them into `WukongConfig`, loads YAML files and applies `--set KEY=VALUE`
overrides with type checking, so a typo or a wrong type is a one-line error, never a silent default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crawler.config import CrawlConfig, DemoWebConfig, DownloadConfig
from dedup.config import DedupConfig
from filters.config import FilterConfig
from shards.config import ShardsConfig
from train.config import EvalConfig, TrainConfig


class ConfigError(ValueError):
    """A configuration file or override that cannot be applied."""


@dataclass
class RayConfig:
    """How stages reach Ray. `RAY_ADDRESS` in the environment always wins over `address`."""

    # A cluster to attach to (host:port or ray://host:port); None starts a local Ray.
    address: str | None = None
    # Project-local so runs never touch /tmp/ray of other users; relative paths are from the CWD.
    temp_dir: str = ".ray"
    # The Ray dashboard of a local Ray: on loopback by default.
    include_dashboard: bool = True
    dashboard_host: str = "127.0.0.1"
    # Dashboard port of the head started by `wukong dashboard start` (a free one when it is taken).
    dashboard_port: int = 8265
    # Dashboard port of a Ray started for one run; 0: a free port, so a run never holds the head's.
    local_dashboard_port: int = 0
    # GCS port of the head started by `wukong dashboard start` (`make dashboard`); a free one when taken.
    head_port: int = 6379
    # None lets Ray count the machine's cores.
    num_cpus: int | None = None
    # Ray's default (30% of RAM) is too greedy on small machines; stages stream, they need little.
    object_store_memory_mb: int = 1024
    # When attaching to a remote cluster, ship this project's packages with the job.
    ship_code: bool = True
    # Start Prometheus (on 127.0.0.1) with the head when the `prometheus` program is installed.
    prometheus: bool = True
    # Port of that Prometheus; 0: a free port.
    prometheus_port: int = 0
    # Grafana URL shown in the dashboard's Metrics tab (RAY_GRAFANA_HOST); "" for none.
    grafana_host: str = ""
    # Seconds the head is given to start (dashboard answering, agents listening) before it is undone.
    head_start_timeout_s: float = 90.0
    # Seconds `wukong dashboard stop` waits after SIGTERM before it sends SIGKILL.
    stop_timeout_s: float = 10.0


@dataclass
class DemoConfig:
    """`wukong demo` (`make demo`): the whole pipeline on the bundled demo web."""

    # Training time when no step, epoch or time budget is set in `train`.
    train_time_budget_s: float = 150.0
    # Held-out zero-shot tasks drawn like the demo web (shape, colour, count, object).
    eval_tasks: list[str] = field(default_factory=lambda: ["shape", "colour", "object"])
    eval_per_class: int = 20


@dataclass
class WukongConfig:
    ray: RayConfig = field(default_factory=RayConfig)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    demo_web: DemoWebConfig = field(default_factory=DemoWebConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    shards: ShardsConfig = field(default_factory=ShardsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` (already YAML-parsed) against the annotated type, converting where lossless."""
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: null is not allowed here")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_dict(cls: type, data: dict, where: str = "") -> Any:
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown configuration key {where + '.' if where else ''}{unknown[0]} "
                          f"(known: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(v, hints[k], f"{where + '.' if where else ''}{k}") for k, v in data.items()}
    return cls(**kwargs)


def merge_dict(cfg: Any, data: dict, where: str = "") -> Any:
    """Return a copy of dataclass `cfg` with the (nested) mapping `data` applied on top."""
    hints = _field_types(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"unknown configuration key {path} (known: {', '.join(sorted(names))})")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = merge_dict(current, value, path)
        else:
            changes[key] = _coerce(value, hints[key], path)
    return dataclasses.replace(cfg, **changes)


def parse_override(text: str) -> dict:
    """`a.b.c=value` -> {"a": {"b": {"c": value}}}, the value parsed as YAML (so 3, 0.5, true, [x, y])."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    node = out
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: WukongConfig | None = None) -> WukongConfig:
    """Defaults, then the YAML file, then each `--set` override in order."""
    cfg = base or WukongConfig()
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}".splitlines()[0]) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        cfg = merge_dict(cfg, data)
    for text in overrides:
        cfg = merge_dict(cfg, parse_override(text))
    return cfg


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), allow_unicode=True, sort_keys=False)


def describe(cls: type = WukongConfig, prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf key with its default, for the README and `wukong config`."""
    rows: list[tuple[str, Any]] = []
    inst = cls()
    for f in dataclasses.fields(inst):
        value = getattr(inst, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            rows.extend(describe(type(value), key + "."))
        else:
            rows.append((key, value))
    return rows
