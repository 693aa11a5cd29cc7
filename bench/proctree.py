"""Process-tree accounting shared by the benchmarks and the crash tests: a command's CPU and memory
include its children (Ray's daemons and workers, img2dataset's processes), read from /proc.

`python -m bench.proctree run --report FILE -- CMD...` runs CMD as the child of a *subreaper*:
every process CMD starts stays in this process's tree even after its parent dies (Ray workers
whose raylet was killed, daemons a killed driver left behind), so the tree's CPU is complete when
they end (they are reaped here), and a test can kill exactly the processes a command started by
listing this tree by PID (`kill_tree`), never by name. While CMD runs, it samples the tree's PSS and
CMD's own peak RSS (VmHWM) every `--interval` seconds; its own work is not counted.
"""

from __future__ import annotations

import os
import signal
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36
CPU_INTERVAL = 0.25  # seconds between CPU samples of the supervised tree (cheap: /proc/PID/stat)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is the state)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # the process ended while we read


def process_tree(root: int, exclude: frozenset[int] = frozenset()) -> list[int]:
    """`root` and every descendant process id, less `exclude` and their descendants."""
    children: dict[int, list[int]] = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            f = _stat_fields(int(p))
            if f is not None:
                children.setdefault(int(f[1]), []).append(int(p))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in exclude:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def descendants(root: int) -> list[int]:
    return [p for p in process_tree(root) if p != root]


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages (Ray's object store) count once over the processes."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0  # the process ended while we read
    return 0


def tree_pss(root: int, exclude: frozenset[int] = frozenset()) -> int:
    return sum(pss_bytes(p) for p in process_tree(root, exclude))


def peak_rss_bytes(pid: int) -> int:
    """The process's own high-water mark of resident memory (VmHWM)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def io_bytes(pid: int) -> tuple[int, int]:
    """(read_bytes, write_bytes): what the process made the kernel fetch from or send to storage
    (page-cache hits are not counted); (0, 0) when unreadable."""
    try:
        with open(f"/proc/{pid}/io") as fh:
            vals = dict(line.split(":", 1) for line in fh if ":" in line)
        return int(vals["read_bytes"]), int(vals["write_bytes"])
    except (OSError, KeyError, ValueError):
        return 0, 0


def machine_cpu() -> dict[str, int]:
    """Whole-machine CPU jiffies since boot from /proc/stat: busy (every process, ours and other
    users'), iowait and idle; the difference over a run says how loaded the machine was."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    v += [0] * (8 - len(v))
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return {"busy": user + nice + system + irq + softirq + steal, "iowait": iowait, "idle": idle}


def tree_cpu_seconds(root: int, include_root: bool = True) -> float:
    """CPU time (user + system) of a live tree: each process's own time plus the time of the
    children it has waited for, so processes that already ended count as well (once: a reaped
    process is no longer listed). `include_root=False` counts only the root's reaped children (the
    supervisor's own work is not the command's). Children reaped by the kernel (a parent that
    ignores SIGCHLD) are missing: see `CpuTracker`."""
    total = 0
    for pid in process_tree(root):
        f = _stat_fields(pid)
        if f is None:
            continue
        own = int(f[11]) + int(f[12]) if (include_root or pid != root) else 0
        total += own + int(f[13]) + int(f[14])
    return total / CLK_TCK


class CpuTracker:
    """CPU time of the processes of some trees, sampled per process (pid and start time) and summed.

    Reaped children's time (cutime) cannot be relied on: Ray's raylet ignores SIGCHLD, so its
    workers are reaped by the kernel and their time is counted nowhere. Sampling each process's own
    time loses only what a process spends after its last sample before it ends. Processes present
    at the first sample count from then on; `skip` (the supervisor) is left out."""

    def __init__(self, roots: list[int], skip: frozenset[int] = frozenset()):
        self.roots, self.skip = roots, skip
        self.base: dict[tuple[int, int, str], int] | None = None
        self.last: dict[tuple[int, int, str], int] = {}
        self.io_base: dict[tuple[int, int, str], tuple[int, int]] = {}
        self.io_last: dict[tuple[int, int, str], tuple[int, int]] = {}

    def sample(self) -> None:
        now, io = {}, {}
        for root in self.roots:
            for pid in process_tree(root):
                f = _stat_fields(pid) if pid not in self.skip else None
                if f is not None:
                    now[(root, pid, f[19])] = int(f[11]) + int(f[12])
                    io[(root, pid, f[19])] = io_bytes(pid)
        self.last.update(now)
        self.io_last.update(io)
        if self.base is None:
            self.base = now
            self.io_base = io

    def seconds(self, root: int | None = None) -> float:
        base = self.base or {}
        return sum(v - base.get(k, 0) for k, v in self.last.items() if root is None or k[0] == root) / CLK_TCK

    def io(self) -> tuple[int, int]:
        """(read, write) bytes to storage over the sampled processes, like `seconds`."""
        r = w = 0
        for k, (kr, kw) in self.io_last.items():
            br, bw = self.io_base.get(k, (0, 0))
            r, w = r + kr - br, w + kw - bw
        return r, w


def kill_tree(root: int, include_root: bool = False, timeout: float = 30.0) -> list[int]:
    """SIGKILL every descendant of `root` (and `root` itself if asked), by PID, until none is left;
    returns the PIDs signalled. Meant for a subreaper root, which keeps orphans in its tree."""
    signalled: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = process_tree(root) if include_root else descendants(root)
        pids = [p for p in pids if _stat_fields(p) is not None and _stat_fields(p)[0] != "Z"]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                signalled.append(pid)
            except ProcessLookupError:
                pass  # ended between the listing and the signal: nothing left to kill
        time.sleep(0.1)
    return signalled


def _sample_peak(root: int, interval: float) -> None:
    """Print the peak PSS of `root`'s tree (less this process) when stdin closes."""
    import select
    import sys

    me = frozenset({os.getpid()})
    peak = tree_pss(root, me)
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], interval)
        peak = max(peak, tree_pss(root, me))
        if ready and not sys.stdin.read(1):
            break
    print(peak, flush=True)


