"""The distributed dedup (Ray tasks over files) against the in-memory reference `decide`, on
synthetic raw indexes with planted exact and near duplicates of every kind, split several ways."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401
import pyarrow.parquet as pq
import pytest

from dedup.config import DedupConfig
from dedup.decisions import decide
from pipelines.config import WukongConfig
from pipelines.dedup_job import run_dedup
from rawgen import synthetic_rows, write_synthetic_indexes
from shards.parts import open_parts, read_manifest, write_manifest, write_part

N = 4000
COLUMNS = ["key", "keep", "reason", "survivor_key", "cluster_id", "cluster_size", "phash_distance"]
STATS = ["examined", "kept", "removed", "by_reason", "clusters_with_duplicates", "largest_cluster",
         "distinct_phash", "largest_identical_phash_groups"]


@pytest.fixture(scope="module")
def rows():
    return synthetic_rows(N, seed=11)


def reference(tables: list[pa.Table], cfg: DedupConfig, kept: pa.Table | None = None):
    """What the previous single-frame job did: every success row in listing order, the first row
    of a key, inner join with the kept keys (cleaned captions), then `decide` on it all."""
    df = pd.concat([t.to_pandas(types_mapper={pa.uint64(): pd.UInt64Dtype()}.get) for t in tables], ignore_index=True)
    df = df[df["status"] == "success"]
    df = df[~df["key"].duplicated(keep="first")]
    if kept is not None:
        k = kept.select(["key", "caption"]).to_pandas().drop_duplicates("key")
        df = df.drop(columns=["caption"]).merge(k, on="key", how="inner")
    return decide(df.reset_index(drop=True), cfg)


def read_decisions(out) -> pd.DataFrame:
    parts = open_parts(out, "decisions")
    frames = [pq.read_table(p).to_pandas() for p in parts.paths()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def assert_same(got: pd.DataFrame, want: pd.DataFrame):
    got = got.sort_values("key").reset_index(drop=True)[COLUMNS]
    want = want.sort_values("key").reset_index(drop=True)[COLUMNS]
    assert got["key"].tolist() == want["key"].tolist()
    for c in COLUMNS[1:]:
        mismatch = np.flatnonzero(got[c].to_numpy() != want[c].to_numpy())
        assert mismatch.size == 0, (c, got.iloc[mismatch[:5]].to_dict("records"), want.iloc[mismatch[:5]].to_dict("records"))
    # Clusters as sets of keys.
    g = {frozenset(k) for _, k in got.groupby("cluster_id")["key"]}
    w = {frozenset(k) for _, k in want.groupby("cluster_id")["key"]}
    assert g == w


def config(rows_per_task: int, **dedup) -> WukongConfig:
    cfg = WukongConfig()
    cfg.dedup = DedupConfig(shuffle_rows_per_task=rows_per_task, **dedup)
    return cfg


def assert_planted_cases(decisions: pd.DataFrame, raw: pd.DataFrame, captions_per_cluster: int):
    """The cases the comparison must cover do occur in the decisions: samples lacking a pHash in
    clusters, URL duplicates of other images, same bytes under other captions, several survivors
    of one cluster when more than one caption is kept."""
    d = decisions.merge(raw[["key", "phash", "sha256", "caption"]], on="key")
    surv = d.set_index("key").loc[d["survivor_key"]].reset_index(drop=True)
    dup = d["cluster_size"] > 1
    assert (dup & d["phash"].isna()).sum() >= 5  # clustered without a pHash
    url = d["reason"] == "exact_url"
    assert (url & (d["phash_distance"] > 4)).sum() >= 5  # same URL, another image
    sha = d["reason"] == "exact_sha256"
    assert sha.sum() >= 5 and (d.loc[sha, "caption"].to_numpy() != surv.loc[sha, "caption"].to_numpy()).all()
    kept_per_cluster = d[dup & d["keep"]].groupby("cluster_id").size()
    assert kept_per_cluster.max() == captions_per_cluster


@pytest.mark.parametrize("shards,rows_per_task,captions", [(1, 10**6, 1), (3, 300, 2), (17, 97, 3)])
def test_distributed_equals_reference(ray_local, rows, tmp_path, shards, rows_per_task, captions):
    raw = tmp_path / "raw"
    paths = write_synthetic_indexes(raw, rows, shards)
    cfg = config(rows_per_task, captions_per_cluster=captions)
    stats = run_dedup([raw], tmp_path / "out", cfg)
    want, want_stats = reference([pq.read_table(p) for p in paths], cfg.dedup)
    got = read_decisions(tmp_path / "out")
    assert_same(got, want)
    for k in STATS:
        assert stats[k] == want_stats[k], k
    # The planted relations all occur, and the reasons cover every kind.
    assert all(stats["by_reason"][r] >= 5 for r in stats["by_reason"]), stats["by_reason"]
    raw_rows = rows.to_pandas(types_mapper={pa.uint64(): pd.UInt64Dtype()}.get)
    assert_planted_cases(got, raw_rows[raw_rows["status"] == "success"], captions)
    assert stats["work"]["partitions"] == shards
    if rows_per_task < 1000:
        assert stats["work"]["exact_tasks"] > 3 and stats["work"]["decide_tasks"] > 1
    # One part per raw index, covering its keys only, rows sorted by key.
    parts = read_manifest(tmp_path / "out" / "decisions")
    assert len(parts.parts) == shards
    for part, path in zip(parts.parts, paths):
        keys = pq.read_table(path, columns=["key", "status"]).to_pandas()
        success = keys.loc[keys["status"] == "success", "key"]
        table = pq.read_table(parts.directory / part.file).to_pandas()
        assert table["key"].tolist() == sorted(success)
        assert (part.key_min, part.key_max) == (success.min(), success.max())
    assert not (tmp_path / "out" / "_work").exists()
    saved = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert saved["by_reason"] == stats["by_reason"]


def test_options_kept_parts_and_repeated_keys(ray_local, rows, tmp_path):
    """K captions per cluster, no URL relation, the filter's kept parts with cleaned captions, and
    a second raw directory repeating keys of the first (the earlier row wins)."""
    raw = tmp_path / "raw"
    paths = write_synthetic_indexes(raw, rows, 3)
    again = tmp_path / "raw2"
    again.mkdir()
    copy = rows.slice(N // 3 - 100, 400)  # overlaps two shards of the first directory
    copy = copy.set_column(copy.column_names.index("caption"), "caption", pa.array(["重复"] * copy.num_rows))
    pq.write_table(copy, again / "00000.parquet")
    # Filter output: kept/ parts along the raw shards, every 7th success row dropped, captions cleaned.
    kept_dir = tmp_path / "filter" / "kept"
    entries, kept_tables = [], []
    for i, p in enumerate(paths + [again / "00000.parquet"]):
        t = pq.read_table(p, columns=["key", "caption", "status"])
        t = t.filter(pa.array([(s == "success") and (int(k) % 7 != 3) for k, s in
                               zip(t["key"].to_pylist(), t["status"].to_pylist())]))
        t = pa.table({"key": t["key"], "caption": pa.array([c[: 3 + int(k) % 5] for k, c in
                                                              zip(t["key"].to_pylist(), t["caption"].to_pylist())]),
                      "caption_original": t["caption"]})
        if i < 3:  # the filter's parts follow the first directory; the repeated keys are kept too
            entries.append(write_part(kept_dir, i, t))
            kept_tables.append(t)
    write_manifest(kept_dir, entries)
    cfg = config(300, captions_per_cluster=2, exact_url=False)
    for kept_arg in (tmp_path / "filter", kept_dir):
        out = tmp_path / f"out-{kept_arg.name}"
        stats = run_dedup([raw, again], out, cfg, kept=kept_arg)
        tables = [pq.read_table(p) for p in paths] + [pq.read_table(again / "00000.parquet")]
        want, want_stats = reference(tables, cfg.dedup, kept=pa.concat_tables(kept_tables))
        assert_same(read_decisions(out), want)
        for k in STATS:
            assert stats[k] == want_stats[k], k
        assert stats["input"]["duplicate_key"] == pa.compute.sum(pa.compute.equal(copy["status"], "success")).as_py()
        assert stats["input"]["not_kept_by_filter"] > 0
        assert stats["by_reason"]["exact_url"] == 0
    # A legacy single kept.parquet gives the same decisions.
    legacy = tmp_path / "legacy" / "kept.parquet"
    legacy.parent.mkdir()
    pq.write_table(pa.concat_tables(kept_tables), legacy)
    run_dedup([raw, again], tmp_path / "out-legacy", cfg, kept=legacy)
    assert_same(read_decisions(tmp_path / "out-legacy"), read_decisions(tmp_path / "out-filter"))


def test_resume_redoes_only_missing_work_and_is_byte_identical(ray_local, rows, tmp_path):
    raw = tmp_path / "raw"
    write_synthetic_indexes(raw, rows, 5)
    cfg = config(500)
    clean = run_dedup([raw], tmp_path / "clean", cfg)
    # A run that dies in its last step: a directory stands where one part file goes.
    out = tmp_path / "out"
    blocker = out / "decisions" / "part-00003.parquet"
    blocker.mkdir(parents=True)
    with pytest.raises(Exception):
        run_dedup([raw], out, cfg)
    assert not (out / "decisions" / "_manifest.json").exists()
    assert (out / "_work" / "map").is_dir()
    blocker.rmdir()
    stats = run_dedup([raw], out, cfg)
    reused = stats["work"]["reused"]
    assert reused["map"] == 5 and reused["components"] and reused["route"] == 5
    assert reused["exact"] == stats["work"]["exact_tasks"] and reused["decide"] == stats["work"]["decide_tasks"]
    assert reused["write"] < 5  # not the blocked part
    for name in sorted(p.name for p in (tmp_path / "clean" / "decisions").iterdir()):
        assert (out / "decisions" / name).read_bytes() == (tmp_path / "clean" / "decisions" / name).read_bytes(), name
    assert stats["by_reason"] == clean["by_reason"]
    # A rerun of a finished run returns its stats; changed inputs are decided again.
    assert run_dedup([raw], out, cfg) == stats
    shutil.copy(raw / "00004.parquet", raw / "00005.parquet")  # a new raw index repeating keys
    again = run_dedup([raw], out, cfg)
    assert again["fingerprint"] != stats["fingerprint"] and again["input"]["duplicate_key"] > 0
    assert again["examined"] == stats["examined"] and again["work"]["reused"]["map"] == 0


def test_malformed_raw_rows_are_counted_not_fatal(ray_local, tmp_path):
    """A success row without a key is left out and counted; a raw index whose pHash column holds
    values that are not 64-bit unsigned (a signed column with negatives) is reported unreadable;
    the other rows are decided as usual and the output's types do not change."""
    raw = tmp_path / "raw"
    good = synthetic_rows(300, seed=3)
    keys = good["key"].to_pylist()
    status = good["status"].to_pylist()
    nulled = [i for i, s in enumerate(status) if s == "success"][:2]
    for i in nulled:
        keys[i] = None
    good = good.set_column(0, "key", pa.array(keys, pa.string()))
    signed = synthetic_rows(50, seed=4, file_index=1)
    ph = signed["phash"].to_pylist()
    signed = signed.set_column(signed.column_names.index("phash"), "phash",
                               pa.array([None if v is None else v - 2**63 for v in ph], pa.int64()))
    plain = synthetic_rows(50, seed=6, file_index=2)
    ph = plain["phash"].to_pylist()
    plain = plain.set_column(plain.column_names.index("phash"), "phash",
                             pa.array([None if v is None else v >> 1 for v in ph], pa.int64()))
    raw.mkdir()
    for i, t in enumerate([good, signed, plain]):
        pq.write_table(t, raw / f"{i:05d}.parquet")
    stats = run_dedup([raw], tmp_path / "out", config(100))
    assert stats["input"]["missing_key"] == 2
    assert list(stats["input"]["unreadable_index_files"]) == [str(raw / "00001.parquet")]
    assert "phash" in stats["input"]["unreadable_index_files"][str(raw / "00001.parquet")]
    plain = plain.set_column(plain.column_names.index("phash"), "phash", pa.compute.cast(plain["phash"], pa.uint64()))
    want, _ = reference([good.filter(pa.compute.is_valid(good["key"])), plain], config(100).dedup)
    got = read_decisions(tmp_path / "out")
    assert_same(got, want)
    assert got["key"].notna().all() and got["cluster_id"].dtype == np.int64
    assert stats["input"]["success_rows"] == status.count("success") + plain["status"].to_pylist().count("success")
