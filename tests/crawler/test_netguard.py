"""The address guard: rule parsing, address classes, and real loopback servers behind redirects and DNS.

Only 127.0.0.1 servers are ever contacted: the other addresses below are only classified, never
connected to, so a guard that fails cannot send traffic off this machine.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from crawler import fetch
from crawler.config import DownloadConfig
from crawler.fetch import Fetcher
from crawler.netguard import AddressGuard, BlockedAddressError, parse_rule
from tests.crawler.servers import LoopbackServer


def test_rule_parsing():
    assert parse_rule("127.0.0.1").network == ipaddress.ip_network("127.0.0.1/32")
    r = parse_rule("127.0.0.1:8080")
    assert r.network == ipaddress.ip_network("127.0.0.1/32") and r.port == 8080
    r = parse_rule("10.0.0.0/8:443")
    assert r.network == ipaddress.ip_network("10.0.0.0/8") and r.port == 443
    assert parse_rule("::1").network == ipaddress.ip_network("::1/128")
    r = parse_rule("[::1]:9000")
    assert r.network == ipaddress.ip_network("::1/128") and r.port == 9000
    assert parse_rule("fd00::/8").network == ipaddress.ip_network("fd00::/8")
    r = parse_rule("Images.Intranet.:81")
    assert r.host == "images.intranet" and r.port == 81
    for bad in ["", "host:0", "host:99999", "host:abc", "[::1", "a b", "http://x/y"]:
        with pytest.raises(ValueError):
            parse_rule(bad)


def test_private_loopback_link_local_are_refused_by_default():
    guard = AddressGuard()
    for addr in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
                 "100.64.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                 "224.0.0.1", "not-an-ip"]:
        assert not guard.allows("h", addr, 80), addr
    for addr in ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"]:
        assert guard.allows("h", addr, 80), addr
    assert AddressGuard(allow_private=True).allows("h", "10.0.0.1", 80)


def test_allow_list_by_ip_cidr_host_and_port():
    guard = AddressGuard(allowed=["127.0.0.1:8001", "10.0.0.0/8", "intranet.example:443"])
    assert guard.allows("x", "127.0.0.1", 8001)
    assert not guard.allows("x", "127.0.0.1", 8002)
    assert guard.allows("x", "10.200.3.4", 1234)
    assert not guard.allows("x", "192.168.0.1", 1234)
    assert guard.allows("Intranet.Example", "192.168.0.7", 443)
    assert not guard.allows("intranet.example", "192.168.0.7", 80)
    assert not guard.allows("other.example", "192.168.0.7", 443)


def test_literal_host_verdicts_stay_the_same_when_asked_again():
    """check_literal keeps its verdicts per (host, port): a refusal is a refusal every time."""
    guard = AddressGuard(allowed=["127.0.0.1:8001"])
    for _ in range(3):
        guard.check_literal("127.0.0.1", 8001)
        guard.check_literal("images.example", 80)  # a name: judged once resolved
        guard.check_literal("8.8.8.8", 443)
        for host, port in [("127.0.0.1", 8002), ("10.0.0.1", 80), ("[::1]", 8001), ("169.254.169.254", 80)]:
            with pytest.raises(BlockedAddressError):
                guard.check_literal(host, port)


def _run(cfg: DownloadConfig, *urls: str) -> list[fetch.FetchResult]:
    async def go():
        async with Fetcher(cfg) as f:
            return await asyncio.gather(*(f.fetch(u) for u in urls))
    return asyncio.run(go())


def _cfg(**kw) -> DownloadConfig:
    return DownloadConfig(connect_timeout=2, read_timeout=2, total_timeout=5, retries=0, **kw)


def test_loopback_refused_without_permission_and_server_sees_nothing():
    with LoopbackServer() as srv:
        srv.add("a.jpg", b"\xff\xd8\xff" + b"x" * 100)
        literal, = _run(_cfg(), srv.url("/img/a.jpg"))
        by_name, = _run(_cfg(), f"http://localhost:{srv.port}/img/a.jpg")  # blocked after DNS
        assert literal.error == fetch.BLOCKED_ADDRESS
        assert by_name.error == fetch.BLOCKED_ADDRESS
        assert srv.requests == []
        allowed, = _run(_cfg(allow_private=True), srv.url("/img/a.jpg"))
        assert allowed.ok and allowed.body.startswith(b"\xff\xd8\xff")
        assert srv.requests == ["/robots.txt", "/img/a.jpg"]


def test_redirect_from_allowed_server_to_refused_one_never_reaches_it():
    with LoopbackServer() as first, LoopbackServer() as second:
        second.add("secret.jpg", b"\xff\xd8\xff" + b"s" * 100)
        cfg = _cfg(allowed_addresses=[f"127.0.0.1:{first.port}"])
        target = second.url("/img/secret.jpg")
        via_ip, = _run(cfg, first.url(f"/to?url={target}"))
        via_name, = _run(cfg, first.url(f"/to?url=http://localhost:{second.port}/img/secret.jpg"))
        assert via_ip.error == fetch.BLOCKED_ADDRESS, via_ip
        assert via_name.error == fetch.BLOCKED_ADDRESS, via_name
        assert [r for r in first.requests if r != "/robots.txt"] == [
            f"/to?url={target}", f"/to?url=http://localhost:{second.port}/img/secret.jpg"]
        assert second.requests == []  # not even its robots.txt
        # The same chain is followed when the second server is allowed too.
        both = _cfg(allowed_addresses=[f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"])
        ok, = _run(both, first.url(f"/to?url={target}"))
        assert ok.ok and ok.final_url == target
        assert second.requests == ["/robots.txt", "/img/secret.jpg"]


def test_allowed_hostname_rule_lets_its_addresses_through():
    with LoopbackServer() as srv:
        srv.add("a.jpg", b"\xff\xd8\xff" + b"x" * 10)
        res, = _run(_cfg(allowed_addresses=[f"localhost:{srv.port}"]), f"http://localhost:{srv.port}/img/a.jpg")
        assert res.ok, res
