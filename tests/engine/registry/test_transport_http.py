"""The registry transport on engine.httpclient: pooled connections, credentials that stay
on the registry across a storage redirect, HTTPS through a proxy, a cut blob download."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from engine.errors import RegistryError
from engine.image.model import OCI_LAYER_GZIP, Descriptor
from engine.registry import Reference, RegistryClient, RegistryConfig, RetryPolicy
from tests.engine.httpd import origin_server, proxy_server
from tests.engine.registry.conftest import TLS_USER, TlsRegistry
from tests.engine.registry.imagecopy import copy_image
from tests.engine.registry.test_auth_registries import client_for, docker_config
from tests.support.registry import RunningRegistry

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


def test_pull_and_push_reuse_a_few_kept_alive_connections(
    busybox_image: str, registry: RunningRegistry, tmp_path: Path
) -> None:
    client = RegistryClient(RegistryConfig(env={}, retry=FAST))
    src = client.resolve_image(Reference.parse(busybox_image), "linux/amd64")
    dest = Reference.parse(f"{registry.host}/pooled/copy:1")
    copy_image(src, client, client, dest, tmp_path / "blobs")
    copy_image(src, client, client, Reference.parse(f"{registry.host}/pooled/again:1"), tmp_path)
    opened = client.transport.session.connections_opened
    # a dozen requests and more; connections only for the ping and the parallel uploads
    assert 1 <= opened <= 4, opened
    assert client.resolve_image(dest, "linux/amd64").manifest_digest == src.manifest_digest
    assert client.transport.session.connections_opened == opened
    client.close()


def test_storage_redirect_does_not_carry_registry_credentials(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    data = b"layer bytes on a storage host"
    desc = Descriptor(OCI_LAYER_GZIP, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    storage = HTTPServer(host="localhost", port=0)
    storage.start()
    try:
        storage.expect_request("/bucket/blob").respond_with_data(data)
        httpserver.expect_request("/v2/").respond_with_data(
            "", status=401, headers={"WWW-Authenticate": 'Basic realm="registry"'}
        )
        httpserver.expect_request(f"/v2/a/b/blobs/{desc.digest}").respond_with_data(
            "", status=307, headers={"Location": f"http://localhost:{storage.port}/bucket/blob"}
        )
        host = f"127.0.0.1:{httpserver.port}"
        env = docker_config(tmp_path / "cfg", {host: ("user", "registry-pw")})
        client = RegistryClient(RegistryConfig(env=env, retry=FAST), sleep=lambda s: None)
        got = client.fetch_blob(Reference.parse(f"{host}/a/b:1"), desc, tmp_path / "blob")
        assert got.read_bytes() == data
        registry_auth = [r.headers.get("Authorization") for r, _ in httpserver.log]
        assert any(a and a.startswith("Basic ") for a in registry_auth)
        assert [r.headers.get("Authorization") for r, _ in storage.log] == [None]
    finally:
        storage.clear()
        storage.stop()


def test_tls_registry_through_an_https_proxy(tls_registry: TlsRegistry, tmp_path: Path) -> None:
    host = tls_registry.registry.host
    ca = {host: str(tls_registry.tls.ca_cert)}
    with proxy_server() as proxy:
        env = {
            **docker_config(tmp_path / "cfg", {host: TLS_USER}),
            "HTTPS_PROXY": proxy.url,
        }
        client_for(env, registry_certificate=ca).check_push_permission(
            Reference.parse(f"{host}/proxied/app:1")
        )
        assert proxy.seen and {m for m, _, _ in proxy.seen} == {"CONNECT"}
        assert {t for _, t, _ in proxy.seen} == {host}
        proxy.seen.clear()
        env["NO_PROXY"] = "127.0.0.1"
        client_for(env, registry_certificate=ca).check_push_permission(
            Reference.parse(f"{host}/proxied/app:1")
        )
        assert proxy.seen == []


def test_a_cut_blob_download_is_restarted_then_reported(tmp_path: Path) -> None:
    data = b"0123456789" * 10  # the server announces 100 bytes and sends the first 10
    desc = Descriptor(OCI_LAYER_GZIP, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    sleeps: list[float] = []
    with origin_server() as origin:
        host = f"127.0.0.1:{origin.port}"
        client = RegistryClient(RegistryConfig(env={}, retry=FAST), sleep=sleeps.append)
        with pytest.raises(RegistryError) as err:
            client.fetch_blob(Reference.parse(f"{host}/a/b:1"), desc, tmp_path / "blob")
        blob_gets = [s for s in origin.seen if "/blobs/" in s.path]
    assert "connection lost while downloading" in str(err.value) and host in str(err.value)
    assert len(blob_gets) == 2 and len(sleeps) == 1  # restarted once (attempts=2), reported
    assert list(tmp_path.iterdir()) == []


def test_a_local_plain_http_registry_costs_no_verifying_tls_context(
    registry: RunningRegistry, tls_registry: TlsRegistry, tmp_path: Path
) -> None:
    from engine import httpclient

    bundle = tmp_path / "bundle.pem"  # a path of its own: its context is this test's alone
    bundle.write_bytes(tls_registry.tls.ca_cert.read_bytes())
    env = {"REQUESTS_CA_BUNDLE": str(bundle)}
    plain = RegistryClient(RegistryConfig(env=env, retry=FAST))
    assert plain.transport.base_url(registry.host, "pull") == f"http://{registry.host}"
    assert not [k for k in httpclient._contexts if k[0] == str(bundle)]
    # a local registry that speaks TLS is still reached over verified HTTPS
    tls = RegistryClient(RegistryConfig(env=env, retry=FAST))
    host = tls_registry.registry.host
    assert tls.transport.base_url(host, "pull") == f"https://{host}"
    assert [k for k in httpclient._contexts if k[0] == str(bundle)]
