"""OCI layout and docker-archive outputs, checked by skopeo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from engine.errors import DigestMismatch, ImageError
from engine.image.archive import open_archive_member, read_docker_archive, write_docker_archive
from engine.image.layout import ImageBlobs, blob_path, read_oci_layout, write_oci_layout
from engine.image.model import Platform
from engine.registry import Reference, RegistryClient, RegistryConfig
from tests.support.registry import RunningRegistry


@pytest.fixture(scope="module")
def busybox_blobs(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> ImageBlobs:
    work = tmp_path_factory.mktemp("busybox-blobs")
    with RegistryClient(RegistryConfig(env={})) as client:
        img = client.resolve_image(Reference.parse(busybox_image), "linux/amd64")
        layers = [
            (d, client.fetch_blob(img.source, d, work / d.digest.replace(":", "_")))
            for d in img.layers
        ]
    return ImageBlobs(
        img.manifest_bytes,
        img.manifest.media_type,
        img.config_bytes,
        layers,
        ref_names=("latest",),
        platform=Platform.parse("linux/amd64"),
    )


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout


def test_oci_layout_read_by_skopeo_and_back(busybox_blobs: ImageBlobs, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "layout"
    write_oci_layout(dest, [busybox_blobs])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["layout"]  # no temp left
    info = json.loads(skopeo("inspect", f"oci:{dest}:latest"))
    assert info["Digest"] == busybox_blobs.manifest_descriptor.digest
    back = read_oci_layout(dest, "latest")
    assert back.manifest.raw == busybox_blobs.manifest and back.config == busybox_blobs.config
    assert back.layer_paths[0].read_bytes() == busybox_blobs.layers[0][1].read_bytes()
    index = json.loads((dest / "index.json").read_text())
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}


def test_oci_layout_replaces_existing_and_detects_corruption(
    busybox_blobs: ImageBlobs, tmp_path: Path
) -> None:
    dest = tmp_path / "layout"
    dest.mkdir()
    (dest / "stale").write_text("old")
    write_oci_layout(dest, [busybox_blobs])
    assert not (dest / "stale").exists()
    config_path = blob_path(dest, read_oci_layout(dest).manifest.config.digest)
    config_path.write_bytes(b"{}")
    with pytest.raises(DigestMismatch):
        read_oci_layout(dest)
    with pytest.raises(ImageError, match="no image named"):
        read_oci_layout(dest, "nope")


def test_oci_layout_pushable_by_skopeo_keeps_digest(
    busybox_blobs: ImageBlobs, registry: RunningRegistry, tmp_path: Path
) -> None:
    dest = write_oci_layout(tmp_path / "layout", [busybox_blobs])
    target = f"{registry.host}/from-layout/busybox:1"
    skopeo("copy", "--quiet", "--dest-tls-verify=false", f"oci:{dest}:latest", f"docker://{target}")
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{target}"))
    assert info["Digest"] == busybox_blobs.manifest_descriptor.digest


def test_docker_archive_accepted_by_skopeo(busybox_blobs: ImageBlobs, tmp_path: Path) -> None:
    tagged = ImageBlobs(
        busybox_blobs.manifest,
        busybox_blobs.manifest_media_type,
        busybox_blobs.config,
        busybox_blobs.layers,
        ref_names=("example.com/app:1.0",),
    )
    dest = write_docker_archive(tmp_path / "image.tar", [tagged])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.tar"]
    info = json.loads(skopeo("inspect", f"docker-archive:{dest}"))
    by_tag = json.loads(skopeo("inspect", f"docker-archive:{dest}:example.com/app:1.0"))
    assert by_tag["Digest"] == info["Digest"]  # skopeo finds the image by its RepoTag
    # docker-archive layers are identified by their uncompressed digests (diff_ids)
    assert info["Layers"] == json.loads(busybox_blobs.config)["rootfs"]["diff_ids"]
    config = json.loads(skopeo("inspect", "--config", f"docker-archive:{dest}"))
    assert config["config"]["Cmd"] == ["sh"]
    # skopeo converts it to an OCI layout with the same config
    skopeo("copy", "--quiet", f"docker-archive:{dest}", f"oci:{tmp_path / 'conv'}:x")
    converted = read_oci_layout(tmp_path / "conv", "x").config
    assert json.loads(converted) == json.loads(busybox_blobs.config)
    images = read_docker_archive(dest)
    assert images[0].repo_tags == ("example.com/app:1.0",)
    with open_archive_member(dest, images[0].layer_members[0]) as f:
        assert f.read() == busybox_blobs.layers[0][1].read_bytes()


def test_docker_archive_rejects_size_mismatch_and_leaves_nothing(
    busybox_blobs: ImageBlobs, tmp_path: Path
) -> None:
    desc, path = busybox_blobs.layers[0]
    short = tmp_path / "short"
    short.write_bytes(path.read_bytes()[:-1])
    bad = ImageBlobs(
        busybox_blobs.manifest,
        busybox_blobs.manifest_media_type,
        busybox_blobs.config,
        [(desc, short)],
    )
    with pytest.raises(ImageError, match="bytes but descriptor says"):
        write_docker_archive(tmp_path / "out" / "x.tar", [bad])
    assert list((tmp_path / "out").iterdir()) == []


def test_busybox_layout_fixture_is_readable(busybox_layout: Path) -> None:
    img = read_oci_layout(busybox_layout, "latest")
    config = json.loads(img.config)
    assert config["config"]["Cmd"] == ["sh"] and len(img.layer_paths) == 1
