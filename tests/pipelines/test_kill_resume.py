"""kill -9 of a stage mid-run, then the same command again: every good sample exactly once.

Each stage runs as `wukong STAGE` with its own local Ray under a subreaper; once it shows progress
(its first output file), the CLI process and every process it started are SIGKILLed by PID, as a
crash or an OOM kill would. The test checks that the run had not finished, reruns the same
command and accounts for every sample (`bench/chaincheck.py` on rows planted by `bench/rawgen.py`,
or the demo web's ground truth for the crawl). The download stage's own crash test is
tests/crawler/test_ingest.py::test_cli_killed_midway_then_rerun_is_exactly_once.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.chaincheck import check_dedup, check_filter, check_shards
from shards.parts import open_parts
from tests.pipelines.rawcheck import CRAWL_ARGS, check_crawl_delivers
from tests.pipelines.stagerun import (StageRun, any_file, kept_arg, local_ray_settings, remove, run_stage,
                                      short_temp_dir)

pytestmark = pytest.mark.slow
FINAL_SAMPLES_PER_SHARD = 1000


@pytest.fixture
def ray_tmp():
    path = short_temp_dir()
    yield path
    remove(path)


def _keys(base, name) -> set[str]:
    return {k for p in open_parts(base, name).paths() for k in pq.read_table(p, columns=["key"])["key"].to_pylist()}


def _kill_mid_run(stage: str, args: list[str], tmp_path, out, progress, what: str) -> StageRun:
    run = StageRun(stage, args, tmp_path, name=f"{stage}-killed")
    run.wait_until(progress, what)
    killed = run.kill()
    assert killed, "the stage's processes were listed and killed"
    assert not (out / "stats.json").exists(), f"{stage} finished before the kill: make its input bigger"
    return run


def test_filter_killed_then_rerun(planted_raw, reference_chain, tmp_path, ray_tmp):
    raw, planted = planted_raw
    out = tmp_path / "filter"
    args = [str(raw), "--output", str(out), *local_ray_settings(ray_tmp)]
    _kill_mid_run("filter", args, tmp_path, out, any_file(out, "*.parquet"), "its first part file")
    run_stage("filter", args, tmp_path, name="filter-rerun")
    check = check_filter(out, planted)
    assert not check["problems"], check["problems"]
    ref_filter, _ = reference_chain
    assert _keys(out, "kept") == _keys(ref_filter, "kept")
    assert _keys(out, "rejected") == _keys(ref_filter, "rejected")


def test_dedup_killed_then_rerun(planted_raw, reference_chain, tmp_path, ray_tmp):
    raw, planted = planted_raw
    ref_filter, ref_dedup = reference_chain
    out = tmp_path / "dedup"
    args = [str(raw), "--output", str(out), "--kept", kept_arg(ref_filter), *local_ray_settings(ray_tmp)]
    # A part file, or (an implementation that writes only at the end) a dedup task running.
    run = StageRun("dedup", args, tmp_path, name="dedup-killed")
    run.wait_until(lambda: any_file(out, "*.parquet")() or bool(run.running_tasks()), "a dedup task")
    assert run.kill()
    assert not (out / "stats.json").exists(), "dedup finished before the kill: make its input bigger"
    run_stage("dedup", args, tmp_path, name="dedup-rerun")
    kept = check_filter(ref_filter, planted)["_kept"]
    check = check_dedup(out, planted, kept)
    assert not check["problems"], check["problems"]
    reference = check_dedup(ref_dedup, planted, kept)
    assert np.array_equal(check["_keep"], reference["_keep"]), "the same survivors as an uninterrupted run"


def test_shards_killed_then_rerun(planted_raw, reference_chain, tmp_path, ray_tmp):
    raw, planted = planted_raw
    ref_filter, ref_dedup = reference_chain
    out = tmp_path / "shards"
    args = [str(raw), "--output", str(out), "--filter", str(ref_filter), "--dedup", str(ref_dedup),
            "--samples-per-shard", str(FINAL_SAMPLES_PER_SHARD), *local_ray_settings(ray_tmp)]
    _kill_mid_run("shards", args, tmp_path, out, any_file(out / "train", "*.tar"), "its first final shard")
    run_stage("shards", args, tmp_path, name="shards-rerun")
    keep = check_dedup(ref_dedup, planted, check_filter(ref_filter, planted)["_kept"])["_keep"]
    check = check_shards(out, planted["role"].size, keep, tars_to_read=1000)
    assert not check["problems"], check["problems"]
    assert check["samples"] == int(keep.sum()) > 0


def test_crawl_killed_then_rerun(reference_crawl, tmp_path, ray_tmp):
    out = tmp_path / "crawl"
    args = ["--output", str(out), *CRAWL_ARGS, *local_ray_settings(ray_tmp)]
    _kill_mid_run("crawl", args, tmp_path, out, any_file(out / "raw", "0*.parquet"), "its first raw shard")
    run_stage("crawl", args, tmp_path, name="crawl-rerun")
    check_crawl_delivers(out, reference_crawl)
