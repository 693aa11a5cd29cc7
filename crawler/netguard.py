"""The address guard: no request to a private, loopback or link-local address unless allowed.

Checked at two points so neither DNS nor redirects can get around it: every URL's host when it is
an IP literal (aiohttp skips the resolver for those), and every resolved address, inside the
resolver the connector uses, so the connection is made only to the addresses that passed. Redirects
are followed by the fetcher hop by hop, so each hop goes through both checks again.

Allowed exceptions: everything (`allow_private`), or rules `HOST`, `IP`, `CIDR`, each optionally
with `:PORT` (`[IPv6]:PORT` for IPv6 with a port).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Verdicts on URL hosts kept per guard: a URL list names few hosts many times over.
_VERDICT_CACHE_SIZE = 65_536


class BlockedAddressError(OSError):
    """A target address the guard refuses (an OSError so aiohttp treats it as a failed lookup)."""


@dataclass(frozen=True)
class AllowRule:
    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def matches(self, host: str, ip: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip in self.network
        return self.host == normalize_host(host)


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def parse_rule(text: str) -> AllowRule:
    """`host`, `host:port`, `ip`, `ip:port`, `cidr`, `cidr:port`, `[v6]:port`, bare IPv6 or v6 CIDR."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty address rule")
    port_text: str | None = None
    if raw.startswith("["):
        addr, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address rule {text!r}")
        port_text = rest[1:] or None
    elif raw.count(":") == 1:
        addr, port_text = raw.split(":")
    else:
        addr = raw
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port in address rule {text!r}")
        port = int(port_text)
    try:
        return AllowRule(network=ipaddress.ip_network(addr, strict=False), port=port)
    except ValueError:
        pass
    host = normalize_host(addr)
    if not host or any(c in host for c in "/ @?#"):
        raise ValueError(f"bad host in address rule {text!r}")
    return AllowRule(host=host, port=port)


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local, shared, reserved or multicast."""
    ip = _unmapped(ip)
    return ip.is_global and not ip.is_multicast


class AddressGuard:
    def __init__(self, allow_private: bool = False, allowed: list[str] | tuple[str, ...] = ()):
        self.allow_private = allow_private
        self.rules = tuple(parse_rule(r) for r in allowed)
        self._literal_verdicts: dict[tuple[str, int], str | None] = {}

    @classmethod
    def from_config(cls, cfg: Any) -> "AddressGuard":
        return cls(cfg.allow_private, cfg.allowed_addresses)

    def allows(self, host: str, address: str | IPAddress, port: int) -> bool:
        if self.allow_private:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
        except ValueError:
            return False
        if is_public(ip):
            return True
        candidates = {ip, _unmapped(ip)}
        return any(rule.matches(host, cand, port) for rule in self.rules for cand in candidates)

    def check_literal(self, host: str, port: int) -> None:
        """Raise for a URL whose host is a refused IP literal; hostnames are checked once resolved."""
        key = (host, port)
        try:
            refusal = self._literal_verdicts[key]
        except KeyError:
            refusal = self._literal_refusal(host, port)
            if len(self._literal_verdicts) >= _VERDICT_CACHE_SIZE:
                self._literal_verdicts.clear()
            self._literal_verdicts[key] = refusal
        if refusal:
            raise BlockedAddressError(refusal)

    def _literal_refusal(self, host: str, port: int) -> str | None:
        bare = normalize_host(host)
        try:
            ip = ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            return None
        if not self.allows(bare, ip, port):
            return f"{bare}:{port} is a private, loopback or link-local address"
        return None


class GuardedResolver(AbstractResolver):
    """Resolves with `inner` and keeps only the addresses the guard allows."""

    def __init__(self, guard: AddressGuard, inner: AbstractResolver | None = None):
        self.guard = guard
        self._inner = inner or ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        infos = await self._inner.resolve(host, port, family)
        allowed = [info for info in infos if self.guard.allows(host, info["host"], port)]
        if not allowed:
            found = ", ".join(sorted({str(i["host"]) for i in infos})) or "nothing"
            raise BlockedAddressError(f"{host}:{port} resolves to refused address(es) {found}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
