"""Process-tree accounting shared by the benchmarks: a command's CPU and memory include its
children (Ray's daemons and workers, img2dataset's processes), read from /proc."""

from __future__ import annotations

import os


def process_tree(root: int, exclude: frozenset[int] = frozenset()) -> list[int]:
    """`root` and every descendant process id, less `exclude` and their descendants."""
    children: dict[int, list[int]] = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(p))
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we read
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in exclude:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


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


if __name__ == "__main__":
    import sys

    _sample_peak(int(sys.argv[1]), float(sys.argv[2]))
