"""Stage counters on the Ray metrics endpoint (`ray.util.metrics`), shown by the dashboard.

Every counter is named `wukong_<stage>_<name>` (Prometheus adds `ray_` and `_total`) and labelled
with `stage` and `run_id` (the Ray job id of the driver that started the work, so runs on one head
can be told apart) plus the caller's own labels (one set of label names per metric name, e.g.
`partition` for per-partition work). Calls from a process without Ray, or any failure of the
metrics system, are ignored: metrics are a view, never a reason to fail a partition.

`read_endpoint` reads them back from a node's Prometheus endpoint (`wukong dashboard status`, tests).
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


def count_many(stage: str, name: str, by_label: dict, label: str, description: str = "", **tags: str) -> None:
    """One `count` per (label value, n) of `by_label`, e.g. rows by reason; `tags` go on each."""
    for value, n in by_label.items():
        count(stage, name, n, description, **tags, **{label: value})


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


# Prometheus' name of a wukong metric on Ray's endpoint: Ray prefixes `ray_`.
EXPORTED_PREFIX = "ray_wukong_"


def read_endpoint(url: str, prefix: str = EXPORTED_PREFIX, timeout: float = 5.0) -> list[tuple[str, dict, float]]:
    """(name, labels, value) of every sample whose name starts with `prefix` on a Prometheus
    text endpoint (a Ray node's metrics export port), in the endpoint's order."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text = resp.read().decode("utf-8", errors="replace")
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(prefix):
                out.append((sample.name, dict(sample.labels), float(sample.value)))
    return out
