"""The auth flow as a generator, driven without sockets."""

from __future__ import annotations

import base64
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from engine.errors import AuthError
from engine.registry.auth import (
    AuthContext,
    AuthState,
    Challenge,
    HttpRequest,
    ResponseLike,
    TokenCache,
    auth_flow,
    parse_challenges,
    pick_challenge,
)
from engine.registry.credentials import Credential

CTX = AuthContext("reg.example", "team/app")
BEARER = 'Bearer realm="https://auth.example/token",service="reg.example",scope="repository:team/app:pull"'


@dataclass
class FakeResponse:
    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    def json(self) -> Any:
        return self.body


def drive(
    flow: Generator[HttpRequest, ResponseLike, ResponseLike],
    server: Callable[[HttpRequest], FakeResponse],
) -> tuple[ResponseLike, list[HttpRequest]]:
    sent: list[HttpRequest] = []
    req = next(flow)
    while True:
        sent.append(req)
        try:
            req = flow.send(server(req))
        except StopIteration as stop:
            return stop.value, sent


def drive_known_bearer(
    credential: Credential | None,
    scopes: list[str],
    server: Callable[[HttpRequest], FakeResponse],
) -> tuple[ResponseLike, list[HttpRequest]]:
    """GET /v2/ on reg.example, whose BEARER challenge is already known, with an empty cache."""
    state = AuthState(pick_challenge(BEARER))
    request = HttpRequest("GET", "https://reg.example/v2/")
    return drive(auth_flow(request, state, credential, scopes, TokenCache(), CTX), server)


def test_parse_challenges_handles_quotes_commas_and_schemes() -> None:
    chs = parse_challenges(
        'Basic realm="x", Bearer realm="https://a/t?x=1",service="s,1",scope="a:b:pull push"'
    )
    assert [c.scheme for c in chs] == ["basic", "bearer"]
    assert chs[1].params == {"realm": "https://a/t?x=1", "service": "s,1", "scope": "a:b:pull push"}
    assert pick_challenge('Basic realm="r"') == Challenge("basic", {"realm": "r"})
    assert pick_challenge("") is None


def test_anonymous_when_registry_needs_no_auth() -> None:
    resp, sent = drive(
        auth_flow(
            HttpRequest("GET", "https://reg.example/v2/x"), AuthState(), None, [], TokenCache(), CTX
        ),
        lambda r: FakeResponse(200),
    )
    assert resp.status_code == 200 and len(sent) == 1 and "Authorization" not in sent[0].headers


def test_basic_challenge_sends_credentials_once_learned() -> None:
    state = AuthState()
    cred = Credential("alice", "s3cret")

    def server(r: HttpRequest) -> FakeResponse:
        if r.headers.get("Authorization") == "Basic " + base64.b64encode(b"alice:s3cret").decode():
            return FakeResponse(200)
        return FakeResponse(401, {"WWW-Authenticate": 'Basic realm="r"'})

    resp, sent = drive(
        auth_flow(HttpRequest("GET", "https://r/v2/"), state, cred, [], TokenCache(), CTX), server
    )
    assert resp.status_code == 200 and len(sent) == 2
    # next request goes authenticated at once
    resp, sent = drive(
        auth_flow(HttpRequest("GET", "https://r/v2/"), state, cred, [], TokenCache(), CTX), server
    )
    assert len(sent) == 1 and resp.status_code == 200


def bearer_server(
    tokens_issued: list[str], field_name: str = "token"
) -> Callable[[HttpRequest], FakeResponse]:
    def server(r: HttpRequest) -> FakeResponse:
        if r.auth_request:
            n = f"tok{len(tokens_issued)}"
            tokens_issued.append(n)
            return FakeResponse(200, body={field_name: n, "expires_in": 300})
        if r.headers.get("Authorization", "").startswith("Bearer tok"):
            return FakeResponse(200)
        return FakeResponse(401, {"WWW-Authenticate": BEARER})

    return server


