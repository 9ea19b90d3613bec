"""Crafted layer tars for the fs tests: each entry is a small dict, written with tarfile."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any


def make_tar(path: Path, entries: list[dict[str, Any]], *, compress: str = "none") -> Path:
    """Write entries to a tar at path. Keys: name, type (file|dir|sym|link|fifo|chr|blk),
    data (bytes), target, mode, uid, gid, mtime, xattrs (dict name->bytes), major, minor."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            kind = e.get("type", "file")
            info.type = {
                "file": tarfile.REGTYPE,
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "link": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chr": tarfile.CHRTYPE,
                "blk": tarfile.BLKTYPE,
            }[kind]
            info.mode = e.get("mode", 0o755 if kind == "dir" else 0o644)
            info.uid = e.get("uid", 0)
            info.gid = e.get("gid", 0)
            info.mtime = e.get("mtime", 1_600_000_000)
            info.linkname = e.get("target", "")
            info.devmajor = e.get("major", 0)
            info.devminor = e.get("minor", 0)
            if "xattrs" in e:
                info.pax_headers = {
                    "SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                    for k, v in e["xattrs"].items()
                }
            data = e.get("data", b"") if kind == "file" else b""
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data else None)
    blob = raw.getvalue()
    if compress == "gzip":
        import gzip

        blob = gzip.compress(blob)
    elif compress == "zstd":
        import zstandard

        blob = zstandard.ZstdCompressor().compress(blob)
    path.write_bytes(blob)
    return path
