"""The stand-in's HTTP server: a request handler that dispatches ``routes.ROUTES``, and ``main``."""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .routes import ROUTES
from .store import ApiError, Store


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeMeilisearchServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # --- plumbing ---------------------------------------------------------------

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "malformed_payload", f"The json payload provided is malformed. {exc}.") from None

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = unquote(parts.path).rstrip("/") or "/", parse_qs(parts.query)
        try:
            self._authorize()
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
            for verb, pattern, handler in ROUTES:
                match = pattern.fullmatch(path)
                if verb == method and match:
                    status, payload = handler(self.server.store, body, query, *match.groups())
                    return self._send(status, payload)
            raise ApiError(404, "not_found", f"{method} {path} is not served by this stand-in.")
        except ApiError as exc:
            self._send(exc.status, exc.body())

    def _authorize(self) -> None:
        key = self.server.api_key
        if key is None:
            return
        given = self.headers.get("Authorization", "")
        if not given:
            raise ApiError(401, "missing_authorization_header", "The Authorization header is missing.", "auth")
        if given != f"Bearer {key}":
            raise ApiError(403, "invalid_api_key", "The provided API key is invalid.", "auth")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class FakeMeilisearchServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None) -> None:
        super().__init__((host, port), Handler)
        self.api_key = api_key
        self.store = Store()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeMeilisearchServer:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-meilisearch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.store.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Meilisearch stand-in (NOT Meilisearch).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7700)
    parser.add_argument("--api-key")
    args = parser.parse_args()
    server = FakeMeilisearchServer(args.host, args.port, args.api_key)
    print(f"Meilisearch stand-in listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.store.stop()
