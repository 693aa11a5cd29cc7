"""Reruns of the distributed dedup: a run that dies in any step resumes from the work files of the
steps before it and writes the same bytes; the decisions do not depend on how the work was split
into tasks; a finished run is not redone."""

from __future__ import annotations

import json

import pytest

from dedup.config import DedupConfig
from pipelines.config import WukongConfig
from pipelines.dedup_job import WORK_DIR, run_dedup, run_fingerprint
from rawgen import synthetic_rows, write_synthetic_indexes
from shards.sources import raw_shard_indexes

SHARDS = 5


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    write_synthetic_indexes(d, synthetic_rows(2500, seed=5), SHARDS)
    return d


def config(rows_per_task: int, **dedup) -> WukongConfig:
    cfg = WukongConfig()
    cfg.dedup = DedupConfig(shuffle_rows_per_task=rows_per_task, **dedup)
    return cfg


def part_bytes(out) -> dict[str, bytes]:
    d = out / "decisions"
    return {p.name: p.read_bytes() for p in sorted(d.glob("part-*.parquet"))}


@pytest.fixture(scope="module")
def clean(ray_local, raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    stats = run_dedup([raw], out, config(200))
    return out, stats


def test_a_crash_in_any_step_resumes_and_writes_the_same_bytes(ray_local, raw, clean, tmp_path):
    """One output directory, one crash per step in flow order (a directory stands where the step
    writes a file, so the step fails after the steps before it finished): each rerun keeps what
    earlier runs finished, and the final run writes exactly the clean run's parts."""
    clean_out, clean_stats = clean
    cfg = config(200)
    exact, decide = clean_stats["work"]["exact_tasks"], clean_stats["work"]["decide_tasks"]
    assert exact > 1 and decide > 1
    out = tmp_path / "out"
    work = out / WORK_DIR
    work.mkdir(parents=True)
    (work / "fingerprint").write_text(run_fingerprint(raw_shard_indexes([raw]), cfg.dedup, None) + "\n")
    blockers = [work / "map" / "00002.json", work / "exact" / f"{exact}-00001.npz", work / "components.npz",
                work / "route" / "00003.arrow", work / "decided" / f"{decide}-00001.json",
                work / "write" / "00001.json", out / "decisions" / "part-00004.parquet"]
    for blocker in blockers:
        blocker.mkdir(parents=True)
        with pytest.raises(Exception):
            run_dedup([raw], out, cfg)
        assert not (out / "decisions" / "_manifest.json").exists() and not (out / "stats.json").exists()
        blocker.rmdir()
    stats = run_dedup([raw], out, cfg)
    reused = stats["work"]["reused"]
    # Every step but the last was finished by an earlier run; the last redoes its blocked part.
    assert reused["map"] == SHARDS and reused["exact"] == exact and reused["components"]
    assert reused["route"] == SHARDS and reused["decide"] == decide
    assert reused["write"] == SHARDS - 1
    assert part_bytes(out) == part_bytes(clean_out) and len(part_bytes(out)) == SHARDS
    assert (out / "decisions" / "_manifest.json").read_bytes() == (clean_out / "decisions" / "_manifest.json").read_bytes()
    assert {k: stats[k] for k in ("examined", "kept", "by_reason")} == \
        {k: clean_stats[k] for k in ("examined", "kept", "by_reason")}
    assert not work.exists()


def test_decisions_do_not_depend_on_the_number_of_tasks(ray_local, raw, clean, tmp_path):
    clean_out, clean_stats = clean
    stats = run_dedup([raw], tmp_path / "one", config(10**7))
    assert stats["work"]["exact_tasks"] == stats["work"]["decide_tasks"] == 1
    assert clean_stats["work"]["exact_tasks"] > 1
    assert part_bytes(tmp_path / "one") == part_bytes(clean_out)


def test_a_finished_run_is_returned_and_its_leftover_work_removed(ray_local, raw, clean):
    """A run killed after publishing but before removing its work files left them behind."""
    out, stats = clean
    leftover = out / WORK_DIR / "map" / "00000.json"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("{}")
    assert run_dedup([raw], out, config(200)) == stats == json.loads((out / "stats.json").read_text())
    assert not (out / WORK_DIR).exists()
