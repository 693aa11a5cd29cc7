"""Counters of a discovery partition while its Scrapy process runs, read from its journal.

The crawl runs in a subprocess (Scrapy's reactor starts once per process), so its task follows the
partition's append-only journal (`crawler.discover`), one finished page per line, and reports:
`wukong_crawl_pages_fetched`, `..._pages_robots_skipped`, `..._pages_skipped{reason}` (refused
before fetching: off-domain, a refused address), `..._pages_rejected{reason}` (fetched, unusable:
not HTML, opted out, a bad search page) and `..._pairs` (image-text pairs found). Pages that failed
(HTTP errors, timeouts) stay pending in the journal for a resume; they are counted from the
partition's stats when it ends: `wukong_crawl_pages_failed{reason}`.
Only records written after the task started are counted, so a resumed partition counts its new work.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from pipelines import metrics

STAGE = "crawl"
# Seconds between two reads of the journal.
POLL_S = 1.0
ROBOTS_REASON = "robots_disallowed"
_FAILED_PREFIX = "pages_failed_"


class JournalCounter:
    """Follows `journal` from its current end in a thread; `stop()` reads what is left and returns."""

    def __init__(self, journal: str | Path, partition: str, poll_s: float = POLL_S):
        self.path = Path(journal)
        self.partition = partition
        self.poll_s = poll_s
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self.totals = {"pages_fetched": 0, "pages_robots_skipped": 0, "pairs": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crawl-journal-counter", daemon=True)

    def __enter__(self) -> "JournalCounter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.read_new()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.read_new()

    def read_new(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size < self.offset:  # a resume cut a torn last line
            self.offset = size
        if size == self.offset:
            return
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        complete = data.rfind(b"\n") + 1  # a line still being written is read next time
        self.offset += complete
        for line in data[:complete].splitlines():
            try:
                self._count(json.loads(line))
            except (ValueError, TypeError, AttributeError):
                continue

    def _count(self, rec: dict) -> None:
        tags = {"partition": self.partition}
        fetched, reason, pairs = int(rec.get("fetched") or 0), rec.get("reason"), len(rec.get("pairs") or ())
        if fetched:
            self.totals["pages_fetched"] += fetched
            metrics.count(STAGE, "pages_fetched", fetched, **tags)
            if reason:
                metrics.count(STAGE, "pages_rejected", 1, reason=reason, **tags)
        elif reason == ROBOTS_REASON:
            self.totals["pages_robots_skipped"] += 1
            metrics.count(STAGE, "pages_robots_skipped", 1, **tags)
        elif reason:
            metrics.count(STAGE, "pages_skipped", 1, reason=reason, **tags)
        if pairs:
            self.totals["pairs"] += pairs
            metrics.count(STAGE, "pairs", pairs, **tags)


def count_partition_end(stats: dict, partition: str) -> None:
    """What only the partition's final stats know: failed pages by reason; the partition itself."""
    failed = {k[len(_FAILED_PREFIX):]: v for k, v in stats.get("counts", {}).items()
              if k.startswith(_FAILED_PREFIX) and isinstance(v, int)}
    metrics.count_many(STAGE, "pages_failed", failed, "reason", partition=partition)
    metrics.count(STAGE, "partitions", 1, partition=partition)
