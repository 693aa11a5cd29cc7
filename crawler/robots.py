"""robots.txt rules per origin, fetched once per origin and fetcher (RFC 9309 semantics).

A 2xx answer is parsed and matched for our agent token; a 4xx (or redirects beyond the limit)
means no rules, everything allowed;
a 5xx means the file is unreachable, which RFC 9309 treats as a complete disallow (configurable).
No answer at all (refused, reset, timeout) is not cached: it is the requesting URL's own error, retried
as such. Concurrent requests to one origin wait for the same single fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.robotparser import RobotFileParser

from yarl import URL

ALLOWED = "allowed"
DISALLOWED = "disallowed"
UNREACHABLE = "unreachable"

# (status, body) of GET /robots.txt; raises on a network failure.
FetchText = Callable[[URL], Awaitable[tuple[int, bytes]]]


class RobotsRules:
    def __init__(self, parser: RobotFileParser | None, reachable: bool = True, failure: str | None = None):
        self.parser = parser
        self.reachable = reachable
        self.failure = failure  # why it was unreachable: the fetcher's error code

    def verdict(self, agent: str, url: URL) -> str:
        if not self.reachable:
            return UNREACHABLE
        if self.parser is None or self.parser.can_fetch(agent, str(url)):
            return ALLOWED
        return DISALLOWED


def parse(body: bytes) -> RobotFileParser:
    parser = RobotFileParser()
    parser.parse(body.decode("utf-8", errors="replace").splitlines())
    return parser


class RobotsCache:
    def __init__(self, agent: str, fetch_text: FetchText):
        self.agent = agent
        self._fetch_text = fetch_text
        self._rules: dict[str, asyncio.Task[RobotsRules]] = {}

    @staticmethod
    def origin(url: URL) -> str:
        return f"{url.scheme}://{url.host}:{url.port}"

    async def verdict(self, url: URL) -> tuple[str, str | None]:
        """(ALLOWED | DISALLOWED | UNREACHABLE, the failure code when unreachable)."""
        key = self.origin(url)
        task = self._rules.get(key)
        if task is None:
            # A task of its own, so a waiter cancelled by its deadline never leaves the others hanging.
            task = asyncio.ensure_future(self._load(url))
            self._rules[key] = task
        try:
            rules = await asyncio.shield(task)
        except Exception:
            # No answer at all (refused, reset, timed out): the caller reports that error for its URL,
            # and the next request to this origin asks again rather than inheriting the failure.
            if self._rules.get(key) is task:
                del self._rules[key]
            raise
        return rules.verdict(self.agent, url), rules.failure

    async def _load(self, url: URL) -> RobotsRules:
        robots_url = URL.build(scheme=url.scheme, host=url.host, port=url.explicit_port, path="/robots.txt")
        status, body = await self._fetch_text(robots_url)
        if 200 <= status < 300:
            return RobotsRules(parse(body))
        if 300 <= status < 500:  # unavailable (incl. too many redirects): no rules apply
            return RobotsRules(None)
        return RobotsRules(None, reachable=False, failure=f"http_{status}")
