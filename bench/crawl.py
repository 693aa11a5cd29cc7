"""Benchmark of the discovery spider on the demo web against a bare Scrapy spider.

The demo web (`--pairs`, default 1000) is generated under bench/out/crawl/ and served on
127.0.0.1. Our spider crawls it from the demo's query list (search pages, article pages, robots,
extraction, journal); the peer is a bare Scrapy spider that only fetches the very same page URLs
(read from our journal) with the same concurrency and no parsing. Both run in their own process,
alternating, `--repeats` times each; pages/s is responses / Scrapy's elapsed time, and the median
ratio (ours / bare) is printed. Our spider follows the link structure (a search page before its
next page and its articles), the bare one gets every URL up front: the ratio includes that cost.

    .venv/bin/python bench/crawl.py [--pairs 1000] [--repeats 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

BARE_SPIDER = r'''
import json, sys, scrapy
from scrapy.crawler import CrawlerProcess

urls = json.load(open(sys.argv[1]))
class Bare(scrapy.Spider):
    name = "bare"
    async def start(self):
        for u in urls:
            yield scrapy.Request(u, callback=self.parse, errback=self.err, dont_filter=True)
    def parse(self, response):
        return None
    def err(self, failure):
        return None

p = CrawlerProcess(settings={"LOG_LEVEL": "ERROR", "CONCURRENT_REQUESTS": int(sys.argv[2]),
                             "CONCURRENT_REQUESTS_PER_DOMAIN": int(sys.argv[2]), "RETRY_TIMES": 2,
                             "ROBOTSTXT_OBEY": False, "TELNETCONSOLE_ENABLED": False,
                             "COOKIES_ENABLED": False})
c = p.create_crawler(Bare)
p.crawl(c)
p.start()
s = c.stats.get_stats()
print(json.dumps({"responses": s.get("response_received_count", 0), "elapsed": s["elapsed_time_seconds"]}))
'''


def run_ours(server, queries, workdir: Path, concurrency: int) -> dict:
    from crawler.config import CrawlConfig
    from crawler.discover import run_partition_subprocess
    from crawler.extract import ExtractRules
    from crawler.spider import PartitionSpec

    shutil.rmtree(workdir, ignore_errors=True)
    c = CrawlConfig(allowed_addresses=[f"127.0.0.1:{server.port}"], concurrent_requests=concurrency)
    spec = PartitionSpec(partition=0, workdir=str(workdir), queries=queries, search_url=server.search_url,
                         allowed_domains=["127.0.0.1"], crawl=dataclasses.asdict(c),
                         rules=dataclasses.asdict(ExtractRules(min_side=200, max_aspect_ratio=3.0)),
                         download_delay=0.0, concurrent_per_domain=concurrency)
    stats = run_partition_subprocess(spec)
    responses = sum(v for k, v in stats["scrapy"].items() if k.startswith("downloader/response_status_count/"))
    return {"responses": responses, "elapsed": stats["scrapy"]["elapsed_time_seconds"],
            "candidates": stats["candidates"]}


def fetched_urls(workdir: Path) -> list[str]:
    from crawler.discover import iter_journal

    return [rec["url"] for rec in iter_journal(workdir / "journal.jsonl") if rec.get("fetched")]


def run_bare(urls_file: Path, concurrency: int) -> dict:
    out = subprocess.run([sys.executable, "-c", BARE_SPIDER, str(urls_file), str(concurrency)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from crawler.config import DemoWebConfig
    from crawler.demoweb.generate import QUERIES_FILE, generate_demo_web
    from crawler.demoweb.server import DemoWebServer
    from crawler.queries import read_queries

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    site = ROOT / "bench" / "out" / "crawl" / f"demo_web_{args.pairs}"
    manifest = generate_demo_web(site, DemoWebConfig(pairs=args.pairs))
    print(f"demo web: {manifest['pairs']} pairs on {manifest['pages']} article pages, {manifest['queries']} queries")
    tmp = Path(tempfile.mkdtemp(prefix="wukong-bench-crawl-"))
    ours, bare = [], []
    try:
        with DemoWebServer(site) as server:
            queries = read_queries(site / QUERIES_FILE)
            for r in range(args.repeats):
                o = run_ours(server, queries, tmp / "ours", args.concurrency)
                urls_file = tmp / "urls.json"
                urls_file.write_text(json.dumps(fetched_urls(tmp / "ours")))
                b = run_bare(urls_file, args.concurrency)
                ours.append(o["responses"] / o["elapsed"])
                bare.append(b["responses"] / b["elapsed"])
                print(f"round {r + 1}: ours {o['responses']} responses in {o['elapsed']:.2f} s "
                      f"({ours[-1]:.1f} pages/s, {o['candidates']} candidates); bare {b['responses']} in "
                      f"{b['elapsed']:.2f} s ({bare[-1]:.1f} pages/s); ratio {ours[-1] / bare[-1]:.2f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = [o / b for o, b in zip(ours, bare)]
    print(f"spider pages/s: ours {statistics.median(ours):.1f}, bare Scrapy {statistics.median(bare):.1f}, "
          f"ratio ours/bare {statistics.median(ratios):.2f} (median of {len(ratios)})")


if __name__ == "__main__":
    main()
