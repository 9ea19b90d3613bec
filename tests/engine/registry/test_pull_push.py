"""Pull and push against a real docker-registry (plain HTTP on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.errors import DigestMismatch, ImageError, ManifestUnknown, RegistryError
from engine.image.model import OCI_LAYER_GZIP, Descriptor, Manifest, descriptor_for
from engine.registry import Reference, RegistryClient, RegistryConfig, RetryPolicy
from tests.engine.registry.imagecopy import copy_image
from tests.support.images import push_multiplatform_index, skopeo_copy, skopeo_inspect
from tests.support.registry import RunningRegistry, start_registry

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


def make_client(**kw: object) -> RegistryClient:
    return RegistryClient(RegistryConfig(env={}, retry=FAST), sleep=lambda s: None, **kw)  # type: ignore[arg-type]


def test_round_trip_keeps_digests(
    busybox_image: str, registry: RunningRegistry, tmp_path: Path
) -> None:
    client = make_client()
    img = client.resolve_image(Reference.parse(busybox_image), "linux/amd64")
    assert isinstance(img.manifest, Manifest)
    assert img.config.env and img.config.container_config["Cmd"] == ["sh"]
    dst = Reference.parse(f"{registry.host}/roundtrip/busybox:copy")
    pushed = copy_image(img, client, client, dst, tmp_path)
    again = make_client().resolve_image(dst, "linux/amd64")
    assert pushed == img.manifest_digest == again.manifest_digest
    assert again.config_bytes == img.config_bytes
    # skopeo reads what we pushed, and agrees on the digest
    assert skopeo_inspect(str(dst))["Digest"] == pushed


def test_fetch_blob_streams_to_file_and_verifies(busybox_image: str, tmp_path: Path) -> None:
    client = make_client()
    img = client.resolve_image(Reference.parse(busybox_image), "linux/amd64")
    layer = img.layers[0]
    dest = client.fetch_blob(img.source, layer, tmp_path / "layer.tgz")
    data = dest.read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.digest
    assert len(data) == layer.size
    assert [p.name for p in tmp_path.iterdir()] == ["layer.tgz"]  # no temp file left


def test_cross_repository_mount_and_head_before_upload(
    busybox_image: str, registry: RunningRegistry, tmp_path: Path
) -> None:
    client = make_client()
    src = Reference.parse(busybox_image)
    img = client.resolve_image(src, "linux/amd64")
    layer = img.layers[0]
    dst = Reference.parse(f"{registry.host}/mounted/busybox:1")
    missing = tmp_path / "never-read"  # a mount must not need the bytes
    missing.write_bytes(b"x" * layer.size)
    assert client.push_blob(dst, layer, missing, mount_from=img.source) == "mounted"
    assert client.blob_exists(dst, layer.digest)
    assert client.push_blob(dst, layer, missing) == "exists"


def test_chunked_upload_fallback(registry: RunningRegistry, tmp_path: Path) -> None:
    client = make_client(upload_mode="chunked", upload_chunk_size=64 * 1024)
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(300 * 1024 + 17))
    desc = Descriptor(
        OCI_LAYER_GZIP,
        "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest(),
        blob.stat().st_size,
    )
    ref = Reference.parse(f"{registry.host}/chunked/blob:1")
    assert client.push_blob(ref, desc, blob) == "uploaded"
    out = client.fetch_blob(ref, desc, tmp_path / "back")
    assert out.read_bytes() == blob.read_bytes()


def test_upload_with_wrong_digest_is_refused_and_not_registered(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    client = make_client()
    blob = tmp_path / "blob"
    blob.write_bytes(b"hello world")
    wrong = Descriptor(OCI_LAYER_GZIP, "sha256:" + "0" * 64, 11)
    ref = Reference.parse(f"{registry.host}/bad/blob:1")
    with pytest.raises(RegistryError, match=r"registry 127\.0\.0\.1:\d+ repository bad/blob"):
        client.push_blob(ref, wrong, blob)
    assert not client.blob_exists(ref, wrong.digest)


def test_platform_selected_from_index(registry: RunningRegistry) -> None:
    pushed = push_multiplatform_index(
        registry.host, "multi/app", "v1", ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    )
    client = make_client()
    for want, key in [
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/amd64", "linux/amd64"),
    ]:
        img = client.resolve_image(Reference.parse(pushed.ref), want)
        assert img.manifest_digest == pushed.manifests[key]
        assert img.index_digest == pushed.digest
    with pytest.raises(ImageError, match="no image for platform linux/s390x"):
        client.resolve_image(Reference.parse(pushed.ref), "linux/s390x")
    by_digest = Reference.parse(f"{registry.host}/multi/app@{pushed.digest}")
    assert (
        client.resolve_image(by_digest, "linux/amd64").manifest_digest
        == pushed.manifests["linux/amd64"]
    )


def test_missing_image_is_manifest_unknown(registry: RunningRegistry) -> None:
    with pytest.raises(ManifestUnknown) as err:
        make_client().resolve_image(Reference.parse(f"{registry.host}/nope/nothing:1"))
    msg = str(err.value)
    assert registry.host in msg and "nope/nothing" in msg and "404" in msg


def test_pinned_digest_mismatch_is_refused(busybox_image: str, registry: RunningRegistry) -> None:
    ref = Reference.parse(busybox_image).with_digest("sha256:" + "1" * 64)
    with pytest.raises((DigestMismatch, ManifestUnknown)):
        make_client().resolve_image(ref)


def test_corrupted_blob_in_registry_is_detected(registry: RunningRegistry, tmp_path: Path) -> None:
    client = make_client()
    data = os.urandom(4096)
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    desc = descriptor_for(data, OCI_LAYER_GZIP)
    ref = Reference.parse(f"{registry.host}/corrupt/blob:1")
    client.push_blob(ref, desc, blob)
    hexd = desc.digest.split(":")[1]
    stored = registry.root / "storage/docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    stored.write_bytes(bytes(b ^ 0xFF for b in data))  # same size, different bytes
    with pytest.raises(DigestMismatch, match="does not match"):
        client.fetch_blob(ref, desc, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]


def test_registry_down_gives_one_line_error(tmp_path: Path) -> None:
    reg = start_registry(tmp_path / "down")
    host = reg.host
    reg.stop()
    with pytest.raises(RegistryError) as err:
        make_client().resolve_image(Reference.parse(f"{host}/some/image:1"))
    assert "connection refused" in str(err.value) and host in str(err.value)
    assert err.value.exit_code == 5


def test_we_pull_what_skopeo_pushes_docker_v2(
    busybox_image: str, registry: RunningRegistry
) -> None:
    dst = f"{registry.host}/skopeo/docker-format:1"
    skopeo_copy(f"docker://{busybox_image}", f"docker://{dst}", extra=["--format", "v2s2"])
    img = make_client().resolve_image(Reference.parse(dst), "linux/amd64")
    assert img.manifest.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    raw = json.loads(img.manifest_bytes)
    assert raw["layers"][0]["mediaType"].startswith("application/vnd.docker.image.rootfs")


def test_push_permission_check_and_manifest_per_tag(
    busybox_image: str, registry: RunningRegistry
) -> None:
    client = make_client()
    img = client.resolve_image(Reference.parse(busybox_image), "linux/amd64")
    for tag in ("a", "b"):
        dst = Reference.parse(f"{registry.host}/base/busybox:{tag}")
        client.check_push_permission(dst)
        assert client.put_manifest(dst, img.manifest_bytes, img.manifest.media_type) == (
            img.manifest_digest
        )
        assert client.head_manifest(dst) == img.manifest_digest


def test_push_image_to_several_tags_read_by_skopeo(
    busybox_image: str, registry: RunningRegistry, tmp_path: Path
) -> None:
    from engine.image.layout import ImageBlobs

    client = make_client()
    img = client.resolve_image(Reference.parse(busybox_image), "linux/amd64")
    layers = [(d, client.fetch_blob(img.source, d, tmp_path / d.digest)) for d in img.layers]
    blobs = ImageBlobs(img.manifest_bytes, img.manifest.media_type, img.config_bytes, layers)
    refs = [Reference.parse(f"{registry.host}/pushed/app:{t}") for t in ("1.0", "latest")]
    digest = client.push_image(refs, blobs, mount_from=img.source)
    assert digest == img.manifest_digest
    for ref in refs:
        assert skopeo_inspect(str(ref))["Digest"] == digest


def test_mount_blob_without_bytes(busybox_image: str, registry: RunningRegistry) -> None:
    client = make_client()
    img = client.resolve_image(Reference.parse(busybox_image), "linux/amd64")
    layer = img.layers[0]
    dst = Reference.parse(f"{registry.host}/mount-only/app:1")
    assert client.mount_blob(dst, layer, img.source)
    assert client.blob_exists(dst, layer.digest)
    unknown = Descriptor(OCI_LAYER_GZIP, "sha256:" + "e" * 64, 3)
    assert not client.mount_blob(dst, unknown, img.source)  # refused: caller must upload
    other_registry = Reference.parse("elsewhere.example/x/y")
    assert not client.mount_blob(dst, unknown, other_registry)
    with pytest.raises(FileNotFoundError):
        client.push_blob(dst, unknown, Path("/nonexistent-brickyard-blob"), mount_from=img.source)


def test_a_mount_is_tried_without_a_head_and_refused_mounts_fall_back(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    """One round trip for the common case (blob in the source repository): POST ?mount=.
    A refused mount (blob not in the source) checks the target, then uploads."""
    client = RegistryClient(RegistryConfig(env={}))
    blob = tmp_path / "blob"
    blob.write_bytes(b"mount me" * 1000)
    desc = Descriptor(
        "application/octet-stream",
        "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest(),
        blob.stat().st_size,
    )
    src = Reference.parse(f"{registry.host}/mnt/src:1")
    dst = Reference.parse(f"{registry.host}/mnt/dst:1")
    assert client.push_blob(src, desc, blob) == "uploaded"
    sent: list[str] = []
    send = client.transport._send

    def counting(req: Any, *a: Any, **kw: Any) -> Any:
        sent.append(req.method)
        return send(req, *a, **kw)

    client.transport._send = counting  # type: ignore[method-assign]
    assert client.push_blob(dst, desc, blob, mount_from=src) == "mounted"
    assert sent == ["POST"]
    sent.clear()
    other = Reference.parse(f"{registry.host}/mnt/empty:1")  # holds nothing: mount refused
    third = Reference.parse(f"{registry.host}/mnt/third:1")
    assert client.push_blob(third, desc, blob, mount_from=other) == "uploaded"
    assert sent[:2] == ["POST", "HEAD"] and "PUT" in sent
    sent.clear()
    assert client.push_blob(third, desc, blob, mount_from=other) == "exists"
    assert sent == ["POST", "HEAD", "DELETE"]  # the refused mount's session is cancelled
