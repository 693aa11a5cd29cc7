"""The HTTP side of ingest: one aiohttp session per process, many requests in flight.

`Fetcher.fetch(url)` never raises for a URL's own failure: it returns a `FetchResult` whose `error`
is one code from `ERRORS`. Per request: a guarded connection (crawler.netguard), connect / read
timeouts from aiohttp plus a total deadline over the whole attempt (redirects and body included,
so a body that trickles forever is cut off), redirects followed hop by hop (each hop re-checked by
the guard, loops detected), a byte limit enforced while the body streams, robots.txt (crawler.robots)
and the X-Robots-Tag opt-outs. Transient failures (timeouts, resets, 429, 5xx) are retried a bounded number of times
with exponential backoff and jitter; 429/503 `Retry-After` is honoured up to the backoff cap.
"""

from __future__ import annotations

import asyncio
import errno
import random
from dataclasses import dataclass

import aiohttp
from yarl import URL

from crawler import robots
from crawler.config import DownloadConfig
from crawler.netguard import AddressGuard, BlockedAddressError, GuardedResolver
from crawler.robots import RobotsCache

# Error codes. HTTP statuses other than 200 are reported as `http_<status>`.
INVALID_URL = "invalid_url"
BLOCKED_ADDRESS = "blocked_address"
DNS_ERROR = "dns_error"
CONNECT_ERROR = "connect_error"
CONNECT_TIMEOUT = "connect_timeout"
READ_TIMEOUT = "read_timeout"
TOTAL_TIMEOUT = "total_timeout"
CONNECTION_RESET = "connection_reset"
PAYLOAD_ERROR = "payload_error"
PROTOCOL_ERROR = "protocol_error"
TLS_ERROR = "tls_error"
TOO_MANY_REDIRECTS = "too_many_redirects"
REDIRECT_LOOP = "redirect_loop"
BAD_REDIRECT = "bad_redirect"
TOO_LARGE = "too_large"
ROBOTS_OPT_OUT = "robots_opt_out"          # X-Robots-Tag
ROBOTS_TXT_DISALLOWED = "robots_txt_disallowed"
ROBOTS_TXT_UNREACHABLE = "robots_txt_unreachable"
FETCH_ERROR = "fetch_error"
ERRORS = (INVALID_URL, BLOCKED_ADDRESS, DNS_ERROR, CONNECT_ERROR, CONNECT_TIMEOUT, READ_TIMEOUT,
          TOTAL_TIMEOUT, CONNECTION_RESET, PAYLOAD_ERROR, PROTOCOL_ERROR, TLS_ERROR, TOO_MANY_REDIRECTS,
          REDIRECT_LOOP, BAD_REDIRECT, TOO_LARGE, ROBOTS_OPT_OUT, ROBOTS_TXT_DISALLOWED, ROBOTS_TXT_UNREACHABLE,
          FETCH_ERROR)

# Retried: the server or the path may do better a moment later. A total timeout is not: the same
# body would stall the slot again.
TRANSIENT = frozenset({CONNECT_ERROR, CONNECT_TIMEOUT, READ_TIMEOUT, CONNECTION_RESET, PAYLOAD_ERROR})
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SCHEMES = frozenset({"http", "https"})
_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


@dataclass
class FetchResult:
    url: str
    body: bytes | None = None
    error: str | None = None
    message: str | None = None
    status: int | None = None          # last HTTP status seen
    final_url: str | None = None
    attempts: int = 0
    content_type: str | None = None
    retry_after: float | None = None   # seconds, from a 429/503 Retry-After header

    @property
    def ok(self) -> bool:
        return self.error is None


