"""OCI image layout directories (`--oci-layout-path`, `oci:` cache repos).

    DIR/oci-layout            {"imageLayoutVersion": "1.0.0"}
    DIR/index.json            an OCI index over the images, ref names as annotations
    DIR/blobs/sha256/<hex>    manifests, configs, layers

`write_oci_layout` builds the whole directory under a temporary name next to `dest` and
renames it into place, so a reader never sees a half-written layout. Blobs are hard-linked
when possible, otherwise copied while their digest is checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DigestMismatch, ImageError, OutputError
from engine.image.model import (
    OCI_INDEX,
    Descriptor,
    Index,
    Manifest,
    Platform,
    build_index,
    canonical_json,
    descriptor_for,
    parse_manifest,
)

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = "1.0.0"
COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ImageBlobs:
    """One image as bytes and files: what layout and archive writers need."""

    manifest: bytes
    manifest_media_type: str
    config: bytes
    layers: Sequence[tuple[Descriptor, Path]]  # each layer's descriptor and its blob file
    ref_names: Sequence[str] = field(default_factory=tuple)  # tags, or "" for none
    platform: Platform | None = None

    @property
    def manifest_descriptor(self) -> Descriptor:
        return descriptor_for(self.manifest, self.manifest_media_type)


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexd = digest.partition(":")
    if not algo or not hexd or "/" in hexd or "/" in algo:
        raise ImageError(f"invalid digest {digest!r}")
    return layout / "blobs" / algo / hexd


def _copy_verified(src: Path, dest: Path, digest: str) -> None:
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)  # same filesystem: no bytes copied
        return
    except OSError:
        pass
    algo, _, expected = digest.partition(":")
    h = hashlib.new(algo)
    with src.open("rb") as fin, dest.open("wb") as fout:
        while chunk := fin.read(COPY_CHUNK):
            h.update(chunk)
            fout.write(chunk)
    if h.hexdigest() != expected:
        raise DigestMismatch(f"{src}: content does not match {digest}")


def _write_blob(layout: Path, data: bytes) -> str:
    desc = descriptor_for(data, "")
    path = blob_path(layout, desc.digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return desc.digest


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Move tmp to dest; an existing dest is swapped out first and removed after."""
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def write_oci_layout(
    dest: Path, images: Sequence[ImageBlobs], *, index_media: str = OCI_INDEX
) -> Path:
    """Write an OCI layout at dest holding `images` (tags as ref.name annotations)."""
    dest = dest.absolute()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    except OSError as e:
        raise OutputError(f"cannot write OCI layout {dest}: {e.strerror}") from None
    try:
        entries: list[Descriptor] = []
        for image in images:
            for desc, path in image.layers:
                _copy_verified(path, blob_path(tmp, desc.digest), desc.digest)
            _write_blob(tmp, image.config)
            _write_blob(tmp, image.manifest)
            base = image.manifest_descriptor
            names = [n for n in image.ref_names if n] or [""]
            for name in names:
                entries.append(
                    Descriptor(
                        base.media_type,
                        base.digest,
                        base.size,
                        platform=image.platform,
                        annotations={REF_NAME: name} if name else None,
                    )
                )
        (tmp / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
        (tmp / "index.json").write_bytes(build_index(entries, media_type=index_media))
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write OCI layout {dest}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


@dataclass(frozen=True)
class LayoutImage:
    """An image read back from a layout: manifest, config bytes and layer blob paths."""

    ref_name: str
    manifest: Manifest
    config: bytes
    layer_paths: tuple[Path, ...]


def read_layout_index(layout: Path) -> Index:
    try:
        version = json.loads((layout / "oci-layout").read_text()).get("imageLayoutVersion")
        raw = (layout / "index.json").read_bytes()
    except (OSError, ValueError) as e:
        raise ImageError(f"{layout} is not an OCI image layout: {e}") from None
    if version != LAYOUT_VERSION:
        raise ImageError(f"{layout}: unsupported imageLayoutVersion {version!r}")
    parsed = parse_manifest(raw, OCI_INDEX)
    if not isinstance(parsed, Index):
        raise ImageError(f"{layout}/index.json is not an index")
    return parsed


def read_blob(layout: Path, desc: Descriptor, *, limit: int = 64 * 1024 * 1024) -> bytes:
    path = blob_path(layout, desc.digest)
    if desc.size > limit:
        raise ImageError(f"{path}: blob too large to read into memory")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageError(f"{layout}: missing blob {desc.digest}: {e.strerror}") from None
    if descriptor_for(data, "").digest != desc.digest:
        raise DigestMismatch(f"{path}: content does not match {desc.digest}")
    return data


def read_oci_layout(
    layout: Path, ref_name: str | None = None, platform: Platform | None = None
) -> LayoutImage:
    """The image named ref_name (or the only/first one) in the layout; indexes nested in
    index.json are resolved with `platform`."""
    index = read_layout_index(layout)
    entries = list(index.manifests)
    if ref_name is not None:
        entries = [d for d in entries if (d.annotations or {}).get(REF_NAME) == ref_name]
    if not entries:
        raise ImageError(f"{layout}: no image named {ref_name!r}")
    desc = entries[0]
    parsed = parse_manifest(read_blob(layout, desc), desc.media_type)
    if isinstance(parsed, Index):
        chosen = parsed.select(platform) if platform else (parsed.manifests or (None,))[0]
        if chosen is None:
            raise ImageError(f"{layout}: no image for platform {platform}")
        parsed = parse_manifest(read_blob(layout, chosen), chosen.media_type)
        if isinstance(parsed, Index):
            raise ImageError(f"{layout}: nested index not supported")
    config = read_blob(layout, parsed.config)
    paths = tuple(blob_path(layout, d.digest) for d in parsed.layers)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ImageError(f"{layout}: missing layer blob {missing[0].name}")
    return LayoutImage((desc.annotations or {}).get(REF_NAME, ""), parsed, config, paths)
