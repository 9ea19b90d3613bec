"""The engine's HTTP/1.1 client, on the standard library's http.client.

Why not requests: importing requests + urllib3 (+ charset_normalizer, idna) costs ~0.1 s of a
~0.5 s cached rebuild, and each new HTTPS connection built its SSL context again (~35 ms to
load a CA bundle). Here:

- `HttpClient` keeps a thread-safe keep-alive pool per (scheme, host, port, trust, proxy);
  idle connections are reused last-in first-out, and a connection goes back only when its
  response was read to the end. A reused connection the server had closed (no response byte
  came back) is retried once on a fresh one when the body can be sent again.
- `ssl_context` builds one context per (verify, client certificate) per process, lazily.
- bodies: bytes, file objects (sent in blocks, never read whole), iterables (chunked), or a
  callable that opens one of those (replayable: retries and 307/308 redirects reopen it).
  No Accept-Encoding is sent: registries' blobs are verified on their raw bytes.
- redirects (at most 10; 303, and 301/302 after a POST, become a GET without body) drop the
  Authorization header when the origin changes, as requests does: registries redirect blob
  GETs to storage hosts.
- proxies: plain HTTP through the proxy with absolute-form targets, HTTPS through CONNECT;
  user:password in the proxy URL becomes Proxy-Authorization.
- failures below HTTP raise `HttpError` subclasses with a short `reason` naming no secret.

The caller decides trust and proxies (see `trust_from_env`, `proxy_url`): nothing here reads
the process environment.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import json
import logging
import os
import select
import socket
import ssl
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

log = logging.getLogger(__name__)

TIMEOUT = (30.0, 300.0)  # connect (with the TLS handshake), read
POOL_SIZE = 16  # idle connections kept per pool: upload + cache threads + the main thread
MAX_REDIRECTS = 10
BLOCK = 256 * 1024  # request bodies are read and sent in blocks of this size
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "brickyard"

Verify = bool | str  # False: no verification; True: system CAs; str: this CA file only
ClientCert = tuple[str, str] | str | None  # (certificate, key) or one PEM holding both
Timeout = float | tuple[float, float]
ProxyFor = Callable[[str], str | None]  # target URL -> proxy URL (or None: direct)


# ---------------------------------------------------------------- errors


class HttpError(Exception):
    """The exchange failed below HTTP: there is no status to report. `reason` is short,
    one line, and names no secret. This base class itself means a request that cannot be
    sent as asked (unsupported scheme, redirect loop): trying again will not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectError(HttpError):
    """Could not connect, or the connection broke (refused, unknown host, reset, body cut)."""


class TLSError(ConnectError):
    """The TLS handshake failed (certificate not trusted, server not speaking TLS)."""


class HttpTimeout(ConnectError):
    """No connection or no data within the timeout."""


def _tls_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = (exc.verify_message or "").strip()
        return "TLS certificate verify failed" + (f" ({detail})" if detail else "")
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "TLS certificate verify failed"
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "TLS handshake failed (server speaks plain HTTP?)"
    code = getattr(exc, "reason", None)
    return f"TLS error ({code})" if isinstance(code, str) and code else "TLS error"


