"""A driver's progress: a tqdm bar on a terminal, plain lines elsewhere (a Ray job's driver log).

In a job submitted to the dashboard (`wukong submit`) stderr is a file, where a bar's carriage
returns make one unreadable line; there the same figures are printed as a line every few seconds.
"""

from __future__ import annotations

import sys
import time

# Seconds between two progress lines when stderr is not a terminal.
LINE_INTERVAL_S = 10.0


class ProgressLine:
    """Rows done of `total`, with rate and success share; silent when disabled."""

    def __init__(self, stage: str, total: int, unit: str = "row", enabled: bool = True,
                 interval_s: float = LINE_INTERVAL_S, stream=None):
        self.stage, self.total, self.unit = stage, total, unit
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self.t0 = time.monotonic()
        self.last_line = self.t0
        self.done = self.ok = 0
        self.bar = None
        if enabled and _is_terminal(self.stream):
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit=unit, desc=stage, file=self.stream, dynamic_ncols=True,
                            smoothing=0.1)

    def _figures(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        return (f"{self.ok / elapsed:.0f} samples/s, success {self.ok / self.done:.1%}" if self.done else "")

    def update(self, done: int, ok: int) -> None:
        self.done, self.ok = min(done, self.total), ok
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.n = self.done
            self.bar.set_postfix_str(self._figures())
            return
        now = time.monotonic()
        if now - self.last_line >= self.interval_s:
            self.last_line = now
            self._line()

    def _line(self) -> None:
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        figures = self._figures()
        print(f"{self.stage}: {self.done}/{self.total} {self.unit}s{share}{', ' + figures if figures else ''}",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self._line()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
