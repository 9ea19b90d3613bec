"""Copying an image between repositories with brickyard's own client, blob by blob."""

from __future__ import annotations

from pathlib import Path

from engine.registry import Reference, RegistryClient
from engine.registry.client import ResolvedImage


def copy_image(
    img: ResolvedImage, src: RegistryClient, dst_client: RegistryClient, dst: Reference, work: Path
) -> str:
    """Fetch every blob of img with `src` into `work`, push layers, config and manifest with
    `dst_client` under dst; returns the manifest digest."""
    work.mkdir(parents=True, exist_ok=True)
    for desc in img.layers:
        path = src.fetch_blob(img.source, desc, work / desc.digest.replace(":", "_"))
        dst_client.push_blob(dst, desc, path)
    cfg = work / "config"
    cfg.write_bytes(img.config_bytes)
    dst_client.push_blob(dst, img.manifest.config, cfg)
    return dst_client.put_manifest(dst, img.manifest_bytes, img.manifest.media_type)
