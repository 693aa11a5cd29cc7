"""Starting or attaching to Ray: the only execution engine of every stage.

Order of precedence: `RAY_ADDRESS` in the environment, `ray.address` in the config, a head started
by `make dashboard` (recorded in the project's Ray temp dir, `pipelines.ray_head`), else a local
Ray started for this run, with its dashboard on a free port of 127.0.0.1 (never the head's 8265, so
`make dashboard` can start while such runs go on).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pipelines.config import RayConfig

log = logging.getLogger(__name__)

# Unix socket paths (temp dir + ~62 bytes of session and socket names) must fit in 107 bytes.
_MAX_TEMP_DIR_LEN = 45


def _stage_packages() -> list:
    import crawler, dedup, filters, pipelines, shards, train  # noqa: E401 - shipped to the cluster
    return [crawler, filters, dedup, shards, train, pipelines]


def resolve_temp_dir(cfg: RayConfig) -> Path:
    path = Path(cfg.temp_dir).expanduser().resolve()
    if len(str(path)) > _MAX_TEMP_DIR_LEN:
        path = Path("/tmp") / f"wukong-ray-{os.getuid()}"
    return path


def recorded_head_address(cfg: RayConfig) -> str | None:
    """The address of the head started by `wukong dashboard`, if that head is still alive."""
    from pipelines.ray_head import HEAD_ADDRESS_FILE, read_record
    temp_dir = resolve_temp_dir(cfg)
    rec = read_record(temp_dir)
    if rec is not None:
        address = rec.address
    else:
        f = temp_dir / HEAD_ADDRESS_FILE
        if not f.is_file():
            return None
        address = f.read_text().strip()
    host, _, port = address.rpartition(":")
    import socket
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return address
    except (OSError, ValueError):
        return None


def task_logging(level: int = logging.INFO) -> None:
    """Log records of the project's modules, in a Ray worker: a worker configures no logging, so
    without this a task's INFO lines (its partition, its counts) would never reach its log."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def init_ray(cfg: RayConfig, *, quiet: bool = True) -> dict:
    """Start or attach to Ray once per process; returns a small description for logs."""
    import ray

    # Ray 2.60 turns on token auth by default; local runs and CI use the project-local temp dir.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        return {"address": ray.get_runtime_context().gcs_address, "started": False}
    address = os.environ.get("RAY_ADDRESS") or cfg.address or recorded_head_address(cfg)
    log_level = logging.WARNING if quiet else logging.INFO
    if address:
        runtime_env = {"py_modules": _stage_packages()} if cfg.ship_code and address.startswith("ray://") else None
        ctx = ray.init(address=address, runtime_env=runtime_env, logging_level=log_level,
                       log_to_driver=True)
        return {"address": address, "started": False, "dashboard_url": ctx.dashboard_url}
    temp_dir = resolve_temp_dir(cfg)
    temp_dir.mkdir(parents=True, exist_ok=True)
    dashboard_port = None
    if cfg.include_dashboard:
        from pipelines.ray_head import choose_port
        dashboard_port = choose_port(cfg.dashboard_host, cfg.local_dashboard_port, "local dashboard")
    ctx = ray.init(
        # "local" starts our own Ray even when another one runs on the machine (Ray would attach).
        address="local",
        num_cpus=cfg.num_cpus,
        object_store_memory=cfg.object_store_memory_mb * 1024 * 1024,
        include_dashboard=cfg.include_dashboard,
        dashboard_host=cfg.dashboard_host,
        dashboard_port=dashboard_port,
        _temp_dir=str(temp_dir),
        logging_level=log_level,
        log_to_driver=True,
    )
    if ctx.dashboard_url:
        log.info("local Ray for this run; its dashboard: http://%s (`make dashboard` keeps one across runs)",
                 ctx.dashboard_url)
    return {"address": ctx.address_info.get("address"), "started": True,
            "dashboard_url": ctx.dashboard_url}


def shutdown_ray() -> None:
    """Disconnect, and stop the Ray this process started (an attached cluster keeps running).

    Called by the CLI when a command ends, rather than leaving it to Ray's exit hook, which first
    sleeps half a second. The autoscaler monitor of a Ray started here is killed first: on SIGTERM
    it reports its own end to a GCS that Ray has already stopped, and waits a full second before
    Ray kills it anyway. It holds no state of ours.
    """
    import ray
    if not ray.is_initialized():
        return
    _kill_local_monitor()
    ray.shutdown()


def _kill_local_monitor() -> None:
    """Only processes this process spawned are listed: none when attached to a cluster."""
    try:
        from ray._private import ray_constants
        from ray._private import worker as ray_worker
        infos = ray_worker._global_node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, [])
    except (AttributeError, ImportError):  # another Ray version: its own shutdown does it all
        return
    for info in infos:
        if info.process.poll() is None:
            info.process.kill()
            info.process.wait(timeout=5)


def cluster_cpus() -> int:
    import ray
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
