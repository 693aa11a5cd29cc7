"""Discovery with real Scrapy processes against the demo web (and a hostile server) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiohttp import web

from crawler.config import CrawlConfig, DemoWebConfig
from crawler.demoweb.generate import GROUND_TRUTH_FILE, QUERIES_FILE, SEARCH_INDEX_FILE, generate_demo_web
from crawler.demoweb.server import API_SEARCH_PATH, DemoWebServer
from crawler.discover import CANDIDATES_FILE, JOURNAL_FILE, SPEC_FILE, candidates_from_journal, run_partition_subprocess
from crawler.extract import ExtractRules
from crawler.queries import read_queries
from crawler.spider import CrawlJournal, PartitionSpec, request_key

RULES = dataclasses.asdict(ExtractRules(min_side=200, max_aspect_ratio=3.0))


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "wukong_demo_web_160"
    generate_demo_web(root, DemoWebConfig(pairs=160, seed=3))
    with DemoWebServer(root) as server:
        yield server


def make_spec(server, workdir, *, queries=True, delay=0.0, per_domain=16, allowed=True, **crawl) -> PartitionSpec:
    c = CrawlConfig(allowed_addresses=[f"127.0.0.1:{server.port}"] if allowed else [], **crawl)
    return PartitionSpec(partition=0, workdir=str(workdir),
                         queries=read_queries(server.root / QUERIES_FILE) if queries else [],
                         search_url=(server.origin + API_SEARCH_PATH if c.result_json_path else server.search_url)
                         if queries else None,
                         start_urls=[] if queries else [server.origin + "/"], allowed_domains=["127.0.0.1"],
                         crawl=dataclasses.asdict(c), rules=RULES, download_delay=delay,
                         concurrent_per_domain=per_domain)


def truth(server):
    return pq.read_table(server.root / GROUND_TRUTH_FILE).to_pandas()


def candidates(workdir):
    return pq.read_table(Path(workdir) / CANDIDATES_FILE).to_pandas()


def test_search_discovery_finds_every_allowed_pair(demo_server, tmp_path):
    stats = run_partition_subprocess(make_spec(demo_server, tmp_path / "p"))
    gt, cand = truth(demo_server), candidates(tmp_path / "p")
    assert cand.url.is_unique
    discoverable = gt[gt.discoverable]
    found = discoverable.url.isin(set(cand.url))
    assert found.mean() >= 0.99 and found.all(), discoverable[~found][["category", "markup", "page_path"]]
    assert not gt[~gt.discoverable].url.isin(set(cand.url)).any()
    assert set(cand.url) <= set(gt.url)
    merged = cand.merge(gt[["url", "caption", "page_url", "kind"]], on="url", suffixes=("", "_truth"))
    assert (merged.caption == merged.caption_truth).all()
    # Search results and article pages both name the pair's page (site chrome is on every page).
    pairs = merged[merged.kind != "chrome"]
    assert (pairs.page_url == pairs.page_url_truth).all()
    ranked = cand[cand["rank"].notna()]
    assert len(ranked) and ranked["rank"].min() == 1 and ranked["query"].notna().all()
    assert cand.discovered_at.notna().all()
    counts = stats["counts"]
    assert counts["pages_robots_disallowed"] >= 1 and counts["pages_opted_out"] >= 1
    assert counts["pages_failed_http_404"] >= 1 and counts["pages_failed_http_500"] >= 1
    assert stats["scrapy"]["retry/count"] >= 1  # flaky pages answered 500 once, then came back


def test_interrupted_crawl_resumes_without_duplicates(demo_server, tmp_path):
    workdir = tmp_path / "p"
    spec = make_spec(demo_server, workdir, delay=0.04, per_domain=1)
    workdir.mkdir()
    (workdir / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "crawler.discover", str(workdir / SPEC_FILE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = workdir / JOURNAL_FILE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 25:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # a crash: no chance to flush or close anything
    proc.wait()
    assert not (workdir / CANDIDATES_FILE).exists()
    done_before = journal.read_bytes().count(b"\n")
    stats = run_partition_subprocess(make_spec(demo_server, workdir))
    assert stats["counts"]["resumed_done_pages"] >= 25 - 1
    gt, cand = truth(demo_server), candidates(workdir)
    assert cand.url.is_unique
    discoverable = gt[gt.discoverable]
    assert discoverable.url.isin(set(cand.url)).all()
    assert not gt[~gt.discoverable].url.isin(set(cand.url)).any()
    # Pages finished before the crash were not fetched again.
    keys = Counter(json.loads(line)["key"] for line in journal.read_bytes().splitlines())
    assert max(keys.values()) == 1 and sum(keys.values()) > done_before


def test_start_url_crawl_reaches_articles_behind_a_paginated_list_with_the_default_depth(demo_server, tmp_path):
    # Home -> list page 1 -> list pages 2..N (pagination: no depth spent) -> articles (depth 2).
    stats = run_partition_subprocess(make_spec(demo_server, tmp_path / "p", queries=False))
    assert CrawlConfig().depth_limit == 2
    gt, cand = truth(demo_server), candidates(tmp_path / "p")
    assert gt[gt.discoverable_on_page].url.isin(set(cand.url)).all()
    assert not gt[~gt.discoverable_on_page].url.isin(set(cand.url)).any()
    journal = [json.loads(line) for line in (tmp_path / "p" / JOURNAL_FILE).read_text(encoding="utf-8").splitlines()]
    lists = [r for r in journal if "/list/" in r["url"]]
    assert len(lists) >= 3  # the list really is paginated, and every page of it was read
    assert cand["rank"].isna().all() and cand["query"].isna().all()
    assert stats["counts"]["pages_robots_disallowed"] >= 1 and stats["counts"].get("search_pages", 0) == 0


def test_json_search_api_with_result_cap(demo_server, tmp_path):
    cap = 5
    run_partition_subprocess(make_spec(demo_server, tmp_path / "p", result_json_path="data.results",
                                       follow_result_pages=False, max_results_per_query=cap))
    cand = candidates(tmp_path / "p")
    index = json.loads((demo_server.root / SEARCH_INDEX_FILE).read_text(encoding="utf-8"))["index"]
    expected = {demo_server.origin + e["image_path"] for entries in index.values() for e in entries[:cap]}
    assert set(cand.url) == expected
    assert cand["rank"].max() <= cap and cand.groupby("query").size().max() <= cap
    assert (cand.caption_source == "search_result").all()


def test_address_guard_refuses_loopback_unless_allowed(demo_server, tmp_path):
    before = demo_server.site.requests
    stats = run_partition_subprocess(make_spec(demo_server, tmp_path / "p", allowed=False))
    assert candidates(tmp_path / "p").empty
    assert stats["counts"]["pages_address_refused"] >= 1
    assert demo_server.site.requests == before  # not even robots.txt was asked for


class HostileServer:
    """Pages that hang, a body larger than allowed, a redirect loop, binary junk as HTML."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.origin = ""

    async def _start(self):
        async def hang(request):
            await asyncio.sleep(30)
            return web.Response(text="late")

        async def huge(request):
            return web.Response(body=b"<html>" + b"x" * 300_000, content_type="text/html")

        async def loop(request):
            raise web.HTTPFound("/loop")

        async def junk(request):
            return web.Response(body=os.urandom(5000), content_type="text/html")

        async def good(request):
            return web.Response(text='<img src="/i.jpg" alt="正常的图片"><a href="/hang">h</a>',
                                content_type="text/html")

        app = web.Application()
        for path, fn in (("/hang", hang), ("/huge", huge), ("/loop", loop), ("/junk", junk), ("/good", good)):
            app.router.add_get(path, fn)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.origin = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def __enter__(self):
        ready = threading.Event()

        def run():
            self.loop.run_until_complete(self._start())
            ready.set()
            self.loop.run_forever()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_hostile_server_never_stops_the_crawl(tmp_path):
    with HostileServer() as srv:
        port = srv.origin.rsplit(":", 1)[1]
        c = CrawlConfig(allowed_addresses=[f"127.0.0.1:{port}"], download_timeout=1.0, retry_times=0,
                        max_page_bytes=100_000, obey_robots_txt=False)
        spec = PartitionSpec(partition=0, workdir=str(tmp_path / "p"),
                             start_urls=[srv.origin + p for p in ("/hang", "/huge", "/loop", "/junk", "/good")],
                             allowed_domains=["127.0.0.1"], crawl=dataclasses.asdict(c), rules=RULES)
        t = time.monotonic()
        stats = run_partition_subprocess(spec, timeout=60)
        assert time.monotonic() - t < 30
    cand = candidates(tmp_path / "p")
    assert list(cand.url) == [srv.origin + "/i.jpg"] and list(cand.caption) == ["正常的图片"]
    counts = stats["counts"]
    assert counts["pages_failed_timeout"] >= 1 and counts["pages_failed_too_large"] >= 1
    # The redirect loop ends at Scrapy's duplicate filter; the junk page yields nothing.
    assert counts["article_pages"] == 2