def _become_subreaper() -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def supervise(cmd: list[str], interval: float, linger: float, also: list[int]) -> dict:
    """Run `cmd` under this subreaper; measure it (see the module docstring); returns the report.

    After `cmd` exits, processes it left behind get `linger` seconds to end, then are killed
    (they are counted in `left_behind`). `also`: other process trees (a Ray cluster's nodes) whose
    CPU and PSS the command's work lands on; their CPU counts as the difference over the run."""
    import subprocess

    _become_subreaper()
    me = os.getpid()
    also_cpu = CpuTracker(also)
    also_cpu.sample()
    machine0 = machine_cpu()
    t0 = time.monotonic()
    child = subprocess.Popen(cmd)
    own_cpu = CpuTracker([me], frozenset({me}))
    rc = None
    wall = None
    peak_pss = peak_rss = 0
    samples = 0

    def reap() -> None:
        nonlocal rc, wall
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == child.pid:
                rc = os.waitstatus_to_exitcode(status)
                wall = time.monotonic() - t0
                child.returncode = rc  # Popen must not wait for it again

    def sample() -> None:
        nonlocal peak_pss, peak_rss, samples
        own_cpu.sample()
        also_cpu.sample()
        if interval <= 0:
            return
        pss = sum(pss_bytes(p) for p in descendants(me)) + sum(tree_pss(p) for p in also)
        peak_pss = max(peak_pss, pss)
        peak_rss = max(peak_rss, peak_rss_bytes(child.pid))
        samples += 1

    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    next_sample = t0
    while rc is None:
        if stop["signal"] is not None:
            kill_tree(me)
        if time.monotonic() >= next_sample:
            sample()
            next_sample = time.monotonic() + (min(interval, CPU_INTERVAL) if interval > 0 else CPU_INTERVAL)
        reap()
        if rc is None:
            time.sleep(min(0.05, interval) if interval > 0 else 0.05)
    also_cpu.sample()
    machine1 = machine_cpu()
    deadline = time.monotonic() + linger
    while descendants(me) and time.monotonic() < deadline:
        own_cpu.sample()
        reap()
        time.sleep(0.05)
    left = kill_tree(me)
    time.sleep(0.05)
    reap()
    # Both are lower bounds: reaped time misses kernel-reaped processes, samples miss last moments.
    cpu = max(tree_cpu_seconds(me, include_root=False), own_cpu.seconds())
    (rd, wr), (ard, awr) = own_cpu.io(), also_cpu.io()
    machine = {k: round((machine1[k] - machine0[k]) / CLK_TCK, 1) for k in machine0}
    return {"cmd": cmd, "rc": rc, "wall_s": round(wall, 3), "cpu_s": round(cpu + also_cpu.seconds(), 2),
            "cluster_cpu_s": round(also_cpu.seconds(), 2),
            "cluster_cpu_s_by_root": {str(p): round(also_cpu.seconds(p), 2) for p in also},
            "peak_tree_pss": peak_pss, "peak_driver_rss": peak_rss,
            "read_bytes": rd + ard, "write_bytes": wr + awr,
            # Whole machine over the run: busy CPU seconds (ours and everyone else's), I/O wait.
            "machine_cpu_s": machine["busy"], "machine_iowait_s": machine["iowait"],
            "samples": samples, "left_behind": len(set(left)),
            "killed_by_signal": stop["signal"]}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] != "run":  # the older form: ROOT INTERVAL, peak PSS printed at stdin's end
        _sample_peak(int(argv[0]), float(argv[1]))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.proctree run", description=__doc__.splitlines()[0])
    p.add_argument("--report", required=True, help="JSON file the measurements are written to")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between samples (0: no sampling)")
    p.add_argument("--linger", type=float, default=20.0,
                   help="seconds left processes get to end after the command exits")
    p.add_argument("--also", type=int, action="append", default=[], metavar="PID",
                   help="another tree whose CPU and PSS count too (a Ray node the command attaches to)")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    args = p.parse_args(argv[1:])
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        p.error("no command")
    report = supervise(cmd, args.interval, args.linger, args.also)
    tmp = f"{args.report}.tmp"
    with open(tmp, "w") as fh:
        json.dump(report, fh, indent=1)
    os.replace(tmp, args.report)
    return report["rc"] if isinstance(report["rc"], int) and report["rc"] >= 0 else 128 - (report["rc"] or 0)


if __name__ == "__main__":
    raise SystemExit(main())
