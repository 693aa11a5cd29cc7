"""`wukong dashboard`: a real Ray head that later runs attach to, and a stop that ends only it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dashboard_head_is_used_by_later_runs(tmp_path):
    temp = tmp_path / "r"
    sets = ["--set", f"ray.temp_dir={temp}", "--set", f"ray.dashboard_port={_free_port()}",
            "--set", f"ray.head_port={_free_port()}", "--set", "ray.num_cpus=1"]
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    wukong = [sys.executable, "-m", "pipelines", "dashboard"]
    started = subprocess.run(wukong + ["start"] + sets, capture_output=True, text=True, env=env, timeout=180)
    try:
        assert started.returncode == 0, started.stderr
        url = [line.split(": ", 1)[1] for line in started.stdout.splitlines() if line.startswith("Dashboard")][0]
        with urllib.request.urlopen(f"{url}/api/version", timeout=10) as resp:
            assert resp.status == 200
        # A run started now attaches to that head instead of starting its own Ray.
        code = ("from pipelines.config import load_config; from pipelines.ray_runtime import init_ray; import json,sys;"
                f"print(json.dumps(init_ray(load_config(None, {sets[1::2]!r}).ray)))")
        attached = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert attached.returncode == 0, attached.stderr
        info = json.loads(attached.stdout.strip().splitlines()[-1])
        assert info["started"] is False
        status = subprocess.run(wukong + ["status"] + sets, capture_output=True, text=True, env=env)
        assert status.returncode == 0
    finally:
        stopped = subprocess.run(wukong + ["stop"] + sets, capture_output=True, text=True, env=env, timeout=60)
    assert stopped.returncode == 0
    status = subprocess.run(wukong + ["status"] + sets, capture_output=True, text=True, env=env)
    assert status.returncode == 1 and "not running" in status.stdout
