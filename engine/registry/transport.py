"""The one HTTP boundary of the registry client.

Everything the registry client sends goes through here (on engine.httpclient): scheme
choice per host (HTTPS, then plain HTTP for insecure or local hosts, as go-containerregistry
does), the trust setting per host (a CA bundle from the given env, --registry-certificate,
--skip-tls-verify), client certificates, proxies from the given env, the auth flow, retries
with bounded exponential backoff and jitter honouring Retry-After, and the mapping of HTTP
failures to RegistryError / AuthError / ManifestUnknown with messages naming registry,
repository and status, never a credential.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import re
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from engine.errors import AuthError, ManifestUnknown, RegistryError
from engine.httpclient import (
    TIMEOUT,
    ConnectError,
    HttpClient,
    HttpError,
    Response,
    TLSError,
    proxy_url,
    speaks_tls,
    trust_from_env,
)
from engine.registry.auth import (
    AuthContext,
    AuthState,
    HttpRequest,
    TokenCache,
    auth_flow,
    pick_challenge,
)
from engine.registry.config import Purpose, RegistryConfig, is_local_host
from engine.registry.credentials import Credential, Keychain

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - (now if now is not None else time.time()))
    return None


# "Bearer <token>", "Basic <base64>" in an echoed header or message
_AUTH_VALUE = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def _origin(url: str) -> tuple[str, int | None]:
    """(host, port) with the scheme's default port filled in, for same-host checks."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return (parts.hostname or "").lower(), parts.port or default


def _registry_error_detail(resp: Response) -> str:
    with contextlib.suppress(ValueError, AttributeError, TypeError, HttpError):
        errors = json.loads(resp.read(64 * 1024)).get("errors") or []  # bounded: error bodies
        parts = []
        for e in errors[:2]:
            code = str(e.get("code", "")).strip()
            msg = str(e.get("message", "")).strip()
            parts.append(" ".join(p for p in (code, msg) if p))
        return "; ".join(parts)[:200]
    return ""


@dataclass(frozen=True)
class Target:
    """Which registry/repository a request is about (for auth scopes and messages)."""

    host: str  # registry host as in references ("docker.io", "127.0.0.1:5000")
    repository: str
    purpose: Purpose
    scopes: tuple[str, ...] = ()

    @property
    def ctx(self) -> AuthContext:
        return AuthContext(self.host, self.repository)


