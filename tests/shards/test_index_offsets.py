"""The raw index records where each sample's members are in its tar, so planning final shards
reads no tar: the plan equals the one made by scanning the tar's headers, an index of the older
format (no offsets) is still planned by a scan, and a tar shorter than its index is scanned and
its damage reported."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from shards.exchange import read_table
from shards.format import OFFSET_COLUMNS, RAW_INDEX_SCHEMA, AtomicTarWriter, sample_members
from shards.plan import PlanInputs, PlanParams, plan_partition
from shards.sources import offsets_from_index

N = 40


def _raw_shard(d, with_offsets: bool = True):
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    with AtomicTarWriter(d / "00000.tar") as tar:
        for i in range(N):
            key = f"000{i:09d}"
            rec = {"key": key, "url": f"http://x.test/{i}.jpg", "caption": f"第{i}张风景照片", "status": "success",
                   "width": 300, "height": 300, "original_width": 300, "original_height": 300,
                   "phash": i, "sha256": f"{i:064x}"}
            where = tar.write_sample(key, sample_members(b"\xff\xd8" + bytes([i]) * (100 + 37 * i), rec["caption"],
                                                         {"key": key}))
            if with_offsets:
                (rec["jpg_offset"], rec["jpg_size"]), (rec["json_offset"], rec["json_size"]) = where["jpg"], where["json"]
            rows.append(rec)
    cols = {f.name: [r.get(f.name) for r in rows] for f in RAW_INDEX_SCHEMA}
    pq.write_table(pa.Table.from_pydict(cols, schema=RAW_INDEX_SCHEMA), d / "00000.parquet")
    return d / "00000.parquet"


PARAMS = PlanParams(seed=3, val_fraction=0.1, test_fraction=0.1, split_salt="s", groups=4,
                    caption_max=64, image_bin=64, image_max=1024)


def _plan(index, out):
    result = plan_partition(PlanInputs(str(index), 0), PARAMS, str(out))
    return result, read_table(str(out)) if result["rows"] else None


def test_plan_from_recorded_offsets_equals_plan_from_a_scan(tmp_path):
    with_offsets = _raw_shard(tmp_path / "a")
    legacy = _raw_shard(tmp_path / "b", with_offsets=False)
    assert pq.read_table(legacy)["jpg_offset"].null_count == N
    ra, pa_ = _plan(with_offsets, tmp_path / "a.arrow")
    rb, pb = _plan(legacy, tmp_path / "b.arrow")
    assert ra["rows"] == rb["rows"] == N and ra["tar_error"] is None and rb["tar_error"] is None
    drop = ["tar"]
    assert pa_.drop_columns(drop).equals(pb.drop_columns(drop))


def test_the_plan_does_not_read_the_tar_when_the_index_has_offsets(tmp_path):
    index = _raw_shard(tmp_path / "a")
    tar = index.with_suffix(".tar")
    size = tar.stat().st_size
    tar.write_bytes(b"\x00" * size)  # same size, no headers at all: a scan would find nothing
    result, plan = _plan(index, tmp_path / "a.arrow")
    assert result["rows"] == N and plan.num_rows == N
    # Without the offsets the same tar yields no sample (and the writer checks every header).
    legacy = _raw_shard(tmp_path / "b", with_offsets=False)
    legacy.with_suffix(".tar").write_bytes(b"\x00" * size)
    result, _ = _plan(legacy, tmp_path / "b.arrow")
    assert result["rows"] == 0 and result["reasons"]["shards"]["missing_image_in_tar"] == N


def test_a_tar_shorter_than_its_index_is_scanned_and_its_damage_counted(tmp_path):
    index = _raw_shard(tmp_path / "a")
    tar = index.with_suffix(".tar")
    table = pq.read_table(index)
    cut = table["jpg_offset"][N // 2].as_py() + 10  # inside sample N/2's image
    with open(tar, "r+b") as fh:
        fh.truncate(cut)
    assert offsets_from_index(table, str(tar)) is None
    result, plan = _plan(index, tmp_path / "a.arrow")
    assert result["rows"] == N // 2 and result["tar_error"].startswith("truncated tar")
    assert result["reasons"]["shards"] == {"missing_image_in_tar": N - N // 2, "damaged_tars": 1}
    assert sorted(plan["key"].to_pylist()) == [f"000{i:09d}" for i in range(N // 2)]


def test_offsets_are_used_only_when_every_image_has_them(tmp_path):
    index = _raw_shard(tmp_path / "a")
    tar = str(index.with_suffix(".tar"))
    table = pq.read_table(index)
    assert offsets_from_index(table, tar).tolist() == [
        [r["jpg_offset"], r["jpg_size"], r["json_offset"], r["json_size"]] for r in table.to_pylist()]
    one_missing = table.set_column(table.column_names.index("jpg_offset"), "jpg_offset",
                                   pa.array([None] + table["jpg_offset"].to_pylist()[1:], pa.int64()))
    assert offsets_from_index(one_missing, tar) is None
    assert offsets_from_index(table.drop_columns(list(OFFSET_COLUMNS)), tar) is None
    os.remove(tar)
    assert offsets_from_index(table, tar) is None
