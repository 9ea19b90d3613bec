"""Real registries with TLS + htpasswd and with token auth; pull-through mirrors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.errors import AuthError, ManifestUnknown, RegistryError
from engine.registry import Reference, RegistryClient, RegistryConfig, RetryPolicy
from engine.registry.client import ResolvedImage
from tests.engine.registry.conftest import TLS_USER, TlsRegistry, TokenRegistry
from tests.engine.registry.imagecopy import copy_image
from tests.support.images import skopeo_inspect
from tests.support.registry import RunningRegistry, start_registry

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


def docker_config(tmp: Path, auths: dict[str, tuple[str, str]]) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    entries = {
        host: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()}
        for host, (u, p) in auths.items()
    }
    (tmp / "config.json").write_text(json.dumps({"auths": entries}))
    return {"DOCKER_CONFIG": str(tmp)}


def client_for(env: dict[str, str], **opts: Any) -> RegistryClient:
    cfg = RegistryConfig.from_options(SimpleNamespace(**opts), env)
    from dataclasses import replace

    return RegistryClient(replace(cfg, retry=FAST), sleep=lambda s: None)


@pytest.fixture(scope="module")
def busybox(busybox_image: str) -> ResolvedImage:
    return client_for({}).resolve_image(Reference.parse(busybox_image), "linux/amd64")


# ---- TLS + htpasswd ----


def test_tls_without_ca_fails_with_one_line_tls_error(tls_registry: TlsRegistry) -> None:
    host = tls_registry.registry.host
    with pytest.raises(RegistryError) as err:
        client_for({}).resolve_image(Reference.parse(f"{host}/x/y:1"))
    msg = str(err.value)
    assert "TLS certificate verify failed" in msg and host in msg and "\n" not in msg


def test_tls_wrong_password_is_auth_error_without_secret(
    tls_registry: TlsRegistry, tmp_path: Path
) -> None:
    host = tls_registry.registry.host
    env = docker_config(tmp_path, {host: ("alice", "not-the-password-xyz")})
    client = client_for(env, registry_certificate={host: str(tls_registry.tls.ca_cert)})
    with pytest.raises(AuthError) as err:
        client.resolve_image(Reference.parse(f"{host}/x/y:1"))
    msg = str(err.value)
    assert "HTTP 401" in msg and host in msg and "x/y" in msg
    assert "not-the-password-xyz" not in msg and "alice:" not in msg
    assert err.value.exit_code == 5


def test_tls_with_certificate_and_htpasswd_round_trip(
    tls_registry: TlsRegistry, busybox: ResolvedImage, tmp_path: Path
) -> None:
    host = tls_registry.registry.host
    env = docker_config(tmp_path / "cfg", {f"https://{host}": TLS_USER})
    client = client_for(env, registry_certificate={host: str(tls_registry.tls.ca_cert)})
    dst = Reference.parse(f"{host}/secure/busybox:1")
    client.check_push_permission(dst)
    digest = copy_image(busybox, client_for({}), client, dst, tmp_path / "blobs")
    assert digest == busybox.manifest_digest
    assert client.resolve_image(dst, "linux/amd64").manifest_digest == digest
    info = skopeo_inspect(str(dst), extra=["--creds", ":".join(TLS_USER)])
    assert info["Digest"] == digest
    # --skip-tls-verify-registry works without the CA
    skip = client_for(env, skip_tls_verify_registry=(host,))
    assert skip.resolve_image(dst, "linux/amd64").manifest_digest == digest


def test_tls_anonymous_is_refused(tls_registry: TlsRegistry) -> None:
    host = tls_registry.registry.host
    client = client_for({}, registry_certificate={host: str(tls_registry.tls.ca_cert)})
    with pytest.raises(AuthError, match="no credentials found"):
        client.check_push_permission(Reference.parse(f"{host}/secure/busybox:1"))


# ---- token auth ----


def test_token_auth_push_pull_mount_and_token_cache(
    token_registry: TokenRegistry, busybox: ResolvedImage, tmp_path: Path
) -> None:
    host = token_registry.registry.host
    env = docker_config(tmp_path / "cfg", {host: ("writer", "writer-pw")})
    client = client_for(env)
    dst = Reference.parse(f"{host}/team/busybox:1")
    client.check_push_permission(dst)
    digest = copy_image(busybox, client_for({}), client, dst, tmp_path / "blobs")
    assert digest == busybox.manifest_digest
    before = token_registry.issuer.requests_seen
    again = client.resolve_image(dst, "linux/amd64")
    client.fetch_blob(again.source, again.layers[0], tmp_path / "layer")
    assert token_registry.issuer.requests_seen - before <= 1  # pull scope token, then cached
    # cross-repository mount needs pull on the source in the same token
    other = Reference.parse(f"{host}/team/other:1")
    assert client.push_blob(other, again.layers[0], tmp_path / "layer", mount_from=dst) == "mounted"


def test_token_auth_reader_cannot_push(
    token_registry: TokenRegistry, busybox: ResolvedImage, tmp_path: Path
) -> None:
    host = token_registry.registry.host
    env = docker_config(tmp_path, {host: ("reader", "reader-pw")})
    with pytest.raises(AuthError) as err:
        client_for(env).check_push_permission(Reference.parse(f"{host}/team/busybox:2"))
    msg = str(err.value)
    assert "access denied, insufficient scope repository:team/busybox" in msg
    assert "reader-pw" not in msg


def test_token_auth_wrong_password_and_anonymous(
    token_registry: TokenRegistry, tmp_path: Path
) -> None:
    host = token_registry.registry.host
    env = docker_config(tmp_path, {host: ("writer", "bad-secret-123")})
    with pytest.raises(AuthError) as err:
        client_for(env).resolve_image(Reference.parse(f"{host}/team/busybox:1"))
    assert "refused the credentials" in str(err.value) and "bad-secret-123" not in str(err.value)
    with pytest.raises(AuthError, match="HTTP 401"):
        client_for({}).resolve_image(Reference.parse(f"{host}/team/busybox:1"))


# ---- mirrors ----


def test_registry_mirror_pull_through_for_docker_hub_names(
    registry: RunningRegistry,
    mirror_registry: RunningRegistry,
    busybox: ResolvedImage,
    tmp_path: Path,
) -> None:
    # upstream holds library/busybox; asking for "busybox" goes to the mirror only
    copy_image(
        busybox,
        client_for({}),
        client_for({}),
        Reference.parse(f"{registry.host}/library/busybox:mirrored"),
        tmp_path,
    )
    client = client_for(
        {}, registry_mirror=(mirror_registry.host,), skip_default_registry_fallback=True
    )
    img = client.resolve_image(Reference.parse("busybox:mirrored"), "linux/amd64")
    assert img.source.registry == mirror_registry.host
    assert img.source.repository == "library/busybox"
    assert img.manifest_digest == busybox.manifest_digest
    client.fetch_blob(img.source, img.layers[0], tmp_path / "layer")


def test_registry_map_falls_back_to_original_unless_told_not_to(
    registry: RunningRegistry, busybox_image: str, tmp_path: Path
) -> None:
    empty = start_registry(tmp_path / "empty")
    try:
        ref = Reference.parse(busybox_image)
        mapped = {registry.host: (empty.host,)}
        img = client_for({}, registry_map=mapped).resolve_image(ref, "linux/amd64")
        assert img.source.registry == registry.host
        with pytest.raises(ManifestUnknown) as err:
            client_for({}, registry_map=mapped, skip_default_registry_fallback=True).resolve_image(
                ref
            )
        assert empty.host in str(err.value)
    finally:
        empty.stop()


# ---- mutual TLS (--registry-client-cert) ----


def test_registry_client_cert_for_mutual_tls(tmp_path: Path, busybox: ResolvedImage) -> None:
    from tests.support.registry import make_tls

    tls = make_tls(tmp_path / "tls")
    reg = start_registry(
        tmp_path / "reg",
        tls=(tls.server_cert, tls.server_key),
        ca_cert=tls.ca_cert,
        client_ca=tls.ca_cert,
        client_cert=(tls.client_cert, tls.client_key),
    )
    try:
        ca = {reg.host: str(tls.ca_cert)}
        ref = Reference.parse(f"{reg.host}/mtls/busybox:1")
        with pytest.raises(RegistryError) as err:
            client_for({}, registry_certificate=ca).check_push_permission(ref)
        assert reg.host in str(err.value)
        client = client_for(
            {},
            registry_certificate=ca,
            registry_client_cert={reg.host: f"{tls.client_cert},{tls.client_key}"},
        )
        digest = copy_image(busybox, client_for({}), client, ref, tmp_path / "blobs")
        assert client.resolve_image(ref, "linux/amd64").manifest_digest == digest
    finally:
        reg.stop()


def test_no_secret_in_logs_at_debug_level(
    token_registry: TokenRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    host = token_registry.registry.host
    env = docker_config(tmp_path, {host: ("writer", "writer-pw")})
    caplog.set_level(logging.DEBUG)
    client = client_for(env, registry_map={host: (host,)}, image_download_retry=1)
    with pytest.raises(ManifestUnknown):
        client.resolve_image(Reference.parse(f"{host}/team/absent:1"))
    token = base64.b64encode(b"writer:writer-pw").decode()
    assert caplog.records  # something was logged (urllib3 debug, mirror warning)
    assert "writer-pw" not in caplog.text and token not in caplog.text
    assert "Bearer " not in caplog.text
