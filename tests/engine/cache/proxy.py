"""A counting reverse proxy in front of a test registry: records every request line so tests
can assert which blobs a build downloaded."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


@dataclass
class CountingProxy:
    host: str  # "127.0.0.1:PORT"
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def blob_gets(self) -> list[str]:
        with self.lock:
            return [p for m, p in self.requests if m == "GET" and "/blobs/sha256:" in p]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


@contextmanager
def counting_proxy(upstream: str) -> Iterator[CountingProxy]:
    """Plain-HTTP proxy to `upstream` ("127.0.0.1:PORT"), rewriting Location headers."""
    state = CountingProxy(host="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _forward(self) -> None:
            with state.lock:
                state.requests.append((self.command, self.path))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers: dict[str, str] = {}
            for k, v in self.headers.items():  # repeated headers (Accept) are joined
                if k.lower() not in _HOP:
                    headers[k] = f"{headers[k]}, {v}" if k in headers else v
            conn = http.client.HTTPConnection(upstream, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in _HOP or k.lower() == "content-length":
                        continue
                    if k.lower() == "location":
                        v = v.replace(f"http://{upstream}", f"http://{state.host}")
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                conn.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