class Transport:
    def __init__(
        self,
        config: RegistryConfig,
        *,
        keychain: Keychain | None = None,
        session: HttpClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.keychain = keychain if keychain is not None else Keychain(config.env)
        self._owns_session = session is None
        self.session = session or HttpClient()
        self.tokens = TokenCache()
        self._sleep = sleep
        self._bases: dict[tuple[str, Purpose], str] = {}
        self._auth: dict[str, AuthState] = {}
        self._bundles: dict[str, str] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="brickyard-ca-")

    def close(self) -> None:
        if self._owns_session:
            self.session.close()
        self._tmp.cleanup()

    # ---- TLS and credentials ----
    def _default_verify(self) -> bool | str:
        return trust_from_env(self.config.env)

    def verify_for(self, host: str, purpose: Purpose) -> bool | str:
        if self.config.skip_tls(host, purpose):
            return False
        cert = self.config.certificates.get(host)
        if not cert:
            return self._default_verify()
        # kaniko appends the registry's CA to the system pool; do the same with a bundle file.
        if host not in self._bundles:
            default = self._default_verify()
            if default is True:  # the system store's bundle file, where there is one
                paths = ssl.get_default_verify_paths()
                found = [f for f in (paths.cafile, paths.openssl_cafile) if f and Path(f).is_file()]
                default = found[0] if found else ""
            try:
                system = Path(str(default)).read_bytes() + b"\n" if default else b""
                pem = system + Path(cert).read_bytes()
            except OSError as e:
                raise RegistryError(
                    f"registry {host}: cannot read certificate {cert}: {e.strerror}"
                ) from None
            bundle = Path(self._tmp.name) / f"{len(self._bundles)}.pem"
            bundle.write_bytes(pem)
            self._bundles[host] = str(bundle)
        return self._bundles[host]

    def credential(self, host: str) -> Credential | None:
        return self.keychain.resolve(host)

    def _redact(self, text: str, host: str) -> str:
        """Registry error text may echo what we sent: mask our credentials, every bearer
        token we hold, and whatever follows an auth scheme word."""
        cred = self.credential(host)
        for secret in (*(cred.secrets if cred else ()), *self.tokens.values()):
            text = text.replace(secret, "***")
        return _AUTH_VALUE.sub(r"\1 ***", text)

    # ---- raw send ----
    def _proxy(self, url: str) -> str | None:
        return proxy_url(url, self.config.env)

    def _send(self, req: HttpRequest, tls_host: str, purpose: Purpose, *, stream: bool) -> Response:
        """One HTTP exchange; TLS settings are those of `tls_host` (registry or token server).
        A callable body is opened per attempt (and per redirect) by the HTTP client."""
        body: Any = req.body
        headers = dict(req.headers)
        if req.form is not None:
            body = urlencode(req.form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.session.request(
            req.method,
            req.url,
            headers=headers,
            body=body,
            stream=stream,
            verify=self.verify_for(tls_host, purpose),
            cert=self.config.client_certs.get(tls_host),
            proxy=self._proxy,
            timeout=TIMEOUT,
        )

    # ---- scheme and challenge discovery ----
    def base_url(self, host: str, purpose: Purpose) -> str:
        key = (host, purpose)
        if key in self._bases:
            return self._bases[key]
        api = "registry-1.docker.io" if host == "docker.io" else host
        allow_http = self.config.insecure(host, purpose) or is_local_host(api)
        ctx = AuthContext(host)
        tls_error: HttpError | None = None
        resp: Response | None = None
        if allow_http and self._plain_http_only(api):
            tls_error = TLSError("TLS handshake failed (server speaks plain HTTP?)")
        else:
            try:
                # with plain HTTP as a fallback, a refused HTTPS port is not worth retrying
                resp = self._ping(f"https://{api}", host, purpose, retry=not allow_http)
            except TLSError as e:
                tls_error = e
            except HttpError as e:
                if not allow_http:
                    raise RegistryError(f"{ctx.where()}: {e.reason}") from None
                tls_error = e
        if resp is None:
            if not allow_http:
                reason = tls_error.reason if tls_error else "TLS error"
                raise RegistryError(f"{ctx.where()}: {reason}") from None
            try:
                resp = self._ping(f"http://{api}", host, purpose)
            except HttpError as e:
                raise RegistryError(f"{ctx.where()}: {e.reason}") from None
            if resp.status_code not in (200, 401):
                # plain HTTP refused (typically "HTTP request to an HTTPS server"): report TLS
                reason = (
                    tls_error.reason
                    if isinstance(tls_error, TLSError)
                    else f"HTTP {resp.status_code} on /v2/"
                )
                raise RegistryError(f"{ctx.where()}: {reason}")
            base = f"http://{api}"
        else:
            base = f"https://{api}"
        if resp.status_code == 401:
            self._auth.setdefault(host, AuthState()).challenge = pick_challenge(
                resp.headers.get("WWW-Authenticate", "")
            )
        else:
            self._auth.setdefault(host, AuthState())
        self._bases[key] = base
        return base

    def _plain_http_only(self, api: str) -> bool:
        """A local or --insecure registry that speaks plain HTTP is told by a handshake with
        no CA store, sparing the verifying context's ~30 ms a failing HTTPS ping would cost."""
        if self._proxy(f"https://{api}"):
            return False
        parts = urlsplit(f"//{api}")
        return speaks_tls(parts.hostname or api, parts.port or 443, TIMEOUT[0]) is False

    def _ping(self, base: str, host: str, purpose: Purpose, *, retry: bool = True) -> Response:
        attempts = max(1, self.config.retry.attempts) if retry else 1
        for attempt in range(attempts):
            try:
                resp = self._send(HttpRequest("GET", f"{base}/v2/"), host, purpose, stream=False)
            except HttpError as e:
                transient = isinstance(e, ConnectError) and not isinstance(e, TLSError)
                if not transient or attempt + 1 >= attempts:
                    raise
                self._sleep(self._backoff(attempt, None))
                continue
            if resp.status_code in RETRY_STATUS and attempt + 1 < attempts:
                self._sleep(self._backoff(attempt, resp.headers.get("Retry-After")))
                continue
            return resp
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        policy = self.config.retry
        after = retry_after_seconds(retry_after)
        if after is not None:
            return min(after, policy.max_retry_after)
        cap = min(policy.max_delay, policy.base_delay * (2**attempt))
        return random.uniform(cap / 2, cap)  # jitter, never zero

    # ---- authenticated requests with retries ----
    def request(
        self,
        method: str,
        target: Target,
        path_or_url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | Callable[[], Any] | None = None,
        stream: bool = False,
        idempotent: bool = True,
        ok: Iterable[int] = (200,),
        passthrough: Iterable[int] = (),
    ) -> Response:
        """Send an authenticated request; statuses in `ok` or `passthrough` are returned,
        anything else becomes a RegistryError subclass. `what` names the operation."""
        base = self.base_url(target.host, target.purpose)
        url = path_or_url if "://" in path_or_url else base + path_or_url
        if url.startswith("/"):
            url = base + url
        state = self._auth.setdefault(target.host, AuthState())
        cred = self.credential(target.host)
        tokens = self.tokens
        if _origin(url) != _origin(base):
            # An upload Location (or any URL a registry hands us) on another host: our
            # credentials and tokens are for the registry only (ggcr's matchesHost).
            state, cred, tokens = AuthState(), None, TokenCache()
        scopes = target.scopes or (
            (f"repository:{target.repository}:pull",) if target.repository else ()
        )
        attempts = max(1, self.config.retry.attempts) if idempotent else 1
        accept = set(ok) | set(passthrough)
        for attempt in range(attempts):
            try:
                resp = self._drive(
                    HttpRequest(method, url, headers=dict(headers or {}), body=body),
                    target,
                    state,
                    cred,
                    scopes,
                    stream,
                    tokens,
                )
            except HttpError as e:
                transient = isinstance(e, ConnectError) and not isinstance(e, TLSError)
                if transient and attempt + 1 < attempts:
                    self._sleep(self._backoff(attempt, None))
                    continue
                raise RegistryError(f"{target.ctx.where()}: {what}: {e.reason}") from None
            if resp.status_code in accept:
                return resp
            if resp.status_code in RETRY_STATUS and attempt + 1 < attempts:
                delay = self._backoff(attempt, resp.headers.get("Retry-After"))
                resp.close()
                self._sleep(delay)
                continue
            raise self.error_for(resp, target, what, cred)
        raise AssertionError("unreachable")

    def _drive(
        self,
        req: HttpRequest,
        target: Target,
        state: AuthState,
        cred: Credential | None,
        scopes: Sequence[str],
        stream: bool,
        tokens: TokenCache,
    ) -> Response:
        flow = auth_flow(req, state, cred, scopes, tokens, target.ctx)
        out = next(flow)
        while True:
            resp = self._send(
                out, target.host, target.purpose, stream=stream and not out.auth_request
            )
            try:
                out = flow.send(resp)
            except StopIteration as stop:
                final: Response = stop.value
                return final
            resp.close()

    def error_for(
        self, resp: Response, target: Target, what: str, cred: Credential | None
    ) -> RegistryError:
        status = resp.status_code
        detail = self._redact(_registry_error_detail(resp), target.host)
        resp.close()
        where = target.ctx.where()
        suffix = f": {detail}" if detail else ""
        challenge = pick_challenge(resp.headers.get("WWW-Authenticate", ""))
        if status == 401 and challenge and challenge.params.get("error") == "insufficient_scope":
            scope = challenge.params.get("scope", "")
            return AuthError(
                f"{where}: {what}: access denied, insufficient scope {scope} (HTTP 401)"
            )
        if status == 401:
            hint = (
                "credentials rejected" if cred else "authentication required, no credentials found"
            )
            return AuthError(f"{where}: {what}: {hint} (HTTP 401){suffix}")
        if status == 403:
            return AuthError(f"{where}: {what}: access denied (HTTP 403){suffix}")
        if status == 404 and (
            "manifest" in what or "MANIFEST_UNKNOWN" in detail or "NAME_UNKNOWN" in detail
        ):
            return ManifestUnknown(f"{where}: {what}: not found (HTTP 404){suffix}")
        return RegistryError(f"{where}: {what}: HTTP {status}{suffix}")
