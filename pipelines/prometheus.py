"""Prometheus for the head's session: a scrape config, and a server on 127.0.0.1 when installed.

The config scrapes every node Ray lists in its session's service-discovery file (the head, and any
node that joins later), so the dashboard's Metrics tab and Grafana see the stage counters of
`pipelines.metrics`. Without the `prometheus` program nothing is started: the counters stay
readable on each node's metrics endpoint (`wukong dashboard status`).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from pipelines import processes
from pipelines.processes import ProcessRecord

PROMETHEUS_PROGRAM = "prometheus"
# Ray writes the metrics endpoints of its nodes here, in the session directory.
SERVICE_DISCOVERY_FILE = "prom_metrics_service_discovery.json"
# Seconds between scrapes: short, since a stage's counters move by the second.
SCRAPE_INTERVAL_S = 5
# Where the session's Prometheus files go, inside the Ray session directory.
SESSION_SUBDIR = "wukong_prometheus"
READY_TIMEOUT_S = 30.0

_CONFIG = """\
# Written by `wukong dashboard start` for Ray session {session}.
# Scrapes every node of that session (the list is kept current by Ray).
global:
  scrape_interval: {interval}s
  evaluation_interval: {interval}s
scrape_configs:
  - job_name: ray
    file_sd_configs:
      - files:
          - '{discovery}'
"""


def program() -> str | None:
    return shutil.which(PROMETHEUS_PROGRAM)


def write_scrape_config(session_dir: str | Path) -> Path:
    """`<session>/wukong_prometheus/prometheus.yml`, scraping the session's nodes."""
    session_dir = Path(session_dir)
    out = session_dir / SESSION_SUBDIR / "prometheus.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_CONFIG.format(session=session_dir.name, interval=SCRAPE_INTERVAL_S,
                                  discovery=session_dir / SERVICE_DISCOVERY_FILE), encoding="utf-8")
    return out


def start(config: Path, port: int, host: str = "127.0.0.1") -> tuple[ProcessRecord, str]:
    """Start Prometheus on host:port with `config` (data and log beside it); returns its process
    record and URL once it answers. Raises RuntimeError (after ending it) when it does not."""
    exe = program()
    if exe is None:
        raise RuntimeError("prometheus is not installed")
    workdir = config.parent
    log_path = workdir / "prometheus.log"
    url = f"http://{host}:{port}"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [exe, f"--config.file={config}", f"--web.listen-address={host}:{port}",
             f"--storage.tsdb.path={workdir / 'data'}", "--storage.tsdb.retention.time=7d"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir)
    rec = processes.record(proc.pid, "prometheus")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                if resp.status == 200 and rec is not None:
                    return rec, url
        except OSError:
            pass
        time.sleep(0.25)
    if rec is not None:
        processes.end_processes([rec], timeout_s=5)
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or ["no output"]
    raise RuntimeError(f"prometheus did not start ({tail[0][:300]}); log: {log_path}")
