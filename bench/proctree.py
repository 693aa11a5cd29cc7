"""Process-tree accounting shared by the benchmarks: a command's CPU and memory include its
children (Ray's daemons and workers, img2dataset's processes), read from /proc."""

from __future__ import annotations

import os


def process_tree(root: int) -> list[int]:
    """`root` and every descendant process id."""
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
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out
