"""The dedup job on real raw shards through a real local Ray, and its CLI."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.config import WukongConfig
from pipelines.dedup_job import run_dedup
from rawgen import TRANSFORMS, build_corpus, write_raw_shards
from shards.parts import open_parts


def read_decisions(out):
    return pa.concat_tables([pq.read_table(p) for p in open_parts(out, "decisions").paths()]).to_pandas()

ROBUST = {t: TRANSFORMS[t] for t in ("jpeg90", "jpeg40", "resize50", "bright-10", "crop2")}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    samples = build_corpus(limit_sources=12, transforms=ROBUST)
    d = tmp_path_factory.mktemp("raw")
    write_raw_shards(d, samples, per_shard=25, failed_every=17)
    (d / "00099.parquet").write_bytes(b"PAR1 this is not parquet")  # a corrupt index: counted, skipped
    return d, samples


def test_run_dedup_one_survivor_per_picture(ray_local, raw, tmp_path):
    d, samples = raw
    (tmp_path / "dedup").mkdir()
    (tmp_path / "dedup" / "decisions.parquet").write_bytes(b"an earlier version's output")
    stats = run_dedup([d], tmp_path / "dedup", WukongConfig())
    assert not (tmp_path / "dedup" / "decisions.parquet").exists()  # stale: removed on publishing
    decisions = read_decisions(tmp_path / "dedup")
    failed = len(samples) // 17
    assert stats["examined"] == len(samples) - failed == len(decisions)
    assert list(stats["input"]["unreadable_index_files"]) == [str(d / "00099.parquet")]
    by_key = {s.key: s for s in samples}
    kept = decisions[decisions["keep"]]
    # Exactly one survivor per source picture, and every removed sample points at a survivor of
    # the same picture.
    assert sorted(by_key[k].source for k in kept["key"]) == sorted({by_key[k].source for k in decisions["key"]})
    for row in decisions[~decisions["keep"]].itertuples():
        assert by_key[row.survivor_key].source == by_key[row.key].source
        assert row.reason == "near_phash" and row.survivor_key in set(kept["key"])
    # Policy: the survivor is the largest image of its picture (resize50 never survives).
    assert not any(by_key[k].transform == "resize50" for k in kept["key"])
    saved = json.loads((tmp_path / "dedup" / "stats.json").read_text())
    assert saved["kept"] == len(kept) and saved["near_search"]["tables"] >= 5
    assert saved["near_search"]["pairs"] > 0


def test_run_dedup_restricted_to_filter_kept_keys(ray_local, raw, tmp_path):
    d, samples = raw
    keep = [s for s in samples if s.transform in ("original", "jpeg40")]
    kept = tmp_path / "kept.parquet"
    pq.write_table(pa.table({"key": [s.key for s in keep], "caption": ["清洗后 " + s.key for s in keep],
                             "caption_original": [s.caption for s in keep]}), kept)
    stats = run_dedup([d], tmp_path / "dedup", WukongConfig(), kept=kept)
    decisions = read_decisions(tmp_path / "dedup")
    assert set(decisions["key"]) <= {s.key for s in keep}
    assert stats["input"]["not_kept_by_filter"] == stats["input"]["success_rows"] - len(decisions)
    assert decisions["keep"].sum() == 12


def test_cli_dedup(ray_local, raw, tmp_path, capsys):
    d, _ = raw
    assert main(["dedup", str(d), "--output", str(tmp_path / "o"), "--radius", "6"]) == 0
    import ray
    # The session's Ray was connected before the command: the command leaves it so.
    assert ray.is_initialized() and ray.get_runtime_context().gcs_address == ray_local["address"]
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["kept"] == 12
    assert json.loads((tmp_path / "o" / "stats.json").read_text())["radius"] == 6
    assert main(["dedup", str(tmp_path / "missing"), "--output", str(tmp_path / "o")]) == 2
    assert "raw shard directory not found" in capsys.readouterr().err
    assert main(["dedup", str(d), "--output", str(tmp_path / "o"), "--set", "dedup.radius=40"]) == 2
    assert main(["dedup", str(d), "--output", str(tmp_path / "o"), "--kept", str(tmp_path / "nope.parquet")]) == 2
    assert "--kept" in capsys.readouterr().err
    # An unfinished filter output (kept/ without its manifest) is refused with the reason.
    (tmp_path / "f" / "kept").mkdir(parents=True)
    assert main(["dedup", str(d), "--output", str(tmp_path / "o"), "--kept", str(tmp_path / "f")]) == 2
    assert "did not finish" in capsys.readouterr().err
