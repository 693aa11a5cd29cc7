"""`wukong dashboard start|stop|status`: a local Ray head that outlives single runs.

Stages started while it runs attach to it (it is recorded in the project's Ray temp dir), so their
jobs, one progress row per stage, Ray Data operators and counters show in one dashboard on
127.0.0.1; `wukong submit -- COMMAND` runs a command as a job of it, with its driver log there too.
With the `prometheus` program installed, a Prometheus for the session is started beside it and
the dashboard's Metrics tab uses it. `stop` ends exactly the processes recorded at start (PID and
start time) and what they spawned, never other Ray instances or processes found by name.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

from pipelines import processes
from pipelines.ray_head import (HeadError, HeadRecord, choose_port, end_started_since, is_running,
                                live_processes, own_descendants, read_record, remove_record, start_head,
                                stop_head, write_record)
from pipelines.ray_runtime import resolve_temp_dir

# Labels Ray adds to every sample; `status` leaves them out of its table.
_RAY_LABELS = {"Component", "NodeAddress", "SessionName", "Version", "WorkerId", "JobId"}


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("dashboard", help="start/stop a local Ray head with its dashboard",
                       description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["start", "stop", "status"], nargs="?", default="start")
    p.add_argument("--grafana-host", metavar="URL", help="Grafana for the Metrics tab (ray.grafana_host)")
    p.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus (ray.prometheus)")
    add_config_args(p)
    p.set_defaults(func=run)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _head_env(cfg) -> dict[str, str]:
    """Environment of the head's processes: where its dashboard finds Prometheus and Grafana."""
    env = {"RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    grafana = cfg.ray.grafana_host or os.environ.get("GRAFANA_HOST", "")
    if grafana:
        env["RAY_GRAFANA_HOST"] = grafana.rstrip("/")
    return env


def start(cfg) -> int:
    from pipelines import prometheus
    from pipelines.cli import UsageError

    temp_dir = resolve_temp_dir(cfg.ray)
    rec = read_record(temp_dir)
    if rec is not None and is_running(rec):
        _say(f"Ray head already running at {rec.address}; dashboard: {rec.dashboard_url}")
        return 0
    if rec is not None:
        # A head that ended without `stop` (a crash, a kill): end what is left of it, then forget it.
        left = [p for p, how in stop_head(rec, cfg.ray.stop_timeout_s) if how != processes.GONE]
        if left:
            _say(f"ended {len(left)} leftover processes of the previous head of {temp_dir}")
        remove_record(temp_dir)
    temp_dir.mkdir(parents=True, exist_ok=True)
    env = _head_env(cfg)
    own_prometheus = cfg.ray.prometheus and prometheus.program() is not None and "RAY_PROMETHEUS_HOST" not in os.environ
    prom_port = 0
    if own_prometheus:
        prom_port = choose_port("127.0.0.1", cfg.ray.prometheus_port, "prometheus")
        env["RAY_PROMETHEUS_HOST"] = f"http://127.0.0.1:{prom_port}"
    before = own_descendants()
    try:
        rec = start_head(cfg.ray, temp_dir, env)
    except HeadError as exc:
        raise UsageError(str(exc)) from None
    try:
        rec.grafana_host = env.get("RAY_GRAFANA_HOST", "")
        rec.prometheus_config = str(prometheus.write_scrape_config(rec.session_dir))
        if own_prometheus:
            try:
                prom, rec.prometheus_url = prometheus.start(Path(rec.prometheus_config), prom_port)
                rec.processes.append(prom)
            except RuntimeError as exc:
                print(f"wukong dashboard: warning: {exc}; the Metrics tab will say Prometheus is missing",
                      file=sys.stderr)
        elif os.environ.get("RAY_PROMETHEUS_HOST"):
            rec.prometheus_url = os.environ["RAY_PROMETHEUS_HOST"]
        write_record(temp_dir, rec)
    except BaseException:
        end_started_since(before, cfg.ray.stop_timeout_s)
        remove_record(temp_dir)
        raise
    _say(f"Ray head started at {rec.address} ({len(rec.processes)} processes recorded in "
         f"{temp_dir / 'wukong_head.json'})")
    _say(f"Dashboard: {rec.dashboard_url}")
    _say(f"Metrics endpoint: {rec.metrics_url}")
    if rec.prometheus_url:
        _say(f"Prometheus: {rec.prometheus_url} (scrape config {rec.prometheus_config})")
    else:
        _say(f"Prometheus scrape config: {rec.prometheus_config} (no `prometheus` program started)")
    if rec.grafana_host:
        _say(f"Grafana: {rec.grafana_host} (import docs/grafana/wukong.json)")
    _say("Stages started now attach to it; `wukong submit -- COMMAND` runs one as a job; "
         "`make dashboard-stop` ends it.")
    return 0


def stop(cfg) -> int:
    temp_dir = resolve_temp_dir(cfg.ray)
    rec = read_record(temp_dir)
    if rec is None:
        _say(f"no Ray head recorded in {temp_dir}: nothing to stop")
        return 0
    outcomes = stop_head(rec, cfg.ray.stop_timeout_s)
    by_outcome: dict[str, list[str]] = defaultdict(list)
    for p, how in outcomes:
        by_outcome[how].append(f"{p.pid} {p.role}" + (f" ({p.name})" if p.name and p.name != p.role else ""))
    for how in (processes.ENDED, processes.KILLED, processes.GONE, processes.SURVIVED):
        if by_outcome[how]:
            _say(f"{how}: " + ", ".join(by_outcome[how]))
    survivors = by_outcome[processes.SURVIVED]
    if survivors:
        print(f"wukong dashboard: {len(survivors)} process(es) of the head survived SIGKILL; "
              f"record kept in {temp_dir}", file=sys.stderr)
        return 1
    remove_record(temp_dir)
    ended = len(by_outcome[processes.ENDED]) + len(by_outcome[processes.KILLED])
    _say(f"stopped the Ray head of {temp_dir}: {ended} processes ended")
    return 0


def _summarise(samples: list[tuple[str, dict, float]]) -> list[str]:
    """Sum samples over the labels that only split them further (partition, Ray's own labels)."""
    totals: dict[tuple, float] = defaultdict(float)
    for name, labels, value in samples:
        if name.endswith(("_created", "_bucket")):
            continue
        kept = tuple(sorted((k, v) for k, v in labels.items()
                            if k not in _RAY_LABELS and k != "partition" and not k.startswith("otel_")))
        totals[(name, kept)] += value
    return [f"  {name}{{{', '.join(f'{k}={v!r}' for k, v in kept)}}} {value:g}"
            for (name, kept), value in sorted(totals.items())]


def status(cfg) -> int:
    from pipelines.metrics import read_endpoint

    temp_dir = resolve_temp_dir(cfg.ray)
    rec: HeadRecord | None = read_record(temp_dir)
    if rec is None or not is_running(rec):
        _say("not running" + (" (recorded head has ended; `wukong dashboard stop` clears it)" if rec else ""))
        return 1
    _say(f"running at {rec.address}: {len(live_processes(rec))} of {len(rec.processes)} recorded processes alive")
    _say(f"Dashboard: {rec.dashboard_url}")
    if rec.prometheus_url:
        _say(f"Prometheus: {rec.prometheus_url}")
    _say(f"Metrics endpoint: {rec.metrics_url}")
    try:
        lines = _summarise(read_endpoint(rec.metrics_url))
    except OSError as exc:
        _say(f"  (not readable now: {exc})")
        return 0
    _say("Stage counters (summed over partitions):" if lines else "  no stage counters yet")
    for line in lines:
        _say(line)
    return 0


def run(args) -> int:
    from pipelines.cli import config_from_args
    extra = []
    if args.grafana_host:
        extra.append(f"ray.grafana_host={args.grafana_host}")
    if args.no_prometheus:
        extra.append("ray.prometheus=false")
    cfg = config_from_args(args, extra)
    if args.action == "start":
        return start(cfg)
    if args.action == "stop":
        return stop(cfg)
    return status(cfg)
