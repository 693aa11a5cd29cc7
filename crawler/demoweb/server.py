"""Serves a generated demo web on 127.0.0.1 (aiohttp, in a background thread or in the foreground).

Every path answers as `routes.json` says (status, body, content type, delay, headers; a route
with `fail_first: n` answers 500 to its first n requests); `/search?q=&page=` (HTML) and
`/api/search?q=&page=` (JSON) page through `search_index.json`; anything else is a 404.
When it starts, it writes its origin to `served.json` and fills the absolute `url` and `page_url`
columns of `ground_truth.parquet`, so the ground truth matches the URLs a crawl records.
"""

from __future__ import annotations

import asyncio
import html
import json
import threading
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from aiohttp import web

from crawler.demoweb.generate import GROUND_TRUTH_FILE, ROUTES_FILE, SEARCH_INDEX_FILE
from shards.atomic import write_json_atomic, write_parquet_atomic

SERVED_FILE = "served.json"
# The search URL templates of the demo web (`crawl.search_url` when the demo is crawled).
SEARCH_PATH = "/search?q={query}&page={page}"
API_SEARCH_PATH = "/api/search?q={query}&page={page}"
# Requests still in flight (slow routes) get this long when the server stops.
_SHUTDOWN_S = 2.0


class DemoSite:
    """The routes and search index of a generated site, and the request handler."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.routes = json.loads((self.root / ROUTES_FILE).read_text(encoding="utf-8"))
        search = json.loads((self.root / SEARCH_INDEX_FILE).read_text(encoding="utf-8"))
        self.per_page = int(search["results_per_page"])
        self.index: dict[str, list[dict]] = search["index"]
        self.hits: dict[str, int] = {}
        self.requests = 0
        self._bodies: dict[str, bytes] = {}

    def _body(self, name: str | None) -> bytes:
        if name is None:
            return b""
        if name not in self._bodies:
            self._bodies[name] = (self.root / "files" / name).read_bytes()
        return self._bodies[name]

    def _results(self, request: web.Request) -> tuple[str, int, list[dict]]:
        query = request.query.get("q", "")
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            page = 1
        entries = self.index.get(query, [])
        return query, page, entries[(page - 1) * self.per_page: page * self.per_page]

    def search_html(self, request: web.Request) -> web.Response:
        query, page, results = self._results(request)
        items = [f"<div class=\"result\"><a href=\"{e['page_path']}\"><img src=\"{e['image_path']}\" "
                 f"alt=\"{html.escape(e['caption'])}\"></a><span class=\"from\">{e['page_path']}</span></div>"
                 for e in results]
        nxt = (f"<a class=\"next\" href=\"/search?q={quote(query)}&amp;page={page + 1}\">下一页</a>"
               if len(self.index.get(query, [])) > page * self.per_page else "")
        body = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(query)} - 图片搜索</title>"
                f"</head><body><div class=\"results\">{''.join(items)}</div>{nxt}</body></html>")
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    def search_json(self, request: web.Request) -> web.Response:
        _, _, results = self._results(request)
        data = {"data": {"results": [{"image_url": e["image_path"], "caption": e["caption"],
                                      "page_url": e["page_path"]} for e in results]}}
        return web.json_response(data, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if request.path == "/search":
            return self.search_html(request)
        if request.path == "/api/search":
            return self.search_json(request)
        route = self.routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="<h1>404 页面不存在</h1>", content_type="text/html")
        hits = self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if route["delay"]:
            await asyncio.sleep(route["delay"])
        if hits <= route["fail_first"]:
            return web.Response(status=500, text="<h1>500 稍后再试</h1>", content_type="text/html")
        ctype, _, params = route["content_type"].partition(";")
        charset = params.split("=", 1)[1].strip() if "charset=" in params else None
        return web.Response(status=route["status"], body=self._body(route["file"]), content_type=ctype.strip(),
                            charset=charset, headers=route["headers"])


def fill_ground_truth_urls(root: str | Path, origin: str) -> None:
    """Write the absolute URLs of `origin` into ground_truth.parquet (done on every start)."""
    path = Path(root) / GROUND_TRUTH_FILE
    table = pq.read_table(path)
    url = pc.binary_join_element_wise(pa.scalar(origin), table["image_path"], "")
    page = pc.binary_join_element_wise(pa.scalar(origin), table["page_path"], "")
    table = table.set_column(table.schema.get_field_index("url"), "url", url)
    table = table.set_column(table.schema.get_field_index("page_url"), "page_url", page)
    write_parquet_atomic(path, table)


class DemoWebServer:
    """`with DemoWebServer(root) as server: server.origin` - the site served by a background thread."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0):
        self.root = Path(root)
        self.host = host
        self.port = port
        self.site = DemoSite(root)
        self.origin = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.site.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_S)
        await self._runner.setup()
        tcp = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await tcp.start()
        self.port = self._runner.addresses[0][1]
        self.origin = f"http://{self.host}:{self.port}"

    def start(self) -> str:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._start())
            except BaseException as exc:  # reported to the caller below
                error.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="demo-web", daemon=True)
        self._thread.start()
        ready.wait()
        if error:
            raise error[0]
        write_json_atomic(self.root / SERVED_FILE, {"origin": self.origin})
        fill_ground_truth_urls(self.root, self.origin)
        return self.origin

    def stop(self) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        fut.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def url(self, path: str) -> str:
        return self.origin + path

    @property
    def search_url(self) -> str:
        return self.origin + SEARCH_PATH

    def __enter__(self) -> "DemoWebServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(root: str | Path, host: str, port: int) -> None:
    """Foreground serving for `wukong demo-web` (Ctrl-C stops)."""
    import time

    with DemoWebServer(root, host, port) as server:
        print(f"demo web at {server.origin}/  search: {server.search_url}  (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