@pytest.mark.parametrize("field_name", ["token", "access_token"])
def test_bearer_flow_fetches_token_with_basic_and_scopes(field_name: str) -> None:
    issued: list[str] = []
    cred = Credential("bob", "pw")
    resp, sent = drive(
        auth_flow(
            HttpRequest("GET", "https://reg.example/v2/team/app/manifests/1"),
            AuthState(),
            cred,
            ["repository:team/app:pull"],
            TokenCache(),
            CTX,
        ),
        bearer_server(issued, field_name),
    )
    assert resp.status_code == 200
    assert [s.auth_request for s in sent] == [False, True, False]
    token_req = sent[1]
    q = parse_qs(urlsplit(token_req.url).query)
    assert q == {"service": ["reg.example"], "scope": ["repository:team/app:pull"]}
    assert token_req.headers["Authorization"].startswith("Basic ")
    assert sent[2].headers["Authorization"] == "Bearer tok0"


def test_token_cache_reused_per_realm_service_scope_and_expires() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    state = AuthState(pick_challenge(BEARER))
    issued: list[str] = []
    server = bearer_server(issued)
    scopes = ["repository:team/app:pull"]
    for _ in range(3):
        drive(
            auth_flow(
                HttpRequest("GET", "https://reg.example/v2/"), state, None, scopes, cache, CTX
            ),
            server,
        )
    assert issued == ["tok0"]
    drive(
        auth_flow(
            HttpRequest("GET", "https://reg.example/v2/"),
            state,
            None,
            ["repository:team/app:pull,push"],
            cache,
            CTX,
        ),
        server,
    )
    assert issued == ["tok0", "tok1"]  # another scope, another token
    now[0] += 301
    drive(
        auth_flow(HttpRequest("GET", "https://reg.example/v2/"), state, None, scopes, cache, CTX),
        server,
    )
    assert issued == ["tok0", "tok1", "tok2"]  # expired


def test_mount_scope_from_insufficient_scope_challenge_is_added() -> None:
    state = AuthState(pick_challenge(BEARER))
    seen_scopes: list[list[str]] = []

    def server(r: HttpRequest) -> FakeResponse:
        if r.auth_request:
            seen_scopes.append(parse_qs(urlsplit(r.url).query)["scope"])
            return FakeResponse(200, body={"token": f"t{len(seen_scopes)}"})
        if r.headers.get("Authorization") == "Bearer t2":
            return FakeResponse(201)
        return FakeResponse(
            401,
            {
                "WWW-Authenticate": BEARER.replace(
                    'scope="repository:team/app:pull"',
                    'scope="repository:other/src:pull",error="insufficient_scope"',
                )
            },
        )

    resp, _ = drive(
        auth_flow(
            HttpRequest("POST", "https://reg.example/v2/team/app/blobs/uploads/"),
            state,
            None,
            ["repository:team/app:pull,push"],
            TokenCache(),
            CTX,
        ),
        server,
    )
    assert resp.status_code == 201
    assert seen_scopes[1] == ["repository:other/src:pull", "repository:team/app:pull,push"]


def test_identity_token_uses_refresh_token_grant() -> None:
    cred = Credential(identity_token="refresh-xyz")
    captured: list[HttpRequest] = []

    def server(r: HttpRequest) -> FakeResponse:
        captured.append(r)
        if r.auth_request:
            return FakeResponse(200, body={"access_token": "acc"})
        return FakeResponse(200)

    drive_known_bearer(cred, ["repository:team/app:pull"], server)
    assert captured[0].method == "POST"
    assert captured[0].form is not None
    assert captured[0].form["grant_type"] == "refresh_token"
    assert captured[0].form["refresh_token"] == "refresh-xyz"
    assert captured[1].headers["Authorization"] == "Bearer acc"


def test_registry_token_is_used_as_bearer_directly() -> None:
    _resp, sent = drive_known_bearer(
        Credential(registry_token="rt"), [], lambda r: FakeResponse(200)
    )
    assert len(sent) == 1 and sent[0].headers["Authorization"] == "Bearer rt"


def test_token_server_refusal_names_registry_and_hides_secret() -> None:
    cred = Credential("bob", "hunter2-very-secret")
    with pytest.raises(AuthError) as err:
        drive_known_bearer(
            cred,
            ["repository:team/app:pull"],
            lambda r: FakeResponse(401) if r.auth_request else FakeResponse(200),
        )
    msg = str(err.value)
    assert "registry reg.example repository team/app" in msg and "HTTP 401" in msg
    assert "auth.example" in msg and "hunter2" not in msg


def test_credential_repr_hides_secrets() -> None:
    text = repr(Credential("u", "pw-secret", "id-secret", "reg-secret"))
    assert "secret" not in text and "u" in text
