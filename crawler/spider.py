"""The discovery spider: search pages seeded by queries, article pages, pairs into a journal.

The journal (JSON lines, one per finished page) is the spider's only output and its resume state:
a page's pairs and the requests it leads to are written together, so after any interruption the
frontier is rebuilt as (seeds + recorded requests) - finished pages, and a page is never counted
twice. Candidates are the journal's pairs deduplicated by URL (`crawler.discover`).

Politeness: robots.txt (Scrapy's middleware), per-domain delay and concurrency, AutoThrottle,
on-domain link following with a depth limit, a page cap, X-Robots-Tag / meta robots opt-outs, and
the downloader's address guard on every request (redirect hops and robots.txt included).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from w3lib.url import canonicalize_url

from crawler.extract import (ExtractRules, extract_page, extract_search_html, extract_search_json,
                             robots_tag_directives)

SEARCH = "search"
PAGE = "page"
# Content types whose bodies are parsed as pages.
_HTML_TYPES = (b"text/html", b"application/xhtml+xml")
# Stable codes of the usual network failures (others keep their exception name).
_ERROR_CODES = {
    "DownloadTimeoutError": "timeout", "TimeoutError": "timeout", "TCPTimedOutError": "timeout",
    "DownloadCancelledError": "too_large", "DNSLookupError": "dns_error",
    "ConnectionRefusedError": "connect_error", "ConnectError": "connect_error",
    "DownloadConnectionRefusedError": "connect_error", "ConnectionLost": "connection_lost",
    "ResponseNeverReceived": "connection_lost", "ResponseFailed": "connection_lost",
}
_JSON_TYPES = (b"application/json", b"text/json", b"text/javascript", b"application/javascript")


@dataclass
class PartitionSpec:
    """Everything one discovery process needs; written as JSON by the crawl job."""

    partition: int
    workdir: str
    queries: list[str] = field(default_factory=list)
    search_url: str | None = None
    start_urls: list[str] = field(default_factory=list)
    allowed_domains: list[str] = field(default_factory=list)
    # crawler.config.CrawlConfig as a dict, and the extraction rules.
    crawl: dict = field(default_factory=dict)
    rules: dict = field(default_factory=dict)
    # Politeness share of this partition (the budget divided by partitions running at once).
    download_delay: float = 0.0
    concurrent_per_domain: int = 8

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "PartitionSpec":
        return cls(**json.loads(text))


def request_key(kind: str, url: str) -> str:
    return f"{kind} {canonicalize_url(url)}"


def search_request_url(template: str, query: str, page: int, per_page: int) -> str:
    return (template.replace("{query}", quote(query, safe=""))
            .replace("{page}", str(page))
            .replace("{offset}", str((page - 1) * per_page)))


class CrawlJournal:
    """Append-only record of finished pages; a torn last line (a crash mid-write) is ignored."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.done: set[str] = set()
        self.pages_fetched = 0
        self._fh = None

    def load(self, seeds: list[dict]) -> list[dict]:
        """Read the journal; return the pending requests (seeds first, then recorded ones)."""
        recorded: list[dict] = []
        if self.path.exists():
            with open(self.path, "rb") as fh:
                data = fh.read()
            good_end = data.rfind(b"\n") + 1
            if good_end < len(data):
                # Drop the torn tail so the next record starts on a fresh line.
                with open(self.path, "r+b") as fh:
                    fh.truncate(good_end)
            for line in data[:good_end].splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("done"):
                    self.done.add(rec["key"])
                    self.pages_fetched += rec.get("fetched", 0)
                recorded.extend(rec.get("requests", ()))
        pending, queued = [], set()
        for req in seeds + recorded:
            key = request_key(req["kind"], req["url"])
            if key not in self.done and key not in queued:
                queued.add(key)
                pending.append(req)
        return pending

    def write(self, record: dict) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")
        self._fh.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def on_domains(url: str, domains: set[str]) -> bool:
    host = _host(url)
    return any(host == d or host.endswith("." + d) for d in domains)