def _wrap(exc: BaseException) -> HttpError:
    """The one mapping of socket/TLS/http.client exceptions to our family."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, ssl.SSLError):
        return TLSError(_tls_reason(exc))
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return HttpTimeout("timed out")
    if isinstance(exc, socket.gaierror):
        return ConnectError("unknown host")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError("connection refused")
    if isinstance(exc, http.client.RemoteDisconnected):
        return ConnectError("connection closed by the server")
    if isinstance(exc, ConnectionResetError):
        return ConnectError("connection reset")
    if isinstance(exc, BrokenPipeError):
        return ConnectError("connection closed while sending")
    if isinstance(exc, http.client.IncompleteRead):
        return ConnectError("body cut short")
    if isinstance(exc, http.client.HTTPException):
        return ConnectError(f"bad HTTP response ({type(exc).__name__})")
    text = str(exc)
    if text.startswith("Tunnel connection failed: "):  # http.client's CONNECT refusal
        return ConnectError(f"proxy refused CONNECT ({text.split(': ', 1)[1]})")
    if isinstance(exc, OSError) and exc.strerror:
        return ConnectError(exc.strerror.lower())
    return ConnectError(type(exc).__name__)


# ---------------------------------------------------------------- trust and proxies


_contexts: dict[tuple[Verify, ClientCert], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def ssl_context(verify: Verify = True, cert: ClientCert = None) -> ssl.SSLContext:
    """The process's one SSL context for this trust setting and client certificate."""
    key = (verify, cert)
    context = _contexts.get(key)
    if context is not None:
        return context
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _new_context(verify, cert)
            _contexts[key] = context
    return context


def _new_context(verify: Verify, cert: ClientCert) -> ssl.SSLContext:
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify is True:
        context = ssl.create_default_context()
    else:
        try:
            context = ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as e:
            raise TLSError(f"cannot load CA file {verify} ({_os_reason(e)})") from None
    context.set_alpn_protocols(["http/1.1"])
    if cert:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as e:
            raise TLSError(f"cannot load client certificate {certfile} ({_os_reason(e)})") from None
    return context


def speaks_tls(host: str, port: int, timeout: float = TIMEOUT[0]) -> bool | None:
    """Whether host:port answers a TLS handshake: False when it speaks plain HTTP, None when
    that cannot be told (unreachable, handshake refused for another reason). Uses the
    unverified context, so no CA store is loaded (~1 ms instead of ~30 ms): for deciding
    between HTTPS and an allowed plain-HTTP fallback before paying for a verifying context."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    with sock:
        try:
            ssl_context(False).wrap_socket(sock, server_hostname=host).close()
        except ssl.SSLError as e:
            return False if "WRONG_VERSION_NUMBER" in str(e) else None
        except OSError:
            return None
    return True


def _os_reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or getattr(e, "reason", None) or type(e).__name__


def trust_from_env(env: Mapping[str, str]) -> Verify:
    """The CA bundle the environment names (as requests and curl read it), else the
    system's CAs."""
    return (
        env.get("REQUESTS_CA_BUNDLE")
        or env.get("SSL_CERT_FILE")
        or env.get("CURL_CA_BUNDLE")
        or True
    )


def no_proxy_matches(host: str, no_proxy: str) -> bool:
    """Whether host[:port] is covered by a NO_PROXY list (names, .suffixes, CIDRs, *)."""
    hostname = urlsplit(f"//{host}").hostname or host
    port = urlsplit(f"//{host}").port
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        with contextlib.suppress(ValueError):
            if "/" in entry and ipaddress.ip_address(hostname) in ipaddress.ip_network(
                entry, strict=False
            ):
                return True
        e_host, _, e_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if e_port and str(port) != e_port:
            continue
        e_host = e_host.lstrip(".")
        if hostname == e_host or hostname.endswith("." + e_host):
            return True
    return False


def proxy_url(url: str, env: Mapping[str, str]) -> str | None:
    """The proxy for url from http(s)_proxy / ALL_PROXY / NO_PROXY in env, or None."""
    parts = urlsplit(url)
    no_proxy = env.get("NO_PROXY") or env.get("no_proxy") or ""
    if no_proxy and no_proxy_matches(parts.netloc, no_proxy):
        return None
    key = "https" if parts.scheme == "https" else "http"
    return (
        env.get(f"{key}_proxy")
        or env.get(f"{key.upper()}_PROXY")
        or env.get("ALL_PROXY")
        or env.get("all_proxy")
        or None
    )


# ---------------------------------------------------------------- responses


