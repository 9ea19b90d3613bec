"""`--cache-dir`: base images kept locally as one OCI layout, and `brickyard warm` filling it.

Layout of a cache dir: a plain OCI image layout (skopeo/umoci can read it). Each warmed image
is its platform manifest, config and layer blobs, tagged (`org.opencontainers.image.ref.name`)
with
  - the reference as warmed, normalised: `docker.io/library/busybox:latest`,
  - its manifest digest `sha256:...`, and, when it came from an index, the index digest,
and annotated with `dev.brickyard.warmed` (the TTL clock, like kaniko's file mtime).

Several builds and warmers may share one cache dir at once: blobs are written to temporary
names and renamed, the index is only changed under a file lock and replaced atomically (see
engine/cache/layout.py), and readers take no lock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.cache.layout import LayoutStore
from engine.errors import BrickyardError, CacheError, UsageError
from engine.image.model import (
    Descriptor,
    Manifest,
    Platform,
    host_platform,
    parse_manifest,
)
from engine.registry.client import RegistryClient
from engine.registry.config import RegistryConfig
from engine.registry.reference import Reference

log = logging.getLogger("brickyard.warm")

ANN_WARMED = "dev.brickyard.warmed"
ANN_PLATFORM = "dev.brickyard.platform"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fmt(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WarmImage:
    """A base image found in the cache dir: everything a build needs, no download."""

    reference: str  # the tag it was found under
    manifest: Manifest
    manifest_digest: str
    config_bytes: bytes
    warmed: dt.datetime
    store: LayoutStore

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        return self.manifest.layers

    def blob_path(self, desc: Descriptor) -> Path:
        """The local file holding a layer blob (extract it, or push it, from here)."""
        path = self.store.blob_path(desc.digest)
        if not path.is_file():
            raise CacheError(f"layer {desc.digest} missing from cache dir {self.store.root}")
        return path


def _tag_names(ref: Reference, platform: Platform) -> list[str]:
    """Tags a lookup tries for `ref`: the digest when pinned, else the reference + platform."""
    if ref.digest:
        return [f"{ref.digest}@{platform}", ref.digest]
    return [f"{ref.name}:{ref.tag_or_default}@{platform}"]


def local_base_image(
    cache_dir: str | Path,
    ref: Reference | str,
    *,
    platform: Platform | str | None = None,
    ttl: dt.timedelta = dt.timedelta(hours=336),
    digest: str | None = None,
    now: dt.datetime | None = None,
) -> WarmImage | None:
    """The base image `ref` from the cache dir, or None (not warmed, expired, or no cache dir).

    digest: the manifest digest the registry currently serves for `ref`, when the caller
        checked (kaniko does): then only that exact image is accepted.
    Never raises for a missing or unreadable cache: the build just pulls instead.
    """
    root = Path(cache_dir)
    if not (root / "index.json").is_file():
        return None
    if isinstance(ref, str):
        ref = Reference.parse(ref)
    want = _platform(platform)
    store = LayoutStore(root)
    names = [f"{digest}@{want}", digest] if digest else _tag_names(ref, want)
    now = now or _now()
    try:
        for name in names:
            entry = store.find(name)
            if entry is None:
                continue
            desc, annotations = entry
            warmed = dt.datetime.fromisoformat(
                str(annotations.get(ANN_WARMED, "1970-01-01T00:00:00Z")).replace("Z", "+00:00")
            )
            if warmed + ttl < now:
                log.info("cached base image %s is older than --cache-ttl", name)
                return None
            raw = store.read_blob(desc.digest)
            manifest = parse_manifest(raw, desc.media_type)
            if not isinstance(manifest, Manifest):
                return None
            config = store.read_blob(manifest.config.digest)
            if not all(store.has_blob(layer.digest) for layer in manifest.layers):
                return None
            return WarmImage(name, manifest, desc.digest, config, warmed, store)
    except (BrickyardError, OSError, ValueError) as exc:
        log.warning("cache dir %s unusable for %s: %s", root, ref, exc)
    return None


def _platform(platform: Platform | str | None) -> Platform:
    if isinstance(platform, Platform):
        return platform.normalized()
    if platform:
        return Platform.parse(platform)
    return host_platform()


def warm_image(
    client: RegistryClient,
    cache_dir: Path,
    ref: Reference,
    *,
    platform: Platform,
    ttl: dt.timedelta,
    force: bool = False,
    now: dt.datetime | None = None,
) -> str:
    """Put one image into the cache dir. Returns "cached" or "already cached"."""
    store = LayoutStore(cache_dir)
    resolved = client.resolve_image(ref, platform)
    digest = resolved.manifest_digest
    if not force and local_base_image(cache_dir, ref, platform=platform, ttl=ttl, digest=digest):
        log.info("Image already in cache: %s (%s)", ref, digest[:19])
        return "already cached"
    for layer in resolved.layers:
        if not store.has_blob(layer.digest):
            store.ensure()
            # fetch_blob streams to a temporary name beside the target, verifies the digest,
            # then renames: a concurrent reader sees the whole blob or none.
            client.fetch_blob(resolved.source, layer, store.blob_path(layer.digest))
    store.put_bytes(resolved.config_bytes, resolved.manifest.config.digest)
    store.put_bytes(resolved.manifest_bytes, digest)
    stamp = {ANN_WARMED: _fmt(now or _now()), ANN_PLATFORM: str(platform)}
    desc = Descriptor(
        resolved.manifest.media_type, digest, len(resolved.manifest_bytes), None, stamp
    )
    names = [digest, f"{digest}@{platform}"]
    if resolved.index_digest:
        names += [resolved.index_digest, f"{resolved.index_digest}@{platform}"]
    if not ref.digest:
        names.append(f"{ref.name}:{ref.tag_or_default}@{platform}")
    for name in names:
        store.tag(name, desc)
    log.info("Cached %s as %s", ref, digest[:19])
    return "cached"


def dockerfile_base_images(path: str, build_args: Iterable[str], platform: str = "") -> list[str]:
    """Base images of every stage of a Dockerfile (stages built on earlier stages and
    `scratch` left out), ARGs expanded with the given --build-arg values."""
    from engine.dockerfile import build_stage_graph, parse_dockerfile

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read --dockerfile {path}: {exc.strerror}") from None
    args: dict[str, str] = {}
    for item in build_args:
        key, sep, value = item.partition("=")
        if sep:
            args[key] = value
    graph = build_stage_graph(
        parse_dockerfile(text, filename=path), args, platform=platform or None
    )
    images: list[str] = []
    for stage in graph.stages:
        if (
            stage.base_stage is None
            and stage.base.lower() != "scratch"
            and stage.base not in images
        ):
            images.append(stage.base)
    return images


def warm(options: Any, env: Mapping[str, str]) -> int:
    """`brickyard warm` (kaniko's warmer): options is engine.options.WarmerOptions. Logs as
    a build does (kaniko-style lines at --verbosity, in --log-format)."""
    import sys

    from engine.build.log import BuildLog, engine_logging

    log = BuildLog(
        sys.stderr,
        level=options.verbosity,
        fmt=options.log_format,
        timestamps=options.log_timestamp,
    )
    with engine_logging(log):
        return _warm(options, env)


def _warm(options: Any, env: Mapping[str, str]) -> int:
    images = list(options.image)
    if options.dockerfile:
        images += dockerfile_base_images(
            options.dockerfile, options.build_arg, options.custom_platform
        )
    if not images:
        raise UsageError("you must select at least one image to cache (--image or --dockerfile)")
    platform = _platform(options.custom_platform or None)
    cache_dir = Path(options.cache_dir)
    config = RegistryConfig.from_options(options, env)
    failed = 0
    with RegistryClient(config) as client:
        for image in dict.fromkeys(images):
            ref = Reference.parse(image)
            try:
                warm_image(
                    client,
                    cache_dir,
                    ref,
                    platform=platform,
                    ttl=options.cache_ttl,
                    force=options.force,
                )
            except (BrickyardError, OSError) as exc:
                # kaniko's warmer logs each failure and goes on with the next image.
                log.error("Error while trying to cache %s: %s", image, exc)
                failed += 1
    if failed:
        raise CacheError(f"{failed} of {len(set(images))} image(s) could not be cached")
    return 0
