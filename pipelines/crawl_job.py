"""`run_crawl`: discovery over Ray (one Scrapy process per partition), text rules, download.

Layout under OUTPUT (`OUT/crawl`):
- `discover/plan.json`, `discover/part-NNNNN/` (journal, partition candidates, stats): resume state
- `candidates/part-NNNNN.parquet`: candidates of the run, deduplicated by URL across partitions
- `candidates_filtered/kept/`, `rejected/` (parts + manifest): the text rules on the candidates
- `raw/`: downloaded raw shards; `demo_web/`: the demo site when no target was given
- `stats.json`: the funnel of the whole run.

Partitions are planned once (`plan.json`) and reused by reruns with the same inputs, so an
interrupted crawl resumes each partition from its journal. Politeness across partitions: each gets
`per_domain_rate / parallel` requests per second and `per_domain_concurrency // parallel` requests
in flight per domain, `parallel` being the partitions crawled at once (documented limit: a domain
never sees more than the configured budget from one run, whatever the cluster size).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from crawler.config import CrawlConfig
from crawler.discover import CANDIDATES_FILE, STATS_FILE, partition_done
from crawler.extract import ExtractRules
from crawler.queries import read_queries
from crawler.spider import PartitionSpec
from pipelines.config import WukongConfig
from pipelines.ray_runtime import cluster_cpus, init_ray
from shards.atomic import write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
# Ray task name of a discovery partition (the dashboard's row for the stage).
CRAWL_STAGE = "crawl"
# Ray retries a partition task that raised once more before the run reports it as failed.
_PARTITION_RETRIES = 1


class CrawlInputError(ValueError):
    """Unusable crawl input (a query list without a search URL, an unreadable query file, ...)."""


def _hosts(urls: list[str]) -> list[str]:
    out = []
    for u in urls:
        try:
            host = (urlsplit(u).hostname or "").lower()
        except ValueError:
            continue
        if host and host not in out:
            out.append(host)
    return out


def _chunks(items: list, size: int) -> list[list]:
    size = max(1, size)
    return [items[i:i + size] for i in range(0, len(items), size)]


def plan_partitions(queries: list[str], start_urls: list[str], ccfg: CrawlConfig, parallel: int) -> list[dict]:
    """Queries and start URLs split into partitions: at most `queries_per_partition` queries each,
    and at least `parallel` partitions when there are enough queries; a host's start URLs stay
    together when they fit in one partition (its link graph is crawled by one process)."""
    n_q = max(math.ceil(len(queries) / max(1, ccfg.queries_per_partition)), min(parallel, len(queries)))
    q_parts = [queries[i::n_q] for i in range(n_q)] if queries else []
    by_host: dict[str, list[str]] = {}
    for u in start_urls:
        by_host.setdefault(_hosts([u])[0] if _hosts([u]) else "", []).append(u)
    s_parts: list[list[str]] = []
    current: list[str] = []
    for urls in by_host.values():
        if current and len(current) + len(urls) > ccfg.start_urls_per_partition:
            s_parts.append(current)
            current = []
        for chunk in _chunks(urls, ccfg.start_urls_per_partition):
            if len(chunk) == ccfg.start_urls_per_partition:
                s_parts.append(chunk)
            else:
                current += chunk
    if current:
        s_parts.append(current)
    n = max(len(q_parts), len(s_parts))
    return [{"partition": i, "queries": q_parts[i] if i < len(q_parts) else [],
             "start_urls": s_parts[i] if i < len(s_parts) else []} for i in range(n)]


def _plan(disc_dir: Path, inputs: dict, ccfg: CrawlConfig, parallel: int) -> list[dict]:
    """The partition plan of these inputs: the recorded one when the inputs are unchanged."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    path = disc_dir / PLAN_FILE
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("inputs_sha256") == digest:
            return old["partitions"]
        log.warning("crawl inputs changed since the last run in %s: starting discovery afresh", disc_dir)
        shutil.rmtree(disc_dir)
    parts = plan_partitions(inputs["queries"], inputs["start_urls"], ccfg, parallel)
    write_json_atomic(path, {"inputs_sha256": digest, "partitions": parts})
    return parts


def _partition_task():
    """The discovery task, named by its stage (`crawl`): one dashboard row for all partitions; the
    partition is in its argument, its log lines and its counters' `partition` label."""
    import ray

    @ray.remote(num_cpus=1, max_retries=_PARTITION_RETRIES, retry_exceptions=True)
    def crawl_partition(spec_json: str) -> dict:
        from crawler.discover import JOURNAL_FILE, run_partition_subprocess
        from pipelines.crawl_metrics import JournalCounter, count_partition_end
        from pipelines.ray_runtime import task_logging

        task_logging()
        spec = PartitionSpec.from_json(spec_json)
        label = f"{spec.partition:05d}"
        log.info("%s: partition %s (%d queries, %d start URLs) starts", CRAWL_STAGE, label, len(spec.queries),
                 len(spec.start_urls))
        with JournalCounter(Path(spec.workdir) / JOURNAL_FILE, label) as counter:
            stats = run_partition_subprocess(spec)
        if not stats.get("skipped_complete"):
            count_partition_end(stats, label)
        log.info("%s: partition %s done: %s", CRAWL_STAGE, label, counter.totals)
        return stats

    return crawl_partition