class Headers(Mapping[str, str]):
    """Response headers, case-insensitive; repeated fields joined with ", "."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in items:
            low = name.lower()
            if low in self._items:
                value = f"{self._items[low][1]}, {value}"
            self._items[low] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class Response:
    """One HTTP response. With stream=True the body is read through read()/iter_content()
    and the connection returns to the pool once the body was read to the end; close()
    before that discards the connection."""

    def __init__(
        self,
        raw: http.client.HTTPResponse,
        url: str,
        release: Callable[[bool], None],
        method: str = "GET",
    ) -> None:
        self.status_code: int = raw.status
        self.reason: str = raw.reason
        self.headers = Headers(raw.getheaders())
        self.url = url
        self._raw = raw
        self._release: Callable[[bool], None] | None = release
        self._content: bytes | None = None  # the body once loaded whole
        self._pos = 0  # how much of _content read() has handed out
        no_body = method == "HEAD" or raw.status in (204, 304) or raw.status < 200
        if no_body or (raw.length == 0 and not raw.chunked):
            self._content = b""
            raw.read()
            self._finish()

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def _finish(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release(not self._raw.will_close)

    def read(self, n: int = -1) -> bytes:
        """Up to n bytes of the body (all of it for n < 0); b"" at the end. A body cut
        short raises ConnectError."""
        if self._content is not None:
            end = len(self._content) if n < 0 else self._pos + n
            data = self._content[self._pos : end]
            self._pos += len(data)
            return data
        if self._release is None:
            return b""
        expected = self._raw.length
        try:
            data = self._raw.read() if n < 0 else self._raw.read(n)
        except (OSError, http.client.HTTPException, ValueError) as e:
            self._discard()
            raise _wrap(e) from None
        if not data and n != 0 and expected:  # http.client returns b"" on a short body
            self._discard()
            raise ConnectError("body cut short")
        if self._raw.isclosed():
            self._finish()
        return data

    def iter_content(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = self.read()  # what a partly read stream has left
        return self._content

    def _load(self) -> None:
        self._content = self.content

    @property
    def text(self) -> str:
        charset = "utf-8"
        for part in self.headers.get("Content-Type", "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def _discard(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release(False)

    def close(self) -> None:
        if self._release is not None:
            self._discard()
            self._raw.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Response {self.status_code}>"


# ---------------------------------------------------------------- connections


class _Conn(http.client.HTTPConnection):
    read_timeout: float = TIMEOUT[1]

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.read_timeout)


class _TLSConn(http.client.HTTPSConnection):
    read_timeout: float = TIMEOUT[1]

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.read_timeout)


_PoolKey = tuple[str, str, int, Verify | None, ClientCert, str | None]


def _is_dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read was closed by the server (or is out of
    step): either way it cannot carry a new request."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _proxy_auth(proxy: str) -> dict[str, str]:
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def _replayable(body: Any) -> bool:
    return body is None or isinstance(body, (bytes, bytearray, memoryview)) or callable(body)


def _body_length(body: Any) -> int | None:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return memoryview(body).nbytes
    if hasattr(body, "__len__") and hasattr(body, "read"):
        return len(body)
    fileno = getattr(body, "fileno", None)
    if fileno is not None and hasattr(body, "read"):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            st = os.fstat(fileno())
            if stat.S_ISREG(st.st_mode):
                return max(0, st.st_size - body.tell())
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _strip_userinfo(url: str) -> tuple[str, str | None]:
    """(url without user:password@, Basic header value or None)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    netloc = parts.netloc.rpartition("@")[2]
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return (
        urlunsplit(parts._replace(netloc=netloc)),
        "Basic " + base64.b64encode(pair.encode()).decode(),
    )


