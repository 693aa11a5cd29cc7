"""One discovery partition = one Scrapy process: `python -m crawler.discover SPEC.json`.

Scrapy's reactor can start once per process, so every partition runs in its own process (the
crawl job's Ray task spawns it; Ray workers never install a reactor). The partition's working
directory holds `journal.jsonl` (resume state), and, once the crawl finished, `candidates.parquet`
(pairs deduplicated by URL) and `stats.json`. A partition whose `candidates.parquet` exists is
complete; any other state is resumed by running the same spec again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from shards.atomic import write_json_atomic, write_parquet_atomic

CANDIDATES_FILE = "candidates.parquet"
STATS_FILE = "stats.json"
JOURNAL_FILE = "journal.jsonl"
SPEC_FILE = "spec.json"

CANDIDATE_SCHEMA = pa.schema([
    ("url", pa.string()),
    ("caption", pa.string()),
    ("alt", pa.string()),
    ("title", pa.string()),
    ("page_url", pa.string()),
    ("query", pa.string()),
    ("rank", pa.int32()),              # 1-based position in the query's results; null off search pages
    ("discovered_at", pa.timestamp("ms", tz="UTC")),
    # Where the caption came from: figcaption, caption_class, br_text, below, alt, title, og, search_result.
    ("caption_source", pa.string()),
])
# Journals of earlier versions named caption_source "source" (with "result" for search results).
_LEGACY_KEYS = {"caption_source": "source"}
_LEGACY_SOURCES = {"result": "search_result", "nearby": "below"}

# Scrapy stats copied into the partition's stats.json.
_SCRAPY_STATS_PREFIXES = ("downloader/response_status_count/", "retry/", "robotstxt/",
                          "downloader/request_count", "downloader/exception_type_count/",
                          "finish_reason", "elapsed_time_seconds")


def scrapy_settings(spec) -> dict:
    cfg = spec.crawl
    throttle = bool(cfg.get("autothrottle", True)) and spec.download_delay > 0
    return {
        "BOT_NAME": "wukong",
        "USER_AGENT": cfg["user_agent"],
        "ROBOTSTXT_OBEY": bool(cfg.get("obey_robots_txt", True)),
        "CONCURRENT_REQUESTS": int(cfg.get("concurrent_requests", 32)),
        "CONCURRENT_REQUESTS_PER_DOMAIN": max(1, int(spec.concurrent_per_domain)),
        "DOWNLOAD_DELAY": float(spec.download_delay),
        # AutoThrottle only ever slows down from the politeness delay, never below it.
        "AUTOTHROTTLE_ENABLED": throttle,
        "AUTOTHROTTLE_START_DELAY": float(spec.download_delay),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(max(1, int(spec.concurrent_per_domain))),
        "DOWNLOAD_TIMEOUT": float(cfg.get("download_timeout", 30.0)),
        "RETRY_TIMES": int(cfg.get("retry_times", 2)),
        "DOWNLOAD_MAXSIZE": int(cfg.get("max_page_bytes", 0)),
        "DOWNLOAD_WARNSIZE": 0,
        # The spider applies its own depth limit (it survives resumes); Scrapy's is off.
        "DEPTH_LIMIT": 0,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": cfg.get("log_level", "WARNING"),
        "DOWNLOADER_MIDDLEWARES": {"crawler.spider.AddressGuardMiddleware": 50},
        "WUKONG_ALLOW_PRIVATE": bool(cfg.get("allow_private", False)),
        "WUKONG_ALLOWED_ADDRESSES": list(cfg.get("allowed_addresses", [])),
    }


def run_partition_here(spec) -> dict:
    """Crawl one partition in this process (installs Scrapy's reactor: once per process)."""
    from scrapy.crawler import CrawlerProcess

    from crawler.spider import DiscoverySpider

    workdir = Path(spec.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    process = CrawlerProcess(settings=scrapy_settings(spec), install_root_handler=True)
    crawler = process.create_crawler(DiscoverySpider)
    process.crawl(crawler, spec=spec)
    process.start()
    scrapy_stats = {k: v for k, v in (crawler.stats.get_stats() or {}).items()
                    if k.startswith(_SCRAPY_STATS_PREFIXES)}
    spider = crawler.spider
    counts = dict(sorted(spider.counts.items())) if spider is not None else {}
    finish = scrapy_stats.get("finish_reason", "unknown")
    stats = {"partition": spec.partition, "finish_reason": finish, "counts": counts,
             "scrapy": {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in scrapy_stats.items()}}
    if finish == "finished":
        table, dup = candidates_from_journal(workdir / JOURNAL_FILE)
        stats["candidates"] = table.num_rows
        stats["duplicate_urls"] = dup
        write_parquet_atomic(workdir / CANDIDATES_FILE, table)
        write_json_atomic(workdir / STATS_FILE, stats)
    else:
        write_json_atomic(workdir / "stats.partial.json", stats)
    return stats


def iter_journal(path: Path):
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # torn tail of a crash
            try:
                yield json.loads(line)
            except ValueError:
                continue


def candidates_from_journal(path: Path) -> tuple[pa.Table, int]:
    """The journal's pairs, first occurrence per URL, in discovery order; and the duplicates dropped."""
    seen: set[str] = set()
    rows = {name: [] for name in CANDIDATE_SCHEMA.names}
    dup = 0
    for rec in iter_journal(path):
        for p in rec.get("pairs", ()):
            if p["url"] in seen:
                dup += 1
                continue
            seen.add(p["url"])
            for name in CANDIDATE_SCHEMA.names:
                value = p.get(name, p.get(_LEGACY_KEYS.get(name, name)))
                if name == "discovered_at" and value is not None:
                    value = int(float(value) * 1000)
                elif name == "caption_source":
                    value = _LEGACY_SOURCES.get(value, value)
                rows[name].append(value)
    arrays = []
    for f in CANDIDATE_SCHEMA:
        if f.name == "discovered_at":
            arrays.append(pa.array(rows[f.name], type=pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(rows[f.name], type=f.type))
    return pa.Table.from_arrays(arrays, schema=CANDIDATE_SCHEMA), dup


def partition_done(workdir: str | Path) -> bool:
    return (Path(workdir) / CANDIDATES_FILE).exists() and (Path(workdir) / STATS_FILE).exists()


def run_partition_subprocess(spec, timeout: float | None = None) -> dict:
    """Write the spec and crawl it in a fresh Python process; returns the partition's stats."""
    workdir = Path(spec.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if partition_done(workdir):
        return {**json.loads((workdir / STATS_FILE).read_text(encoding="utf-8")), "skipped_complete": True}
    spec_path = workdir / SPEC_FILE
    write_json_atomic(spec_path, json.loads(spec.to_json()))
    proc = subprocess.run([sys.executable, "-m", "crawler.discover", str(spec_path)],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not partition_done(workdir):
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        raise RuntimeError(f"discovery partition {spec.partition} exited {proc.returncode}: " + " | ".join(tail))
    return json.loads((workdir / STATS_FILE).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    from crawler.spider import PartitionSpec

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m crawler.discover SPEC.json", file=sys.stderr)
        return 2
    spec = PartitionSpec.from_json(Path(args[0]).read_text(encoding="utf-8"))
    stats = run_partition_here(spec)
    return 0 if stats["finish_reason"] == "finished" else 3


if __name__ == "__main__":
    sys.exit(main())
