"""The learning check: a tiny model trained for a few minutes on 2 CPU cores learns what the
captions say. Images show coloured shapes; colour alone is learned in a minute, so shape is also
scored on its own (5 classes) and the global head must learn it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import synth

from pipelines.config import WukongConfig
from pipelines.train_job import run_eval_zeroshot

REPO = Path(__file__).resolve().parents[2]
# Step budget and time budget together: the run ends at whichever comes first, so a busy machine
# gives fewer steps, never a test that runs for ever.
GLOBAL_STEPS, GLOBAL_SECONDS = 600, 360
TOKEN_STEPS, TOKEN_SECONDS = 150, 120


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("learning")
    synth.write_shards(root / "train", 12000, 1000, seed=1)
    synth.write_shards(root / "val", 500, 500, seed=2, key_prefix="v")
    for attribute, per_class in (("colour_shape", 12), ("shape", 60), ("colour", 60)):
        synth.write_class_folders(root / "zs" / attribute, per_class, seed=3, attribute=attribute)
    return root


def pretrain(root: Path, head: str, steps: int, seconds: int) -> dict:
    out = root / f"model_{head}"
    cmd = [sys.executable, "-m", "pipelines", "pretrain", "--train-shards", str(root / "train"),
           "--val-shards", str(root / "val"), "--output", str(out), "--head", head, "--steps", str(steps),
           "--time-budget", str(seconds), "--batch-size", "64", "--set", "train.lr=0.001",
           "--set", "train.warmup_steps=30", "--set", "train.workers=1", "--set", "eval.workers=0",
           "--set", "train.seed=0"]
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=seconds + 300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def zeroshot(root: Path, head: str, attribute: str) -> dict:
    d = root / "zs" / attribute
    return run_eval_zeroshot(root / f"model_{head}" / "checkpoints" / "latest.pt", d, d / "classnames.txt",
                             WukongConfig())


@pytest.mark.slow
def test_global_head_learns_colour_and_shape(shapes):
    summary = pretrain(shapes, "global", GLOBAL_STEPS, GLOBAL_SECONDS)
    assert summary["counters"].get("nonfinite_steps", 0) == 0
    assert summary["loss_last"] < summary["loss_first"] * 0.6
    both = zeroshot(shapes, "global", "colour_shape")
    shape = zeroshot(shapes, "global", "shape")
    colour = zeroshot(shapes, "global", "colour")
    report = {"steps": summary["steps"], "colour_shape": both["top1"], "shape": shape["top1"],
              "colour": colour["top1"], "retrieval": summary["val"]["mean_recall"]}
    print(json.dumps(report))
    assert both["classes"] == 25 and both["top1"] >= 5 * both["chance"], report
    assert shape["top1"] >= 0.35, report          # chance 0.20
    assert colour["top1"] >= 0.6, report          # chance 0.20
    val = summary["val"]
    assert val["mean_recall"] >= 3 * val["chance_mean_recall"], report


@pytest.mark.slow
@pytest.mark.parametrize("head", ["tokenwise", "reduced"])
def test_token_heads_train_without_nan_and_improve(shapes, head):
    summary = pretrain(shapes, head, TOKEN_STEPS, TOKEN_SECONDS)
    assert summary["counters"].get("nonfinite_steps", 0) == 0
    assert summary["loss_last"] < summary["loss_first"] * 0.8, summary
    colour = zeroshot(shapes, head, "colour")
    assert colour["top1"] >= 2 * colour["chance"], colour
    assert summary["val"]["mean_recall"] > 2 * summary["val"]["chance_mean_recall"], summary["val"]