class HttpClient:
    """HTTP/1.1 with pooled keep-alive connections; safe to share between threads."""

    def __init__(self, *, pool_size: int = POOL_SIZE, timeout: Timeout = TIMEOUT) -> None:
        self.pool_size = pool_size
        self.timeout = timeout
        self._pools: dict[_PoolKey, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self.connections_opened = 0  # for tests and diagnostics

    def close(self) -> None:
        with self._lock:
            pools, self._pools = self._pools, {}
        for idle in pools.values():
            for conn in idle:
                conn.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- pool ----
    def _take(self, key: _PoolKey) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                idle = self._pools.get(key)
                conn = idle.pop() if idle else None
            if conn is None or not _is_dropped(conn):
                return conn
            conn.close()

    def _give(self, key: _PoolKey, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._pools.setdefault(key, [])
            if len(idle) < self.pool_size:
                idle.append(conn)
                return
        conn.close()

    def _open(self, key: _PoolKey, timeout: tuple[float, float]) -> http.client.HTTPConnection:
        scheme, host, port, verify, cert, proxy = key
        connect_host, connect_port = host, port
        if proxy is not None:
            p = urlsplit(proxy)
            if p.scheme != "http":
                raise HttpError(f"unsupported proxy scheme {p.scheme or '(none)'}")
            connect_host, connect_port = p.hostname or "", p.port or 80
        conn: http.client.HTTPConnection
        if scheme == "https":
            context = ssl_context(True if verify is None else verify, cert)
            conn = _TLSConn(
                connect_host, connect_port, timeout=timeout[0], context=context, blocksize=BLOCK
            )
            if proxy is not None:
                conn.set_tunnel(host, port, headers=_proxy_auth(proxy))
        else:
            conn = _Conn(connect_host, connect_port, timeout=timeout[0], blocksize=BLOCK)
        conn.read_timeout = timeout[1]
        with self._lock:
            self.connections_opened += 1
        return conn

    # ---- requests ----
    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        verify: Verify = True,
        cert: ClientCert = None,
        proxy: str | ProxyFor | None = None,
        timeout: Timeout | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
    ) -> Response:
        """Send one request (following redirects). `body`: bytes, a file object, an iterable
        of bytes, or a callable returning one of those (opened per attempt, closed after).
        `proxy`: a proxy URL, or a function of the target URL giving one."""
        t = timeout if timeout is not None else self.timeout
        times = (float(t), float(t)) if isinstance(t, (int, float)) else (float(t[0]), float(t[1]))
        url, basic = _strip_userinfo(url)
        hdrs = dict(headers or {})
        if basic and not any(k.lower() == "authorization" for k in hdrs):
            hdrs["Authorization"] = basic
        for _ in range(MAX_REDIRECTS + 1):
            proxy_for = proxy(url) if callable(proxy) else proxy
            resp = self._exchange(method, url, hdrs, body, verify, cert, proxy_for, times)
            location = resp.headers.get("Location")
            if not allow_redirects or resp.status_code not in REDIRECT_STATUSES or not location:
                if not stream:
                    try:
                        resp._load()
                    finally:
                        resp.close()
                return resp
            self._drain(resp)
            target = urljoin(url, location)
            status = resp.status_code
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, body = "GET", None
                hdrs = {
                    k: v
                    for k, v in hdrs.items()
                    if k.lower() not in ("content-length", "content-type", "transfer-encoding")
                }
            elif not _replayable(body):
                raise HttpError(f"HTTP {status} redirect cannot resend a streamed body")
            if _origin(target)[1:] != _origin(url)[1:] or (
                _origin(url)[0] == "https" and _origin(target)[0] != "https"
            ):
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            target, basic = _strip_userinfo(target)
            if basic:
                hdrs["Authorization"] = basic
            url = target
        raise HttpError(f"more than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _drain(resp: Response) -> None:
        """Read a small redirect body so the connection can be reused; drop a large one."""
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) <= 64 * 1024:
            with contextlib.suppress(HttpError):
                while resp.read(64 * 1024):
                    pass
        resp.close()

    def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Any,
        verify: Verify,
        cert: ClientCert,
        proxy: str | None,
        timeout: tuple[float, float],
    ) -> Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpError(f"unsupported URL scheme {parts.scheme or '(none)'}")
        https = parts.scheme == "https"
        try:
            port = parts.port or (443 if https else 80)
        except ValueError:
            raise HttpError("invalid port in URL") from None
        key: _PoolKey = (
            parts.scheme,
            parts.hostname.lower(),
            port,
            verify if https else None,
            cert if https else None,
            proxy,
        )
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        # plain HTTP through a proxy: absolute-form target, Proxy-Authorization per request
        target = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
        extra = _proxy_auth(proxy) if proxy and not https else {}
        request_target = target if proxy and not https else path
        for attempt in (0, 1):
            conn = self._take(key)
            reused = conn is not None
            if conn is None:
                conn = self._open(key, timeout)
                try:
                    conn.connect()
                except (OSError, http.client.HTTPException, ValueError) as e:
                    conn.close()
                    raise _wrap(e) from None
            opened = body() if callable(body) else body
            try:
                raw = self._send(conn, method, request_target, {**headers, **extra}, opened)
            except (OSError, http.client.HTTPException, ValueError) as e:
                conn.close()
                stale = isinstance(
                    e,
                    (
                        http.client.RemoteDisconnected,
                        BrokenPipeError,
                        ConnectionResetError,
                        ConnectionAbortedError,
                    ),
                )
                if reused and stale and attempt == 0 and _replayable(body):
                    log.debug("%s %s: kept-alive connection was closed, retrying", method, key[1])
                    continue
                raise _wrap(e) from None
            finally:
                if callable(body) and hasattr(opened, "close"):
                    opened.close()
            log.debug("%s %s://%s:%s%s -> %s", method, key[0], key[1], port, parts.path, raw.status)

            def release(reusable: bool, conn: http.client.HTTPConnection = conn) -> None:
                if reusable and conn.sock is not None:
                    self._give(key, conn)
                else:
                    conn.close()

            return Response(raw, url, release, method)
        raise AssertionError("unreachable")

    @staticmethod
    def _send(
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: Any,
    ) -> http.client.HTTPResponse:
        names = {k.lower() for k in headers}
        conn.putrequest(method, target, skip_host="host" in names, skip_accept_encoding=True)
        if "user-agent" not in names:
            conn.putheader("User-Agent", USER_AGENT)
        chunked = False
        if "content-length" not in names and "transfer-encoding" not in names:
            length = None if body is None else _body_length(body)
            if length is not None:
                conn.putheader("Content-Length", str(length))
            elif body is not None:
                conn.putheader("Transfer-Encoding", "chunked")
                chunked = True
            elif method.upper() in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", "0")
        for name, value in headers.items():
            conn.putheader(name, value)
        try:
            conn.endheaders(body, encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError):
            # The server may have answered early (401, 413) and closed: read that answer.
            return conn.getresponse()
        return conn.getresponse()


_shared: HttpClient | None = None
_shared_lock = threading.Lock()


def shared_client() -> HttpClient:
    """A process-wide client for one-off downloads (ADD <url>, https contexts)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = HttpClient()
        return _shared


def get_as_configured(
    url: str,
    env: Mapping[str, str] | None,
    *,
    verify_tls: bool = True,
    timeout: float | Timeout = TIMEOUT,
    client: HttpClient | None = None,
) -> Response:
    """A streamed GET for one-off downloads (ADD <url>, https:// contexts, Dockerfile URLs):
    trust (REQUESTS_CA_BUNDLE, SSL_CERT_FILE...) and proxies come from `env`, or from the
    process environment when it is None, as they did when requests read it."""
    settings = os.environ if env is None else env
    return (client or shared_client()).request(
        "GET",
        url,
        stream=True,
        timeout=timeout,
        verify=trust_from_env(settings) if verify_tls else False,
        proxy=lambda target: proxy_url(target, settings),
    )
