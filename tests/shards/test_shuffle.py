"""Final shards as a shuffle (plan -> gather -> write) through a real local Ray, on synthetic
stage outputs whose ground truth is known: exactly the kept-and-not-deduplicated samples, once
each, split by the key hash; byte-identical reruns; resume after a crash; both input layouts."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.config import load_config
from pipelines.shards_job import WORK_DIR, run_shards
from shards.format import iter_tar_samples
from shards.sources import member_offsets
from shards.splits import assign_splits
from shards.writer import DIGEST_META
from synthetic_outputs import write_synthetic

N = 700
PER_RAW = 100          # 7 raw shards
SPS = 37               # final shards cut across gather groups
GATHER_ROWS = 160      # 700 raw rows -> 5 gather groups


def cfg_for(**shards):
    base = {"samples_per_shard": SPS, "val_fraction": 0.2, "test_fraction": 0.1, "gather_rows": GATHER_ROWS}
    return load_config(None, [f"shards.{k}={v}" for k, v in {**base, **shards}.items()])


@pytest.fixture(scope="module")
def parts_inputs(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("synth-parts"), N, per_shard=PER_RAW, layout="parts")


@pytest.fixture(scope="module")
def legacy_inputs(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("synth-legacy"), N, per_shard=PER_RAW, layout="legacy")


def run(syn, out, cfg=None):
    return run_shards([syn.raw], out, cfg or cfg_for(), filter_dir=syn.filter_dir, dedup_dir=syn.dedup_dir)


def samples_by_split(out: Path) -> dict[str, dict[str, dict[str, bytes]]]:
    got: dict[str, dict[str, dict[str, bytes]]] = {}
    for split_dir in sorted(p for p in out.iterdir() if p.is_dir() and p.name != WORK_DIR):
        for t in sorted(split_dir.glob("*.tar")):
            for key, members in iter_tar_samples(t):
                assert all(key not in s for s in got.values()), f"{key} written twice"
                got.setdefault(split_dir.name, {})[key] = members
    return got


def tree_digest(out: Path) -> dict[str, str]:
    """Every file of the split directories (stats.json records timings, so it is left out)."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.glob("*/*")) if p.is_file() and WORK_DIR not in p.parts}


def raw_members(raw: Path) -> dict[str, dict[str, bytes]]:
    return {k: m for t in sorted(raw.glob("*.tar")) for k, m in iter_tar_samples(t)}


def raw_jpegs(raw: Path) -> dict[str, bytes]:
    """Whole JPEG members of every raw tar (a damaged tar gives those before the damage)."""
    out = {}
    for t in sorted(raw.glob("*.tar")):
        members, _ = member_offsets(str(t))
        data = t.read_bytes()
        out.update({k: data[m["jpg"][0]:m["jpg"][0] + m["jpg"][1]] for k, m in members.items() if "jpg" in m})
    return out


def test_survivors_once_each_split_by_key_hash(ray_local, parts_inputs, tmp_path):
    syn = parts_inputs
    out = tmp_path / "out"
    stats = run(syn, out)
    got = samples_by_split(out)
    written = {k for split in got.values() for k in split}
    assert written == syn.survivors
    salt = load_config(None, []).shards.split_salt
    keys = sorted(written)
    want = dict(zip(keys, assign_splits(keys, 0.2, 0.1, salt)))
    assert {split for split in got} == {"train", "val", "test"}
    for split, samples in got.items():
        assert all(want[k] == split for k in samples)
    raw = raw_members(syn.raw)
    for split, samples in got.items():
        for key, m in samples.items():
            assert m["jpg"] == raw[key]["jpg"]  # copied by offset, byte for byte
            assert m["txt"].decode() == syn.captions[key]
            meta = json.loads(m["json"])
            assert meta["split"] == split and meta["key"] == key and meta["caption"] == syn.captions[key]
    # Exact cut: every shard but the last of a split holds samples_per_shard; sizes agree with tars.
    for split, samples in got.items():
        sizes = json.loads((out / split / "sizes.json").read_text())
        counts = {t.name: sum(1 for _ in iter_tar_samples(t)) for t in sorted((out / split).glob("*.tar"))}
        assert sizes == counts and sum(counts.values()) == len(samples) == int((out / split / "__len__").read_text())
        assert all(v == SPS for v in list(counts.values())[:-1]) and 1 <= list(counts.values())[-1] <= SPS
        index = pq.read_table(out / split / "000000.parquet")
        assert index.num_rows == counts["000000.tar"] and DIGEST_META in index.schema.metadata
    # The shuffle crosses raw shards: a final shard draws from several raw shards.
    first = pq.read_table(out / "train" / "000000.parquet", columns=["key"])["key"].to_pylist()
    assert len({k[:-2] for k in first}) > 1
    f = stats["funnel"]
    assert f["raw rows"] == N and f["kept by dedup"] == len(syn.survivors)
    assert sum(v for k, v in f.items() if k.startswith("written")) == len(syn.survivors)
    assert set(stats["reasons"]) >= {"ingest", "filter", "dedup"} and stats["reasons"]["dedup"]["exact_sha256"] > 0
    ex = stats["exchange"]
    assert ex["plan_files"] == N // PER_RAW and ex["gather_groups"] == -(-N // GATHER_ROWS)
    assert stats["caption_length"]["samples"] == len(syn.survivors)
    assert not (out / WORK_DIR).exists()
    card = (out / "README.md").read_text()
    assert "kept by dedup" in card and "exact_sha256" in card


def test_rerun_byte_identical_and_skips(ray_local, parts_inputs, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(parts_inputs, a)
    first = tree_digest(a)
    run(parts_inputs, b)
    assert tree_digest(b) == first
    stats = run(parts_inputs, a)
    assert tree_digest(a) == first
    assert stats["shards_skipped_as_done"] == sum(1 for k in first if k.endswith(".tar"))
    # Another samples_per_shard reuses the plan files but not the gathered pieces.
    c = tmp_path / "c"
    stats = run(parts_inputs, c, cfg_for(samples_per_shard=50, keep_work=True))
    again = run(parts_inputs, c, cfg_for(samples_per_shard=29, keep_work=True))
    assert again["exchange"]["plans_reused"] == N // PER_RAW and again["exchange"]["groups_reused"] == 0
    fresh = tmp_path / "fresh"
    run(parts_inputs, fresh, cfg_for(samples_per_shard=29))
    assert tree_digest(c) == tree_digest(fresh) and stats["splits"] != again["splits"]


def test_legacy_single_files_give_the_same_shards(ray_local, parts_inputs, legacy_inputs, tmp_path):
    a, b = tmp_path / "parts", tmp_path / "legacy"
    sa, sb = run(parts_inputs, a), run(legacy_inputs, b)
    # Same samples, same captions, same order: only the tar paths in the plan differ (other dirs),
    # so compare contents rather than digests.
    ga, gb = samples_by_split(a), samples_by_split(b)
    assert {s: list(v) for s, v in ga.items()} == {s: list(v) for s, v in gb.items()}
    assert all(ga[s][k] == gb[s][k] for s in ga for k in ga[s])
    assert sa["funnel"] == sb["funnel"] and sa["reasons"] == sb["reasons"]


def _plant_crash(out: Path) -> None:
    """What a kill -9 late in a run can leave: some shards written, one half-written (a
    temporary), work files of every step partly present, no sizes.json or card yet."""
    train = out / "train"
    for name in ("000001", "000004"):
        (train / f"{name}.tar").unlink()
        (train / f"{name}.parquet").unlink()
    (train / "000002.parquet").unlink()  # killed between the tar and its index
    (train / ".000001.tar.abc.tmp").write_bytes(b"partial")
    for f in ("sizes.json", "__len__"):
        (train / f).unlink()
    (out / "README.md").unlink()
    work = out / WORK_DIR
    plans = sorted((work / "plan").glob("*.arrow"))
    plans[0].unlink()                             # plan file gone, its record left
    plans[1].with_suffix(".json").unlink()        # plan file left, its record gone
    (work / "plan" / ".00003.arrow.x.tmp").write_bytes(b"half")
    groups = sorted(p for p in (work / "gather").iterdir() if p.is_dir())
    (groups[0] / "_done.json").unlink()           # killed before the group's record
    next(groups[1].glob("*.arrow")).unlink()      # a piece lost (e.g. cleanup interrupted)
    (groups[2] / ".train-000000.arrow.y.tmp").write_bytes(b"half")


def test_resume_after_crash_finishes_exactly_once(ray_local, parts_inputs, tmp_path):
    ref = tmp_path / "ref"
    run(parts_inputs, ref)
    out = tmp_path / "crashed"
    run(parts_inputs, out, cfg_for(keep_work=True))
    _plant_crash(out)
    stats = run(parts_inputs, out)
    assert tree_digest(out) == tree_digest(ref)
    assert {k for s in samples_by_split(out).values() for k in s} == parts_inputs.survivors
    assert not list(out.rglob(".*.tmp")) and not (out / WORK_DIR).exists()
    ex = stats["exchange"]
    assert ex["plans_reused"] == N // PER_RAW - 2 and ex["groups_reused"] == ex["gather_groups"] - 2
    n_tars = sum(1 for k in tree_digest(ref) if k.endswith(".tar"))
    assert stats["shards_skipped_as_done"] == n_tars - 3
    # Killed while removing the work directory: shards complete, work files partly gone.
    run(parts_inputs, out, cfg_for(keep_work=True))
    for p in list((out / WORK_DIR / "plan").glob("*"))[::2]:
        p.unlink()
    stats = run(parts_inputs, out)
    assert tree_digest(out) == tree_digest(ref) and stats["shards_skipped_as_done"] == n_tars


def test_repeated_keys_and_damaged_tar(ray_local, tmp_path):
    """A second raw directory repeating keys of the first (the first copy wins, counted), and a
    raw tar cut short (its lost members counted, the rest written, the run does not fail)."""
    a = write_synthetic(tmp_path / "a", 300, per_shard=100, layout="legacy", seed=1)
    b = write_synthetic(tmp_path / "b", 300, per_shard=100, layout="legacy", seed=2)
    # b's filter and dedup outputs are not given: only a's decide. b repeats every key of a.
    tar = a.raw / "00002.tar"
    data = tar.read_bytes()
    tar.write_bytes(data[:len(data) // 2])
    out = tmp_path / "out"
    stats = run_shards([a.raw, b.raw], out, cfg_for(samples_per_shard=20), filter_dir=a.filter_dir,
                       dedup_dir=a.dedup_dir)
    got = {k: m for s in samples_by_split(out).values() for k, m in s.items()}
    jpg_a, jpg_b = raw_jpegs(a.raw), raw_jpegs(b.raw)
    lost = a.survivors - set(jpg_a)
    assert set(got) == a.survivors and lost  # what a's damaged tar lost comes from b, once
    for k, m in got.items():
        assert m["jpg"] == (jpg_a[k] if k in jpg_a else jpg_b[k])
    assert stats["reasons"]["shards"]["missing_image_in_tar"] == len(lost)
    assert stats["reasons"]["input"]["duplicate_key"] > 0
    assert stats["reasons"]["shards"]["damaged_tars"] == 1


def test_raw_only_and_unreadable_index(ray_local, tmp_path):
    """Without filter and dedup outputs every downloaded sample is written, with its raw caption;
    an unreadable raw index is reported and the others are written."""
    syn = write_synthetic(tmp_path / "s", 250, per_shard=50, layout="parts")
    (syn.raw / "00004.parquet").write_bytes(b"not parquet")
    out = tmp_path / "out"
    stats = run_shards([syn.raw], out, cfg_for(samples_per_shard=16))
    got = {k: m for s in samples_by_split(out).values() for k, m in s.items()}
    ok = {}
    for p in sorted(syn.raw.glob("0000[0-3].parquet")):
        t = pq.read_table(p, columns=["key", "status", "caption"]).to_pylist()
        ok.update({r["key"]: r["caption"] for r in t if r["status"] == "success"})
    assert set(got) == set(ok) and all(m["txt"].decode() == ok[k] for k, m in got.items())
    assert list(stats["input"]["unreadable_index_files"]) == [str(syn.raw / "00004.parquet")]
    assert "kept by filter" not in stats["funnel"] and stats["funnel"]["downloaded"] == len(ok)
