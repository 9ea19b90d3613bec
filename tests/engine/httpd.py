"""Small real HTTP servers for the HTTP client tests: an origin with scripted routes that
counts accepted connections, a forward proxy (absolute-form and CONNECT), and a server that
closes a kept-alive connection when the next request arrives (a stale connection)."""

from __future__ import annotations

import hashlib
import json
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int


@dataclass
class Origin:
    url: str
    port: int
    seen: list[Seen] = field(default_factory=list)
    accepted: int = 0


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0], 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class _OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _OriginServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}) and "Transfer-Encoding" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        body = _read_body(self)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        origin = self.server.origin
        origin.seen.append(
            Seen(self.command, self.path, dict(self.headers.items()), body, self.client_address[1])
        )
        route = parts.path.split("/")[1] if "/" in parts.path else ""
        if route == "bytes":
            n = int(parts.path.split("/")[2])
            self._reply(200, b"x" * n, {"Content-Type": "application/octet-stream"})
        elif route == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"alpha-", b"beta-", b"gamma"):
                self.wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif route == "echo":
            info = {
                "method": self.command,
                "length": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
            self._reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"})
        elif route == "redirect":
            self._reply(int(query.get("code", "302")), b"moved", {"Location": query["to"]})
        elif route == "loop":
            self._reply(302, b"", {"Location": "/loop"})
        elif route == "slow":
            time.sleep(float(query.get("s", "2")))
            self._reply(200, b"late")
        elif route == "v2" and parts.path == "/v2/":  # a registry's ping, for cut blobs
            self._reply(200, b"{}", {"Content-Type": "application/json"})
        elif route == "short" or (route == "v2" and "/blobs/" in parts.path):
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        elif route == "close":
            self._reply(200, b"bye", {"Connection": "close"})
            self.close_connection = True
        elif route == "status":
            self._reply(int(query.get("code", "200")), b"status body")
        else:
            self._reply(404, b"no route")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class _OriginServer(ThreadingHTTPServer):
    daemon_threads = True
    origin: Origin

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that gave up (timeouts, cut bodies) are part of the tests

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        self.origin.accepted += 1
        return conn, addr


@contextmanager
def origin_server(tls: ssl.SSLContext | None = None) -> Iterator[Origin]:
    server = _OriginServer(("127.0.0.1", 0), _OriginHandler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    server.origin = Origin(f"{'https' if tls else 'http'}://127.0.0.1:{port}", port)
    with _serving(server):
        yield server.origin


@contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[None]:
    """Serve in a daemon thread for the block; shut down and close after it."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- forward proxy


@dataclass
class Proxy:
    url: str
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # method, target, auth


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _authorized(self) -> bool:
        auth = self.headers.get("Proxy-Authorization", "")
        self.server.proxy.seen.append((self.command, self.path, auth))
        want = self.server.want_auth
        if want and auth != want:
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return True

    def do_CONNECT(self) -> None:
        if not self._authorized():
            return
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        t = threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True)
        t.start()
        _pipe(self.connection, upstream)
        t.join(5)
        self.close_connection = True

    def _forward(self) -> None:
        import http.client

        if not self._authorized():
            return
        body = _read_body(self)
        parts = urlsplit(self.path)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("proxy-authorization",)
        }
        conn.request(
            self.command,
            parts.path + (f"?{parts.query}" if parts.query else ""),
            body=body or None,
            headers=headers,
        )
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PUT = do_HEAD = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: Proxy
    want_auth: str


@contextmanager
def proxy_server(want_auth: str = "") -> Iterator[Proxy]:
    server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
    server.proxy = Proxy(f"http://127.0.0.1:{server.server_address[1]}")
    server.want_auth = want_auth
    with _serving(server):
        yield server.proxy


# ---------------------------------------------------------------- stale keep-alive


@dataclass
class StaleServer:
    url: str
    accepted: int = 0
    answered: int = 0


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            left = int(line.split(b":", 1)[1]) - len(rest)
            while left > 0:
                got = conn.recv(min(left, 65536))
                if not got:
                    break
                left -= len(got)
    return head


@contextmanager
def stale_server() -> Iterator[StaleServer]:
    """Answers the first request of every connection keep-alive, then closes the
    connection without a byte when the next request on it arrives."""
    listener = socket.create_server(("127.0.0.1", 0))
    state = StaleServer(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            if _read_head(conn):
                state.answered += 1  # before the client can see the answer
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                _read_head(conn)  # the next request: dropped unanswered

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            state.accepted += 1
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(2)
        listener.close()
