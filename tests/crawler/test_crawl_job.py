"""`run_crawl` / `wukong crawl`: partitions over real local Ray, the demo web end to end, resume."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawler.config import CrawlConfig
from crawler.discover import CANDIDATE_SCHEMA, CANDIDATES_FILE, STATS_FILE
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.crawl_job import merge_candidates, plan_partitions, run_crawl
from shards.parts import open_parts


def test_plan_partitions_spreads_queries_and_keeps_hosts_together():
    c = CrawlConfig(queries_per_partition=3, start_urls_per_partition=4)
    queries = [f"q{i}" for i in range(7)]
    parts = plan_partitions(queries, [], c, parallel=2)
    assert len(parts) == 3 and sorted(q for p in parts for q in p["queries"]) == sorted(queries)
    assert max(len(p["queries"]) for p in parts) <= 3
    # Few queries, many workers: one partition per worker that has a query.
    assert len(plan_partitions(["a", "b"], [], CrawlConfig(), parallel=8)) == 2
    assert len(plan_partitions(queries, [], CrawlConfig(), parallel=4)) == 4
    urls = [f"http://a.example/{i}" for i in range(3)] + [f"http://b.example/{i}" for i in range(3)]
    parts = plan_partitions([], urls, c, parallel=2)
    hosts = [{u.split("/")[2] for u in p["start_urls"]} for p in parts]
    assert sorted(u for p in parts for u in p["start_urls"]) == sorted(urls)
    assert {"a.example"} in hosts and {"b.example"} in hosts
    mixed = plan_partitions(queries[:2], urls[:1], c, parallel=1)
    assert len(mixed) == 1 and mixed[0]["queries"] == ["q0", "q1"] and mixed[0]["start_urls"] == urls[:1]


def _part(tmp_path, i, urls):
    rows = {n: [None] * len(urls) for n in CANDIDATE_SCHEMA.names}
    rows["url"] = urls
    rows["caption"] = [f"说明{u}" for u in urls]
    d = tmp_path / "discover" / f"part-{i:05d}"
    d.mkdir(parents=True)
    pq.write_table(pa.Table.from_pydict(rows, schema=CANDIDATE_SCHEMA), d / CANDIDATES_FILE)


def test_merge_deduplicates_across_partitions_and_drops_stale_files(tmp_path):
    _part(tmp_path, 0, ["u1", "u2", "u3"])
    _part(tmp_path, 1, ["u3", "u4", "u1"])
    cand = tmp_path / "candidates"
    cand.mkdir()
    (cand / "part-00007.parquet").write_bytes(b"stale from an older plan")
    stats = merge_candidates(tmp_path / "discover", cand, 3)
    assert stats == {"candidates": 4, "duplicate_urls_across_partitions": 2}
    assert sorted(p.name for p in cand.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert pq.read_table(cand / "part-00001.parquet")["url"].to_pylist() == ["u4"]


@pytest.mark.parametrize("args, message", [
    (["--queries", "/nonexistent/q.txt", "--search-url", "http://s.example/?q={query}&p={page}"], "not found"),
    (["--queries", "QFILE"], "needs a search endpoint"),
    (["--queries", "QFILE", "--search-url", "http://s.example/?q=fixed"], "no {query}"),
    (["--start-url", "ftp://files.example/"], "http(s)"),
])
def test_cli_unusable_input_exits_2(tmp_path, capsys, args, message):
    qfile = tmp_path / "q.txt"
    qfile.write_text("猫\n狗\n", encoding="utf-8")
    args = [str(qfile) if a == "QFILE" else a for a in args]
    assert main(["crawl", "--output", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.slow
def test_demo_crawl_end_to_end_and_rerun(ray_local, tmp_path):
    cfg = load_config(overrides=["demo_web.pairs=120", "demo_web.seed=5"])
    out = tmp_path / "crawl"
    stats = run_crawl(out, cfg)
    assert stats["target"] == "demo_web" and stats["complete"]
    disc = stats["discover"]
    assert disc["partitions"] == 2 and disc["partitions_done"] == 2 and not disc["partitions_failed"]
    gt = pq.read_table(out / "demo_web" / "ground_truth.parquet").to_pandas()
    cand = pq.read_table(out / "candidates").to_pandas()
    assert cand.url.is_unique and len(cand) == disc["candidates"]
    assert gt[gt.discoverable].url.isin(set(cand.url)).mean() >= 0.99
    assert not gt[~gt.discoverable].url.isin(set(cand.url)).any()
    # Text rules ran before the download: captions the filter drops were never fetched.
    rejected = pq.ParquetDataset(open_parts(out / "candidates_filtered", "rejected").paths()).read().to_pandas()
    by_cat = gt.set_index("url").category
    assert set(by_cat[rejected.url]) >= {"english", "japanese", "korean", "boilerplate", "sensitive"}
    raw = pq.ParquetDataset(sorted(str(p) for p in (out / "raw").glob("0*.parquet"))).read().to_pandas()
    assert not set(rejected.url) & set(raw.url)
    ok = raw[raw.status == "success"]
    # Where each caption came from travels with the pair into the raw shards.
    assert ok.caption_source.isin({"figcaption", "caption_class", "br_text", "below", "alt", "title",
                                   "search_result"}).all()
    assert set(by_cat[ok.url]) <= {"good", "slow", "mixed", "traditional", "person_name", "phone", "email",
                                   "exact_dup_of", "near_dup_of"}
    good = gt[gt.category.isin(["good", "slow"]) & gt.discoverable]
    assert good.url.isin(set(ok.url)).all()
    assert not (set(gt[gt.category.isin(["corrupt", "not_image", "broken_link", "http_500",
                                         "opted_out_image"])].url) & set(ok.url))
    assert json.loads((out / STATS_FILE).read_text())["complete"]
    # A rerun resumes: every partition is complete, the candidates stay the same.
    again = run_crawl(out, cfg)
    assert again["discover"]["candidates"] == disc["candidates"]
    assert pq.read_table(out / "candidates").to_pandas().url.tolist() == cand.url.tolist()
