"""The Ray head of `wukong dashboard start`: started here, recorded by PID, stopped exactly.

The head is started in this process the way `ray start --head` does it (a `ray._private.node.Node`
that outlives us), so every process Ray starts for it (GCS, raylet, dashboard, monitor, log
monitor, ...) is a child of this process; once the dashboard answers and the agents listen, those
and everything they spawned (dashboard agent, runtime-env agent, dashboard modules, prestarted
workers) are recorded with their start times in `<temp_dir>/wukong_head.json`. `stop` ends exactly
those (and what they spawned since, through the process tree), never a process found by its name
or command line, so other Rays on the machine, and commands whose arguments mention the temp dir,
are never touched. A start that fails ends everything it had started (this process's descendants).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pipelines import processes
from pipelines.config import RayConfig
from pipelines.processes import ProcessRecord

log = logging.getLogger(__name__)

RECORD_FILE = "wukong_head.json"
# Older releases recorded only the address, in this file; kept so runs attach to either.
HEAD_ADDRESS_FILE = "head_address"
# Where `ray start` writes the address that "auto" means in a temp dir (ray._private.utils).
RAY_CURRENT_CLUSTER_FILE = "ray_current_cluster"
# Signalled before the others, while the GCS still answers: the raylet ends its own workers (as
# Ray's own shutdown does), and the autoscaler monitor reports its end to the GCS, which it would
# otherwise wait for until SIGKILL.
STOP_FIRST = ("monitor", "raylet")
_POLL_S = 0.25


class HeadError(RuntimeError):
    """The head could not be started (one line, shown to the user)."""


@dataclass
class HeadRecord:
    address: str                       # GCS address: what runs attach to
    dashboard_url: str
    session_dir: str
    node_ip: str
    metrics_export_port: int
    started_at: float
    processes: list[ProcessRecord] = field(default_factory=list)
    prometheus_url: str = ""
    prometheus_config: str = ""
    grafana_host: str = ""

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["processes"] = [p.to_dict() for p in self.processes]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HeadRecord":
        d = dict(d)
        d["processes"] = [ProcessRecord.from_dict(p) for p in d.get("processes", [])]
        return cls(**d)

    @property
    def metrics_url(self) -> str:
        return f"http://{_url_host(self.node_ip)}:{self.metrics_export_port}/metrics"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def record_path(temp_dir: Path) -> Path:
    return temp_dir / RECORD_FILE


def read_record(temp_dir: Path) -> HeadRecord | None:
    path = record_path(temp_dir)
    try:
        return HeadRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("ignoring unreadable head record %s: %s", path, exc)
        return None


def write_record(temp_dir: Path, rec: HeadRecord) -> None:
    from shards.atomic import write_json_atomic
    write_json_atomic(record_path(temp_dir), rec.to_dict())
    (temp_dir / HEAD_ADDRESS_FILE).write_text(rec.address + "\n")


def remove_record(temp_dir: Path) -> None:
    """The head's files: its record, and Ray's "current cluster" file when it names this head."""
    rec = read_record(temp_dir)
    current = temp_dir / RAY_CURRENT_CLUSTER_FILE
    try:
        if rec is not None and current.read_text().strip() == rec.address:
            current.unlink()
    except OSError:
        pass
    record_path(temp_dir).unlink(missing_ok=True)
    (temp_dir / HEAD_ADDRESS_FILE).unlink(missing_ok=True)


def live_processes(rec: HeadRecord) -> list[ProcessRecord]:
    return [p for p in rec.processes if processes.live(p) is not None]


def is_running(rec: HeadRecord) -> bool:
    """Its GCS and raylet still run (as recorded: same PID, same start time)."""
    alive = {p.role for p in live_processes(rec)}
    return {"gcs_server", "raylet"} <= alive


# -- ports ----------------------------------------------------------------------------------------

def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def choose_port(host: str, wanted: int, what: str) -> int:
    """`wanted` when it is free (0: any free port), else a free one, said in the log."""
    if wanted and port_is_free(host, wanted):
        return wanted
    port = free_port(host)
    if wanted:
        log.warning("%s port %d is taken on %s: using %d", what, wanted, host, port)
    return port


# -- start ----------------------------------------------------------------------------------------

def _wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - keep trying until the deadline, say why at the end
            last_error = f" ({type(exc).__name__}: {exc})"
        time.sleep(_POLL_S)
    raise HeadError(f"{what} not ready after {timeout_s:.0f} s{last_error}")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def _listening(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=1):
        return True


def _node_records(node) -> list[ProcessRecord]:
    """Every process the node started (as Ray lists them), then what those spawned."""
    found = []
    for role, infos in node.all_processes.items():
        for info in infos:
            rec = processes.record(info.process.pid, role)
            if rec is not None:
                found.append(rec)
    return processes.with_descendants(found)


def own_descendants() -> list[ProcessRecord]:
    """Every live process this process started, and their children."""
    found = (processes.record(c.pid, "started by this process") for c in psutil.Process().children(recursive=True))
    return [r for r in found if r is not None]


def end_started_since(before: list[ProcessRecord], timeout_s: float) -> list[tuple[ProcessRecord, str]]:
    """End the descendants of this process that were not among `before`: the undo of a failed start
    (a caller's own earlier children, such as a test session's Ray, are left alone)."""
    old = {(r.pid, r.create_time) for r in before}
    new = [r for r in own_descendants() if (r.pid, r.create_time) not in old]
    return processes.end_processes(new, timeout_s, first=STOP_FIRST)


def start_head(cfg: RayConfig, temp_dir: Path, env: dict[str, str]) -> HeadRecord:
    """Start the head; returns its record (not yet written). `env` is added to the environment of
    every process of the head (RAY_PROMETHEUS_HOST, ...). Raises HeadError after undoing a failure."""
    import ray._private.node
    import ray._private.parameter
    import ray._private.utils
    from ray._private import services
    from ray._private.resource_isolation_config import ResourceIsolationConfig

    os.environ.update(env)  # the head's processes inherit this process's environment
    host = cfg.dashboard_host
    before = own_descendants()
    try:
        gcs_port = choose_port("0.0.0.0", cfg.head_port, "head (GCS)")
        dashboard_port = choose_port(host, cfg.dashboard_port, "dashboard")
        node_ip = services.get_node_ip_address()
        params = ray._private.parameter.RayParams(
            node_ip_address=node_ip,
            node_name=node_ip,
            num_cpus=cfg.num_cpus,
            object_store_memory=cfg.object_store_memory_mb * 1024 * 1024,
            temp_dir=str(temp_dir),
            include_dashboard=True,
            dashboard_host=host,
            dashboard_port=dashboard_port,
            # A free port: other Rays on the machine may hold Ray's default (52365).
            dashboard_agent_listen_port=free_port(),
            resource_isolation_config=ResourceIsolationConfig(enable_resource_isolation=False),
        )
        params.gcs_server_port = gcs_port
        # Not shut down at our exit (the head outlives this command); no reaper process either.
        node = ray._private.node.Node(params, head=True, shutdown_at_exit=False, spawn_reaper=False)
        started = time.time()
        # As `ray start` does: "auto" in this temp dir means this head. The job supervisor resolves
        # a submitted driver's RAY_ADDRESS that way; without the file Ray would pick any GCS running
        # on the machine, another user's included.
        ray._private.utils.write_ray_address(node.gcs_address, str(temp_dir))
        dashboard_url = f"http://{_url_host(host)}:{dashboard_port}"
        timeout = cfg.head_start_timeout_s
        _wait_until(lambda: _http_ok(f"{dashboard_url}/api/version"), timeout, f"dashboard at {dashboard_url}")
        _wait_until(lambda: _listening(node.node_ip_address, node.metrics_export_port), timeout,
                    "the metrics endpoint (dashboard agent)")
        _wait_until(lambda: _listening(node.node_ip_address, node.runtime_env_agent_port), timeout,
                    "the runtime-env agent")
        rec = HeadRecord(address=node.address, dashboard_url=dashboard_url, session_dir=node.get_session_dir_path(),
                         node_ip=node.node_ip_address, metrics_export_port=int(node.metrics_export_port),
                         started_at=started, processes=_node_records(node))
        missing = {"gcs_server", "raylet"} - {p.role for p in rec.processes}
        if missing:
            raise HeadError(f"head processes exited during start: {', '.join(sorted(missing))}")
        return rec
    except BaseException as exc:
        ended = end_started_since(before, cfg.stop_timeout_s)
        log.warning("failed start undone: %d processes it had started ended", len(ended))
        if isinstance(exc, HeadError):
            raise
        if isinstance(exc, KeyboardInterrupt):
            raise
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise HeadError(f"Ray head failed to start: {message}") from exc


def stop_head(rec: HeadRecord, timeout_s: float) -> list[tuple[ProcessRecord, str]]:
    """End the recorded processes and what they spawned since; (record, outcome) for each."""
    # The tree is read before any signal: once the raylet ends, its workers lose their parent link.
    targets = processes.with_descendants(rec.processes)
    return processes.end_processes(targets, timeout_s, first=STOP_FIRST)
