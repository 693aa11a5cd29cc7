"""Stage counters on the Ray metrics endpoint (`ray.util.metrics`), shown by the dashboard.

Every counter is named `wukong_<stage>_<name>` (Prometheus adds `ray_` and `_total`) and labelled
with `stage` and `run_id` (the Ray job id of the driver that started the work, so runs on one head
can be told apart) plus the caller's own labels. Calls from a process without Ray, or any failure
of the metrics system, are ignored: metrics are a view, never a reason to fail a partition.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_COUNTERS: dict[tuple, object] = {}
_GAUGES: dict[tuple, object] = {}


def run_id() -> str:
    """The Ray job id of this driver (or of the driver that submitted this task); "" without Ray."""
    try:
        import ray
        if not ray.is_initialized():
            return ""
        return ray.get_runtime_context().get_job_id() or ""
    except Exception:  # noqa: BLE001 - a view only
        return ""


def _metric(cache: dict, kind: str, stage: str, name: str, tag_keys: tuple[str, ...], description: str):
    key = (stage, name, tag_keys)
    metric = cache.get(key)
    if metric is None:
        from ray.util import metrics as ray_metrics
        cls = ray_metrics.Counter if kind == "counter" else ray_metrics.Gauge
        metric = cache[key] = cls(f"wukong_{stage.replace('-', '_')}_{name}",
                                  description=description or f"wukong {stage}: {name}",
                                  tag_keys=("stage", "run_id") + tag_keys)
    return metric


def count(stage: str, name: str, value: float = 1, description: str = "", **tags: str) -> None:
    """Add `value` (> 0) to counter `wukong_<stage>_<name>` with labels stage, run_id and `tags`."""
    if value <= 0:
        return  # Ray counters reject increments of 0
    try:
        import ray
        if not ray.is_initialized():
            return
        keys = tuple(sorted(tags))
        _metric(_COUNTERS, "counter", stage, name, keys, description).inc(
            value, tags={"stage": stage, "run_id": run_id(), **{k: str(tags[k]) for k in keys}})
    except Exception as exc:  # noqa: BLE001 - a view only
        log.debug("metrics: %s/%s not reported: %s", stage, name, exc)


def count_many(stage: str, name: str, by_label: dict, label: str, description: str = "") -> None:
    """One `count` per (label value, n) of `by_label`, e.g. rows by reason."""
    for value, n in by_label.items():
        count(stage, name, n, description, **{label: value})


def gauge(stage: str, name: str, value: float, description: str = "", **tags: str) -> None:
    """Set gauge `wukong_<stage>_<name>` (e.g. samples/s, loss)."""
    try:
        import ray
        if not ray.is_initialized():
            return
        keys = tuple(sorted(tags))
        _metric(_GAUGES, "gauge", stage, name, keys, description).set(
            value, tags={"stage": stage, "run_id": run_id(), **{k: str(tags[k]) for k in keys}})
    except Exception as exc:  # noqa: BLE001 - a view only
        log.debug("metrics: %s/%s not reported: %s", stage, name, exc)
