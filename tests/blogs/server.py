"""A real HTTP server on loopback for the feed tests: routes are plain functions."""

from __future__ import annotations

import gzip
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[["RequestHandler"], None]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Stats:
    """What a streaming route did: bytes it managed to send, and whether the client hung up."""

    sent: int = 0
    client_hung_up: bool = False
    finished: threading.Event = field(default_factory=threading.Event)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real feed hosts do
    disable_nagle_algorithm = True  # headers and body go in two writes; Nagle would delay the second
    server: FeedServer

    def do_GET(self) -> None:
        self.server.record(self)
        route = self.server.routes.get(self.path)
        if route is None:
            respond(self, 404, b"no such feed")
        else:
            route(self)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # hundreds of simultaneous connects in the corpus test

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), RequestHandler)
        self.host = host
        self.routes: dict[str, Handler] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def handle_error(self, request, client_address) -> None:
        # The fetcher hangs up on purpose (a size limit, a deadline, a refused redirect): not an error here.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

    def url(self, path: str, host: str | None = None) -> str:
        """The URL of ``path`` here; ``host`` spells the address another way (or names it)."""
        return f"http://{host or self.host}:{self.server_port}{path}"

    def record(self, request: RequestHandler) -> None:
        with self._lock:
            self.seen.append(Seen(request.path, {k.lower(): v for k, v in request.headers.items()}))

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def reset(self) -> None:
        with self._lock:
            self.routes.clear()
            self.seen.clear()
            self.in_flight = self.max_in_flight = 0

    def feed(self, path: str, body: bytes, *, headers: dict[str, str] | None = None, delay: float = 0) -> str:
        """Serve ``body`` with 200 at ``path``; returns the full URL."""
        self.routes[path] = lambda request: respond(request, 200, body, headers, delay=delay)
        return self.url(path)

    def route(self, path: str, handler: Handler) -> str:
        self.routes[path] = handler
        return self.url(path)

    def counting(self, handler: Handler) -> Handler:
        """Wrap ``handler`` to track how many requests are in flight at once."""

        def wrapped(request: RequestHandler) -> None:
            with self._lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                handler(request)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return wrapped


@contextmanager
def serving(host: str = "127.0.0.1", port: int = 0) -> Iterator[FeedServer]:
    """A FeedServer answering on ``host``:``port`` (0: any free port) in a thread, for the block."""
    server = FeedServer(host, port)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=f"feed-server-{host}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def respond(
    request: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    delay: float = 0,
) -> None:
    if delay:
        time.sleep(delay)
    headers = dict(headers or {})
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/rss+xml; charset=utf-8"
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    if status != 304:
        request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if status != 304:
        request.wfile.write(body)


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body)


def stream_forever(stats: Stats, chunk: bytes, limit: int, declared_length: int | None = None) -> Handler:
    """Send ``chunk`` over and over (up to ``limit`` bytes), counting what the client accepted."""

    def handler(request: RequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        if declared_length is not None:
            request.send_header("Content-Length", str(declared_length))
        request.send_header("Connection", "close")
        request.end_headers()
        request.close_connection = True
        try:
            while stats.sent < limit:
                request.wfile.write(chunk)
                request.wfile.flush()
                stats.sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            stats.client_hung_up = True
        finally:
            stats.finished.set()

    return handler


def rss(*items: str, channel: str = "Test feed", encoding: str = "utf-8") -> bytes:
    """An RSS 2.0 document with the given <item> bodies."""
    body = "".join(f"<item>{item}</item>" for item in items)
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f'<rss version="2.0"><channel><title>{channel}</title><link>http://example.org/</link>'
        f"{body}</channel></rss>"
    )
    return text.encode(encoding)


def item(n: int, *, title: str | None = None, extra: str = "") -> str:
    title = f"Post {n}" if title is None else title
    return (
        f"<title>{title}</title><link>http://example.org/posts/{n}</link>"
        f"<guid>urn:post:{n}</guid><pubDate>Mon, 06 Sep 2021 16:{n % 60:02d}:00 +0000</pubDate>"
        f"<description>Body of post {n}</description>{extra}"
    )
