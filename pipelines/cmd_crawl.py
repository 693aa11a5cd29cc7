"""`wukong crawl`: discover candidates (Scrapy over Ray), apply the text rules, download raw shards.

With no target it generates, serves (127.0.0.1) and crawls the bundled demo web.
"""

from __future__ import annotations

import json


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("crawl", help="discover image-text candidates and download them (demo web by default)")
    p.add_argument("--queries", metavar="FILE", help="query list, one query a line (`wukong queries` writes one)")
    p.add_argument("--search-url", metavar="TEMPLATE",
                   help="search endpoint with {query} and {page} (or {offset}), e.g. 'https://s.example/img?q={query}&p={page}'")
    p.add_argument("--start-url", dest="start_urls", action="append", default=[], metavar="URL",
                   help="a page to extract pairs from and follow on-domain links (repeatable)")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="candidates/, candidates_filtered/, raw/ and stats.json go here")
    p.add_argument("--allow-private", action="store_true",
                   help="allow private, loopback and link-local addresses (spider and downloader)")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.cli import UsageError, config_from_args
    from pipelines.crawl_job import CrawlInputError, run_crawl

    extra = ["crawl.allow_private=true", "download.allow_private=true"] if args.allow_private else []
    cfg = config_from_args(args, extra)
    for url in args.start_urls:
        if not url.lower().startswith(("http://", "https://")):
            raise UsageError(f"start URL must be http(s): {url}")
    try:
        stats = run_crawl(args.output, cfg, queries_file=args.queries, search_url=args.search_url,
                          start_urls=args.start_urls)
    except CrawlInputError as exc:
        raise UsageError(str(exc)) from exc
    disc = stats["discover"]
    summary = {"target": stats["target"], "candidates": disc["candidates"],
               "partitions_failed": disc["partitions_failed"], "complete": stats["complete"]}
    if "filter" in stats:
        summary["kept_by_text_rules"] = stats["filter"].get("kept")
    if "download" in stats:
        summary["download"] = {k: v for k, v in stats["download"].items() if isinstance(v, (int, float))}
    print(json.dumps(summary, ensure_ascii=False))
    return 0 if stats["complete"] else 1
