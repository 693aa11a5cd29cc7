"""The Ray-free units of the final-shards shuffle: positions and groups, ranks, the tar scan,
histograms, the driver's summary, the exchange files."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pyarrow as pa
import pytest

from shards.exchange import read_group, read_table, write_grouped, write_table
from shards.format import AtomicTarWriter
from shards.gather import first_ranks
from shards.histograms import Histograms
from shards.plan import PlanParams
from shards.sources import _scan_ustar, member_offsets
from shards.splits import SPLITS, position_groups, shuffle_positions, split_indexes
from shards.summary import PlanSummary


def test_position_groups_exact_and_ordered():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.integers(0, 2**63, 2000, dtype=np.int64).astype(np.uint64) * np.uint64(2),
                        np.array([0, 2**64 - 1, 2**63, 2**63 - 1], dtype=np.uint64)])
    for groups in (1, 3, 7, 1000, 2**31 - 1):
        got = position_groups(p, groups)
        want = np.array([(int(x) * groups) >> 64 for x in p])
        assert (got == want).all() and got.min() >= 0 and got.max() < groups
        order = np.argsort(p, kind="stable")
        assert (np.diff(got[order]) >= 0).all()  # groups in order hold positions in order


def test_positions_depend_on_seed_and_key_only():
    keys = [f"000{i:09d}" for i in range(500)]
    a, b = shuffle_positions(keys, 0), shuffle_positions(list(reversed(keys)), 0)[::-1]
    assert (a == b).all() and len(set(a.tolist())) == 500
    assert (shuffle_positions(keys, 1) != a).mean() > 0.99
    s = split_indexes(keys, 0.2, 0.1, "salt")
    assert set(s.tolist()) == {0, 1, 2} and abs((s == 1).mean() - 0.2) < 0.08


def test_first_ranks():
    keys = np.array(["a", "a", "b", "c", "c", "c", "d"], dtype=object)
    assert first_ranks(keys).tolist() == [0, 0, 2, 3, 3, 3, 6]
    assert first_ranks(np.array([], dtype=object)).tolist() == []


def _tarfile_offsets(path) -> dict:
    out = {}
    with tarfile.open(path) as t:
        for info in t:
            if info.isfile():
                key, _, ext = info.name.rsplit("/", 1)[-1].partition(".")
                out.setdefault(key, {})[ext] = (info.offset_data, info.size)
    return out


def test_tar_scan_matches_tarfile(tmp_path):
    path = tmp_path / "a.tar"
    with AtomicTarWriter(path) as w:
        for i in range(50):
            w.write_sample(f"k{i:04d}", {"jpg": bytes([i]) * (i * 37 % 1500), "json": b"{}", "txt": "字".encode()})
        w.add_member("d" * 60 + "/" + "x" * 50 + ".jpg", b"long name")  # > 100 bytes: a ustar prefix
    assert member_offsets(str(path)) == (_tarfile_offsets(path), None)
    # GNU long names and pax headers: the scan hands over to tarfile.
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        p = tmp_path / f"{fmt}.tar"
        with tarfile.open(p, "w", format=fmt) as t:
            for name in ("short.jpg", "y" * 150 + ".jpg", "短.json"):
                info = tarfile.TarInfo(name)
                info.size = 3
                t.addfile(info, io.BytesIO(b"abc"))
        with open(p, "rb") as fh:
            data = fh.read()
        with pytest.raises(Exception):
            _scan_ustar(data)
        assert member_offsets(str(p)) == (_tarfile_offsets(p), None)
    # Cut short: whole members before the damage, and the error.
    data = path.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:len(data) // 2])
    members, error = member_offsets(str(cut))
    full = _tarfile_offsets(path)
    assert error and "truncated" in error and 0 < len(members) < len(full)
    for key, m in members.items():
        for ext, (off, size) in m.items():
            assert full[key][ext] == (off, size) and off + size <= len(data) // 2
    assert member_offsets(str(tmp_path / "missing.tar"))[1].startswith("FileNotFoundError")
    (tmp_path / "empty.tar").write_bytes(b"")
    assert member_offsets(str(tmp_path / "empty.tar")) == ({}, "ReadError: empty file")


def test_histograms_merge_like_one_count():
    rng = np.random.default_rng(1)
    lengths, w, h = rng.integers(0, 700, 1000), rng.integers(0, 5000, 1000), rng.integers(0, 5000, 1000)
    whole = Histograms(512, 64, 4096)
    whole.count(lengths, w, h)
    merged = Histograms(512, 64, 4096)
    for part in np.array_split(np.arange(1000), 7):
        one = Histograms(512, 64, 4096)
        one.count(lengths[part], w[part], h[part])
        merged.add(one.to_dict())
    assert (merged.caption_length == whole.caption_length).all() and (merged.image_cells == whole.image_cells).all()
    assert merged.samples == 1000 and merged.caption_length[512] == (lengths >= 512).sum()
    clipped = np.sort(np.minimum(lengths, 512))
    assert merged.median_caption_length() == clipped[(len(clipped) + 1) // 2 - 1]
    assert abs(merged.mean_caption_length() - np.minimum(lengths, 512).mean()) < 0.01


def test_summary_offsets_and_shard_counts():
    params = PlanParams(0, 0.1, 0.0, "s", 3, 10, 8, 64)

    def result(source, counts, digest):
        return {"source": source, "index": f"{source}.parquet", "digest": digest, "counts": counts,
                "funnel": {"raw rows": 10}, "reasons": {"dedup": {"unique": 2}}, "histograms": params.histograms().to_dict()}
    s = PlanSummary(params)
    s.add(result(1, [[4, 0, 2], [1, 1, 0], [0, 0, 0]], "b"))
    s.add(result(0, [[1, 5, 0], [0, 0, 3], [0, 0, 0]], "a"))
    assert s.split_rows == [12, 5, 0] and s.shards_per_split(5) == [3, 1, 0]
    assert s.group_offsets().tolist() == [[0, 5, 10], [0, 1, 2], [0, 0, 0]]
    assert s.plan_files(lambda i: f"p{i}") == ["p0", "p1"] and s.funnel_steps() == {"raw rows": 20}
    d = s.digest()
    s2 = PlanSummary(params)
    s2.add(result(0, [[1, 5, 0], [0, 0, 3], [0, 0, 0]], "a"))
    s2.add(result(1, [[4, 0, 2], [1, 1, 0], [0, 0, 0]], "b"))
    assert s2.digest() == d  # arrival order does not matter
    assert len(SPLITS) == 3


def test_exchange_files_round_trip(tmp_path):
    t = pa.table({"key": [f"k{i}" for i in range(10)], "v": list(range(10))})
    group = np.array([2, 0, 2, 1, 0, 2, 2, 0, 1, 2])
    write_grouped(tmp_path / "g.arrow", t, group, 4)
    for g in range(4):
        b = read_group(tmp_path / "g.arrow", g)
        assert b.column("v").to_pylist() == [i for i in range(10) if group[i] == g]
    with pytest.raises(ValueError, match="another plan"):
        read_group(tmp_path / "g.arrow", 4)
    write_table(tmp_path / "t.arrow", t.slice(0, 0))
    assert read_table(tmp_path / "t.arrow").num_rows == 0
    assert not list(tmp_path.glob(".*.tmp"))
