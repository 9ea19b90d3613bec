"""Small layers for cache tests, written as real gzip tar blobs."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from engine.image.model import OCI_LAYER_GZIP


@dataclass(frozen=True)
class FakeLayer:
    path: Path
    diff_id: str
    digest: str
    size: int
    media_type: str = OCI_LAYER_GZIP


def make_layer(dest: Path, files: dict[str, bytes], whiteouts: tuple[str, ...] = ()) -> FakeLayer:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name in whiteouts:
            head, _, base = name.rpartition("/")
            info = tarfile.TarInfo(f"{head}/.wh.{base}" if head else f".wh.{base}")
            tar.addfile(info, io.BytesIO(b""))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, mtime=0)
    dest.write_bytes(blob)
    return FakeLayer(
        dest,
        "sha256:" + hashlib.sha256(tar_bytes).hexdigest(),
        "sha256:" + hashlib.sha256(blob).hexdigest(),
        len(blob),
    )
