"""The monitoring hook `run_training(on_log=...)` on real CPU training runs, and the pipeline's hook
that turns it into Ray metrics."""

from __future__ import annotations

import math
import pickle

from train.checkpoint import load_checkpoint
from train.loop import run_training


def _run(small_shards, out, cfg, steps, on_log, resume=None) -> dict:
    return run_training(dict(cfg, steps=steps, log_every=2), small_shards["train"], str(out), resume=resume,
                        on_log=on_log)


def test_on_log_follows_the_logging_cadence_and_adds_up_to_the_run(small_shards, tmp_path, tiny_train_cfg):
    calls: list[tuple[int, dict]] = []
    summary = _run(small_shards, tmp_path, tiny_train_cfg, 5, lambda step, m: calls.append((step, m)))
    # Step 1, every 2nd step, and the last one (which the cadence would have missed).
    assert [s for s, _ in calls] == [1, 2, 4, 5]
    for _, m in calls:
        assert math.isfinite(m["loss"]) and m["loss"] > 0
        assert m["lr"] > 0 and m["samples_per_s"] > 0 and 0 <= m["data_wait_fraction"] <= 1
    assert sum(m["steps_since_last_log"] for _, m in calls) == summary["steps"] == 5

    calls.clear()
    resumed = _run(small_shards, tmp_path, tiny_train_cfg, 7, lambda step, m: calls.append((step, m)), "latest")
    assert resumed["resumed_from_step"] == 5
    assert [(s, m["steps_since_last_log"]) for s, m in calls] == [(6, 1), (7, 1)]


def test_a_failing_hook_is_counted_and_training_goes_on(small_shards, tmp_path, tiny_train_cfg):
    def broken(step: int, metrics: dict) -> None:
        raise ValueError("metrics backend down")

    summary = _run(small_shards, tmp_path, tiny_train_cfg, 3, broken)
    assert summary["steps"] == 3 and summary["counters"]["on_log_errors"] == 3   # steps 1, 2 and the last
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["position"]["step"] == 3


def test_pipeline_hook_pickles_by_reference_and_is_quiet_without_ray():
    from pipelines.train_job import report_train_progress
    assert pickle.loads(pickle.dumps(report_train_progress)) is report_train_progress
    # Without Ray a no-op, with Ray real metrics (tests/train/test_distributed.py): never an error.
    report_train_progress(3, {"loss": 1.5, "samples_per_s": 10.0, "lr": 1e-4, "steps_since_last_log": 2})
