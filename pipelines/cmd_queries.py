"""`wukong queries --output FILE`: a query list of frequent words (jieba's dictionary or a word list)."""

from __future__ import annotations

import json


def register(sub) -> None:
    from pipelines.cli import add_config_args
    p = sub.add_parser("queries", help="build a query list from word frequencies (jieba's dictionary by default)")
    p.add_argument("--output", required=True, metavar="FILE", help="query list, one query a line")
    p.add_argument("--words", metavar="FILE",
                   help="your word list instead of jieba's (one word a line, optionally 'word freq [tag]')")
    p.add_argument("--count", type=int, metavar="N", help="how many queries (default crawl.query_count)")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from crawler.queries import build_query_list, write_queries
    from pipelines.cli import UsageError, config_from_args

    cfg = config_from_args(args, [f"crawl.query_count={args.count}"] if args.count is not None else [])
    c = cfg.crawl
    if c.query_count < 1:
        raise UsageError("the query count must be at least 1")
    for f in (args.words, c.query_stopwords_file):
        if f and not Path(f).is_file():
            raise UsageError(f"word list not found: {f}")
    try:
        queries, dropped = build_query_list(count=c.query_count, min_chars=c.query_min_chars,
                                            exclude_pos=c.query_exclude_pos, words_file=args.words,
                                            stopwords_file=c.query_stopwords_file)
    except UnicodeDecodeError as exc:
        raise UsageError(f"word list is not UTF-8 text: {exc}") from exc
    if not queries:
        raise UsageError("no usable query in the word list")
    write_queries(args.output, queries)
    print(json.dumps({"queries": len(queries), "dropped": dropped, "output": args.output}, ensure_ascii=False))
    return 0
