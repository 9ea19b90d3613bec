"""A hostile or failing registry never gets our credentials or tokens into an error message,
a warning or a DEBUG log line, even when it echoes the Authorization header back."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from engine.errors import RegistryError
from engine.registry import Reference, RegistryClient, RegistryConfig, RetryPolicy

USER, PASSWORD, TOKEN = "alice", "S3cr3t-Pa55word", "TOKEN-0f1e2d3c4b5a"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, BASIC, TOKEN)


def _echo(status: int) -> Callable[[Request], Response]:
    """An error body that repeats everything the client sent, credentials included."""

    def handler(request: Request) -> Response:
        sent = request.headers.get("Authorization", "")
        body = {"errors": [{"code": "DENIED", "message": f"bad {sent} {PASSWORD}"}]}
        return Response(
            json.dumps(body),
            status=status,
            content_type="application/json",
            headers={"X-Echo": sent},
        )

    return handler


def _client(server: HTTPServer, tmp_path: Path, bearer: bool) -> tuple[RegistryClient, str]:
    host = f"localhost:{server.port}"
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": BASIC}}}))
    if bearer:
        challenge = f'Bearer realm="http://{host}/token",service="reg"'
        server.expect_request("/v2/").respond_with_data(
            "", status=401, headers={"WWW-Authenticate": challenge}
        )
        server.expect_request("/token").respond_with_json({"token": TOKEN, "expires_in": 300})
    else:
        server.expect_request("/v2/").respond_with_data(
            "", status=401, headers={"WWW-Authenticate": 'Basic realm="reg"'}
        )
    config = RegistryConfig(
        env={"DOCKER_CONFIG": str(tmp_path)},
        retry=RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0),
        download_retries=1,
    )
    return RegistryClient(config, sleep=lambda _s: None), host


def _assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


@pytest.mark.parametrize("bearer", [True, False])
@pytest.mark.parametrize("status", [401, 403, 500, 502])
def test_failing_registry_echoing_auth_leaks_nothing(
    httpserver: HTTPServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    bearer: bool,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3, requests and ours, at their chattiest
    client, host = _client(httpserver, tmp_path, bearer)
    httpserver.expect_request("/v2/a/b/manifests/1").respond_with_handler(_echo(status))
    with pytest.raises(RegistryError) as info:
        client.resolve_image(Reference.parse(f"{host}/a/b:1"))
    message = str(info.value)
    assert "\n" not in message and host in message
    out, err = capfd.readouterr()
    _assert_clean(message, caplog.text, out, err, repr(info.value.__cause__ or ""))
    # the requests really carried the credentials (the test could fail)
    sent = [r.headers.get("Authorization", "") for r, _ in httpserver.log]
    assert any(TOKEN in s or BASIC in s for s in sent)


def test_failing_blob_upload_echoing_auth_leaks_nothing(
    httpserver: HTTPServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from engine.image.model import Descriptor

    caplog.set_level(logging.DEBUG)
    client, host = _client(httpserver, tmp_path, bearer=True)
    blob = tmp_path / "blob"
    blob.write_bytes(b"layer")
    import hashlib

    digest = "sha256:" + hashlib.sha256(b"layer").hexdigest()
    httpserver.expect_request(f"/v2/a/b/blobs/{digest}").respond_with_data("", status=404)
    httpserver.expect_request("/v2/a/b/blobs/uploads/").respond_with_handler(_echo(500))
    desc = Descriptor("application/octet-stream", digest, 5)
    with pytest.raises(RegistryError) as info:
        client.push_blob(Reference.parse(f"{host}/a/b:1"), desc, blob)
    _assert_clean(str(info.value), caplog.text)


@pytest.mark.parametrize(
    "text", ["https://bob:S3cr3t-Pa55word@reg.io/app", "bob:S3cr3t-Pa55word@reg.io/app:1"]
)
def test_invalid_reference_error_masks_pasted_credentials(text: str) -> None:
    from engine.errors import UsageError

    with pytest.raises(UsageError) as info:
        Reference.parse(text)
    assert PASSWORD not in str(info.value) and "***@reg.io/app" in str(info.value)


@pytest.mark.parametrize("bearer", [True, False])
def test_upload_location_on_another_host_gets_no_credentials(
    httpserver: HTTPServer, tmp_path: Path, bearer: bool
) -> None:
    """The registry is reached as localhost:PORT; its Location points at 127.0.0.1:PORT,
    another host as far as credentials go (ggcr's matchesHost)."""
    import hashlib

    from engine.image.model import Descriptor

    client, host = _client(httpserver, tmp_path, bearer)
    blob = tmp_path / "blob"
    blob.write_bytes(b"layer")
    digest = "sha256:" + hashlib.sha256(b"layer").hexdigest()
    foreign = f"http://127.0.0.1:{httpserver.port}/elsewhere/upload"
    httpserver.expect_request(f"/v2/a/b/blobs/{digest}").respond_with_data("", status=404)
    httpserver.expect_request("/v2/a/b/blobs/uploads/").respond_with_data(
        "", status=202, headers={"Location": foreign}
    )
    httpserver.expect_request("/elsewhere/upload").respond_with_data("", status=201)
    client.push_blob(Reference.parse(f"{host}/a/b:1"), Descriptor("x", digest, 5), blob)
    sent = {r.path: r.headers.get("Authorization", "") for r, _ in httpserver.log}
    assert sent["/v2/a/b/blobs/uploads/"]  # the registry itself got them
    assert sent["/elsewhere/upload"] == ""


@pytest.mark.parametrize(
    "text", ["https://bob:S3cr3t-Pa55word@mirror.io", "bob:S3cr3t-Pa55word@mirror.io/hub"]
)
def test_mirror_with_credentials_is_refused_without_echoing_them(text: str) -> None:
    from engine.errors import UsageError
    from engine.registry.config import Mirror

    with pytest.raises(UsageError) as info:
        Mirror.parse(text)
    assert PASSWORD not in str(info.value) and "***@mirror.io" in str(info.value)
