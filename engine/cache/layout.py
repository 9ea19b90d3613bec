"""An OCI image layout that several builds may read and write at the same time.

Used by the `oci:` cache repo and by `--cache-dir`. Safety rules:
- blobs are content-addressed: written to a temporary file in the same directory, digest
  verified, then `os.replace`d into `blobs/sha256/<hex>`; a reader sees a whole blob or none;
- `index.json` changes happen under an exclusive `flock` on `<layout>/.lock`, and the new
  index is written to a temporary name and renamed, so readers (who take no lock) always see
  a complete index;
- a tag (`org.opencontainers.image.ref.name`) names at most one manifest: adding it again
  replaces the older entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from engine.errors import CacheError, DigestMismatch
from engine.image.model import OCI_INDEX, Descriptor, canonical_json

REF_NAME = "org.opencontainers.image.ref.name"
_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
_CHUNK = 1 << 20


class LayoutStore:
    """Blobs and tagged manifests in an OCI layout directory (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ---- paths ----
    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        if (
            algo != "sha256"
            or len(hexpart) != 64
            or not all(c in "0123456789abcdef" for c in hexpart)
        ):
            raise CacheError(f"invalid digest {digest!r} for OCI layout {self.root}")
        return self.root / "blobs" / "sha256" / hexpart

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    # ---- writing ----
    def ensure(self) -> None:
        try:
            (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            marker = self.root / "oci-layout"
            if not marker.exists():
                self._write_atomic(marker, _LAYOUT_FILE)
            if not (self.root / "index.json").exists():
                with self.locked():
                    if not (self.root / "index.json").exists():
                        empty = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
                        self._write_atomic(self.root / "index.json", canonical_json(empty))
        except OSError as exc:
            raise CacheError(f"cannot write OCI layout {self.root}: {exc.strerror}") from None

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest is not None and got != digest:
            raise DigestMismatch(f"blob for {self.root} is {got}, expected {digest}")
        if not self.has_blob(got):
            self.ensure()
            self._write_atomic(self.blob_path(got), data)
        return got

    def put_file(self, src: Path, digest: str) -> None:
        """Copy a blob file in (streamed, digest verified) unless it is already present."""
        if self.has_blob(digest):
            return
        self.ensure()
        with open(src, "rb") as f:
            self.put_stream(f, digest)

    def put_stream(self, stream: IO[bytes], digest: str) -> None:
        if self.has_blob(digest):
            return
        self.ensure()
        target = self.blob_path(digest)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            got = "sha256:" + h.hexdigest()
            if got != digest:
                raise DigestMismatch(f"blob for {self.root} is {got}, expected {digest}")
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def open_blob(self, digest: str) -> IO[bytes]:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise CacheError(f"blob {digest} missing from OCI layout {self.root}") from None

    def copy_blob(self, digest: str, dest: Path) -> None:
        with self.open_blob(digest) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)

    def tag(self, name: str, manifest: Descriptor) -> None:
        """Point tag `name` at `manifest` (whose bytes must already be a blob)."""
        self.ensure()
        with self.locked():
            index = self._read_index()
            entries = [
                m
                for m in index.get("manifests", [])
                if (m.get("annotations") or {}).get(REF_NAME) != name
            ]
            entry = manifest.to_dict()
            entry["annotations"] = {**(entry.get("annotations") or {}), REF_NAME: name}
            entries.append(entry)
            index["manifests"] = entries
            self._write_atomic(self.root / "index.json", canonical_json(index))

    # ---- reading ----
    def resolve(self, name: str) -> Descriptor | None:
        """The manifest descriptor tagged `name`, or None."""
        found = self.find(name)
        return None if found is None else found[0]

    def find(self, name: str) -> tuple[Descriptor, dict[str, Any]] | None:
        """The descriptor tagged `name` and its index annotations, or None."""
        for entry in self._read_index().get("manifests", []):
            annotations = entry.get("annotations") or {}
            if annotations.get(REF_NAME) == name:
                return Descriptor.from_dict(entry), dict(annotations)
        return None

    def tags(self) -> list[str]:
        out = []
        for entry in self._read_index().get("manifests", []):
            name = (entry.get("annotations") or {}).get(REF_NAME)
            if name:
                out.append(str(name))
        return out

    def read_blob(self, digest: str, limit: int = 4 << 20) -> bytes:
        """A small blob (manifest, config) into memory, digest verified."""
        with self.open_blob(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise CacheError(f"blob {digest} in {self.root} is larger than {limit} bytes")
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise DigestMismatch(f"blob {digest} in {self.root} is corrupt (got {got})")
        return data

    # ---- internals ----
    def _read_index(self) -> dict[str, Any]:
        path = self.root / "index.json"
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        except (OSError, ValueError) as exc:
            raise CacheError(f"unreadable index.json in OCI layout {self.root}: {exc}") from None
        if not isinstance(data, dict):
            raise CacheError(f"index.json in OCI layout {self.root} is not an object")
        return data

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
