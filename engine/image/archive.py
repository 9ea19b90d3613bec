"""`docker save`-style tarballs (`--tar-path`), as kaniko writes them (go-containerregistry's
tarball format), which `docker load` and `skopeo ... docker-archive:` accept:

    manifest.json   [{"Config": "sha256:<hex>", "RepoTags": [...], "Layers": ["<hex>.tar.gz"]}]
    sha256:<hex>    the image config
    <hex>.tar.gz    each layer blob as stored in the registry (compressed)

The tarball is streamed to a temporary file next to the destination and renamed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine.errors import ImageError, OutputError
from engine.image.layout import ImageBlobs
from engine.image.model import DOCKER_LAYER_ZSTD, OCI_LAYER_ZSTD, sha256_digest


def _layer_name(media_type: str, hexd: str) -> str:
    if media_type in (OCI_LAYER_ZSTD, DOCKER_LAYER_ZSTD):
        return f"{hexd}.tar.zst"
    if media_type.endswith(("tar", ".tar")):
        return f"{hexd}.tar"
    return f"{hexd}.tar.gz"


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0  # equal inputs give an equal tarball
    return info


def write_docker_archive(dest: Path, images: Sequence[ImageBlobs]) -> Path:
    """Write images (RepoTags from their ref_names) as one docker-archive tarball."""
    dest = dest.absolute()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", dir=dest.parent)
    except OSError as e:
        raise OutputError(f"cannot write image tarball {dest}: {e.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar,
        ):
            manifest = []
            written: set[str] = set()
            for image in images:
                config_name = sha256_digest(image.config)
                if config_name not in written:
                    tar.addfile(_info(config_name, len(image.config)), io.BytesIO(image.config))
                    written.add(config_name)
                layer_names = []
                for desc, path in image.layers:
                    name = _layer_name(desc.media_type, desc.digest.partition(":")[2])
                    if name not in written:
                        size = path.stat().st_size
                        if size != desc.size:
                            raise ImageError(
                                f"{path}: {size} bytes but descriptor says {desc.size}"
                            )
                        with path.open("rb") as f:
                            tar.addfile(_info(name, size), f)
                        written.add(name)
                    layer_names.append(name)
                manifest.append(
                    {
                        "Config": config_name,
                        "RepoTags": [t for t in image.ref_names if t],
                        "Layers": layer_names,
                    }
                )
            body = json.dumps(manifest, separators=(",", ":")).encode()
            tar.addfile(_info("manifest.json", len(body)), io.BytesIO(body))
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write image tarball {dest}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


@dataclass(frozen=True)
class ArchiveImage:
    repo_tags: tuple[str, ...]
    config: bytes
    layer_members: tuple[str, ...]


def read_docker_archive(path: Path) -> list[ArchiveImage]:
    """The images listed in a docker-archive's manifest.json, with their configs."""
    try:
        with tarfile.open(path, "r:") as tar:
            manifest = json.loads(_member_bytes(tar, "manifest.json"))
            out = []
            for entry in manifest:
                config = _member_bytes(tar, entry["Config"])
                out.append(
                    ArchiveImage(tuple(entry.get("RepoTags") or ()), config, tuple(entry["Layers"]))
                )
            return out
    except (OSError, tarfile.TarError, ValueError, KeyError, TypeError) as e:
        raise ImageError(
            f"{path}: not a docker-archive tarball ({type(e).__name__}: {e})"
        ) from None


def _member_bytes(tar: tarfile.TarFile, name: str) -> bytes:
    f = tar.extractfile(name)
    if f is None:
        raise KeyError(name)
    with f:
        return f.read()


@contextlib.contextmanager
def open_archive_member(path: Path, name: str) -> Iterator[IO[bytes]]:
    """Stream one member (a layer) out of a docker-archive."""
    with tarfile.open(path, "r:") as tar:
        f = tar.extractfile(name)
        if f is None:
            raise ImageError(f"{path}: no member {name}")
        with f:
            yield f