class DiscoverySpider(scrapy.Spider):
    name = "wukong"

    def __init__(self, spec: PartitionSpec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec
        self.cfg = spec.crawl
        self.rules = ExtractRules(**spec.rules)
        # og:image pairs are a crawl choice (crawl.og_image_pairs); the crawl job builds the other rules.
        self.rules.og_pairs = bool(self.cfg.get("og_image_pairs", self.rules.og_pairs))
        self.domains = {d.lower() for d in spec.allowed_domains}
        self.allowed_domains = sorted(self.domains)
        self.journal = CrawlJournal(Path(spec.workdir) / "journal.jsonl")
        self.opt_out = {t.lower() for t in self.cfg.get("opt_out_robots_tags", [])}
        self.agent_names = {"robots", self.name}
        self.counts: dict[str, int] = {}
        self.max_pages = int(self.cfg.get("max_pages_per_partition", 0))
        # Smallest depth each request was issued at in this run (request key -> depth).
        self.nearest: dict[str, int] = {}
        self.depth_limit = int(self.cfg.get("depth_limit", 0))

    # ------------------------------------------------------------ bookkeeping
    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def seeds(self) -> list[dict]:
        out = []
        if self.spec.search_url:
            for q in self.spec.queries:
                out.append({"kind": SEARCH, "url": self._search_url(q, 1), "query": q, "page": 1,
                            "rank_base": 0, "depth": 0})
        for url in self.spec.start_urls:
            out.append({"kind": PAGE, "url": url, "query": None, "depth": 0})
        return out

    def _search_url(self, query: str, page: int) -> str:
        return search_request_url(self.spec.search_url, query, page, int(self.cfg.get("results_per_page", 10)))

    def _request(self, req: dict) -> scrapy.Request:
        callback = self.parse_search if req["kind"] == SEARCH else self.parse_page
        key = request_key(req["kind"], req["url"])
        depth = int(req.get("depth", 0))
        self.nearest[key] = min(depth, self.nearest.get(key, depth))
        # Shallower pages first (breadth-first leaning): a page is then rarely met nearer to a seed
        # only after it was parsed, when its links would be followed one hop short.
        return scrapy.Request(req["url"], callback=callback, errback=self.on_error,
                              meta={"wk": req}, priority=-depth, dont_filter=False)

    async def start(self):
        pending = self.journal.load(self.seeds())
        self.count("resumed_done_pages", len(self.journal.done))
        for req in pending:
            if self._page_budget_left():
                yield self._request(req)

    def _new_requests(self, requests) -> list[dict]:
        """Requests not issued yet; a page met again nearer to a seed takes the smaller depth.

        Crawl order is only roughly breadth-first (requests are prioritised by depth, but a search
        result's page may first be met as an article's link, one hop deeper): while its request is
        pending, its response is parsed at the smallest depth it was met at (`_depth`). Pages are
        never fetched twice, and pages finished by an earlier run are not fetched again."""
        out = []
        for r in requests:
            key = request_key(r["kind"], r["url"])
            depth = int(r.get("depth", 0))
            best = self.nearest.get(key)
            if best is not None:
                self.nearest[key] = min(best, depth)
                continue
            if key in self.journal.done:
                continue
            self.nearest[key] = depth
            out.append(r)
        return out

    def _depth(self, req: dict) -> int:
        """The smallest depth the page was met at so far (its request may carry a larger one)."""
        depth = int(req.get("depth", 0))
        return min(depth, self.nearest.get(request_key(req["kind"], req["url"]), depth))

    def _page_budget_left(self) -> bool:
        return not self.max_pages or self.journal.pages_fetched < self.max_pages

    def _finish(self, response_or_req, req: dict, *, pairs=(), requests=(), reason: str | None = None,
                fetched: int = 1) -> list[scrapy.Request]:
        """Journal the page with its pairs and follow-up requests, then return those requests."""
        requests = self._new_requests(requests)
        self.journal.done.add(request_key(req["kind"], req["url"]))
        self.journal.pages_fetched += fetched
        self.journal.write({"key": request_key(req["kind"], req["url"]), "url": req["url"], "done": True,
                            "fetched": fetched, "reason": reason, "pairs": list(pairs),
                            "requests": list(requests)})
        if reason:
            self.count(f"pages_{reason}")
        if not self._page_budget_left():
            self.count("page_cap_reached")
            return []
        return [self._request(r) for r in requests]

    def _pair_record(self, pair, page_url: str, query: str | None, rank: int | None) -> dict:
        self.count("pairs")
        return {"url": pair.url, "caption": pair.caption, "alt": pair.alt, "title": pair.title,
                "page_url": page_url, "query": query, "rank": rank, "caption_source": pair.caption_source,
                "discovered_at": time.time()}

    def _merge_skips(self, skipped: dict) -> None:
        for k, v in skipped.items():
            self.count(f"images_skipped_{k}", v)

    # ------------------------------------------------------------ callbacks
    def parse_search(self, response):
        req = response.meta["wk"]
        self.count("search_pages")
        cap = int(self.cfg.get("max_results_per_query", 1000))
        ctype = (response.headers.get(b"Content-Type") or b"").lower()
        try:
            if self.cfg.get("result_json_path") or any(t in ctype for t in _JSON_TYPES):
                results = extract_search_json(
                    response.body, response.url, result_path=self.cfg.get("result_json_path", ""),
                    image_key=self.cfg["json_image_key"], caption_key=self.cfg["json_caption_key"],
                    page_key=self.cfg["json_page_key"], max_caption_chars=self.rules.max_caption_chars)
            else:
                results = extract_search_html(
                    response.text, response.url, result_css=self.cfg["result_css"],
                    caption_css=self.cfg.get("result_caption_css", ""),
                    page_css=self.cfg.get("result_page_css", ""), rules=self.rules)
        except (ValueError, AttributeError) as exc:
            # Not JSON, or not text at all: a bad search page, counted, never a crash.
            self.logger.warning("unreadable search page %s: %s", response.url, exc)
            return self._finish(response, req, reason="bad_search_page")
        self._merge_skips(results.skipped)
        rank_base = int(req.get("rank_base", 0))
        room = max(0, cap - rank_base)
        pairs, follow = [], []
        for i, (pair, page_url) in enumerate(zip(results.pairs[:room], results.page_urls[:room])):
            pairs.append(self._pair_record(pair, page_url or response.url, req["query"], rank_base + i + 1))
            if page_url and self.cfg.get("follow_result_pages", True) and on_domains(page_url, self.domains):
                follow.append({"kind": PAGE, "url": page_url, "query": req["query"], "depth": 1})
        signature = sorted(p["url"] for p in pairs)
        nxt = []
        # Stop at the cap, on an empty page, and when an engine repeats the last page forever.
        if results.entries and rank_base + results.entries < cap and signature != req.get("last_sig"):
            page = int(req.get("page", 1)) + 1
            nxt.append({"kind": SEARCH, "url": self._search_url(req["query"], page), "query": req["query"],
                        "page": page, "rank_base": rank_base + results.entries, "depth": 0,
                        "last_sig": signature})
        return self._finish(response, req, pairs=pairs, requests=nxt + follow)

    def parse_page(self, response):
        req = response.meta["wk"]
        ctype = (response.headers.get(b"Content-Type") or b"").split(b";")[0].strip().lower()
        if ctype and ctype not in _HTML_TYPES:
            return self._finish(response, req, reason="not_html")
        header_tags = robots_tag_directives(response.headers.getlist(b"X-Robots-Tag"), self.agent_names)
        if header_tags & self.opt_out:
            return self._finish(response, req, reason="opted_out")
        try:
            text = response.text
        except AttributeError:
            return self._finish(response, req, reason="not_html")
        page = extract_page(text, response.url, self.rules, robots_names=self.agent_names)
        self.count("article_pages")
        self.count("article_body_found" if page.has_body else "article_body_not_found")
        directives = header_tags | page.robots
        if directives & self.opt_out:
            return self._finish(response, req, reason="opted_out")
        self._merge_skips(page.skipped)
        pairs = [self._pair_record(p, response.url, req.get("query"), None) for p in page.pairs]
        follow = []
        depth = self._depth(req)
        depth_limit = self.depth_limit
        if depth_limit > 0 and "nofollow" not in directives and "none" not in directives:
            # A list's (or article's) next pages are the same list: they do not spend depth, only
            # the chain of pages is bounded (and max_pages_per_partition bounds everything).
            chain = int(req.get("chain", 0))
            chain_limit = int(self.cfg.get("max_pagination_chain", 0))
            paging = set(page.pagination)
            for link in page.links:
                if not on_domains(link, self.domains):
                    continue
                if link in paging:
                    if not chain_limit or chain < chain_limit:
                        follow.append({"kind": PAGE, "url": link, "query": req.get("query"), "depth": depth,
                                       "chain": chain + 1})
                elif depth < depth_limit:
                    follow.append({"kind": PAGE, "url": link, "query": req.get("query"), "depth": depth + 1})
        return self._finish(response, req, pairs=pairs, requests=follow)

    def on_error(self, failure):
        req = failure.request.meta["wk"]
        if failure.check(HttpError):
            reason = f"http_{failure.value.response.status}"
        elif failure.check(IgnoreRequest):
            msg = str(failure.value).lower()
            reason = ("robots_disallowed" if "robots" in msg else
                      "address_refused" if "address" in msg else
                      "offsite" if "offsite" in msg else "ignored")
            # Refused for good: journal it as done so a resume does not ask again.
            self._finish(None, req, reason=reason, fetched=0)
            return []
        else:
            reason = _ERROR_CODES.get(failure.type.__name__, failure.type.__name__)
        # A failed page stays pending: a resumed run retries it.
        self.count(f"pages_failed_{reason}")
        self.logger.info("page failed %s: %s", failure.request.url, reason)
        return []

    def closed(self, reason):
        self.journal.close()
        self.count(f"finish_{reason}")


class AddressGuardMiddleware:
    """Refuses requests to private, loopback, link-local and reserved addresses unless allowed.

    Runs on every request the engine downloads (robots.txt and each redirect hop included), with
    the same rules as the downloader. Names are resolved here (cached per host); Scrapy resolves
    again when connecting, so a name that changes its answer in between is not caught here.
    """

    def __init__(self, allow_private: bool, allowed: list[str]):
        from crawler.netguard import AddressGuard

        self.guard = AddressGuard(allow_private, allowed)
        self._cache: dict[tuple[str, int], str | None] = {}

    @classmethod
    def from_crawler(cls, crawler):
        s = crawler.settings
        return cls(s.getbool("WUKONG_ALLOW_PRIVATE"), s.getlist("WUKONG_ALLOWED_ADDRESSES"))

    def process_request(self, request, spider=None):
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise IgnoreRequest(f"address refused: bad port in {request.url}")
        key = (host, port)
        if key not in self._cache:
            self._cache[key] = self._refusal(host, port)
        why = self._cache[key]
        if why:
            raise IgnoreRequest(f"address refused: {why}")
        return None

    def _refusal(self, host: str, port: int) -> str | None:
        import socket

        from crawler.netguard import BlockedAddressError

        try:
            self.guard.check_literal(host, port)
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BlockedAddressError as exc:
            return str(exc)
        except (OSError, UnicodeError) as exc:
            return f"cannot resolve {host}: {exc}"
        for *_, sockaddr in infos:
            if not self.guard.allows(host, sockaddr[0], port):
                return f"{host} resolves to the non-public address {sockaddr[0]}"
        return None