class _Failure(Exception):
    def __init__(self, code: str, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.retry_after = code, message, status, retry_after


def http_error(status: int) -> str:
    return f"http_{status}"


def is_transient(code: str | None) -> bool:
    if code in TRANSIENT:
        return True
    return bool(code and code.startswith("http_") and code[5:].isdigit() and int(code[5:]) in TRANSIENT_HTTP)


def robots_opt_out(values: list[str], agent_token: str, disallowed: frozenset[str]) -> str | None:
    """The first disallowed X-Robots-Tag directive that applies to us, or None.

    A value is `directive, directive` for every crawler, or `agent: directive, ...` for one agent.
    """
    agent_token = agent_token.lower()
    for value in values:
        head, sep, rest = value.partition(":")
        directives = value
        if sep and head.strip() and " " not in head.strip() and head.strip().lower() not in disallowed:
            if head.strip().lower() not in (agent_token, "*"):
                continue
            directives = rest
        for directive in directives.split(","):
            d = directive.strip().lower()
            if d in disallowed:
                return d
    return None


def user_agent(cfg: DownloadConfig) -> str:
    return cfg.user_agent.format(contact=cfg.contact_url)


class Fetcher:
    """Use as `async with Fetcher(cfg) as f: result = await f.fetch(url)`."""

    def __init__(self, cfg: DownloadConfig, guard: AddressGuard | None = None):
        self.cfg = cfg
        self.guard = guard or AddressGuard.from_config(cfg)
        self.user_agent = user_agent(cfg)
        self.agent_token = self.user_agent.split("/", 1)[0].split()[0]
        self.disallowed = frozenset(t.lower() for t in cfg.disallowed_robots_tags)
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random()
        self.robots = RobotsCache(self.agent_token, self._fetch_robots) if cfg.respect_robots_txt else None

    async def __aenter__(self) -> "Fetcher":
        connector = aiohttp.TCPConnector(
            limit=self.cfg.concurrency, limit_per_host=self.cfg.per_host_connections,
            resolver=GuardedResolver(self.guard), ttl_dns_cache=self.cfg.dns_cache_ttl,
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.cfg.connect_timeout,
                                        sock_read=self.cfg.read_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"User-Agent": self.user_agent},
            trust_env=False, max_line_size=self.cfg.max_header_bytes, max_field_size=self.cfg.max_header_bytes,
            # Image fetches need no cookies, and a jar would grow with every host of a web-scale list.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str) -> FetchResult:
        attempts = 0
        while True:
            attempts += 1
            result = await self._attempt(url)
            result.attempts = attempts
            if result.ok or not is_transient(result.error) or attempts > self.cfg.retries:
                return result
            await asyncio.sleep(self._backoff(attempts, result))

    def _backoff(self, attempt: int, result: FetchResult) -> float:
        delay = min(self.cfg.backoff_max, self.cfg.backoff_base * 2 ** (attempt - 1))
        delay += self._rng.uniform(0, self.cfg.backoff_base)  # jitter spreads retries to one host
        if result.retry_after is not None:
            delay = max(delay, result.retry_after)
        return min(delay, self.cfg.backoff_max)

    async def _attempt(self, url: str) -> FetchResult:
        result = FetchResult(url=url)
        try:
            async with asyncio.timeout(self.cfg.total_timeout):
                body, status, final, ctype = await self._follow(url)
            result.body, result.status, result.final_url, result.content_type = body, status, final, ctype
        except _Failure as f:
            result.error, result.message, result.status = f.code, f.message, f.status
            result.retry_after = f.retry_after
        except aiohttp.ClientError as exc:  # before TimeoutError: aiohttp's timeouts subclass it
            result.error, result.message = classify(exc)
        except TimeoutError:
            result.error, result.message = TOTAL_TIMEOUT, f"no complete answer within {self.cfg.total_timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - a URL's failure must never end the partition
            result.error, result.message = classify(exc)
        return result

    async def _fetch_robots(self, url: URL) -> tuple[int, bytes]:
        """GET a robots.txt through the same guard, redirect and size rules: (status, body), or a
        `_Failure` carrying the error code when no answer came."""
        try:
            async with asyncio.timeout(self.cfg.total_timeout):
                body, status, _, _ = await self._follow(str(url), check_robots=False,
                                                        max_bytes=self.cfg.robots_max_bytes)
            return status, body
        except _Failure as f:
            if f.status is None:
                raise
            return f.status, b""
        except aiohttp.ClientError as exc:
            raise _Failure(*classify(exc)) from exc
        except TimeoutError as exc:
            raise _Failure(TOTAL_TIMEOUT, "robots.txt: no answer in time") from exc

    async def _check_robots(self, url: URL) -> None:
        if self.robots is None:
            return
        verdict, failure = await self.robots.verdict(url)  # raises the fetch's _Failure if no answer
        if verdict == robots.DISALLOWED:
            raise _Failure(ROBOTS_TXT_DISALLOWED, f"robots.txt disallows {url.path[:200]} for {self.agent_token}")
        if verdict == robots.UNREACHABLE and not self.cfg.robots_unreachable_allows:
            raise _Failure(ROBOTS_TXT_UNREACHABLE, f"robots.txt of {url.host} unreachable ({failure or 'error'})")

    async def _follow(self, url: str, check_robots: bool = True, max_bytes: int | None = None
                      ) -> tuple[bytes, int, str, str | None]:
        assert self._session is not None, "use Fetcher as an async context manager"
        try:
            current = URL(url.strip(), encoded=False)
        except (ValueError, TypeError) as exc:
            raise _Failure(INVALID_URL, f"unparsable URL: {exc}") from exc
        seen: set[str] = set()
        for _ in range(self.cfg.max_redirects + 1):
            self._check_target(current)
            if check_robots:
                await self._check_robots(current)
            seen.add(str(current))
            async with self._session.get(current, allow_redirects=False) as resp:
                if resp.status in _REDIRECTS:
                    current = self._next_hop(current, resp, seen)
                    continue
                if resp.status != 200:
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
                    raise _Failure(http_error(resp.status), f"HTTP {resp.status} {resp.reason or ''}".strip(),
                                   resp.status, retry_after)
                tag = check_robots and robots_opt_out(resp.headers.getall("X-Robots-Tag", []), self.agent_token,
                                                      self.disallowed)
                if tag:
                    raise _Failure(ROBOTS_OPT_OUT, f"X-Robots-Tag: {tag}", resp.status)
                body = await self._read_body(resp, max_bytes or self.cfg.max_bytes)
                return body, resp.status, str(current), resp.headers.get("Content-Type")
        raise _Failure(TOO_MANY_REDIRECTS, f"more than {self.cfg.max_redirects} redirects")

    def _check_target(self, url: URL) -> None:
        if url.scheme not in _SCHEMES or not url.host:
            raise _Failure(INVALID_URL, f"not an http(s) URL: {str(url)[:200]}")
        try:
            self.guard.check_literal(url.host, url.port or 0)
        except BlockedAddressError as exc:
            raise _Failure(BLOCKED_ADDRESS, str(exc)) from exc

    @staticmethod
    def _next_hop(current: URL, resp: aiohttp.ClientResponse, seen: set[str]) -> URL:
        location = resp.headers.get("Location")
        if not location:
            raise _Failure(BAD_REDIRECT, f"HTTP {resp.status} without Location", resp.status)
        try:
            nxt = current.join(URL(location))
        except (ValueError, TypeError) as exc:
            raise _Failure(BAD_REDIRECT, f"unparsable Location {location[:200]!r}", resp.status) from exc
        if str(nxt) in seen:
            raise _Failure(REDIRECT_LOOP, f"redirect loop back to {str(nxt)[:200]}", resp.status)
        return nxt

    async def _read_body(self, resp: aiohttp.ClientResponse, limit: int) -> bytes:
        if resp.content_length is not None and resp.content_length > limit:
            raise _Failure(TOO_LARGE, f"Content-Length {resp.content_length} > {limit} bytes", resp.status)
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        if resp.content_length is not None and encoding in ("", "identity"):
            # Bounded by the declared length, which is within the limit: one read, no chunk list.
            # (A compressed body's length says nothing of its decoded size: that one streams below.)
            return await resp.read()
        chunks, size = [], 0
        while chunk := await resp.content.readany():
            size += len(chunk)
            if size > limit:
                raise _Failure(TOO_LARGE, f"body exceeds {limit} bytes", resp.status)
            chunks.append(chunk)
        return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def classify(exc: BaseException) -> tuple[str, str]:
    """Map an exception from aiohttp or asyncio to (error code, message)."""
    msg = f"{type(exc).__name__}: {exc}"[:500]
    cause = getattr(exc, "os_error", None) or exc.__cause__
    if isinstance(exc, BlockedAddressError) or isinstance(cause, BlockedAddressError):
        return BLOCKED_ADDRESS, str(cause or exc)
    if isinstance(exc, aiohttp.InvalidURL):
        return INVALID_URL, msg
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return CONNECT_TIMEOUT, msg
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return READ_TIMEOUT, msg
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return DNS_ERROR, msg
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        return TLS_ERROR, msg
    if isinstance(exc, aiohttp.ClientConnectorError):
        return CONNECT_ERROR, msg
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return CONNECTION_RESET, msg
    if isinstance(exc, aiohttp.ClientPayloadError):
        return PAYLOAD_ERROR, msg
    if isinstance(exc, aiohttp.ClientResponseError):
        return PROTOCOL_ERROR, msg
    if isinstance(exc, ConnectionError) or (isinstance(exc, OSError) and exc.errno in _RESET_ERRNOS):
        return CONNECTION_RESET, msg
    if isinstance(exc, aiohttp.ClientOSError):
        return CONNECTION_RESET if exc.errno in _RESET_ERRNOS else CONNECT_ERROR, msg
    if isinstance(exc, aiohttp.ClientError | ValueError | UnicodeError):
        return PROTOCOL_ERROR if isinstance(exc, aiohttp.ClientError) else INVALID_URL, msg
    return FETCH_ERROR, msg
