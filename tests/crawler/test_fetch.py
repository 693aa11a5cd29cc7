"""The fetcher against a real loopback server: good bodies, and every hostile behaviour with its code."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from crawler import fetch
from crawler.config import DownloadConfig
from crawler.fetch import Fetcher, robots_opt_out
from tests.crawler.servers import LoopbackServer

BODY = b"\xff\xd8\xff" + bytes(range(256)) * 40


def _cfg(**kw) -> DownloadConfig:
    base = dict(allow_private=True, connect_timeout=2, read_timeout=1, total_timeout=3, retries=0,
                backoff_base=0.05, backoff_max=2.0)
    base.update(kw)
    return DownloadConfig(**base)


def _run(cfg: DownloadConfig, *urls: str) -> list[fetch.FetchResult]:
    async def go():
        async with Fetcher(cfg) as f:
            return await asyncio.gather(*(f.fetch(u) for u in urls))
    return asyncio.run(go())


@pytest.fixture(scope="module")
def srv():
    with LoopbackServer() as s:
        s.add("a.jpg", BODY)
        yield s


def test_good_body_and_user_agent(srv):
    res, = _run(_cfg(contact_url="https://example.org/wukong-contact"), srv.url("/img/a.jpg?x=1"))
    assert res.ok and res.body == BODY and res.status == 200 and res.attempts == 1
    ua = srv.headers_seen[srv.requests.index("/img/a.jpg?x=1")]["User-Agent"]
    assert "wukong-pipeline" in ua and "https://example.org/wukong-contact" in ua


def test_cookies_set_by_a_server_are_never_sent_back(srv):
    srv.add("cookie.jpg", BODY, headers={"Set-Cookie": "track=1; Path=/"})

    # By host name: aiohttp's default jar keeps no cookies of bare IP addresses at all.
    by_name = srv.url("/img/cookie.jpg").replace("127.0.0.1", "localhost")

    async def go():
        async with Fetcher(_cfg()) as f:  # one session: a jar would carry the cookie over
            first = await f.fetch(by_name + "?n=1")
            second = await f.fetch(by_name + "?n=2")
            return first, second
    first, second = asyncio.run(go())
    assert first.ok and second.ok
    seen = srv.headers_seen[srv.requests.index("/img/cookie.jpg?n=2")]
    assert "Cookie" not in seen and "cookie" not in {k.lower() for k in seen}


def test_http_errors_are_coded_and_permanent_ones_not_retried(srv):
    before = len(srv.requests)
    res, = _run(_cfg(retries=2), srv.url("/status/404"))
    assert res.error == "http_404" and res.attempts == 1
    assert srv.requests[before:] == ["/robots.txt", "/status/404"]
    res, = _run(_cfg(retries=2), srv.url("/status/403"))
    assert res.error == "http_403" and res.attempts == 1


def test_transient_failures_are_retried_with_backoff(srv):
    ok, = _run(_cfg(retries=2), srv.url("/flaky/t1/2/a.jpg"))
    assert ok.ok and ok.attempts == 3 and srv.counters["t1"] == 3
    failed, = _run(_cfg(retries=1), srv.url("/flaky/t2/5/a.jpg"))
    assert failed.error == "http_500" and failed.attempts == 2 and srv.counters["t2"] == 2
    t0 = time.monotonic()
    limited, = _run(_cfg(retries=1), srv.url("/retry-after/t3/a.jpg"))
    assert limited.ok and limited.attempts == 2
    assert time.monotonic() - t0 >= 0.95  # Retry-After: 1 was honoured


def test_timeouts(srv):
    slow, hung, trickle = _run(_cfg(read_timeout=0.5, total_timeout=2),
                               srv.url("/slow/1.5/a.jpg"), srv.url("/hang"), srv.url("/trickle"))
    assert slow.error == fetch.READ_TIMEOUT
    assert hung.error == fetch.READ_TIMEOUT
    # A body that keeps coming, each byte well within the read timeout: only the total deadline ends it.
    assert trickle.error == fetch.TOTAL_TIMEOUT


def test_byte_limit_while_streaming(srv):
    endless, huge, bomb = _run(_cfg(max_bytes=1_000_000, total_timeout=10), srv.url("/endless"), srv.url("/huge"),
                               srv.url("/gzip-bomb"))
    assert endless.error == fetch.TOO_LARGE and endless.body is None
    assert huge.error == fetch.TOO_LARGE
    assert bomb.error == fetch.TOO_LARGE  # its declared (compressed) length is small; the inflated body is not
    inflated, = _run(_cfg(max_bytes=9_000_000), srv.url("/gzip-bomb"))
    assert inflated.ok and len(inflated.body) == 3 + 8 * 1024 * 1024
    small, = _run(_cfg(max_bytes=len(BODY) - 1), srv.url("/img/a.jpg"))
    assert small.error == fetch.TOO_LARGE


def test_cut_bodies_and_resets(srv):
    cut, reset = _run(_cfg(), srv.url("/cut/a.jpg"), srv.url("/reset"))
    assert cut.error == fetch.PAYLOAD_ERROR
    assert reset.error == fetch.CONNECTION_RESET


def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res, = _run(_cfg(), f"http://127.0.0.1:{port}/x.jpg")  # nothing listens there
    assert res.error == fetch.CONNECT_ERROR


def test_redirects_bounded_and_loops_detected(srv):
    ok, too_many, loop = _run(_cfg(max_redirects=3), srv.url("/redirect/3/a.jpg"),
                              srv.url("/redirect/4/a.jpg"), srv.url("/loop/A"))
    assert ok.ok and ok.final_url.endswith("/img/a.jpg")
    assert too_many.error == fetch.TOO_MANY_REDIRECTS
    assert loop.error == fetch.REDIRECT_LOOP


def test_x_robots_tag_opt_outs(srv):
    urls = [srv.url(f"/robots/{v}/a.jpg") for v in
            ["noai", "NoImageAI", "noindex, nofollow", "otherbot: noai", "wukong-pipeline: noimageai", "nofollow"]]
    res = _run(_cfg(), *urls)
    assert [r.error for r in res] == [fetch.ROBOTS_OPT_OUT] * 3 + [None, fetch.ROBOTS_OPT_OUT, None]
    allowed, = _run(_cfg(disallowed_robots_tags=["noai"]), srv.url("/robots/noindex/a.jpg"))
    assert allowed.ok


def test_robots_tag_parser():
    bad = frozenset({"noai", "noindex"})
    assert robots_opt_out(["noai"], "wukong-pipeline", bad) == "noai"
    assert robots_opt_out(["googlebot: noindex", "all"], "wukong-pipeline", bad) is None
    assert robots_opt_out(["*: noindex"], "wukong-pipeline", bad) == "noindex"
    assert robots_opt_out(["unavailable_after: 25 Jun 2010 15:00:00 PST"], "wukong-pipeline", bad) is None


def test_invalid_urls_are_coded():
    res = _run(_cfg(), "ftp://127.0.0.1/x.jpg", "not a url", "", "http://", "javascript:alert(1)")
    assert [r.error for r in res] == [fetch.INVALID_URL] * 5


def test_per_host_connection_limit():
    with LoopbackServer() as fresh:
        fresh.add("a.jpg", BODY)
        res = _run(_cfg(per_host_connections=2, read_timeout=3, total_timeout=10),
                   *[fresh.url(f"/slow/0.2/a.jpg?i={i}") for i in range(8)])
        assert all(r.ok for r in res)
        assert fresh.max_active == 2


def test_robots_txt_is_honoured():
    with LoopbackServer() as site:
        site.add("a.jpg", BODY)
        site.robots_txt = (b"User-agent: otherbot\nDisallow: /\n\n"
                           b"User-agent: wukong-pipeline\nDisallow: /img/private\n")
        site.add("private-1.jpg", BODY)
        ok, banned = _run(_cfg(), site.url("/img/a.jpg"), site.url("/img/private-1.jpg"))
        assert ok.ok
        assert banned.error == fetch.ROBOTS_TXT_DISALLOWED
        assert site.requests.count("/robots.txt") == 1  # fetched once for both requests
        assert "/img/private-1.jpg" not in site.requests
        ignored, = _run(_cfg(respect_robots_txt=False), site.url("/img/private-1.jpg"))
        assert ignored.ok
        # Everyone disallowed, us included.
        site.robots_txt = b"User-agent: *\nDisallow: /\n"
        res, = _run(_cfg(), site.url("/img/a.jpg"))
        assert res.error == fetch.ROBOTS_TXT_DISALLOWED


def test_unreachable_robots_txt_means_disallow_unless_configured():
    with LoopbackServer() as site:
        site.add("a.jpg", BODY)
        site.robots_status = 503
        res, = _run(_cfg(), site.url("/img/a.jpg"))
        assert res.error == fetch.ROBOTS_TXT_UNREACHABLE and "http_503" in res.message
        assert "/img/a.jpg" not in site.requests
        lenient, = _run(_cfg(robots_unreachable_allows=True), site.url("/img/a.jpg"))
        assert lenient.ok
        site.robots_status = 403  # 4xx: no rules
        res, = _run(_cfg(), site.url("/img/a.jpg"))
        assert res.ok
