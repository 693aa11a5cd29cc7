"""`wukong dashboard start|stop|status`: a local Ray head that outlives single runs.

Stages started while it runs attach to it (its address is recorded in the project's Ray temp dir),
so their jobs, tasks, Ray Data operators and metrics show in one dashboard on 127.0.0.1.
`stop` ends only the processes of this head, never other Ray instances on the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pipelines.ray_runtime import HEAD_ADDRESS_FILE, recorded_head_address, resolve_temp_dir


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("dashboard", help="start/stop a local Ray head with its dashboard")
    p.add_argument("action", choices=["start", "stop", "status"], nargs="?", default="start")
    add_config_args(p)
    p.set_defaults(func=run)


def _ray_executable() -> str:
    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.exists() else (shutil.which("ray") or "ray")


def _head_processes(temp_dir: Path) -> list:
    import psutil
    needle = str(temp_dir)
    procs = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and any(needle in part for part in (proc.info["cmdline"] or [])):
                procs.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return procs


def start(cfg) -> int:
    temp_dir = resolve_temp_dir(cfg.ray)
    existing = recorded_head_address(cfg.ray)
    if existing:
        print(f"Ray head already running at {existing}; dashboard: "
              f"http://{cfg.ray.dashboard_host}:{cfg.ray.dashboard_port}")
        return 0
    temp_dir.mkdir(parents=True, exist_ok=True)
    cmd = [_ray_executable(), "start", "--head", f"--port={cfg.ray.head_port}",
           f"--temp-dir={temp_dir}", "--include-dashboard=true",
           f"--dashboard-host={cfg.ray.dashboard_host}", f"--dashboard-port={cfg.ray.dashboard_port}",
           f"--object-store-memory={cfg.ray.object_store_memory_mb * 1024 * 1024}"]
    if cfg.ray.num_cpus:
        cmd.append(f"--num-cpus={cfg.ray.num_cpus}")
    env = dict(os.environ, RAY_AUTH_MODE=os.environ.get("RAY_AUTH_MODE", "disabled"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        from pipelines.cli import UsageError
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["unknown error"]
        raise UsageError(f"ray start failed: {tail[0]}")
    match = re.search(r"address='([^']+)'", proc.stdout + proc.stderr)
    address = match.group(1) if match else f"127.0.0.1:{cfg.ray.head_port}"
    (temp_dir / HEAD_ADDRESS_FILE).write_text(address + "\n")
    print(f"Ray head started at {address}")
    print(f"Dashboard: http://{cfg.ray.dashboard_host}:{cfg.ray.dashboard_port}")
    print("Stages started now attach to it; `make dashboard-stop` ends it.")
    return 0


def stop(cfg) -> int:
    temp_dir = resolve_temp_dir(cfg.ray)
    procs = _head_processes(temp_dir)
    for proc in procs:
        proc.terminate()
    deadline = time.time() + 10
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except Exception:
            proc.kill()
    (temp_dir / HEAD_ADDRESS_FILE).unlink(missing_ok=True)
    print(f"stopped {len(procs)} Ray processes of the head in {temp_dir}")
    return 0


def run(args) -> int:
    from pipelines.cli import config_from_args
    cfg = config_from_args(args)
    if args.action == "start":
        return start(cfg)
    if args.action == "stop":
        return stop(cfg)
    address = recorded_head_address(cfg.ray)
    print(f"running at {address}" if address else "not running")
    return 0 if address else 1
