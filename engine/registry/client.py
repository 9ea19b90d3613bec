"""RegistryClient: pull and push images over the OCI distribution API.

Pull: manifests (every OCI/Docker type, platform chosen from an index), config and blobs,
each digest-verified while streaming; mirrors from --registry-mirror/--registry-map tried in
order, then the original registry unless --skip-default-registry-fallback.
Push: HEAD before upload, cross-repository mount, monolithic PUT with a chunked PATCH
fallback, manifest PUT per tag; a failed upload is cancelled and restarted from scratch.
Memory stays bounded: blobs are streamed from and to files.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urljoin

from engine.errors import AuthError, DigestMismatch, ImageError, ManifestUnknown, RegistryError
from engine.httpclient import ConnectError, HttpClient, Response
from engine.image.layout import ImageBlobs
from engine.image.model import (
    MANIFEST_ACCEPT,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    descriptor_for,
    host_platform,
    parse_manifest,
)
from engine.registry.config import RegistryConfig
from engine.registry.credentials import Keychain
from engine.registry.reference import Reference
from engine.registry.transport import Target, Transport

log = logging.getLogger(__name__)

MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's recommended limit
MAX_CONFIG = 64 * 1024 * 1024
STREAM_CHUNK = 1024 * 1024
DEFAULT_UPLOAD_CHUNK = 32 * 1024 * 1024
IMMUTABLE_MARKERS = (
    "immutable",  # Harbor, ECR ("...tag is immutable"), GAR
    "cannot be overwritten",
    "already exists and cannot",
)


@dataclass(frozen=True)
class ResolvedImage:
    reference: Reference  # what was asked for
    source: Reference  # repository the bytes came from (a mirror, or the original)
    manifest: Manifest
    manifest_digest: str
    index_digest: str | None
    config_bytes: bytes
    config: ImageConfig
    platform: Platform

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        return self.manifest.layers

    @property
    def manifest_bytes(self) -> bytes:
        return self.manifest.raw


class _Hasher:
    def __init__(self, digest: str) -> None:
        algo, _, expected = digest.partition(":")
        if algo not in ("sha256", "sha512"):
            raise ImageError(f"unsupported digest algorithm in {digest!r}")
        self.algo, self.expected = algo, expected
        self.h = hashlib.new(algo)
        self.size = 0

    def update(self, data: bytes) -> None:
        self.h.update(data)
        self.size += len(data)

    def check(self, what: str, size: int | None) -> None:
        actual = self.h.hexdigest()
        if size is not None and size >= 0 and self.size != size:
            raise DigestMismatch(f"{what}: expected {size} bytes, got {self.size}")
        if actual != self.expected:
            raise DigestMismatch(
                f"{what}: content digest {self.algo}:{actual[:12]}... does not match "
                f"{self.algo}:{self.expected[:12]}..."
            )


class _FileSlice:
    """A read-only window of a file for one PATCH chunk (streamed, with a known length)."""

    def __init__(self, path: Path, start: int, length: int) -> None:
        self._f = path.open("rb")
        self._f.seek(start)
        self._left = length
        self.len = length

    def __len__(self) -> int:
        return self.len

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()


class RegistryClient:
    def __init__(
        self,
        config: RegistryConfig | None = None,
        *,
        keychain: Keychain | None = None,
        session: HttpClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
        upload_mode: Literal["auto", "chunked"] = "auto",
        upload_chunk_size: int = DEFAULT_UPLOAD_CHUNK,
    ) -> None:
        self.config = config or RegistryConfig()
        self.transport = Transport(self.config, keychain=keychain, session=session, sleep=sleep)
        self._sleep = sleep
        self.upload_mode = upload_mode
        self.upload_chunk_size = upload_chunk_size

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- targets ----
    @staticmethod
    def _pull(ref: Reference) -> Target:
        return Target(ref.registry, ref.repository, "pull", (ref.scope("pull"),))

    @staticmethod
    def _push(ref: Reference, *extra_scopes: str) -> Target:
        return Target(ref.registry, ref.repository, "push", (ref.scope("pull,push"), *extra_scopes))

    # ---- manifests ----
    def get_manifest(
        self, ref: Reference, *, purpose: Literal["pull", "push"] = "pull"
    ) -> tuple[bytes, str, str]:
        """GET a manifest or index: (raw bytes, media type, digest), digest-verified."""
        target = self._pull(ref) if purpose == "pull" else self._push(ref)
        what = f"manifest {ref.identifier}"
        resp = self.transport.request(
            "GET",
            target,
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            what=what,
            headers={"Accept": MANIFEST_ACCEPT},
            stream=True,
        )
        with contextlib.closing(resp):
            raw = bytearray()
            for chunk in resp.iter_content(64 * 1024):
                raw += chunk
                if len(raw) > MAX_MANIFEST:
                    raise ImageError(f"{ref}: manifest larger than {MAX_MANIFEST} bytes")
            body = bytes(raw)
            media_type = resp.headers.get("Content-Type", "")
            header_digest = resp.headers.get("Docker-Content-Digest", "")
        expected = ref.digest or header_digest
        digest = expected or "sha256:" + hashlib.sha256(body).hexdigest()
        if expected:
            h = _Hasher(expected)
            h.update(body)
            h.check(f"registry {ref.registry} repository {ref.repository}: {what}", None)
        return body, media_type, digest

    def head_manifest(self, ref: Reference) -> str | None:
        """Digest of a manifest if it exists (HEAD), else None."""
        resp = self.transport.request(
            "HEAD",
            self._pull(ref),
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            what=f"manifest {ref.identifier}",
            headers={"Accept": MANIFEST_ACCEPT},
            passthrough=(404,),
        )
        resp.close()
        if resp.status_code == 404:
            return None
        return resp.headers.get("Docker-Content-Digest") or None

    def resolve_image(
        self, ref: Reference, platform: Platform | str | None = None
    ) -> ResolvedImage:
        """Manifest and config of the image for `platform`, trying mirrors first."""
        want = (
            Platform.parse(platform) if isinstance(platform, str) else (platform or host_platform())
        )
        attempts = self.config.download_retries + 1
        for attempt in range(attempts):
            try:
                return self._resolve_with_mirrors(ref, want)
            except (AuthError, ManifestUnknown, ImageError):
                raise
            except RegistryError as e:
                if attempt + 1 >= attempts:
                    raise
                log.warning("retrying download of %s after error: %s", ref, e)
                self._sleep(min(8.0, 1.0 * 2**attempt))
        raise AssertionError("unreachable")

    def candidates(self, ref: Reference) -> list[Reference]:
        out = []
        for m in self.config.mirrors_for(ref.registry):
            repo = f"{m.prefix}/{ref.repository}" if m.prefix else ref.repository
            out.append(ref.in_repository(m.host, repo))
        if not out or not self.config.skip_default_fallback:
            out.append(ref)
        return out

    def _resolve_with_mirrors(self, ref: Reference, want: Platform) -> ResolvedImage:
        candidates = self.candidates(ref)
        errors: list[str] = []
        for i, cand in enumerate(candidates):
            try:
                return self._resolve_from(ref, cand, want)
            except (RegistryError, ImageError) as e:
                if i + 1 >= len(candidates):
                    if errors:
                        raise type(e)(f"{e} (mirrors tried first: {'; '.join(errors)})") from None
                    raise
                errors.append(str(e))
                log.warning("mirror %s failed for %s: %s", cand.registry, ref, e)
        raise AssertionError("unreachable")

    def _resolve_from(self, asked: Reference, source: Reference, want: Platform) -> ResolvedImage:
        body, media_type, digest = self.get_manifest(source)
        parsed = parse_manifest(body, media_type)
        index_digest = None
        if isinstance(parsed, Index):
            index_digest = digest
            chosen = parsed.select(want)
            if chosen is None:
                have = ", ".join(str(d.platform) for d in parsed.manifests if d.platform)
                raise ImageError(f"{asked}: no image for platform {want} (index has: {have})")
            body, media_type, digest = self.get_manifest(source.with_digest(chosen.digest))
            parsed = parse_manifest(body, media_type or chosen.media_type)
            if isinstance(parsed, Index):
                raise ImageError(f"{asked}: nested index for platform {want} is not supported")
        config_bytes = self.read_blob(source, parsed.config, limit=MAX_CONFIG)
        config = ImageConfig.from_bytes(config_bytes)
        if len(config.diff_ids) != len(parsed.layers):
            raise ImageError(
                f"{asked}: manifest has {len(parsed.layers)} layers but config lists "
                f"{len(config.diff_ids)} diff_ids"
            )
        return ResolvedImage(
            asked,
            source,
            parsed,
            digest,
            index_digest,
            config_bytes,
            config,
            config.platform or want,
        )

    # ---- blobs: pull ----
    def _blob_response(self, ref: Reference, desc: Descriptor) -> Response:
        return self.transport.request(
            "GET",
            self._pull(ref),
            f"/v2/{ref.repository}/blobs/{desc.digest}",
            what=f"blob {desc.digest[:19]}",
            stream=True,
        )

    def read_blob(self, ref: Reference, desc: Descriptor, *, limit: int) -> bytes:
        """A small blob (a config) in memory, digest-verified."""
        if desc.size > limit:
            raise ImageError(f"{ref}: blob {desc.digest} of {desc.size} bytes is too large")
        with self.open_blob(ref, desc) as reader:
            data = reader.read()
        return data

    @contextlib.contextmanager
    def open_blob(self, ref: Reference, desc: Descriptor) -> Iterator[IO[bytes]]:
        """A file-like reader over a blob; reading to the end verifies size and digest
        (raising DigestMismatch)."""
        resp = self._blob_response(ref, desc)
        what = f"registry {ref.registry} repository {ref.repository}: blob {desc.digest}"
        reader = _VerifyingReader(resp, desc, what)
        try:
            yield reader  # type: ignore[misc]
        finally:
            resp.close()

    def fetch_blob(self, ref: Reference, desc: Descriptor, dest: Path) -> Path:
        """Stream a blob to dest (via a temporary name, renamed once verified)."""
        attempts = max(1, self.config.retry.attempts)
        for attempt in range(attempts):
            try:
                return self._fetch_once(ref, desc, dest)
            except ConnectError as e:  # the body broke off: start the download again
                if attempt + 1 >= attempts:
                    raise RegistryError(
                        f"registry {ref.registry} repository {ref.repository}: blob "
                        f"{desc.digest}: connection lost while downloading ({e.reason})"
                    ) from None
                self._sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def _fetch_once(self, ref: Reference, desc: Descriptor, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".blob-", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, self.open_blob(ref, desc) as reader:
                while chunk := reader.read(STREAM_CHUNK):
                    out.write(chunk)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return dest

    # ---- blobs: push ----
    def blob_exists(self, ref: Reference, digest: str) -> bool:
        resp = self.transport.request(
            "HEAD",
            self._push(ref),
            f"/v2/{ref.repository}/blobs/{digest}",
            what=f"blob {digest[:19]}",
            passthrough=(404,),
        )
        resp.close()
        return resp.status_code == 200

    def push_blob(
        self, ref: Reference, desc: Descriptor, path: Path, mount_from: Reference | None = None
    ) -> Literal["exists", "mounted", "uploaded"]:
        """Make blob `desc` (bytes in `path`) present in ref's repository.

        With a mount source on the same registry the mount is tried first, without a HEAD:
        a registry answers 201 whether the blob was there already or is mounted now, so the
        HEAD is only needed (and made) when the mount is refused."""
        can_mount = (
            mount_from is not None
            and mount_from.registry == ref.registry
            and mount_from.repository != ref.repository
        )
        if not can_mount and self.blob_exists(ref, desc.digest):
            return "exists"
        attempts = self.config.push_retries + 1
        for attempt in range(attempts):
            location = None
            try:
                if can_mount and mount_from is not None:
                    mounted, location = self._try_mount(ref, desc, mount_from)
                    if mounted:
                        return "mounted"
                    can_mount = False  # a failed mount is not retried
                    if self.blob_exists(ref, desc.digest):
                        if location:
                            self._cancel(ref, location)
                        return "exists"
                self._upload(ref, desc, path, location)
                return "uploaded"
            except (AuthError, DigestMismatch):
                raise
            except RegistryError as e:
                if attempt + 1 >= attempts:
                    raise
                log.warning("restarting upload of %s to %s: %s", desc.digest[:19], ref.name, e)
                self._sleep(min(8.0, 1.0 * 2**attempt))
        raise AssertionError("unreachable")

    def mount_blob(self, ref: Reference, desc: Descriptor, mount_from: Reference | None) -> bool:
        """Make the blob present without its bytes: True if it already is, or a
        cross-repository mount from `mount_from` (same registry) succeeded. A refused mount's
        upload session is cancelled; the caller then uploads with push_blob."""
        if self.blob_exists(ref, desc.digest):
            return True
        if (
            mount_from is None
            or mount_from.registry != ref.registry
            or mount_from.repository == ref.repository
        ):
            return False
        mounted, location = self._try_mount(ref, desc, mount_from)
        if location:
            self._cancel(ref, location)
        return mounted

    def _try_mount(
        self, ref: Reference, desc: Descriptor, src: Reference
    ) -> tuple[bool, str | None]:
        target = self._push(ref, src.scope("pull"))
        resp = self.transport.request(
            "POST",
            target,
            f"/v2/{ref.repository}/blobs/uploads/?mount={desc.digest}&from={src.repository}",
            what=f"mount blob {desc.digest[:19]} from {src.repository}",
            ok=(201, 202),
            headers={"Content-Length": "0"},
        )
        resp.close()
        if resp.status_code == 201:
            return True, None
        return False, self._location(resp, ref)

    def _location(self, resp: Response, ref: Reference) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(
                f"registry {ref.registry} repository {ref.repository}: upload started "
                f"without a Location (HTTP {resp.status_code})"
            )
        return urljoin(resp.url, loc)

    def _start_upload(self, ref: Reference) -> str:
        resp = self.transport.request(
            "POST",
            self._push(ref),
            f"/v2/{ref.repository}/blobs/uploads/",
            what="start blob upload",
            ok=(202,),
            headers={"Content-Length": "0"},
        )
        resp.close()
        return self._location(resp, ref)

    def _cancel(self, ref: Reference, location: str) -> None:
        with contextlib.suppress(RegistryError):
            self.transport.request(
                "DELETE",
                self._push(ref),
                location,
                what="cancel upload",
                ok=(202, 204),
                passthrough=(400, 404, 405),
                idempotent=False,
            ).close()

    @staticmethod
    def _with_digest(location: str, digest: str) -> str:
        sep = "&" if "?" in location else "?"
        return f"{location}{sep}digest={digest}"

    def _upload(self, ref: Reference, desc: Descriptor, path: Path, location: str | None) -> None:
        try:
            size = path.stat().st_size
        except OSError:
            if location:  # a refused mount opened a session: do not leave it behind
                self._cancel(ref, location)
            raise
        if desc.size >= 0 and size != desc.size:
            raise DigestMismatch(f"{path}: {size} bytes but descriptor says {desc.size}")
        location = location or self._start_upload(ref)
        target = self._push(ref)
        what = f"upload blob {desc.digest[:19]}"
        try:
            if self.upload_mode == "auto":
                resp = self.transport.request(
                    "PUT",
                    target,
                    self._with_digest(location, desc.digest),
                    what=what,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(size),
                    },
                    body=lambda: path.open("rb"),
                    idempotent=False,
                    ok=(201,),
                    passthrough=(400, 405, 413, 416, 501),
                )
                resp.close()
                if resp.status_code == 201:
                    self._check_pushed_digest(resp, ref, desc)
                    return
                # monolithic refused: start over with chunks
                self._cancel(ref, location)
                location = self._start_upload(ref)
            self._upload_chunks(ref, desc, path, size, location)
        except BaseException:
            self._cancel(ref, location)
            raise

    def _upload_chunks(
        self, ref: Reference, desc: Descriptor, path: Path, size: int, location: str
    ) -> None:
        target = self._push(ref)
        start = 0
        while start < size:
            length = min(self.upload_chunk_size, size - start)
            s = start  # bind for the lambda

            def body(s: int = s, length: int = length) -> _FileSlice:
                return _FileSlice(path, s, length)

            resp = self.transport.request(
                "PATCH",
                target,
                location,
                what=f"upload chunk {start}-{start + length - 1}",
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{start + length - 1}",
                    "Content-Length": str(length),
                },
                body=body,
                idempotent=False,
                ok=(202, 204),
            )
            resp.close()
            location = self._location(resp, ref)
            start += length
        resp = self.transport.request(
            "PUT",
            target,
            self._with_digest(location, desc.digest),
            what=f"finish upload {desc.digest[:19]}",
            headers={"Content-Length": "0"},
            idempotent=False,
            ok=(201,),
        )
        resp.close()
        self._check_pushed_digest(resp, ref, desc)

    @staticmethod
    def _check_pushed_digest(resp: Response, ref: Reference, desc: Descriptor) -> None:
        got = resp.headers.get("Docker-Content-Digest")
        if got and got != desc.digest:
            raise DigestMismatch(
                f"registry {ref.registry} repository {ref.repository}: stored blob as {got}, "
                f"expected {desc.digest}"
            )

    # ---- manifests: push ----
    def put_manifest(self, ref: Reference, body: bytes, media_type: str) -> str:
        """PUT a manifest under ref's tag (or digest); returns its digest."""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        attempts = self.config.push_retries + 1
        for attempt in range(attempts):
            try:
                resp = self.transport.request(
                    "PUT",
                    self._push(ref),
                    f"/v2/{ref.repository}/manifests/{ref.identifier}",
                    what=f"push manifest {ref.identifier}",
                    headers={"Content-Type": media_type},
                    body=body,
                    ok=(200, 201, 202),
                )
                resp.close()
                got = resp.headers.get("Docker-Content-Digest")
                if got and got != digest:
                    raise DigestMismatch(
                        f"registry {ref.registry} repository {ref.repository}: manifest stored "
                        f"as {got}, expected {digest}"
                    )
                return digest
            except RegistryError as e:
                if self.config.push_ignore_immutable and _is_immutable_error(e):
                    log.warning("ignoring immutable tag error for %s: %s", ref, e)
                    return digest
                if isinstance(e, (AuthError, DigestMismatch)) or attempt + 1 >= attempts:
                    raise
                self._sleep(min(8.0, 1.0 * 2**attempt))
        raise AssertionError("unreachable")

    def push_image(
        self,
        refs: Sequence[Reference],
        image: ImageBlobs,
        *,
        mount_from: Reference | None = None,
        parallel: int = 3,
    ) -> str:
        """Push layers (in parallel), config, then the manifest once per destination.
        Tags are written last, so a failed push leaves every tag where it was."""
        config_desc = descriptor_for(image.config, "")
        with tempfile.TemporaryDirectory(prefix="brickyard-config-") as tmp:
            config_path = Path(tmp) / "config"
            config_path.write_bytes(image.config)
            for repo in {(r.registry, r.repository): r for r in refs}.values():
                jobs = [(d, p) for d, p in image.layers] + [(config_desc, config_path)]
                src = mount_from if mount_from and mount_from.registry == repo.registry else None
                with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                    futures = [pool.submit(self.push_blob, repo, d, p, src) for d, p in jobs]
                    for f in futures:
                        f.result()
        digest = ""
        for ref in refs:
            digest = self.put_manifest(ref, image.manifest, image.manifest_media_type)
        return digest

    def check_push_permission(self, ref: Reference) -> None:
        """kaniko's CheckPushPermissions: start (and cancel) an upload with push scope."""
        location = self._start_upload(ref)
        self._cancel(ref, location)


def _is_immutable_error(e: RegistryError) -> bool:
    text = str(e).lower()
    return any(m in text for m in IMMUTABLE_MARKERS)


class _VerifyingReader:
    """Reads a streamed blob response, hashing as it goes; verifies at EOF."""

    def __init__(self, resp: Response, desc: Descriptor, what: str) -> None:
        self._resp = resp  # raw bytes: no content decoding, the digest is over them
        self._hasher = _Hasher(desc.digest)
        self._desc = desc
        self._what = what
        self._done = False

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        if n is None or n < 0:
            parts = []
            while chunk := self.read(STREAM_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        data = self._resp.read(n)  # a broken connection raises ConnectError: fetch_blob retries
        if data:
            self._hasher.update(data)
            if self._desc.size >= 0 and self._hasher.size > self._desc.size:
                raise DigestMismatch(
                    f"{self._what}: more than the {self._desc.size} bytes announced"
                )
            return data
        self._done = True
        self._hasher.check(self._what, self._desc.size)
        return b""

    def readable(self) -> bool:
        return True
