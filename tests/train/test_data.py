"""Shard specs, exact counts and the no-hang, exact-quota loader on real tars."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
import synth

from shards.atomic import write_parquet_atomic
from train.data import DataError, ShardStream, StreamSpec, make_loader, steps_per_epoch
from train.shardspec import ShardSpecError, count_samples, resolve_shards
from train.tokenizer import build_tokenizer

TOK = build_tokenizer("", ["一个红色的圆形", "三个蓝色五角星"], 32, 21128).to_json()


def spec(shards, **kw) -> StreamSpec:
    base = dict(shards=shards, batch_size=8, image_size=32, tokenizer_json=TOK, context_length=32, seed=3)
    base.update(kw)
    return StreamSpec(**base)


def test_resolve_dir_brace_and_multi(small_shards, tmp_path):
    tars = resolve_shards(small_shards["train"])
    assert [Path(t).name for t in tars] == ["000000.tar", "000001.tar", "000002.tar"]
    brace = resolve_shards(small_shards["train"] + "/{000000..000001}.tar")
    assert brace == tars[:2]
    both = resolve_shards(small_shards["train"] + "::" + small_shards["val"])
    assert len(both) == 4
    with pytest.raises(ShardSpecError, match="not found"):
        resolve_shards(small_shards["train"] + "/{000000..000009}.tar")
    with pytest.raises(ShardSpecError, match="no .tar"):
        resolve_shards(str(tmp_path))


def test_counts_from_sizes_parquet_and_tar(small_shards, tmp_path):
    tars = resolve_shards(small_shards["train"])
    assert sum(count_samples(tars).values()) == 240
    # Without sizes.json: the parquet index (successful rows), else the tar headers.
    d = tmp_path / "noindex"
    paths = synth.write_shards(d, 30, 10, seed=1)
    (d / "sizes.json").unlink()
    table = pa.table({"key": [f"k{i}" for i in range(12)], "status": ["success"] * 7 + ["failed"] * 5})
    write_parquet_atomic(paths[0].with_suffix(".parquet"), table)
    counts = count_samples([str(p) for p in paths])
    assert counts[str(paths[0])] == 7 and counts[str(paths[1])] == 10 and counts[str(paths[2])] == 10


def keys_of(loader) -> list[list[str]]:
    return [b["keys"] for b in loader]


def test_exact_quota_with_fewer_shards_than_workers_and_ranks(small_shards):
    shards = resolve_shards(small_shards["train"])[:1]   # 80 samples, 1 shard, 2 ranks x 2 workers
    per_rank = steps_per_epoch(80, 8, 2)
    assert per_rank == 5
    seen = []
    for rank in range(2):
        batches = keys_of(make_loader(spec(shards, steps=per_rank, world=2, rank=rank), workers=2, timeout_s=60))
        assert len(batches) == per_rank and all(len(b) == 8 for b in batches)
        seen += [k for b in batches for k in b]
    # Both ranks together read each sample once: no duplicate, none dropped.
    assert len(seen) == len(set(seen)) == 80


def test_bad_shard_is_counted_and_quota_still_met(small_shards, tmp_path):
    bad = synth.write_bad_shard(tmp_path / "bad.tar")
    shards = resolve_shards(small_shards["train"])[:1] + [str(bad)]
    errors = {}
    batches = []
    for b in make_loader(spec(shards, steps=12, world=1, rank=0), workers=2, timeout_s=60):
        batches.append(b["keys"])
        for k, v in b["errors"].items():
            errors[k] = errors.get(k, 0) + v
    assert len(batches) == 12   # 96 > 80 valid samples: the stream wrapped around instead of hanging
    assert not any(k.startswith("bad") for b in batches for k in b)
    assert errors.get("bad_image", 0) >= 1 and errors.get("missing_image", 0) >= 1
    assert errors.get("empty_caption", 0) >= 1


def test_only_bad_shards_raise_instead_of_hanging(tmp_path):
    bad = synth.write_bad_shard(tmp_path / "bad.tar")
    # The "missing text" sample has no caption at all; every other one fails to decode.
    with pytest.raises(DataError, match="no decodable image"):
        list(ShardStream(spec([str(bad)], steps=3, indexed_samples=4)))
    # Through loader processes the worker's error reaches the trainer (no timeout involved).
    with pytest.raises(DataError):
        list(make_loader(spec([str(bad)], steps=3, indexed_samples=4), workers=1, timeout_s=600))
    # A shard without one structurally valid sample fails fast too.
    empty = tmp_path / "empty.tar"
    from shards.format import AtomicTarWriter
    with AtomicTarWriter(empty) as w:
        w.write_sample("x1", {"txt": "只有文字".encode()})
    with pytest.raises(DataError, match="no valid sample"):
        list(ShardStream(spec([str(empty)], steps=2)))


def test_resume_skips_exactly_the_done_batches(small_shards):
    shards = resolve_shards(small_shards["train"])
    full = keys_of(make_loader(spec(shards, steps=10, shuffle_buffer=20), workers=2, timeout_s=60))
    rest = keys_of(make_loader(spec(shards, steps=10, shuffle_buffer=20, skip_batches=4), workers=2, timeout_s=60))
    assert len(full) == 10 and len(rest) == 6
    assert sorted(map(tuple, rest)) == sorted(map(tuple, full[4:]))


def test_epochs_shuffle_differently_but_reproducibly(small_shards):
    shards = resolve_shards(small_shards["train"])
    e0 = keys_of(make_loader(spec(shards, steps=6, epoch=0, shuffle_buffer=30), workers=0))
    e0b = keys_of(make_loader(spec(shards, steps=6, epoch=0, shuffle_buffer=30), workers=0))
    e1 = keys_of(make_loader(spec(shards, steps=6, epoch=1, shuffle_buffer=30), workers=0))
    assert e0 == e0b and e0 != e1


def test_eval_pass_reads_every_sample_once_with_last_partial_batch(small_shards):
    shards = resolve_shards(small_shards["val"])
    batches = list(make_loader(spec(shards, batch_size=20), workers=0))
    keys = [k for b in batches for k in b["keys"]]
    assert len(keys) == len(set(keys)) == 48 and [len(b["keys"]) for b in batches] == [20, 20, 8]
    meta = json.loads(Path(small_shards["val"], "sizes.json").read_text())
    assert meta == {"000000.tar": 48}
    assert batches[0]["images"].shape == (20, 3, 32, 32) and batches[0]["text"].shape == (20, 32)
