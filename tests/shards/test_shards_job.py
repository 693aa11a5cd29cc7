"""Final shards from real raw shards, filter and dedup outputs, through a real local Ray."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from pipelines.cli import main
from pipelines.config import WukongConfig, load_config
from pipelines.dedup_job import run_dedup
from pipelines.shards_job import run_shards
from rawgen import TRANSFORMS, build_corpus, phash_u64, write_raw_shards
from shards.format import iter_tar_samples
from shards.parts import open_parts
from shards.splits import assign_splits
from shards.writer import write_shard

EDITS = {t: TRANSFORMS[t] for t in ("jpeg70", "resize50", "crop2", "bright-10")}


def cfg_for(**shards) -> WukongConfig:
    overrides = [f"shards.{k}={v}" for k, v in shards.items()]
    return load_config(None, overrides)


@pytest.fixture(scope="module")
def stages(tmp_path_factory, ray_local):
    """Raw shards -> a filter output (drops two sources, cleans captions) -> dedup decisions."""
    samples = build_corpus(limit_sources=14, transforms=EDITS)
    root = tmp_path_factory.mktemp("stages")
    raw = root / "raw"
    write_raw_shards(raw, samples, per_shard=20, failed_every=13)
    keys = {r for t in raw.glob("*.parquet") for r, s in zip(*pq.read_table(t, columns=["key", "status"]).to_pydict().values())
            if s == "success"}
    by_key = {s.key: s for s in samples}
    dropped_sources = {"camera_q1", "astronaut_q2"}
    kept = sorted(k for k in keys if by_key[k].source not in dropped_sources)
    rejected = sorted(keys - set(kept))
    fdir = root / "filter"
    fdir.mkdir()
    pq.write_table(pa.table({"key": kept, "caption": [f"清洗 {by_key[k].source}" for k in kept],
                             "caption_original": [by_key[k].caption for k in kept]}), fdir / "kept.parquet")
    pq.write_table(pa.table({"key": rejected, "reason": ["text_blocklist"] * len(rejected)}), fdir / "rejected.parquet")
    (fdir / "stats.json").write_text(json.dumps({"input": len(keys), "kept": len(kept), "by_reason": {"text_blocklist": len(rejected)}}))
    ddir = root / "dedup"
    run_dedup([raw], ddir, WukongConfig(), kept=fdir / "kept.parquet")
    return samples, raw, fdir, ddir


def read_split(d: Path) -> dict[str, dict[str, bytes]]:
    out = {}
    for t in sorted(d.glob("*.tar")):
        for key, members in iter_tar_samples(t):
            assert key not in out
            out[key] = members
    return out


def tree_digest(d: Path) -> dict[str, str]:
    """Every file of the split directories (run-level stats.json records timings)."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.glob("*/*")) if p.is_file()}


def test_final_shards_content_splits_and_report(stages, tmp_path):
    samples, raw, fdir, ddir = stages
    out = tmp_path / "shards"
    stats = run_shards([raw], out, cfg_for(samples_per_shard=4, val_fraction=0.25), filter_dir=fdir, dedup_dir=ddir)
    decisions = pa.concat_tables([pq.read_table(p) for p in open_parts(ddir, "decisions").paths()]).to_pandas()
    survivors = set(decisions.loc[decisions["keep"], "key"])
    train, val = read_split(out / "train"), read_split(out / "val")
    assert set(train) | set(val) == survivors and not set(train) & set(val)
    # One sample per distinct picture that passed the filter (12 of 14), unique at the radius.
    by_key = {s.key: s for s in samples}
    assert sorted(by_key[k].source for k in survivors) == sorted({s.source for s in samples} - {"camera_q1", "astronaut_q2"})
    hashes = np.array([phash_u64(m["jpg"]) for m in {**train, **val}.values()], dtype=np.uint64)
    d = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    assert (d[~np.eye(len(hashes), dtype=bool)] > WukongConfig().dedup.radius).all()
    # Bytes copied, not re-encoded; cleaned caption in txt, both captions in json.
    for key, m in {**train, **val}.items():
        assert m["jpg"] == by_key[key].jpeg
        assert m["txt"].decode() == f"清洗 {by_key[key].source}"
        meta = json.loads(m["json"])
        assert meta["caption_original"] == by_key[key].caption and meta["key"] == key
        assert meta["split"] == ("train" if key in train else "val")
    # Fixed shard size, last smaller; sizes.json and __len__ agree with the tars.
    for split, got in (("train", train), ("val", val)):
        sizes = json.loads((out / split / "sizes.json").read_text())
        counts = {t.name: sum(1 for _ in iter_tar_samples(t)) for t in sorted((out / split).glob("*.tar"))}
        assert sizes == counts and int((out / split / "__len__").read_text()) == len(got)
        assert all(v == 4 for v in list(counts.values())[:-1]) and 1 <= list(counts.values())[-1] <= 4
        idx = pq.read_table(out / split / "000000.parquet").to_pandas()
        assert len(idx) == counts["000000.tar"] and set(idx["split"]) == {split}
    # Split follows the key hash alone.
    keys = sorted(survivors)
    want = dict(zip(keys, assign_splits(keys, 0.25, 0.0, WukongConfig().shards.split_salt)))
    assert all(want[k] == "train" for k in train) and all(want[k] == "val" for k in val)
    # Funnel, card and plots.
    f = stats["funnel"]
    assert f["raw rows"] == len(samples) and f["downloaded"] == len(samples) - len(samples) // 13
    assert f["kept by dedup"] == len(survivors) == f["written: train"] + f["written: val"]
    assert stats["reasons"]["ingest"] == {"http_404": len(samples) // 13}
    assert stats["reasons"]["filter"]["text_blocklist"] > 0 and stats["reasons"]["dedup"]["near_phash"] > 0
    card = (out / "README.md").read_text()
    assert WukongConfig().shards.license in card and "kept by dedup" in card and "near_phash" in card
    for png in ("caption_length.png", "image_size.png", "funnel.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_is_byte_identical_and_resumes(stages, tmp_path):
    _, raw, fdir, ddir = stages
    cfg = cfg_for(samples_per_shard=3, val_fraction=0.2, seed=7)
    a, b = tmp_path / "a", tmp_path / "b"
    run_shards([raw], a, cfg, filter_dir=fdir, dedup_dir=ddir)
    run_shards([raw], b, cfg, filter_dir=fdir, dedup_dir=ddir)
    first = tree_digest(a)
    assert first == tree_digest(b) and len([k for k in first if k.endswith(".tar")]) >= 4
    # A crash: one shard gone, another half-written (a temporary), a stale shard of a bigger plan.
    (a / "train" / "000001.tar").unlink()
    (a / "train" / ".000002.tar.x.tmp").write_bytes(b"partial")
    shutil.copy(a / "train" / "000000.tar", a / "train" / "000999.tar")
    stats = run_shards([raw], a, cfg, filter_dir=fdir, dedup_dir=ddir)
    assert tree_digest(a) == first
    assert stats["shards_skipped_as_done"] == sum(1 for k in first if k.endswith(".tar")) - 1
    assert not list((a / "train").glob(".*.tmp"))
    # Another seed shuffles differently but keeps the same samples in the same splits.
    c = tmp_path / "c"
    run_shards([raw], c, cfg_for(samples_per_shard=3, val_fraction=0.2, seed=8), filter_dir=fdir, dedup_dir=ddir)
    assert read_split(c / "train").keys() == read_split(a / "train").keys()
    assert tree_digest(c) != first


def test_failed_shard_write_leaves_nothing(tmp_path):
    row = {"key": "k", "caption": "c", "caption_original": "c", "tar": str(tmp_path / "gone.tar"),
           "jpg_off": 512, "jpg_len": 10, "json_off": -1, "json_len": -1}
    with pytest.raises(OSError):
        write_shard(str(tmp_path / "000000.tar"), str(tmp_path / "000000.parquet"), "train", [row], "d")
    assert list(tmp_path.iterdir()) == []


def test_loads_in_webdataset_and_open_clip(stages, tmp_path, monkeypatch):
    import open_clip
    from open_clip_train.data import get_dataset_size, get_wds_dataset
    from torchvision import transforms

    _, raw, fdir, ddir = stages
    out = tmp_path / "s"
    run_shards([raw], out, cfg_for(samples_per_shard=3, val_fraction=0.0), filter_dir=fdir, dedup_dir=ddir)
    tars = sorted((out / "train").glob("*.tar"))
    n = int((out / "train" / "__len__").read_text())
    urls = str(out / "train" / f"{{000000..{len(tars) - 1:06d}}}.tar")
    ds = wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("jpg", "txt", "json")
    got = list(ds)
    assert len(got) == n and all(im.size[0] > 0 and txt.startswith("清洗") for im, txt, _ in got)
    # open_clip's own loader, unmodified: its evaluation branch (split by worker, wds.tarfile_to_samples,
    # decode, rename, preprocess, tokenize, batch) over every sample.
    preprocess = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # bundled BPE, offline
    args = argparse.Namespace(train_data=urls, val_data=urls, dataset_resampled=False, train_num_samples=None,
                              val_num_samples=n, train_data_upsampling_factors=None, seed=0, batch_size=2,
                              world_size=1, workers=0)
    val = get_wds_dataset(args, preprocess, is_train=False, tokenizer=tokenizer)
    batches = list(val.dataloader)
    assert sum(b[0].shape[0] for b in batches) == n and batches[0][0].shape[1:] == (3, 32, 32)
    assert get_dataset_size(urls) == (n, len(tars))  # what its training branch reads from sizes.json
    # Its training branch groups files with a helper that breaks on webdataset >= 0.2.96's end-of-shard
    # marker (open_clip#935, webdataset#384); with the upstream fix (no marker) it reads our shards.
    from webdataset.tariterators import tar_file_expander, url_opener
    import open_clip_train.data as ocd
    monkeypatch.setattr(ocd, "tarfile_to_samples_nothrow", lambda src, handler=ocd.log_and_continue: ocd.group_by_keys_nothrow(
        tar_file_expander(url_opener(src, handler=handler), handler=handler, eof_value=None), handler=handler))
    train = get_wds_dataset(args, preprocess, is_train=True, tokenizer=tokenizer)
    assert train.dataloader.num_samples >= n
    images, texts = next(iter(train.dataloader))
    assert images.shape == (2, 3, 32, 32) and texts.shape == (2, 77)


def test_cli_shards(stages, tmp_path, capsys):
    _, raw, fdir, ddir = stages
    out = tmp_path / "cli"
    assert main(["shards", str(raw), "--output", str(out), "--filter", str(fdir), "--dedup", str(ddir),
                 "--samples-per-shard", "5", "--set", "shards.val_fraction=0.5"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["splits"]["train"]["samples"] + printed["splits"]["val"]["samples"] == printed["funnel"]["kept by dedup"]
    with tarfile.open(out / "train" / "000000.tar") as t:
        assert all(m.mtime == 0 for m in t.getmembers())
    assert main(["shards", str(raw), "--output", str(out), "--filter", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no kept/ or kept.parquet" in err and "rerun `wukong filter`" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "dd" / "decisions").mkdir(parents=True)  # parts of a run that did not finish
    assert main(["shards", str(raw), "--output", str(out), "--dedup", str(tmp_path / "dd")]) == 2
    assert "has no manifest" in capsys.readouterr().err
    assert main(["shards", str(raw), "--output", str(out), "--samples-per-shard", "0"]) == 2