def merge_candidates(disc_dir: Path, cand_dir: Path, n_partitions: int) -> dict:
    """Candidates of every finished partition, deduplicated by URL in partition order."""
    cand_dir.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    total = dup = 0
    written = set()
    for i in range(n_partitions):
        src = disc_dir / f"part-{i:05d}" / CANDIDATES_FILE
        dst = cand_dir / f"part-{i:05d}.parquet"
        if not src.exists():
            continue
        table = pq.read_table(src)
        urls = table["url"].to_pylist()
        keep = []
        for u in urls:
            keep.append(u not in seen)
            seen.add(u)
        dup += keep.count(False)
        table = table.filter(pa.array(keep, type=pa.bool_()))
        total += table.num_rows
        write_parquet_atomic(dst, table)
        written.add(dst.name)
    for stale in cand_dir.glob("part-*.parquet"):
        if stale.name not in written:
            stale.unlink()
    return {"candidates": total, "duplicate_urls_across_partitions": dup}


def _sum_counts(stats: list[dict]) -> dict:
    out: dict[str, int] = {}
    for s in stats:
        for k, v in s.get("counts", {}).items():
            out[k] = out.get(k, 0) + v
        for k, v in s.get("scrapy", {}).items():
            if isinstance(v, int) and not k.startswith("elapsed"):
                out[f"scrapy/{k}"] = out.get(f"scrapy/{k}", 0) + v
    return dict(sorted(out.items()))


