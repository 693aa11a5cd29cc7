"""Processes recorded by PID and start time, and ended exactly: never found by name or command line.

A process is "the same" only while its PID still has the recorded start time (PIDs are reused).
`end_processes` signals the recorded processes (and the ones they spawned since, found through the
process tree) with SIGTERM, waits, escalates to SIGKILL, and reports what happened to each.
"""

from __future__ import annotations

import signal
import time
from dataclasses import asdict, dataclass

import psutil

# Start times are read from /proc in clock ticks: two reads of one process agree to this much.
_START_TIME_TOLERANCE_S = 0.05
# How often a wait looks at the processes again.
_POLL_S = 0.1
# After SIGKILL the kernel ends a process at once; this only bounds a wait on a stuck one (D state).
KILL_WAIT_S = 5.0

ENDED = "ended"            # exited after SIGTERM
KILLED = "killed"          # needed SIGKILL
GONE = "already gone"      # not running when asked to stop (or its PID now belongs to another process)
SURVIVED = "survived"      # still running after SIGKILL (reported as an error)


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    create_time: float
    role: str          # what it is for its owner (gcs_server, raylet, dashboard, "child of raylet", ...)
    name: str = ""     # the process name when recorded, for reports only

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProcessRecord":
        return cls(int(d["pid"]), float(d["create_time"]), str(d["role"]), str(d.get("name", "")))


def record(pid: int, role: str) -> ProcessRecord | None:
    """The process `pid` as it is now, or None when it is not running."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return ProcessRecord(pid, proc.create_time(), role, proc.name())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def live(rec: ProcessRecord) -> psutil.Process | None:
    """The running process of `rec`, or None if it ended (or its PID now belongs to another process)."""
    try:
        proc = psutil.Process(rec.pid)
        if abs(proc.create_time() - rec.create_time) > _START_TIME_TOLERANCE_S:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def with_descendants(records: list[ProcessRecord]) -> list[ProcessRecord]:
    """`records` plus every live process they spawned (children of children included), each once.
    Descendants are found through the parent links of the process tree, never by name."""
    out = {r.pid: r for r in records}
    for rec in records:
        proc = live(rec)
        if proc is None:
            continue
        try:
            children = proc.children(recursive=True)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for child in children:
            if child.pid not in out:
                found = record(child.pid, f"child of {rec.role}")
                if found is not None:
                    out[child.pid] = found
    return list(out.values())


def _alive(procs: dict[int, tuple[ProcessRecord, psutil.Process]]) -> dict[int, tuple[ProcessRecord, psutil.Process]]:
    still = {}
    for pid, (rec, proc) in procs.items():
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                still[pid] = (rec, proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return still


def _wait(procs: dict, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    procs = _alive(procs)
    while procs and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        procs = _alive(procs)
    return procs


def _signal(procs: dict, sig: int) -> None:
    for _rec, proc in procs.values():
        try:
            proc.send_signal(sig)  # psutil checks the PID still is this process before signalling
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


def end_processes(records: list[ProcessRecord], timeout_s: float, first: tuple[str, ...] = (),
                  first_wait_s: float = 2.0) -> list[tuple[ProcessRecord, str]]:
    """SIGTERM the recorded processes (roles in `first` before the others, given `first_wait_s` to
    exit), wait up to `timeout_s`, SIGKILL what is left; returns (record, outcome) for each."""
    outcome: dict[int, str] = {}
    procs = {}
    for rec in records:
        proc = live(rec)
        if proc is None:
            outcome[rec.pid] = GONE
        else:
            procs[rec.pid] = (rec, proc)
    leading = {pid: v for pid, v in procs.items() if v[0].role in first}
    if leading:
        _signal(leading, signal.SIGTERM)
        _wait(leading, first_wait_s)
    _signal({pid: v for pid, v in procs.items() if pid not in leading}, signal.SIGTERM)
    left = _wait(procs, timeout_s)
    if left:
        _signal(left, signal.SIGKILL)
    survivors = _wait(left, KILL_WAIT_S)
    for pid in procs:
        outcome[pid] = SURVIVED if pid in survivors else KILLED if pid in left else ENDED
    return [(rec, outcome[rec.pid]) for rec in records]
