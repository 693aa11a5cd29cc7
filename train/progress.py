"""What a run reports while it trains, on rank 0 only: progress bar and TensorBoard."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from train.distributed import DistContext

log = logging.getLogger(__name__)


class ProgressLog:
    """Progress bar + TensorBoard on rank 0; nothing elsewhere."""

    def __init__(self, output: Path, ctx: DistContext, total: int | None, start: int):
        self.enabled = ctx.is_main
        self.tb = self.bar = None
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
