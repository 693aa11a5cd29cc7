"""End to end on the demo web: crawl -> filter -> dedup -> shards; every final sample unique."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.config import load_config


@pytest.mark.slow
def test_demo_web_to_final_shards(ray_local, tmp_path):
    from pipelines.crawl_job import run_crawl
    from pipelines.dedup_job import run_dedup
    from pipelines.filter_job import run_filter
    from pipelines.shards_job import run_shards

    cfg = load_config(None, ["demo_web.pairs=300", "shards.samples_per_shard=50", "shards.val_fraction=0.2"])
    run_crawl(tmp_path / "crawl", cfg)
    raw = tmp_path / "crawl" / "raw"
    run_filter([raw], tmp_path / "filter", cfg)
    dstats = run_dedup([raw], tmp_path / "dedup", cfg, kept=tmp_path / "filter")
    # The demo web plants byte-identical and near copies: the stage must find some.
    assert dstats["removed"] > 0
    stats = run_shards([raw], tmp_path / "shards", cfg, filter_dir=tmp_path / "filter", dedup_dir=tmp_path / "dedup")
    index = pq.read_table([p for p in sorted((tmp_path / "shards").glob("*/*.parquet"))][0]).schema
    assert "phash" in index.names
    rows = [pq.read_table(p).to_pandas() for p in sorted((tmp_path / "shards").glob("*/*.parquet"))]
    hashes = np.concatenate([r["phash"].to_numpy(np.uint64) for r in rows])
    sha = np.concatenate([r["sha256"].to_numpy() for r in rows])
    assert len(hashes) == sum(s["samples"] for s in stats["splits"].values()) > 0
    d = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    assert (d[~np.eye(len(hashes), dtype=bool)] > cfg.dedup.radius).all()
    assert len(set(sha)) == len(sha)
    out = tmp_path / "shards"
    for f in ("README.md", "funnel.png", "caption_length.png", "image_size.png", "stats.json",
              "train/sizes.json", "val/sizes.json"):
        assert (out / f).is_file(), f
    assert json.loads((out / "stats.json").read_text())["funnel"]["kept by dedup"] == len(hashes)
