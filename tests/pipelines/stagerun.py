"""A `wukong` stage as a separate process that a test can watch, kill -9 mid-run and rerun.

The stage runs under `bench.proctree`'s subreaper, so the CLI process and every process it starts
(its local Ray's daemons and workers, Scrapy subprocesses), including orphans, stay in one tree;
a crash is SIGKILL of exactly that tree, by PID, never by name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.proctree import kill_tree
from bench.raycluster import running_tasks

ROOT = Path(__file__).resolve().parents[2]


def local_ray_settings(temp_dir: str | Path) -> list[str]:
    """`--set` arguments for a stage's own local Ray: short temp dir, small, no dashboard."""
    out = []
    for s in (f"ray.temp_dir={temp_dir}", "ray.include_dashboard=false", "ray.num_cpus=2",
              "ray.object_store_memory_mb=256"):
        out += ["--set", s]
    return out


def short_temp_dir() -> Path:
    """Ray's socket paths must stay under 107 bytes: its temp dir needs a short name."""
    return Path(tempfile.mkdtemp(prefix="wkt", dir="/tmp"))


def stage_env(ray_address: str | None = None) -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="disabled",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("RAY_ADDRESS", None)
    if ray_address:
        env["RAY_ADDRESS"] = ray_address
    return env


class StageRun:
    """`python -m pipelines STAGE ARGS...` under the subreaper; output goes to `log`."""

    def __init__(self, stage: str, args: list[str], workdir: Path, env: dict | None = None, name: str = ""):
        workdir.mkdir(parents=True, exist_ok=True)
        self.stage = stage
        self.log = workdir / f"{name or stage}.log"
        report = workdir / f"{name or stage}.report.json"
        cmd = [sys.executable, "-m", "bench.proctree", "run", "--report", str(report), "--interval", "0",
               "--linger", "10", "--", sys.executable, "-m", "pipelines", stage, *args]
        with open(self.log, "w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env or stage_env(), stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.killed: list[int] = []

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def running_tasks(self) -> list[str]:
        return running_tasks(self.proc.pid)

    def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float = 300) -> None:
        """Poll `predicate` until true; fails if the stage ends first (its input is too small for
        the event to land mid-run) or after `timeout`."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.stage} ended (rc {self.proc.returncode}) before {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"{self.stage}: no {what} within {timeout} s:\n{self.tail()}")
            time.sleep(0.05)

    def kill(self) -> list[int]:
        """kill -9 of the stage's CLI process and every process it started (by PID)."""
        self.killed = kill_tree(self.proc.pid)
        self.proc.wait(timeout=60)
        return self.killed

    def wait(self, timeout: float = 600) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.stage} did not finish within {timeout} s:\n{self.tail()}") from None


def run_stage(stage: str, args: list[str], workdir: Path, env: dict | None = None, name: str = "",
              timeout: float = 600) -> StageRun:
    """Run to the end; fails with the log's tail unless it exits 0."""
    run = StageRun(stage, args, workdir, env, name)
    rc = run.wait(timeout)
    assert rc == 0, f"{stage} exited {rc}:\n{run.tail()}"
    return run


def any_file(directory: Path, pattern: str) -> Callable[[], bool]:
    """Progress signal: a file matching `pattern` (recursive) exists under `directory`."""
    return lambda: directory.is_dir() and next(directory.rglob(pattern), None) is not None


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def kept_arg(filter_dir: Path) -> str:
    """What `wukong dedup --kept` takes: the legacy single file if there is one, else the directory."""
    legacy = Path(filter_dir) / "kept.parquet"
    return str(legacy if legacy.is_file() else filter_dir)
