"""Retries, backoff, upload restarts and error mapping against a scripted HTTP server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from engine.errors import AuthError, RegistryError
from engine.image.model import OCI_LAYER_GZIP, OCI_MANIFEST, Descriptor
from engine.registry import Reference, RegistryClient, RegistryConfig, RetryPolicy

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "x", "digest": "sha256:" + "a" * 64, "size": 2},
        "layers": [],
    }
).encode()


def script(server: HTTPServer, path: str, responses: list[Response]) -> None:
    """Answer requests to path with the given responses, in order."""
    queue = list(responses)
    server.expect_request(path).respond_with_handler(lambda request: queue.pop(0))


def make(
    server: HTTPServer, sleeps: list[float], attempts: int = 3, **cfg: object
) -> tuple[RegistryClient, str]:
    server.expect_request("/v2/").respond_with_data("{}", status=200)
    policy = RetryPolicy(attempts=attempts, base_delay=0.2, max_delay=0.4)
    config = RegistryConfig(env={}, retry=policy, **cfg)  # type: ignore[arg-type]
    return RegistryClient(config, sleep=sleeps.append), f"localhost:{server.port}"


def test_503_then_success_honours_retry_after(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    client, host = make(httpserver, sleeps)
    script(
        httpserver,
        "/v2/a/b/manifests/1",
        [
            Response("busy", status=503, headers={"Retry-After": "2"}),
            Response("", status=429),
            Response(MANIFEST, content_type=OCI_MANIFEST),
        ],
    )
    body, media_type, _ = client.get_manifest(Reference.parse(f"{host}/a/b:1"))
    assert body == MANIFEST and media_type == OCI_MANIFEST
    assert sleeps[0] == 2.0  # Retry-After wins
    assert 0.2 <= sleeps[1] <= 0.4  # bounded exponential backoff with jitter


def test_retries_are_bounded(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    client, host = make(httpserver, sleeps)
    httpserver.expect_request("/v2/a/b/manifests/1").respond_with_data("down", status=502)
    with pytest.raises(RegistryError) as err:
        client.get_manifest(Reference.parse(f"{host}/a/b:1"))
    assert len(sleeps) == 2 and "HTTP 502" in str(err.value)
    assert f"registry {host} repository a/b" in str(err.value)


def test_403_is_access_denied(httpserver: HTTPServer) -> None:
    client, host = make(httpserver, [])
    httpserver.expect_request("/v2/a/b/blobs/uploads/", method="POST").respond_with_json(
        {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]},
        status=403,
    )
    with pytest.raises(AuthError) as err:
        client.check_push_permission(Reference.parse(f"{host}/a/b:1"))
    assert "access denied (HTTP 403): DENIED" in str(err.value)


def test_failed_upload_is_cancelled_and_restarted(httpserver: HTTPServer, tmp_path: Path) -> None:
    client, host = make(httpserver, [], push_retries=1)
    blob = tmp_path / "blob"
    blob.write_bytes(b"layer-bytes")
    desc = Descriptor(OCI_LAYER_GZIP, "sha256:" + hashlib.sha256(b"layer-bytes").hexdigest(), 11)
    calls: list[str] = []
    state = {"puts": 0}

    def handler(request: Request) -> Response:
        calls.append(f"{request.method} {request.path}")
        if request.method == "HEAD":
            return Response(status=404)
        if request.method == "POST":
            n = sum(c.startswith("POST") for c in calls)
            return Response(status=202, headers={"Location": f"/v2/a/b/blobs/uploads/u{n}"})
        if request.method == "DELETE":
            return Response(status=204)
        if request.method == "PUT":
            state["puts"] += 1
            assert request.get_data() == b"layer-bytes"
            if state["puts"] == 1:
                return Response("boom", status=500)
            return Response(status=201, headers={"Docker-Content-Digest": desc.digest})
        return Response(status=400)

    httpserver.expect_request("/v2/a/b/blobs/" + desc.digest).respond_with_handler(handler)
    httpserver.expect_request("/v2/a/b/blobs/uploads/").respond_with_handler(handler)
    httpserver.expect_request("/v2/a/b/blobs/uploads/u1").respond_with_handler(handler)
    httpserver.expect_request("/v2/a/b/blobs/uploads/u2").respond_with_handler(handler)
    assert client.push_blob(Reference.parse(f"{host}/a/b:1"), desc, blob) == "uploaded"
    assert calls == [
        f"HEAD /v2/a/b/blobs/{desc.digest}",
        "POST /v2/a/b/blobs/uploads/",
        "PUT /v2/a/b/blobs/uploads/u1",
        "DELETE /v2/a/b/blobs/uploads/u1",
        "POST /v2/a/b/blobs/uploads/",
        "PUT /v2/a/b/blobs/uploads/u2",
    ]


IMMUTABLE = {
    "errors": [
        {
            "code": "TAG_INVALID",
            "message": "The image tag 'v1' already exists "
            "and cannot be overwritten because the repository is immutable.",
        }
    ]
}


@pytest.mark.parametrize("ignore", [True, False])
def test_immutable_tag_errors(httpserver: HTTPServer, ignore: bool) -> None:
    client, host = make(httpserver, [], push_ignore_immutable=ignore)
    httpserver.expect_request("/v2/a/b/manifests/v1", method="PUT").respond_with_json(
        IMMUTABLE, status=400
    )
    ref = Reference.parse(f"{host}/a/b:v1")
    if ignore:
        assert client.put_manifest(ref, MANIFEST, OCI_MANIFEST).startswith("sha256:")
    else:
        with pytest.raises(RegistryError, match="HTTP 400: TAG_INVALID"):
            client.put_manifest(ref, MANIFEST, OCI_MANIFEST)


def test_manifest_put_retried_with_push_retry(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    client, host = make(httpserver, sleeps, push_retries=1)
    script(httpserver, "/v2/a/b/manifests/v1", [Response("", status=400), Response("", status=201)])
    assert client.put_manifest(Reference.parse(f"{host}/a/b:v1"), MANIFEST, OCI_MANIFEST) == (
        "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    )
    assert len(sleeps) == 1


def test_schema1_manifest_gets_clear_error(httpserver: HTTPServer) -> None:
    client, host = make(httpserver, [])
    httpserver.expect_request("/v2/a/b/manifests/old").respond_with_data(
        json.dumps({"schemaVersion": 1, "name": "a/b", "fsLayers": []}),
        content_type="application/vnd.docker.distribution.manifest.v1+prettyjws",
    )
    from engine.errors import ImageError

    with pytest.raises(ImageError, match="schema 1"):
        client.resolve_image(Reference.parse(f"{host}/a/b:old"), "linux/amd64")


def test_image_download_retry_repeats_whole_resolution(httpserver: HTTPServer) -> None:
    sleeps: list[float] = []
    # one attempt per request, so only --image-download-retry can repeat the 500
    client, host = make(httpserver, sleeps, attempts=1, download_retries=1)
    script(httpserver, "/v2/a/b/manifests/1", [Response("", status=500), Response("", status=404)])
    from engine.errors import ManifestUnknown

    with pytest.raises(ManifestUnknown):  # second round got the registry's real answer
        client.resolve_image(Reference.parse(f"{host}/a/b:1"), "linux/amd64")
    assert len(sleeps) == 1


def test_manifest_whose_digest_header_lies_is_refused(httpserver: HTTPServer) -> None:
    from engine.errors import DigestMismatch

    client, host = make(httpserver, [])
    httpserver.expect_request("/v2/a/b/manifests/1").respond_with_data(
        MANIFEST, content_type=OCI_MANIFEST, headers={"Docker-Content-Digest": "sha256:" + "f" * 64}
    )
    with pytest.raises(DigestMismatch, match=f"registry {host} repository a/b"):
        client.get_manifest(Reference.parse(f"{host}/a/b:1"))


def test_blob_redirect_followed_and_oversized_blob_refused(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    from engine.errors import DigestMismatch

    client, host = make(httpserver, [])
    data = b"0123456789"
    desc = Descriptor(OCI_LAYER_GZIP, "sha256:" + hashlib.sha256(data).hexdigest(), 10)
    httpserver.expect_request(f"/v2/a/b/blobs/{desc.digest}").respond_with_data(
        "", status=307, headers={"Location": "/storage/blob"}
    )
    httpserver.expect_request("/storage/blob").respond_with_data(data)
    ref = Reference.parse(f"{host}/a/b:1")
    assert client.fetch_blob(ref, desc, tmp_path / "ok").read_bytes() == data
    short = Descriptor(OCI_LAYER_GZIP, desc.digest, 5)
    with pytest.raises(DigestMismatch, match="more than the 5 bytes"):
        client.fetch_blob(ref, short, tmp_path / "short")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"]


def test_failed_push_leaves_no_tag(httpserver: HTTPServer, tmp_path: Path) -> None:
    from engine.image.layout import ImageBlobs

    client, host = make(httpserver, [])
    puts: list[str] = []
    httpserver.expect_request("/v2/a/b/manifests/v1").respond_with_handler(
        lambda r: (puts.append(r.path), Response(status=201))[1]
    )
    httpserver.expect_request("/v2/a/b/blobs/uploads/", method="POST").respond_with_json(
        {"errors": [{"code": "DENIED", "message": "no"}]}, status=403
    )
    httpserver.expect_request(f"/v2/a/b/blobs/sha256:{'a' * 64}").respond_with_data("", 404)
    layer = tmp_path / "layer"
    layer.write_bytes(b"x")
    desc = Descriptor(OCI_LAYER_GZIP, "sha256:" + hashlib.sha256(b"x").hexdigest(), 1)
    httpserver.expect_request(f"/v2/a/b/blobs/{desc.digest}").respond_with_data("", 404)
    config = b"{}"
    httpserver.expect_request(
        "/v2/a/b/blobs/sha256:" + hashlib.sha256(config).hexdigest()
    ).respond_with_data("", 404)
    blobs = ImageBlobs(MANIFEST, OCI_MANIFEST, config, [(desc, layer)])
    with pytest.raises(AuthError, match="403"):
        client.push_image([Reference.parse(f"{host}/a/b:v1")], blobs)
    assert puts == []  # the manifest (the tag) was never written
