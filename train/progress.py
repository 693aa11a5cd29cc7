"""What a run reports while it trains, on rank 0 only: progress bar, TensorBoard, the caller's hook.

The hook (`on_log(step, metrics)`) is how a caller watches training without reading files, e.g.
`pipelines` turning it into Ray metrics. It runs on the logging cadence and once more at the run's
last step, so the `steps_since_last_log` it receives add up to the steps of the run. A hook that
raises is logged and counted (`on_log_errors` in the run's counters), never a reason to stop training.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

from train.distributed import DistContext

log = logging.getLogger(__name__)

LogHook = Callable[[int, dict], None]


class ProgressLog:
    """Progress bar + TensorBoard + `on_log` on rank 0; nothing elsewhere."""

    def __init__(self, output: Path, ctx: DistContext, total: int | None, start: int,
                 on_log: LogHook | None = None, counters: Counter | None = None):
        self.enabled = ctx.is_main
        self.tb = self.bar = None
        self.on_log = on_log if self.enabled else None
        self.hooked_step = start  # last step the hook was told about
        self.counters = counters if counters is not None else Counter()
        self.hook_warned = False
        if not self.enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(output / "tensorboard"))
        except Exception as exc:  # TensorBoard missing or unwritable: the terminal log remains
            log.warning("TensorBoard disabled: %s", exc)
        from tqdm import tqdm
        self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, file=sys.stderr,
                        mininterval=2.0, disable=not sys.stderr.isatty() and total is None)

    def step(self, step: int, metrics: dict) -> None:
        """The logging cadence: every output gets `metrics`."""
        if not self.enabled:
            return
        if self.tb:
            for k, v in metrics.items():
                self.tb.add_scalar(f"train/{k}", v, step)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        self._hook(step, metrics)

    def last_step(self, step: int, metrics: dict) -> None:
        """The run's last step: the hook hears of it if the cadence did not already say it."""
        if step > self.hooked_step:
            self._hook(step, metrics)

    def _hook(self, step: int, metrics: dict) -> None:
        if self.on_log is None:
            return
        try:
            self.on_log(step, {**metrics, "steps_since_last_log": step - self.hooked_step})
        except Exception as exc:  # noqa: BLE001 - monitoring is a view, never a reason to stop
            self.counters["on_log_errors"] += 1
            (log.debug if self.hook_warned else log.warning)("on_log hook failed at step %d: %s", step, exc)
            self.hook_warned = True
        self.hooked_step = step

    def advance(self, n: int = 1) -> None:
        if self.enabled and self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb:
            self.tb.flush()
            self.tb.close()


def steady_rate(marks: list[tuple[float, int]]) -> float | None:
    """Samples/s over the second half of the run's steps (start-up and first batches excluded)."""
    if len(marks) < 4:
        return None
    (t0, s0), (t1, s1) = marks[len(marks) // 2], marks[-1]
    return (s1 - s0) / max(1e-9, t1 - t0)