def test_journal_ignores_a_torn_tail_and_rebuilds_the_frontier(tmp_path):
    path = tmp_path / "journal.jsonl"
    seeds = [{"kind": "search", "url": "http://a.example/s?q=1", "query": "1"},
             {"kind": "page", "url": "http://a.example/p1", "query": None}]
    rec = {"key": request_key("search", seeds[0]["url"]), "url": seeds[0]["url"], "done": True, "fetched": 1,
           "pairs": [], "requests": [{"kind": "page", "url": "http://a.example/p2", "query": "1"},
                                     {"kind": "page", "url": "http://a.example/p1", "query": "1"}]}
    path.write_bytes(json.dumps(rec).encode() + b"\n" + b'{"key": "page http://a.exa')
    j = CrawlJournal(path)
    pending = j.load(seeds)
    assert [p["url"] for p in pending] == ["http://a.example/p1", "http://a.example/p2"]
    assert j.pages_fetched == 1 and path.read_bytes().endswith(b"\n")


def test_candidates_of_an_earlier_journal_keep_their_caption_source(tmp_path):
    path = tmp_path / "journal.jsonl"
    pair = {"caption": "雪后的长城", "alt": "", "title": "", "page_url": "http://a.example/p", "query": None,
            "rank": None, "discovered_at": 1.7e9}
    old = {"key": "page http://a.example/p", "done": True, "pairs": [
        {**pair, "url": "http://a.example/1.jpg", "source": "result"},
        {**pair, "url": "http://a.example/2.jpg", "source": "nearby"}]}
    new = {"key": "page http://a.example/q", "done": True, "pairs": [
        {**pair, "url": "http://a.example/3.jpg", "caption_source": "br_text"}]}
    path.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n", encoding="utf-8")
    table, dup = candidates_from_journal(path)
    assert table.column("caption_source").to_pylist() == ["search_result", "below", "br_text"] and dup == 0


