"""A real HTTP server on 127.0.0.1 serving good images and every hostile behaviour the fetcher meets.

Paths (query strings are ignored, so one image can be listed under many URLs):
  /img/NAME                 a registered body (`add`), with its content type and extra headers
  /status/CODE              an empty response with that status
  /slow/SECONDS/NAME        waits before answering with /img/NAME
  /trickle                  headers, then one byte every 0.2 s, forever (only a total timeout ends it)
  /endless                  a chunked body that never ends, as fast as it can (only a byte limit ends it)
  /huge                     declares a 100 MB Content-Length
  /gzip-bomb                a small gzip body (with its Content-Length) that inflates to 8 MB
  /cut/NAME                 declares NAME's full length, sends half, closes
  /reset                    resets the connection (RST) without answering
  /hang                     accepts and never answers
  /flaky/TOKEN/K/NAME       500 for the first K requests with this TOKEN, then /img/NAME
  /retry-after/TOKEN/NAME   429 with Retry-After: 1 the first time, then /img/NAME
  /redirect/N/NAME          N redirects, then /img/NAME
  /loop/A                   /loop/A -> /loop/B -> /loop/A ...
  /to?url=URL               302 to URL (any URL: for the guard test)
  /robots/VALUE/NAME        /img/NAME with `X-Robots-Tag: VALUE`
  /robots.txt               `robots_txt` if set (200), else `robots_status` (default 404)
Every request's path is recorded in `requests`, so a test can assert that a server saw nothing.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRICKLE_INTERVAL_S = 0.2
HUGE_LENGTH = 100 * 1024 * 1024
ENDLESS_CHUNK = b"\xff" * 65536
GZIP_BOMB_SIZE = 8 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        parsed = urllib.parse.urlsplit(self.path)
        with owner.lock:
            owner.requests.append(self.path)
            owner.headers_seen.append(dict(self.headers))
            owner.active += 1
            owner.max_active = max(owner.max_active, owner.active)
        parts = [urllib.parse.unquote(p) for p in parsed.path.split("/")[1:]]
        try:
            self._route(owner, parts, urllib.parse.parse_qs(parsed.query))
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with owner.lock:
                owner.active -= 1

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/octet-stream",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _image(self, owner: "LoopbackServer", name: str, extra: dict[str, str] | None = None) -> None:
        entry = owner.bodies.get(name)
        if entry is None:
            self._send(404, b"not found", "text/plain")
            return
        body, ctype, headers = entry
        self._send(200, body, ctype, {**headers, **(extra or {})})

    def _redirect(self, location: str, status: int = 302) -> None:
        self._send(status, b"", "text/plain", {"Location": location})

    def _route(self, owner: "LoopbackServer", parts: list[str], query: dict) -> None:
        kind = parts[0] if parts else ""
        if kind == "img":
            self._image(owner, "/".join(parts[1:]))
        elif kind == "status":
            self._send(int(parts[1]), b"", "text/plain")
        elif kind == "slow":
            time.sleep(float(parts[1]))
            self._image(owner, parts[2])
        elif kind == "trickle":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while not owner.stopping.is_set():
                self.wfile.write(b"1\r\n\xff\r\n")
                self.wfile.flush()
                time.sleep(TRICKLE_INTERVAL_S)
        elif kind == "endless":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while not owner.stopping.is_set():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ENDLESS_CHUNK), ENDLESS_CHUNK))
        elif kind == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(HUGE_LENGTH))
            self.end_headers()
            self.wfile.write(b"\xff\xd8\xff" + b"\x00" * 1000)
            self.close_connection = True
        elif kind == "gzip-bomb":
            self._send(200, owner.gzip_bomb, "image/jpeg", {"Content-Encoding": "gzip"})
        elif kind == "cut":
            body = owner.bodies[parts[1]][0]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif kind == "hang":
            owner.stopping.wait()
            self.close_connection = True
        elif kind == "flaky":
            token, failures, name = parts[1], int(parts[2]), parts[3]
            with owner.lock:
                owner.counters[token] = owner.counters.get(token, 0) + 1
                n = owner.counters[token]
            if n <= failures:
                self._send(500, b"try later", "text/plain")
            else:
                self._image(owner, name)
        elif kind == "retry-after":
            token, name = parts[1], parts[2]
            with owner.lock:
                owner.counters[token] = owner.counters.get(token, 0) + 1
                n = owner.counters[token]
            if n == 1:
                self._send(429, b"slow down", "text/plain", {"Retry-After": "1"})
            else:
                self._image(owner, name)
        elif kind == "redirect":
            n, name = int(parts[1]), parts[2]
            self._redirect(f"/redirect/{n - 1}/{name}" if n > 1 else f"/img/{name}")
        elif kind == "loop":
            self._redirect("/loop/B" if parts[1] == "A" else "/loop/A", 301)
        elif kind == "to":
            self._redirect(query["url"][0])
        elif kind == "robots.txt":
            if owner.robots_txt is not None:
                self._send(200, owner.robots_txt, "text/plain")
            else:
                self._send(owner.robots_status, b"", "text/plain")
        elif kind == "robots":
            self._image(owner, parts[2], {"X-Robots-Tag": parts[1]})
        else:
            self._send(404, b"no such route", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    owner: "LoopbackServer"

    def handle_error(self, request, client_address) -> None:
        # Clients hanging up on hostile routes are expected; nothing to report.
        pass


class LoopbackServer:
    """Start with `with LoopbackServer() as srv:`; `srv.url('/img/a.jpg')` gives its URL."""

    def __init__(self) -> None:
        self.bodies: dict[str, tuple[bytes, str, dict[str, str]]] = {}
        self.requests: list[str] = []
        self.headers_seen: list[dict[str, str]] = []
        self.counters: dict[str, int] = {}
        self.robots_txt: bytes | None = None
        self.robots_status = 404
        self.gzip_bomb = gzip.compress(b"\xff\xd8\xff" + bytes(GZIP_BOMB_SIZE))
        self.active = 0       # requests being answered now, and the most at once
        self.max_active = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def add(self, name: str, body: bytes, content_type: str = "image/jpeg",
            headers: dict[str, str] | None = None) -> str:
        self.bodies[name] = (body, content_type, dict(headers or {}))
        return self.url(f"/img/{name}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
