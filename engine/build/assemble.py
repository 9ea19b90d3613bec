"""From a finished stage to an image: config blob, manifest, digest, and the files that
name it (`--digest-file`, `--image-name-with-digest-file`, `--image-name-tag-with-digest-file`).

Manifest media type follows kaniko: the base image's (OCI or Docker schema 2); FROM scratch
gives Docker schema 2, as kaniko's empty image does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.build.config import StageConfig
from engine.build.report import write_atomic
from engine.image.model import (
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_ZSTD,
    DOCKER_MANIFEST,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Descriptor,
    build_manifest,
    canonical_json,
    config_media_type_for,
    descriptor_for,
)


@dataclass(frozen=True)
class LayerRef:
    """One layer of an image being built: its descriptor and diff_id, the local blob file
    (None if never fetched) and the repository it came from ("host/repo", for mounts)."""

    descriptor: Descriptor
    diff_id: str
    path: Path | None = None
    source_repo: str | None = None  # "registry/repository" of the base image it came from
    created_by: str = ""
    # Downloads the blob to a path when `path` is None (base image or cache layer).
    fetch: Callable[[Path], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ImageArtifacts:
    manifest: bytes
    manifest_media_type: str
    config: bytes
    config_descriptor: Descriptor
    layers: tuple[LayerRef, ...]

    @property
    def digest(self) -> str:
        return descriptor_for(self.manifest, self.manifest_media_type).digest

    @property
    def manifest_descriptor(self) -> Descriptor:
        return descriptor_for(self.manifest, self.manifest_media_type)


def manifest_type_for_base(base_manifest_type: str | None) -> str:
    """kaniko keeps the base's manifest flavour; scratch (None) is Docker schema 2."""
    if base_manifest_type == OCI_MANIFEST:
        return OCI_MANIFEST
    return DOCKER_MANIFEST


_TO_DOCKER = {
    OCI_LAYER_GZIP: DOCKER_LAYER_GZIP,
    OCI_LAYER_ZSTD: DOCKER_LAYER_ZSTD,
}
_TO_OCI = {v: k for k, v in _TO_DOCKER.items()}


def convert_layer(desc: Descriptor, docker: bool) -> Descriptor:
    """A layer in the image's flavour: same bytes, OCI or Docker media type."""
    media_type = (_TO_DOCKER if docker else _TO_OCI).get(desc.media_type, desc.media_type)
    if media_type == desc.media_type:
        return desc
    return Descriptor(media_type, desc.digest, desc.size)


def assemble(
    cfg: StageConfig,
    layers: Sequence[LayerRef],
    *,
    manifest_media_type: str,
    created: str,
    annotations: Mapping[str, str] | None = None,
) -> ImageArtifacts:
    """Config and manifest; every layer's media type follows the manifest's flavour."""
    docker = manifest_media_type == DOCKER_MANIFEST
    layers = [
        dataclasses.replace(layer, descriptor=convert_layer(layer.descriptor, docker))
        for layer in layers
    ]
    config_obj = cfg.to_json([layer.diff_id for layer in layers], created)
    config = canonical_json(config_obj)
    config_desc = descriptor_for(config, config_media_type_for(manifest_media_type))
    manifest = build_manifest(
        config_desc,
        [layer.descriptor for layer in layers],
        media_type=manifest_media_type,
        annotations=annotations or None,
    )
    return ImageArtifacts(manifest, manifest_media_type, config, config_desc, tuple(layers))


def write_digest_files(
    *,
    digest: str,
    digest_file: str,
    name_with_digest_file: str,
    name_tag_with_digest_file: str,
    destinations: Sequence[tuple[str, str]],
) -> None:
    """`destinations` are (repository name as kaniko prints it, "name:tag") pairs.
    Files are written whole or not at all; one line per destination, as kaniko does."""
    if digest_file:
        write_atomic(digest_file, digest.encode())
    if name_with_digest_file:
        text = "".join(f"{name}@{digest}\n" for name, _ in destinations)
        write_atomic(name_with_digest_file, text.encode())
    if name_tag_with_digest_file:
        text = "".join(f"{tagged}@{digest}\n" for _, tagged in destinations)
        write_atomic(name_tag_with_digest_file, text.encode())


def write_blob_file(blob_dir: Path, data: bytes, media_type: str) -> tuple[Descriptor, Path]:
    """Store a small blob (config) in the blob dir under its digest."""
    desc = descriptor_for(data, media_type)
    path = blob_dir / desc.digest.replace(":", "-")
    if not path.exists():
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return desc, path
