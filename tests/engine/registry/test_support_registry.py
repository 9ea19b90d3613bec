from __future__ import annotations

import requests

from tests.support.images import push_multiplatform_index, skopeo_inspect
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
