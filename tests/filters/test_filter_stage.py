"""The filter stage's output layout and resume on real Ray: parts + manifests per partition, a
driver that never reads rows, the global frequency over many partitions, and a rerun after a
crash that writes exactly what an uninterrupted run writes."""

from __future__ import annotations

import itertools
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import filter_job
from pipelines.config import load_config
from pipelines.demo_job import read_stage_output
from pipelines.filter_job import run_filter
from shards.format import RAW_INDEX_SCHEMA
from shards.parts import MANIFEST, IncompleteOutput, open_parts, read_manifest

GOOD = [f"{a}的{n}" for a, n in itertools.product(
    ["红色", "安静", "古老", "美丽", "明亮", "温暖"], ["小猫", "山谷", "湖泊", "街道", "花园", "城市", "书房"])]
FREQUENT = "夕阳下的海滩"  # 11 times over three files: no partition sees more than max_occurrences (10)


def _raw_dir(path, files: int = 3, rows: int = 14):
    """`files` raw indexes; each has failed downloads, small images, English, boilerplate and
    good captions, and FREQUENT spread over all of them."""
    path.mkdir(parents=True, exist_ok=True)
    good = iter(GOOD * 4)
    frequent_left = 11
    for f in range(files):
        out = []
        for i in range(rows):
            kind = i % 7
            caption = next(good)
            status, size = "success", (640, 480)
            if kind == 1:
                status, size = "failed", (None, None)
            elif kind == 2:
                size = (120, 90)
            elif kind == 3:
                caption = "Beautiful sunset at the beach"
            elif kind == 4 and i % 2 == 0:
                caption = "查看源网页"
            elif kind in (5, 6) and frequent_left > 0:
                caption, frequent_left = FREQUENT, frequent_left - 1
            out.append({"key": f"{f:03d}{i:09d}", "url": f"http://127.0.0.1/{f}/{i}.jpg", "caption": caption,
                        "status": status, "error": None if status == "success" else "http_404",
                        "original_width": size[0], "original_height": size[1], "source_row": i})
        pq.write_table(pa.Table.from_pylist(out, schema=RAW_INDEX_SCHEMA), path / f"{f:05d}.parquet")
    assert frequent_left == 0
    return path


def _cfg(tmp_path, *sets):
    return load_config(None, [f"ray.temp_dir={tmp_path}/ray", f"filter.jieba_cache_dir={tmp_path}/jieba", *sets])


def _rows(out, name: str) -> list[dict]:
    return [r for p in open_parts(out, name).paths() for r in pq.read_table(p).to_pylist()]


def _no_row_reads(monkeypatch):
    """Reading rows in this (the driver's) process fails; Ray workers are other processes."""
    def refuse(*args, **kwargs):
        raise AssertionError("the filter driver read rows")
    monkeypatch.setattr(pq, "read_table", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", refuse)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", refuse)


def test_parts_follow_partitions_and_equal_one_partition_per_file(ray_local, tmp_path, monkeypatch):
    raw = _raw_dir(tmp_path / "raw")
    small, whole = tmp_path / "small", tmp_path / "whole"
    with monkeypatch.context() as m:
        _no_row_reads(m)
        stats = run_filter([str(raw)], small, _cfg(tmp_path, "filter.rows_per_partition=4"))
        run_filter([str(raw)], whole, _cfg(tmp_path, "filter.rows_per_partition=1000"))

    assert stats["partitions"] == 12  # 3 files x 4 partitions of 4, 4, 4, 2 rows
    kept_parts, rejected_parts = read_manifest(small / "kept"), read_manifest(small / "rejected")
    for parts in (kept_parts, rejected_parts):
        names = [p.file for p in parts.parts]
        assert names == sorted(names) and len(set(names)) == len(names)
        assert sorted(f.name for f in parts.directory.glob("part-*.parquet")) == names
        for p in parts.parts:
            # One part per partition: its keys come from one raw file and its row range.
            index = int(p.file[5:10])
            lo, hi = f"{index // 4:03d}{(index % 4) * 4:09d}", f"{index // 4:03d}{(index % 4) * 4 + 3:09d}"
            assert lo <= p.key_min <= p.key_max <= hi, (p, lo, hi)
            assert pq.read_metadata(parts.directory / p.file).num_rows == p.rows > 0
    # Many small partitions give the rows one partition per file gives, FREQUENT included.
    kept, rejected = _rows(small, "kept"), _rows(small, "rejected")
    assert sorted(kept, key=lambda r: r["key"]) == sorted(_rows(whole, "kept"), key=lambda r: r["key"])
    assert sorted(rejected, key=lambda r: r["key"]) == sorted(_rows(whole, "rejected"), key=lambda r: r["key"])
    assert [r["reason"] for r in rejected if r["caption_original"] == FREQUENT] == ["too_frequent"] * 11
    assert stats["by_reason"]["too_frequent"] == 11 and stats["too_frequent_captions"] == 1
    assert {"reason", "reason_detail", "_freq_key"}.isdisjoint(kept[0]) and "_freq_key" not in rejected[0]
    # Every successful input row exactly once in kept + rejected; failed downloads in neither.
    success = [r["key"] for f in sorted(raw.glob("*.parquet")) for r in pq.read_table(f).to_pylist()
               if r["status"] == "success"]
    written = [r["key"] for r in kept + rejected]
    assert sorted(written) == sorted(success) and len(set(written)) == len(written)
    assert stats["rows_in"] == len(success) == kept_parts.rows + rejected_parts.rows
    assert stats["kept"] == kept_parts.rows == len(kept)
    assert not (small / filter_job.WORK_DIR).exists()


