from __future__ import annotations

import tarfile
from pathlib import Path

import requests

from tests.support.images import busybox_base_layer, push_multiplatform_index, skopeo_inspect
from tests.support.registry import RunningRegistry


def test_registry_fixture_answers_v2(registry: RunningRegistry) -> None:
    r = requests.get(f"{registry.url}/v2/", timeout=5)
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_busybox_image_is_readable_by_skopeo(busybox_image: str) -> None:
    info = skopeo_inspect(busybox_image)
    assert info["Os"] == "linux"
    assert len(info["Layers"]) == 1
    assert any(e.startswith("PATH=") for e in info["Env"])
    config = skopeo_inspect(busybox_image, extra=["--config"])
    assert config["config"]["Cmd"] == ["sh"]


def test_multiplatform_index_lists_every_platform(registry: RunningRegistry) -> None:
    pushed = push_multiplatform_index(
        registry.host, "test/multi", "v1", ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    )
    raw = skopeo_inspect(pushed.ref, raw=True)
    found = {
        "/".join(
            filter(
                None,
                [m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")],
            )
        ): m["digest"]
        for m in raw["manifests"]
    }
    assert found == pushed.manifests


def test_multiplatform_index_over_busybox_base(
    registry: RunningRegistry, busybox_layout: Path, tmp_path: Path
) -> None:
    from engine.registry import Reference, RegistryClient, RegistryConfig

    pushed = push_multiplatform_index(
        registry.host,
        "test/multi-busybox",
        "v1",
        ["linux/amd64", "linux/arm64"],
        base_layer=busybox_base_layer(busybox_layout),
    )
    with RegistryClient(RegistryConfig(env={})) as client:
        img = client.resolve_image(Reference.parse(pushed.ref), "linux/arm64")
        assert len(img.layers) == 2 and str(img.config.platform) == "linux/arm64"
        marker = client.fetch_blob(img.source, img.layers[1], tmp_path / "marker.tgz")
    with tarfile.open(marker) as tar:
        f = tar.extractfile("platform")
        assert f is not None and f.read() == b"linux/arm64\n"
