"""The final-shard writer reads a sample's JPEG and raw JSON back exactly, whether the JSON member
follows the JPEG (one read, the ingest's member order) or sits elsewhere in the tar (two reads),
and with JPEG sizes on and off the 512-byte block boundary."""

from __future__ import annotations

import pytest

from shards.format import AtomicTarWriter
from shards.sources import member_offsets
from shards.writer import _Sources


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
            row = {"tar": str(tar), "jpg_off": jo, "jpg_len": jl, "json_off": mo, "json_len": ml}
            assert sources.read_sample(row) == (members["jpg"], members["json"])
            assert sources.read_sample({**row, "json_off": -1, "json_len": -1}) == (members["jpg"], None)
    finally:
        sources.close()