def run_discovery(output: str | Path, cfg: WukongConfig, *, queries: list[str] | None = None,
                  search_url: str | None = None, start_urls: list[str] | None = None) -> dict:
    """Discover candidates under OUTPUT/discover and OUTPUT/candidates; returns (and writes) stats."""
    ccfg = cfg.crawl
    out = Path(output)
    disc_dir, cand_dir = out / "discover", out / "candidates"
    queries = list(queries or [])
    start_urls = list(start_urls or [])
    if queries and not search_url:
        raise CrawlInputError("a query list needs a search endpoint (--search-url TEMPLATE with {query})")
    if search_url and "{query}" not in search_url:
        raise CrawlInputError(f"search URL template has no {{query}}: {search_url}")
    if not queries and not start_urls:
        raise CrawlInputError("nothing to crawl: give queries with a search URL, or start URLs")
    t0 = time.time()
    init_ray(cfg.ray)
    parallel = ccfg.parallel_partitions or cluster_cpus()
    domains = ccfg.allowed_domains or _hosts(start_urls + ([search_url] if search_url else []))
    rules = ExtractRules.from_config(ccfg, min_side=cfg.filter.image.min_side,
                                     max_aspect_ratio=cfg.filter.image.max_aspect_ratio)
    inputs = {"queries": queries, "search_url": search_url, "start_urls": start_urls}
    plan = _plan(disc_dir, inputs, ccfg, parallel)
    at_once = max(1, min(parallel, len(plan)))
    delay = at_once / ccfg.per_domain_rate if ccfg.per_domain_rate > 0 else 0.0
    per_domain = max(1, ccfg.per_domain_concurrency // at_once)
    specs = [PartitionSpec(partition=p["partition"], workdir=str((disc_dir / f"part-{p['partition']:05d}").resolve()),
                           queries=p["queries"], search_url=search_url, start_urls=p["start_urls"],
                           allowed_domains=domains, crawl=dataclasses.asdict(ccfg),
                           rules=dataclasses.asdict(rules), download_delay=delay,
                           concurrent_per_domain=per_domain) for p in plan]
    results, failures = _run_partitions(specs, at_once)
    merged = merge_candidates(disc_dir, cand_dir, len(specs))
    stats = {"partitions": len(specs), "partitions_done": len(results), "partitions_failed": failures,
             "parallel": at_once, "download_delay_per_partition": delay, "per_domain_concurrency_per_partition": per_domain,
             "queries": len(queries), "start_urls": len(start_urls), "allowed_domains": domains,
             **merged, "counts": _sum_counts(results), "seconds": round(time.time() - t0, 2)}
    write_json_atomic(disc_dir / STATS_FILE, stats)
    return stats


def _run_partitions(specs: list[PartitionSpec], at_once: int) -> tuple[list[dict], dict]:
    """Partition tasks with at most `at_once` in flight (the politeness share assumes it)."""
    import ray

    task = _partition_task()
    results: list[dict] = []
    failures: dict[str, str] = {}
    todo = [s for s in specs]
    # Finished partitions need no task (a rerun only crawls the rest).
    for s in list(todo):
        if partition_done(s.workdir):
            results.append(json.loads((Path(s.workdir) / STATS_FILE).read_text(encoding="utf-8")))
            todo.remove(s)
    running: dict = {}
    while todo or running:
        while todo and len(running) < at_once:
            s = todo.pop(0)
            running[task.options(name=CRAWL_STAGE).remote(s.to_json())] = s
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            s = running.pop(ref)
            try:
                results.append(ray.get(ref))
            except Exception as exc:  # one partition's failure never stops the others
                failures[str(s.partition)] = str(exc).splitlines()[-1][:500] if str(exc) else type(exc).__name__
                log.error("discovery partition %d failed (a rerun resumes it): %s", s.partition, exc)
    return results, failures


def _demo_target(out: Path, cfg: WukongConfig):
    """Generate (or reuse) and serve the demo web; returns (server, queries, cfg for it)."""
    from crawler.demoweb.generate import QUERIES_FILE, generate_demo_web
    from crawler.demoweb.server import SERVED_FILE, DemoWebServer

    root = out / "demo_web"
    generate_demo_web(root, cfg.demo_web)
    port = cfg.demo_web.port
    served = root / SERVED_FILE
    previous = json.loads(served.read_text(encoding="utf-8"))["origin"] if served.exists() else None
    if not port and previous:
        port = int(previous.rsplit(":", 1)[1])
    server = DemoWebServer(root, cfg.demo_web.host, port)
    try:
        server.start()
    except OSError:
        server = DemoWebServer(root, cfg.demo_web.host, 0)
        server.start()
    if previous and previous != server.origin:
        # Everything recorded so far points at the old address: start over rather than mix.
        log.warning("demo web moved from %s to %s: discarding the previous crawl state", previous, server.origin)
        for sub in ("discover", "candidates", "candidates_filtered", "raw"):
            shutil.rmtree(out / sub, ignore_errors=True)
    address = f"{cfg.demo_web.host}:{server.port}"
    crawl = dataclasses.replace(cfg.crawl, allowed_addresses=cfg.crawl.allowed_addresses + [address],
                                per_domain_rate=cfg.demo_web.crawl_per_domain_rate,
                                per_domain_concurrency=cfg.demo_web.crawl_per_domain_concurrency)
    download = dataclasses.replace(cfg.download, allowed_addresses=cfg.download.allowed_addresses + [address])
    cfg = dataclasses.replace(cfg, crawl=crawl, download=download)
    return server, read_queries(root / QUERIES_FILE), cfg


def run_crawl(output: str | Path, cfg: WukongConfig, *, queries_file: str | None = None,
              search_url: str | None = None, start_urls: list[str] | None = None) -> dict:
    """Discover, apply the text rules to the candidates, download the kept ones into raw shards.

    With no target (no queries, search URL or start URLs, here or in `cfg.crawl`), the demo web is
    generated under OUTPUT/demo_web, served on 127.0.0.1 and crawled."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    queries_file = queries_file or cfg.crawl.queries_file
    search_url = search_url or cfg.crawl.search_url
    start_urls = list(start_urls or []) + list(cfg.crawl.start_urls)
    server = None
    t0 = time.time()
    try:
        if not (queries_file or search_url or start_urls):
            server, queries, cfg = _demo_target(out, cfg)
            search_url = server.search_url
        else:
            queries = _load_queries(queries_file) if queries_file else []
            if search_url and not queries:
                raise CrawlInputError("a search URL needs a query list (--queries FILE)")
        stats: dict = {"target": "demo_web" if server else "configured", "search_url": search_url}
        stats["discover"] = run_discovery(out, cfg, queries=queries, search_url=search_url, start_urls=start_urls)
        if stats["discover"]["partitions_failed"]:
            stats["complete"] = False
            stats["note"] = "some discovery partitions failed; rerun the same command to resume them"
        elif cfg.crawl.download:
            stats.update(_filter_and_download(out, cfg))
            stats["complete"] = True
        else:
            stats["complete"] = True
    finally:
        if server is not None:
            server.stop()
    stats["seconds"] = round(time.time() - t0, 2)
    write_json_atomic(out / STATS_FILE, stats)
    return stats


def _load_queries(path: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise CrawlInputError(f"query file not found: {p}")
    try:
        return read_queries(p)
    except UnicodeDecodeError as exc:
        raise CrawlInputError(f"query file {p} is not UTF-8 text: {exc}") from exc


def _filter_and_download(out: Path, cfg: WukongConfig) -> dict:
    from pipelines.download_job import run_download
    from pipelines.filter_job import run_filter
    from shards.parts import open_parts

    cand_files = sorted(str(p) for p in (out / "candidates").glob("part-*.parquet"))
    stats: dict = {}
    if not cand_files:
        return {"filter": {"input": 0}, "download": {"input": 0}}
    stats["filter"] = run_filter(cand_files, out / "candidates_filtered", cfg, rules="text")
    # The kept candidates: the filter's parts (or a single kept.parquet written by an earlier version).
    kept = open_parts(out / "candidates_filtered", "kept").paths()
    if not cfg.download.save_additional_columns:
        cfg = dataclasses.replace(cfg, download=dataclasses.replace(
            cfg.download, save_additional_columns=["page_url", "query", "caption_source"]))
    stats["download"] = run_download(kept, out / "raw", cfg)
    return stats
