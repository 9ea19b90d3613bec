from __future__ import annotations

import json

import pytest

from engine.errors import ImageError
from engine.image.model import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1_SIGNED,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    build_index,
    build_manifest,
    canonical_json,
    descriptor_for,
    parse_manifest,
    sha256_digest,
)

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def test_canonical_json_sorts_keys_without_spaces_and_escapes_like_go() -> None:
    out = canonical_json({"b": 1, "a": ["x<y>&z", "é"], "c": {"z": None, "y": True}})
    assert out == '{"a":["x\\u003cy\\u003e\\u0026z","é"],"b":1,"c":{"y":true,"z":null}}'.encode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("Linux/X86_64", "linux/amd64"),
        ("linux/arm/v6", "linux/arm/v6"),
    ],
)
def test_platform_parse_normalises(text: str, expected: str) -> None:
    assert str(Platform.parse(text)) == expected


@pytest.mark.parametrize("bad", ["linux", "linux/", "a/b/c/d", ""])
def test_platform_parse_rejects_malformed(bad: str) -> None:
    with pytest.raises(ImageError, match="invalid platform"):
        Platform.parse(bad)


def test_platform_matching_rules() -> None:
    arm64 = Platform.parse("linux/arm64")
    assert arm64.matches(Platform("linux", "arm64", "v8"))
    assert arm64.matches(Platform("linux", "arm64"))
    assert not arm64.matches(Platform("linux", "amd64"))
    assert Platform.parse("linux/arm/v7").matches(Platform("linux", "arm"))
    assert not Platform.parse("linux/arm/v7").matches(Platform("linux", "arm", "v6"))
    assert not Platform.parse("linux/amd64").matches(Platform("windows", "amd64"))


def test_index_select_prefers_exact_variant() -> None:
    entries = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": D1,
            "size": 1,
            "platform": {"os": "linux", "architecture": "arm", "variant": "v6"},
        },
        {
            "mediaType": OCI_MANIFEST,
            "digest": D2,
            "size": 2,
            "platform": {"os": "linux", "architecture": "arm", "variant": "v7"},
        },
    ]
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    index = parse_manifest(raw)
    assert isinstance(index, Index)
    chosen = index.select(Platform.parse("linux/arm/v7"))
    assert chosen is not None and chosen.digest == D2
    assert index.select(Platform.parse("linux/amd64")) is None


def test_parse_docker_manifest_keeps_raw_bytes_and_digest() -> None:
    body = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": D1,
            "size": 10,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": D2,
                "size": 20,
            }
        ],
    }
    raw = json.dumps(body, indent=3).encode()
    m = parse_manifest(raw, DOCKER_MANIFEST + "; charset=utf-8")
    assert isinstance(m, Manifest)
    assert m.media_type == DOCKER_MANIFEST
    assert m.layers[0].size == 20
    assert m.digest == sha256_digest(raw)


def test_media_type_guessed_when_missing() -> None:
    raw = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert isinstance(parse_manifest(raw), Index)
    raw = json.dumps({"schemaVersion": 2, "manifests": [], "mediaType": DOCKER_MANIFEST_LIST})
    assert parse_manifest(raw.encode()).media_type == DOCKER_MANIFEST_LIST


def test_schema1_gets_clear_error() -> None:
    raw = json.dumps({"schemaVersion": 1, "fsLayers": []}).encode()
    with pytest.raises(ImageError, match="schema 1"):
        parse_manifest(raw)
    with pytest.raises(ImageError, match="schema 1"):
        parse_manifest(b"{}", DOCKER_SCHEMA1_SIGNED)


def test_malformed_descriptor_rejected() -> None:
    with pytest.raises(ImageError, match="invalid digest"):
        Descriptor.from_dict({"mediaType": OCI_LAYER_GZIP, "digest": "sha256:xyz", "size": 1})


def test_build_manifest_and_index_round_trip() -> None:
    config = descriptor_for(b"{}", OCI_CONFIG)
    layer = Descriptor(OCI_LAYER_GZIP, D1, 5)
    raw = build_manifest(config, [layer], annotations={"k": "v"})
    m = parse_manifest(raw)
    assert isinstance(m, Manifest)
    assert m.config == config and m.layers == (layer,) and m.annotations == {"k": "v"}
    entry = Descriptor(OCI_MANIFEST, m.digest, len(raw), platform=Platform.parse("linux/arm64"))
    idx = parse_manifest(build_index([entry]))
    assert isinstance(idx, Index) and idx.manifests == (entry,)


def test_image_config_layers_and_history() -> None:
    cfg = ImageConfig.new(Platform.parse("linux/arm/v7"), created="2024-01-01T00:00:00Z")
    cfg.add_layer(D1, created_by="RUN a")
    cfg.add_empty_history(created_by="ENV x=1")
    cfg.check()
    again = ImageConfig.from_bytes(cfg.to_bytes())
    assert again.diff_ids == [D1]
    assert again.history[1]["empty_layer"] is True
    assert str(again.platform) == "linux/arm/v7"
    again.history.append({"created_by": "RUN b"})
    with pytest.raises(ImageError, match="1 layers but 2"):
        again.check()


def test_image_config_from_null_fields() -> None:
    raw = b'{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":null}}'
    cfg = ImageConfig.from_bytes(raw)
    assert cfg.diff_ids == [] and cfg.history == [] and cfg.env == []