def test_a_page_met_again_nearer_to_a_seed_takes_the_smaller_depth(tmp_path):
    from crawler.spider import DiscoverySpider

    spec = PartitionSpec(partition=0, workdir=str(tmp_path), start_urls=["http://a.example/"],
                         allowed_domains=["a.example"], crawl=dataclasses.asdict(CrawlConfig()), rules=RULES)
    spider = DiscoverySpider(spec=spec)
    x = {"kind": "page", "url": "http://a.example/x.html", "query": None}
    # First met at the depth limit (2) as an article's link: requested once, shallower first.
    assert spider._new_requests([{**x, "depth": 2}]) == [{**x, "depth": 2}]
    assert spider._request({**x, "depth": 2}).priority == -2
    assert spider._new_requests([{**x, "depth": 2}, {**x, "depth": 3}]) == []
    # Met again as a search result, one hop deep, while pending: no second request, but its
    # response is parsed at depth 1, so its links are followed.
    assert spider._new_requests([{**x, "depth": 1}]) == []
    assert spider._depth({**x, "depth": 2}) == 1
    # Pages finished by an earlier run are never fetched again.
    spider.journal.done.add(request_key("page", "http://a.example/z.html"))
    assert spider._new_requests([{**x, "url": "http://a.example/z.html", "depth": 0}]) == []
