"""Registry authentication as a generator, testable without sockets (httpx style).

`auth_flow` yields `HttpRequest`s (token requests and the real request) and receives the
responses; it returns the final response. The transport drives it:

    flow = auth_flow(req, ...); out = next(flow)
    while True:
        resp = send(out)
        try: out = flow.send(resp)
        except StopIteration as stop: return stop.value

Supports anonymous access, Basic, and Bearer challenges (realm, service, scope), tokens under
`token` or `access_token` with `expires_in`, identity tokens (OAuth2 refresh_token grant) and
registry tokens used as is. Tokens are cached per (realm, service, scope).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from engine.errors import AuthError
from engine.registry.credentials import Credential

Body = bytes | Callable[[], Any] | None  # bytes, or a factory opening a fresh stream


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    # repr=False: these carry Authorization headers and refresh tokens
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: Body = field(default=None, repr=False)
    form: Mapping[str, str] | None = field(default=None, repr=False)  # token refresh POST
    auth_request: bool = False  # a request to the token server, not the registry

    def with_header(self, name: str, value: str) -> HttpRequest:
        return replace(self, headers={**self.headers, name: value})


class ResponseLike(Protocol):
    status_code: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower-case
    params: Mapping[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")


_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse WWW-Authenticate, e.g. `Bearer realm="https://a/token",service="reg",scope="x"`."""
    out: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        m = re.match(r"\s*([A-Za-z][A-Za-z0-9_-]*)\s*", text[pos:])
        if not m:
            break
        scheme = m.group(1).lower()
        pos += m.end()
        params: dict[str, str] = {}
        while pos < len(text):
            pm = _PARAM_RE.match(text, pos)
            if not pm or (pm.group(2) is None and pm.group(3) is None):
                break
            value = pm.group(2) if pm.group(2) is not None else pm.group(3)
            params[pm.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            pos = pm.end()
        out.append(Challenge(scheme, params))
        if pos < len(text) and text[pos] == ",":
            pos += 1
    return out


def pick_challenge(header: str) -> Challenge | None:
    found = {c.scheme: c for c in parse_challenges(header)}
    return found.get("bearer") or found.get("basic")


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Bearer tokens per (realm, service, scope), dropped shortly before they expire."""

    MARGIN = 10.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str], _Token] = {}

    @staticmethod
    def key(challenge: Challenge, scopes: Sequence[str]) -> tuple[str, str, str]:
        return (challenge.realm, challenge.service, " ".join(sorted(set(scopes))))

    def get(self, key: tuple[str, str, str]) -> str | None:
        tok = self._tokens.get(key)
        if tok and tok.expires_at > self._clock():
            return tok.value
        self._tokens.pop(key, None)
        return None

    def put(self, key: tuple[str, str, str], value: str, expires_in: float) -> None:
        life = max(expires_in - self.MARGIN, expires_in / 2)
        self._tokens[key] = _Token(value, self._clock() + life)

    def drop(self, key: tuple[str, str, str]) -> None:
        self._tokens.pop(key, None)

    def values(self) -> tuple[str, ...]:
        """The tokens held (for redaction; expired ones too, they are still secrets)."""
        return tuple(t.value for t in self._tokens.values())


def basic_header(cred: Credential) -> str:
    raw = f"{cred.username}:{cred.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class AuthContext:
    """Names for error messages: which registry and repository the request was for."""

    registry: str
    repository: str = ""

    def where(self) -> str:
        return f"registry {self.registry}" + (
            f" repository {self.repository}" if self.repository else ""
        )


def token_flow(
    challenge: Challenge,
    credential: Credential | None,
    scopes: Sequence[str],
    cache: TokenCache,
    ctx: AuthContext,
    *,
    fresh: bool = False,
) -> Generator[HttpRequest, ResponseLike, str]:
    """Get a bearer token for scopes, from the cache or the token server."""
    key = TokenCache.key(challenge, scopes)
    if not fresh:
        cached = cache.get(key)
        if cached:
            return cached
    if credential and credential.registry_token:
        return credential.registry_token
    realm = challenge.realm
    if not realm or urlsplit(realm).scheme not in ("http", "https"):
        raise AuthError(f"{ctx.where()}: bearer challenge without a usable realm")
    params: list[tuple[str, str]] = []
    if challenge.service:
        params.append(("service", challenge.service))
    params += [("scope", s) for s in sorted(set(scopes))]
    if credential and credential.identity_token:
        form = dict(params)
        form.pop("scope", None)
        form.update(
            grant_type="refresh_token",
            refresh_token=credential.identity_token,
            client_id="brickyard",
        )
        if scopes:
            form["scope"] = " ".join(sorted(set(scopes)))
        req = HttpRequest("POST", realm, form=form, auth_request=True)
    else:
        sep = "&" if "?" in realm else "?"
        url = realm + (sep + urlencode(params) if params else "")
        headers = (
            {"Authorization": basic_header(credential)}
            if credential and credential.has_basic
            else {}
        )
        req = HttpRequest("GET", url, headers=headers, auth_request=True)
    resp = yield req
    realm_host = urlsplit(realm).netloc
    if resp.status_code in (401, 403):
        raise AuthError(
            f"{ctx.where()}: token server {realm_host} refused the credentials "
            f"(HTTP {resp.status_code})"
        )
    if resp.status_code != 200:
        raise AuthError(
            f"{ctx.where()}: token server {realm_host} answered HTTP {resp.status_code}"
        )
    try:
        data = resp.json()
        token = str(data.get("token") or data.get("access_token") or "")
        expires_in = float(data.get("expires_in") or 60)
    except (ValueError, AttributeError, TypeError):
        raise AuthError(f"{ctx.where()}: token server {realm_host} sent malformed JSON") from None
    if not token:
        raise AuthError(f"{ctx.where()}: token server {realm_host} sent no token")
    cache.put(key, token, expires_in)
    return token


@dataclass
class AuthState:
    """What we learned about one registry's auth (from /v2/ or a 401)."""

    challenge: Challenge | None = None


def authorize(
    request: HttpRequest,
    state: AuthState,
    credential: Credential | None,
    scopes: Sequence[str],
    cache: TokenCache,
    ctx: AuthContext,
    *,
    fresh: bool = False,
) -> Generator[HttpRequest, ResponseLike, HttpRequest]:
    """Return `request` with the Authorization header the registry's challenge asks for."""
    ch = state.challenge
    if ch is None:
        return request
    if ch.scheme == "basic":
        if credential and credential.has_basic:
            return request.with_header("Authorization", basic_header(credential))
        return request
    if ch.scheme == "bearer":
        token = yield from token_flow(ch, credential, scopes, cache, ctx, fresh=fresh)
        return request.with_header("Authorization", f"Bearer {token}")
    raise AuthError(f"{ctx.where()}: unsupported auth scheme {ch.scheme!r}")


def auth_flow(
    request: HttpRequest,
    state: AuthState,
    credential: Credential | None,
    scopes: Sequence[str],
    cache: TokenCache,
    ctx: AuthContext,
) -> Generator[HttpRequest, ResponseLike, ResponseLike]:
    """Send request with auth; on a 401 carrying a (new) challenge, authenticate and retry
    once. Scopes the registry asks for in its challenge are added to ours."""
    authed = yield from authorize(request, state, credential, scopes, cache, ctx)
    resp = yield authed
    if resp.status_code != 401:
        return resp
    ch = pick_challenge(resp.headers.get("WWW-Authenticate", ""))
    if ch is None:
        return resp
    had_auth = "Authorization" in authed.headers
    state.challenge = ch
    wanted = list(scopes)
    if ch.params.get("scope"):
        wanted += [s for s in ch.params["scope"].split(" ") if s and s not in wanted]
    if ch.scheme == "basic" and (had_auth or not (credential and credential.has_basic)):
        return resp  # nothing new to try
    authed = yield from authorize(request, state, credential, wanted, cache, ctx, fresh=True)
    resp = yield authed
    return resp
