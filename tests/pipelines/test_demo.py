"""`wukong demo` end to end on a small demo web: every stage runs, the report agrees with the demo
web's ground truth, the final shards hold unique samples, and a rerun resumes instead of redoing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest


def _run_demo(out: Path, ray_temp: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "pipelines", "demo", "--output", str(out), "--pairs", "240",
           "--train-seconds", "20", "--set", f"ray.temp_dir={ray_temp}", "--set", "ray.include_dashboard=false",
           "--set", "demo.eval_per_class=6", "--set", "train.workers=0"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)


@pytest.mark.slow
def test_demo_end_to_end_and_resume(tmp_path):
    out = tmp_path / "demo"
    first = _run_demo(out, tmp_path / "ray")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Ground truth agreement" in first.stdout
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    gt = report["ground_truth"]
    total = sum(r["pairs"] for r in gt)
    agreed = sum(r["as_expected"] for r in gt)
    assert total > 200
    assert agreed / total >= 0.95, [r for r in gt if r["as_expected"] < r["pairs"]]
    # Categories that must never reach the final shards, whatever the sizes drawn.
    by_cat = {r["category"]: r for r in gt}
    for cat in ("robots_disallowed", "opted_out", "sensitive", "english", "not_image", "corrupt"):
        if cat in by_cat:
            assert all(k.startswith("drop") for k in by_cat[cat]["outcomes"]), by_cat[cat]
    assert set(report["funnel"]) >= {"discover (pages -> pairs)", "download", "filter", "dedup", "shards"}
    for task in ("zeroshot_shape", "zeroshot_colour", "retrieval_val"):
        assert task in report["eval"]

    # Final shards: unique keys and unique images across splits.
    import hashlib
    keys, digests = [], []
    for tar_path in sorted((out / "shards").glob("*/*.tar")):
        with tarfile.open(tar_path) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".jpg"):
                    keys.append(m.name[:-4])
                    digests.append(hashlib.sha256(tar.extractfile(m).read()).hexdigest())
    assert keys and len(keys) == len(set(keys))
    assert len(digests) == len(set(digests))
    sizes = sum(json.loads(p.read_text())[k] for p in (out / "shards").glob("*/sizes.json")
                for k in json.loads(p.read_text()))
    assert sizes == len(keys)

    # A rerun resumes: the same shards, byte for byte, and nothing downloaded again.
    before = {p.name: p.read_bytes() for p in (out / "shards").glob("*/*.tar")}
    second = _run_demo(out, tmp_path / "ray")
    assert second.returncode == 0, second.stderr[-3000:]
    after = {p.name: p.read_bytes() for p in (out / "shards").glob("*/*.tar")}
    assert before == after
    raw_stats = json.loads((out / "crawl" / "raw" / "stats.json").read_text())
    assert raw_stats["shards_written"] == 0
