"""The final-shard writer reads a sample's JPEG and raw JSON back exactly, whether the JSON member
follows the JPEG (one read, the ingest's member order) or sits elsewhere in the tar (two reads),
and with JPEG sizes on and off the 512-byte block boundary."""

from __future__ import annotations

import pytest

from shards.format import AtomicTarWriter
from shards.sources import member_offsets
from shards.writer import _Sources, read_in_order


@pytest.mark.parametrize("jpg_len", [1, 511, 512, 513, 5000])
@pytest.mark.parametrize("order", [("jpg", "json", "txt"), ("jpg", "txt", "json"), ("json", "txt", "jpg")])
def test_read_sample_returns_the_members_bytes(tmp_path, jpg_len, order):
    tar = tmp_path / "raw.tar"
    blobs = {}
    with AtomicTarWriter(tar) as w:
        for i in range(3):
            key = f"000{i:09d}"
            members = {"jpg": bytes([i + 1]) * (jpg_len + i), "json": b'{"i": %d}' % i,
                       "txt": "标题".encode() * (i + 40)}
            blobs[key] = members
            for ext in order:
                w.add_member(f"{key}.{ext}", members[ext])
            w.count += 1
    offsets, error = member_offsets(str(tar))
    assert error is None
    sources = _Sources()
    try:
        for key, members in blobs.items():
            (jo, jl), (mo, ml) = offsets[key]["jpg"], offsets[key]["json"]
            row = {"key": key, "tar": str(tar), "jpg_off": jo, "jpg_len": jl, "json_off": mo, "json_len": ml}
            assert sources.read_sample(row) == (members["jpg"], members["json"])
            assert sources.read_sample({**row, "json_off": -1, "json_len": -1}) == (members["jpg"], None)
    finally:
        sources.close()


def _raw_tar(tmp_path, n: int):
    tar = tmp_path / "raw.tar"
    with AtomicTarWriter(tar) as w:
        for i in range(n):
            w.write_sample(f"000{i:09d}", {"jpg": i.to_bytes(4, "big") * (i % 300 + 1), "json": b'{"i": %d}' % i,
                                           "txt": b"x"})
    offsets, _ = member_offsets(str(tar))
    return [{"key": k, "tar": str(tar), "jpg_off": m["jpg"][0], "jpg_len": m["jpg"][1],
             "json_off": m["json"][0], "json_len": m["json"][1]} for k, m in offsets.items()]


@pytest.mark.parametrize("threads,batch", [(1, 1), (4, 1), (3, 7), (16, 16)])
def test_parallel_reads_come_back_in_row_order(tmp_path, threads, batch):
    rows = _raw_tar(tmp_path, 500)
    rows = rows[::-1][:250] + rows[250:]  # not in file order
    sources = _Sources()
    try:
        got = [(r["key"], jpg, meta) for r, jpg, meta in read_in_order(sources, rows, threads, batch)]
    finally:
        sources.close()
    want = [(r["key"], int(r["key"][3:]).to_bytes(4, "big") * (int(r["key"][3:]) % 300 + 1),
             b'{"i": %d}' % int(r["key"][3:])) for r in rows]
    assert got == want


def _read_all(rows, threads=8, batch=4):
    sources = _Sources()
    try:
        return [(r["key"], jpg, meta) for r, jpg, meta in read_in_order(sources, rows, threads, batch)], sources.missing
    finally:
        sources.close()


def _want(key: str):
    i = int(key[3:])
    return i.to_bytes(4, "big") * (i % 300 + 1), b'{"i": %d}' % i


def test_offsets_that_do_not_hold_the_member_are_found_again_by_a_scan(tmp_path):
    rows = _raw_tar(tmp_path, 100)
    rows[37] = {**rows[37], "jpg_off": 10 ** 9}               # past the end of the tar
    rows[38] = {**rows[38], "jpg_off": rows[39]["jpg_off"]}   # another sample's member
    rows[40] = {**rows[40], "json_off": rows[41]["json_off"], "json_len": rows[41]["json_len"]}
    got, missing = _read_all(rows)
    assert missing == 0
    assert got == [(r["key"], *_want(r["key"])) for r in rows]


def test_a_tar_rewritten_since_the_plan_gives_each_key_its_own_bytes(tmp_path):
    rows = _raw_tar(tmp_path, 60)
    tar = rows[0]["tar"]
    # The same samples written again in another order: every recorded offset is now stale.
    with AtomicTarWriter(tar) as w:
        for r in reversed(rows[:50]):
            jpg, meta = _want(r["key"])
            w.write_sample(r["key"], {"jpg": jpg, "json": meta, "txt": b"x"})
    got, missing = _read_all(rows)
    assert missing == 10  # the last ten keys are no longer in the tar
    assert got == [(r["key"], *_want(r["key"])) if i < 50 else (r["key"], None, None) for i, r in enumerate(rows)]


def test_an_unreadable_tar_stops_the_shard_with_its_error(tmp_path):
    rows = _raw_tar(tmp_path, 10)
    rows[3] = {**rows[3], "tar": str(tmp_path / "gone.tar")}
    with pytest.raises(FileNotFoundError):
        _read_all(rows)