def _snapshot(out) -> dict:
    snap = {}
    for name in ("kept", "rejected"):
        manifest = json.loads((out / name / MANIFEST).read_text())
        snap[name] = (manifest["parts"], {p["file"]: (out / name / p["file"]).read_bytes()
                                          for p in manifest["parts"]})
    return snap


def test_rerun_after_crash_rewrites_only_what_is_missing(ray_local, tmp_path, monkeypatch):
    raw = _raw_dir(tmp_path / "raw")
    cfg = _cfg(tmp_path, "filter.rows_per_partition=7")
    out = tmp_path / "out"
    with monkeypatch.context() as m:  # a run killed after its last part: the work dir stays
        m.setattr(filter_job, "_remove_work", lambda work: None)
        first = run_filter([str(raw)], out, cfg)
    before = _snapshot(out)
    work = out / filter_job.WORK_DIR
    # The crash: no manifest or stats; a part of each output gone; one partition's pass 1 lost
    # with its written parts; temporaries of the interrupted writes everywhere.
    for name in ("kept", "rejected"):
        (out / name / MANIFEST).unlink()
    (out / filter_job.STATS_FILE).unlink()
    (out / "kept" / "part-00001.parquet").unlink()
    (out / "rejected" / "part-00004.parquet").unlink()
    lost = sorted(work.glob("*.stats.json"))[0]
    lost.unlink()
    for leftover in (out / "kept" / ".part-00002.parquet.x1.tmp", work / ".abc.parquet.x2.tmp",
                     out / ".stats.json.x3.tmp"):
        leftover.write_bytes(b"half")
    untouched = out / "rejected" / "part-00002.parquet"
    mtime = untouched.stat().st_mtime_ns

    again = run_filter([str(raw)], out, cfg)
    assert _snapshot(out) == before
    assert untouched.stat().st_mtime_ns == mtime  # its marker held: not rewritten
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in first.items() if k != "seconds"}
    assert not list(out.rglob("*.tmp")) and not work.exists()
    # Once finished, a rerun has nothing to do; with a part gone, it writes that part again.
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert run_filter([str(raw)], out, cfg) == again
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
    (out / "kept" / "part-00003.parquet").unlink()
    run_filter([str(raw)], out, cfg)
    assert _snapshot(out) == before


def test_rerun_with_fewer_inputs_publishes_only_its_parts(ray_local, tmp_path):
    raw = _raw_dir(tmp_path / "raw")
    cfg = _cfg(tmp_path, "filter.rows_per_partition=7")
    out = tmp_path / "out"
    run_filter([str(raw)], out, cfg)
    one = tmp_path / "one"
    one.mkdir()
    (raw / "00000.parquet").rename(one / "00000.parquet")
    stats = run_filter([str(one)], out, cfg)
    kept, rejected = _rows(out, "kept"), _rows(out, "rejected")
    assert {r["key"][:3] for r in kept + rejected} == {"000"}
    assert len(kept) + len(rejected) == stats["rows_in"]
    assert len(list((out / "kept").glob("part-*"))) == len(read_manifest(out / "kept").parts) <= 2


def test_legacy_and_partial_outputs_through_the_demo_reader(tmp_path):
    legacy, parts_dir = tmp_path / "legacy", tmp_path / "parts"
    legacy.mkdir()
    pq.write_table(pa.table({"key": ["000000000001"], "caption": ["红色的小猫"], "url": ["u"]}), legacy / "kept.parquet")
    pq.write_table(pa.table({"key": ["000000000002"], "keep": [False], "reason": ["near_phash"]}),
                   legacy / "decisions.parquet")
    from shards.parts import write_manifest, write_part
    write_manifest(parts_dir / "kept", [
        write_part(parts_dir / "kept", 0, pa.table({"key": ["000000000001"], "caption": ["红色的小猫"]})),
        write_part(parts_dir / "kept", 3, pa.table({"key": ["001000000000"], "caption": ["安静的山谷"]}))])
    assert read_stage_output(legacy, "kept", ["key", "caption"]).to_dict("records") == [
        {"key": "000000000001", "caption": "红色的小猫"}]
    assert read_stage_output(legacy, "decisions", ["key", "keep"])["keep"].tolist() == [False]
    assert read_stage_output(parts_dir, "kept", ["key", "caption"])["caption"].tolist() == ["红色的小猫", "安静的山谷"]
    assert read_stage_output(parts_dir, "rejected", ["key", "reason"]).empty  # not written: nothing dropped
    (parts_dir / "kept" / MANIFEST).unlink()
    with pytest.raises(IncompleteOutput):
        read_stage_output(parts_dir, "kept", ["key"])
