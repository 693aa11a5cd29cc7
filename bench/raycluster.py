"""A Ray cluster of several nodes on this one machine, for node-loss tests and `bench/scale.py --cluster`.

Each node is `ray start --block` run under a subreaper (`python -m bench.proctree run`), so every
process the node starts (GCS, raylet, agents, workers, and the orphans a killed raylet leaves)
stays in that supervisor's tree. Killing a node is SIGKILL of exactly that tree, by PID; nothing
here stops Ray by name, and `ray stop` (which stops every Ray on the machine) is never used.

Every node gets its own short temp dir and its own free ports (GCS, client server, dashboard,
agents), so clusters of several users on one machine never meet. With Ray 2.60 two nodes on one
machine work when both bind 127.0.0.2 (see ../shared/ENVIRONMENT.md); a driver that attaches
(`RAY_ADDRESS`) connects through the head node, which Ray prefers when several share an address.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.proctree import descendants, kill_tree, process_tree

ROOT = Path(__file__).resolve().parent.parent
NODE_IP = "127.0.0.2"
READY_LINE = "Ray runtime started"
# Process titles of Ray's own processes; any other `ray::NAME` title is a worker running a task.
_SERVICE_TITLES = ("ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::JobSupervisor")


def free_port(host: str = NODE_IP) -> int:
    """A port free on every address: Ray binds some services of a node on 127.0.0.1 (its client
    server) whatever the node's IP, so a port free only on `host` can still be taken. Binding the
    wildcard address checks every interface at once (`host` stays for callers' clarity)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def running_tasks(root: int) -> list[str]:
    """Titles (`ray::TASK`) of the processes under `root` that are running a task now."""
    out = []
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                title = fh.read().split(b"\x00")[0].decode("utf-8", "replace").strip()
        except OSError:
            continue
        if title.startswith("ray::") and not title.startswith(_SERVICE_TITLES):
            out.append(title)
    return out


@dataclass
class Node:
    """One `ray start --block` under its supervisor; `pids()` are the node's processes."""
    name: str
    proc: subprocess.Popen
    temp_dir: Path
    log: Path
    killed: list[int] = field(default_factory=list)

    @property
    def supervisor(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        return descendants(self.supervisor)

    def running_tasks(self) -> list[str]:
        return running_tasks(self.supervisor)

    def kill(self) -> list[int]:
        """SIGKILL every process of this node (its recorded tree, by PID): a node lost."""
        self.killed = kill_tree(self.supervisor)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_tree(self.supervisor, include_root=True)
            self.proc.wait(timeout=10)
        return self.killed


class LocalCluster:
    """A head node plus worker nodes on 127.0.0.2. Use as a context manager; `address` is what a
    driver attaches to (`RAY_ADDRESS`)."""

    def __init__(self, workdir: str | Path, head_cpus: int = 1, object_store_mb: int = 128,
                 ip: str = NODE_IP, env: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.head_cpus = head_cpus
        self.object_store_mb = object_store_mb
        self.ip = ip
        self.port = 0
        self.nodes: list[Node] = []
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("RAY_AUTH_MODE", "disabled")
        self.env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in self.env.get("PYTHONPATH", "").split(os.pathsep) if p])
        self.env.pop("RAY_ADDRESS", None)

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def head(self) -> Node:
        return self.nodes[0]

    def _start(self, name: str, args: list[str], timeout: float) -> Node:
        # Socket paths under the temp dir must stay under 107 bytes: a short dir in /tmp.
        temp = Path(tempfile.mkdtemp(prefix=f"wk{name[0]}", dir="/tmp"))
        log = self.workdir / f"{name}.log"
        ray = str(Path(sys.executable).parent / "ray")
        cmd = [sys.executable, "-m", "bench.proctree", "run", "--report", str(self.workdir / f"{name}.json"),
               "--interval", "0", "--linger", "5", "--",
               ray, "start", "--block", f"--node-ip-address={self.ip}", f"--temp-dir={temp}",
               f"--object-store-memory={self.object_store_mb * 1024 * 1024}", "--disable-usage-stats",
               f"--dashboard-agent-listen-port={free_port(self.ip)}", *args]
        with open(log, "w") as fh:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        node = Node(name, proc, temp, log)
        self.nodes.append(node)
        deadline = time.monotonic() + timeout
        while READY_LINE not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray node {name} did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        return node

    def start_head(self, timeout: float = 120) -> Node:
        self.port = free_port(self.ip)
        return self._start("head", ["--head", f"--port={self.port}", "--include-dashboard=false",
                                    f"--dashboard-port={free_port(self.ip)}",
                                    f"--ray-client-server-port={free_port(self.ip)}",
                                    f"--num-cpus={self.head_cpus}"], timeout)

    def add_worker(self, cpus: int = 2, resources: dict | None = None, timeout: float = 120) -> Node:
        name = f"worker{len(self.nodes)}"
        res = json.dumps(resources if resources is not None else {"worker_node": 1})
        node = self._start(name, [f"--address={self.address}", f"--num-cpus={cpus}", f"--resources={res}"], timeout)
        self.wait_for_nodes(sum(1 for n in self.nodes if n.alive()), timeout)
        return node

    def alive_nodes(self) -> int:
        """Nodes the GCS reports alive (asked in a subprocess: this process may hold another Ray)."""
        code = ("import ray, json; from ray._raylet import GcsClient\n"
                f"c = GcsClient(address={self.address!r})\n"
                "print(sum(1 for n in c.get_all_node_info().values() if n.state == 0))")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, capture_output=True,
                             text=True, timeout=60)
        try:
            return int(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return -1

    def wait_for_nodes(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while (alive := self.alive_nodes()) != n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster has {alive} live nodes, expected {n}")
            time.sleep(0.5)

    def stage_env(self, base: dict | None = None) -> dict:
        """Environment of a driver attached to this cluster."""
        env = dict(self.env if base is None else base)
        env["RAY_ADDRESS"] = self.address
        return env

    def close(self) -> None:
        for node in reversed(self.nodes):
            if node.alive():
                kill_tree(node.supervisor, include_root=True)
            try:
                node.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass  # its tree is SIGKILLed already; the supervisor is reaped when it exits
            shutil.rmtree(node.temp_dir, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        try:
            self.start_head()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()
