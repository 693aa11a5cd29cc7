"""Exactly-once checks on raw shard directories (download and crawl outputs) and demo-web inputs."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from shards.format import iter_tar_samples

# The demo web both crawl tests run on (kill -9 and node loss), and their reference crawl.
CRAWL_ARGS = ["--set", "demo_web.pairs=400", "--set", "demo_web.seed=11", "--set", "download.rows_per_shard=40"]


def raw_index(raw_dir: Path) -> pa.Table:
    files = sorted(p for p in Path(raw_dir).glob("*.parquet") if p.stem.isdigit())
    assert files, f"no raw shard index in {raw_dir}"
    return pa.concat_tables([pq.read_table(p) for p in files], promote_options="permissive")


def check_raw_exactly_once(raw_dir: Path) -> pa.Table:
    """Every index row once (key and URL), every success exactly once in exactly one tar with its
    three members, no tar sample without a success row. Returns the index."""
    index = raw_index(raw_dir)
    keys = index["key"].to_pylist()
    assert len(keys) == len(set(keys)), f"keys twice: {[k for k, c in Counter(keys).items() if c > 1][:5]}"
    urls = Counter(index["url"].to_pylist())
    assert max(urls.values()) == 1, f"URLs twice: {[u for u, c in urls.items() if c > 1][:5]}"
    success = {k for k, s in zip(keys, index["status"].to_pylist()) if s == "success"}
    tar_keys: list[str] = []
    for tar in sorted(p for p in Path(raw_dir).glob("*.tar") if p.stem.isdigit()):
        for key, members in iter_tar_samples(tar):
            assert {"jpg", "txt", "json"} <= set(members) and members["jpg"], (tar, key, sorted(members))
            tar_keys.append(key)
    assert len(tar_keys) == len(set(tar_keys)), "a sample in two tars"
    assert set(tar_keys) == success, (len(set(tar_keys) - success), len(success - set(tar_keys)))
    return index


def success_urls(index: pa.Table) -> set[str]:
    return {u for u, s in zip(index["url"].to_pylist(), index["status"].to_pylist()) if s == "success"}


def demo_good_urls(crawl_out: Path) -> set[str]:
    """Demo-web pairs every crawl must deliver: good (and slow) images reachable from the search."""
    gt = pq.read_table(Path(crawl_out) / "demo_web" / "ground_truth.parquet",
                       columns=["url", "category", "discoverable"]).to_pylist()
    return {r["url"] for r in gt if r["category"] in ("good", "slow") and r["discoverable"]}


def csv_urls(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [row["url"] for row in csv.DictReader(fh)]


def image_paths(urls) -> set[str]:
    """URLs without their origin: each crawl serves the same demo web on a port of its own."""
    return {urlsplit(u).path for u in urls}


# The uninterrupted crawl must itself find nearly every good pair of the demo web (its discovery
# misses a few pairs whose caption markup it does not read), or it is no reference.
REFERENCE_MIN_SHARE = 0.95


def check_crawl_delivers(crawl_out: Path, reference_out: Path) -> None:
    """The crawl's raw shards hold every sample exactly once and every good demo-web pair that an
    uninterrupted crawl of the same demo web delivered."""
    index = check_raw_exactly_once(Path(crawl_out) / "raw")
    good = demo_good_urls(crawl_out)
    ref_good = demo_good_urls(reference_out)
    assert image_paths(good) == image_paths(ref_good), "the reference crawled another demo web"
    ref_index = raw_index(Path(reference_out) / "raw")
    delivered = image_paths(ref_good & success_urls(ref_index))
    assert len(delivered) >= REFERENCE_MIN_SHARE * len(ref_good), (len(delivered), len(ref_good))
    missing = delivered - image_paths(success_urls(index))
    assert not missing, sorted(missing)[:5]
