"""The layer cache repo: one tiny image per cached step, tagged with the step's key.

A cache entry is a valid OCI image (skopeo and umoci can read it) with
  - exactly one layer: the step's layer blob as it was built (zero layers when the step
    changed no file), so its whiteouts and deletions are reused unchanged;
  - a small config recording the diff_id, the step's history entry and its config delta;
  - manifest annotations repeating what a lookup needs (`dev.brickyard.cache.*`), so that a
    lookup is ONE manifest GET: no config fetch, no blob download.
TTL: an entry whose `created` time is older than `--cache-ttl` is a miss.

Where the entries live (`CacheBackend`): a registry repository (default
`<destination repository>/cache`, blobs mounted across repositories instead of re-uploaded)
or an `oci:/path` layout directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.cache.layout import LayoutStore
from engine.errors import (
    AuthError,
    BrickyardError,
    CacheError,
    DigestMismatch,
    ManifestUnknown,
    RegistryError,
)
from engine.image.model import (
    OCI_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    Platform,
    build_manifest,
    canonical_json,
    descriptor_for,
    parse_manifest,
)
from engine.registry.client import RegistryClient
from engine.registry.reference import Reference

log = logging.getLogger("brickyard.cache")

ANN_KEY = "dev.brickyard.cache.key"
ANN_DIFF_ID = "dev.brickyard.cache.diff-id"
ANN_CREATED = "dev.brickyard.cache.created"
ANN_HISTORY = "dev.brickyard.cache.history"
ANN_CONFIG_DELTA = "dev.brickyard.cache.config-delta"
ANN_VERSION = "dev.brickyard.cache.version"
FORMAT_VERSION = "1"


class LayerLike(Protocol):
    """What `store` needs of a written layer (engine.image.layers.LayerBlob fits)."""

    path: Path
    diff_id: str
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class CachedLayer:
    """A cache hit. `layer` is None when the cached step changed no file."""

    key: str
    layer: Descriptor | None
    diff_id: str | None
    history: dict[str, Any]
    config_delta: dict[str, Any]
    created: dt.datetime
    # Registry cache: "host/repo" to mount the blob from when pushing the final image.
    # None for an oci: layout cache (the blob is local: use StepCache.fetch_layer).
    repository: str | None
    manifest_digest: str

    @property
    def mount_source(self) -> Reference | None:
        """`mount_from` for RegistryClient.push_blob, None for a layout cache."""
        return Reference.parse(self.repository) if self.repository else None


class CacheBackend(Protocol):
    """Storage of cache images: a registry repository or an OCI layout."""

    location: str  # for messages: "127.0.0.1:5000/app/cache" or "oci:/path"
    repository: str | None  # registry "host/repo" (mount source), None for layouts

    def get_manifest(self, tag: str) -> bytes | None: ...

    def push_layer(self, desc: Descriptor, path: Path, mount_from: str | None) -> None: ...

    def push_bytes(self, desc: Descriptor, data: bytes) -> None: ...

    def put_manifest(self, tag: str, body: bytes, media_type: str) -> str: ...

    def fetch_blob(self, desc: Descriptor, dest: Path) -> None: ...


class LayoutBackend:
    """`--cache-repo oci:/path`: cache images in a local OCI layout, tagged by key."""

    repository: str | None = None

    def __init__(self, root: Path) -> None:
        self.store = LayoutStore(root)
        self.location = f"oci:{root}"

    def get_manifest(self, tag: str) -> bytes | None:
        desc = self.store.resolve(tag)
        return None if desc is None else self.store.read_blob(desc.digest)

    def push_layer(self, desc: Descriptor, path: Path, mount_from: str | None) -> None:
        self.store.put_file(path, desc.digest)

    def push_bytes(self, desc: Descriptor, data: bytes) -> None:
        self.store.put_bytes(data, desc.digest)

    def put_manifest(self, tag: str, body: bytes, media_type: str) -> str:
        digest = self.store.put_bytes(body)
        self.store.tag(tag, Descriptor(media_type, digest, len(body)))
        return digest

    def fetch_blob(self, desc: Descriptor, dest: Path) -> None:
        self.store.copy_blob(desc.digest, dest)


class RegistryBackend:
    """Cache images in a registry repository (`--cache-repo host/repo`), tags = keys."""

    def __init__(self, client: RegistryClient, repo: str) -> None:
        ref = Reference.parse(repo)
        if ref.digest or ref.tag:
            raise CacheError(f"--cache-repo {repo} must name a repository, not a tag or digest")
        self.client = client
        self.ref = ref
        self.repository: str | None = ref.name
        self.location = ref.name

    def get_manifest(self, tag: str) -> bytes | None:
        try:
            raw, _media_type, _digest = self.client.get_manifest(self.ref.with_tag(tag))
        except ManifestUnknown:
            return None
        return raw

    def push_layer(self, desc: Descriptor, path: Path, mount_from: str | None) -> None:
        source = Reference.parse(mount_from) if mount_from else None
        self.client.push_blob(self.ref, desc, path, mount_from=source)

    def push_bytes(self, desc: Descriptor, data: bytes) -> None:
        # push_blob HEADs first: an existing config costs one request, no upload.
        fd, tmp = tempfile.mkstemp(prefix="brickyard-cache-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self.client.push_blob(self.ref, desc, Path(tmp))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def put_manifest(self, tag: str, body: bytes, media_type: str) -> str:
        return self.client.put_manifest(self.ref.with_tag(tag), body, media_type)

    def fetch_blob(self, desc: Descriptor, dest: Path) -> None:
        self.client.fetch_blob(self.ref, desc, dest)


def default_cache_repo(destination: str) -> str:
    """kaniko's inference: `<destination repository>/cache` (tag and digest dropped)."""
    name = destination.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return f"{name}/cache"


def cache_repo_for(cache_repo: str, destinations: Iterable[str]) -> str:
    """The cache location a build uses: `--cache-repo` as given, else inferred from the
    first destination. Raises CacheError when neither exists."""
    if cache_repo:
        return cache_repo
    for dest in destinations:
        return default_cache_repo(dest)
    raise CacheError("--cache needs --cache-repo or a --destination to infer it from")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _format_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class StepCache:
    """Look up and store cached step layers. See engine/cache/__init__.py for the contract."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        ttl: dt.timedelta = dt.timedelta(hours=336),
        push: bool = True,
        run_layers: bool = True,
        copy_layers: bool = False,
        platform: Platform | None = None,
        now: Callable[[], dt.datetime] = _utcnow,
        workers: int = 4,
    ) -> None:
        self.backend = backend
        self.ttl = ttl
        self.push = push
        self.run_layers = run_layers
        self.copy_layers = copy_layers
        self.platform = platform or Platform("linux", "amd64")
        self.now = now
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cache")
        self._pending: list[Future[None]] = []
        self._deferred: list[tuple[str, LayerLike | None, Future[None], bytes, str | None]] = []
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0, "stored": 0, "store_failed": 0}
        self.unusable: str | None = None  # why the cache was given up, once it was

    # ---- policy ----
    def caches(self, keyword: str) -> bool:
        """Does this instruction's layer go through the cache? (--cache-run-layers,
        --cache-copy-layers; WORKDIR always, as kaniko's CachingWorkdirCommand: creating the
        directory needs the filesystem, its entry lets a cached rebuild skip extracting it;
        every other instruction only contributes its key.)"""
        keyword = keyword.upper()
        if keyword == "RUN":
            return self.run_layers
        if keyword in ("COPY", "ADD"):
            return self.copy_layers
        return keyword == "WORKDIR"

    # ---- lookup ----
    def lookup(self, key: str) -> CachedLayer | None:
        """The cached layer for `key`, or None (absent, expired, unreadable: all misses;
        an unreachable cache is a warning, never a failed build).

        A cache that refuses us (auth) or cannot be reached is given up for the rest of the
        build after the first failure: one warning, no retries and backoff on every step."""
        hit = None
        if self.unusable is None:
            try:
                raw = self.backend.get_manifest(key)
                hit = None if raw is None else self._decode(key, raw)
            except (AuthError, RegistryError, OSError) as exc:
                if not isinstance(exc, ManifestUnknown | DigestMismatch):
                    self._give_up(exc)
            except (BrickyardError, ValueError) as exc:  # a corrupt entry is only a miss
                log.warning(
                    "cache entry %s in %s unusable: %s", key[:12], self.backend.location, exc
                )
        if hit is not None and hit.created + self.ttl < self.now():
            log.info("cache entry %s expired (created %s)", key[:12], _format_time(hit.created))
            hit = None
        with self._lock:
            self.stats["hits" if hit else "misses"] += 1
        return hit

    def _give_up(self, exc: BaseException) -> None:
        with self._lock:
            first = self.unusable is None
            self.unusable = str(exc)
        if first:
            log.warning(
                "layer cache %s unusable, building without it: %s", self.backend.location, exc
            )

    def lookup_async(self, key: str) -> Future[CachedLayer | None]:
        """`lookup` in the cache's thread pool: start many, take the answers in order."""
        return self._pool.submit(self.lookup, key)

    def lookup_many(self, keys: Iterable[str]) -> dict[str, CachedLayer | None]:
        """Parallel lookups (one manifest GET each), e.g. every cacheable step of a stage
        before building it: a fully cached stage then costs one round trip, not N."""
        keys = list(dict.fromkeys(keys))
        results = list(self._pool.map(self.lookup, keys))
        return dict(zip(keys, results, strict=True))

    def _decode(self, key: str, raw: bytes) -> CachedLayer | None:
        manifest = parse_manifest(raw)
        if not isinstance(manifest, Manifest):
            return None
        ann = dict(manifest.annotations or {})
        if ann.get(ANN_VERSION) != FORMAT_VERSION or ann.get(ANN_KEY) != key:
            return None  # not ours, or an older format: rebuild rather than guess
        if len(manifest.layers) > 1:
            raise CacheError(f"cache entry {key[:12]} in {self.backend.location} has >1 layer")
        layer = manifest.layers[0] if manifest.layers else None
        diff_id = ann.get(ANN_DIFF_ID) or None
        if (layer is None) != (diff_id is None):
            raise CacheError(f"cache entry {key[:12]} in {self.backend.location} is inconsistent")
        return CachedLayer(
            key=key,
            layer=layer,
            diff_id=diff_id,
            history=json.loads(ann.get(ANN_HISTORY) or "{}"),
            config_delta=json.loads(ann.get(ANN_CONFIG_DELTA) or "{}"),
            created=_parse_time(ann[ANN_CREATED]),
            repository=self.backend.repository,
            manifest_digest=manifest.digest,
        )

    # ---- store ----
    def store(
        self,
        key: str,
        layer: LayerLike | None,
        *,
        history: Mapping[str, Any],
        config_delta: Mapping[str, Any] | None = None,
        mount_from: str | None = None,
    ) -> None:
        """Queue pushing the cache entry for `key` (returns at once; `flush()` waits).

        layer: the step's written layer, None when it changed no file. Its file must stay
            until `flush()` returns.
        history: the step's history entry (created_by, comment, ...).
        config_delta: the image-config fields the step changed (usually empty for RUN).
        mount_from: registry "host/repo" that will hold the blob, e.g. the destination
            repository the build pushes the layer to. Such a store waits until `flush()`
            (after the build's own uploads finished) so the blob is mounted, not uploaded a
            second time while the destination upload is still running.
        No-op with --no-push-cache.
        """
        if not self.push or self.unusable is not None:
            return
        config_desc, config_bytes, manifest = self._entry(
            key, layer, dict(history), dict(config_delta or {})
        )
        # The entry's config goes up at once; only the layer may wait for its mount source.
        # The pool runs jobs in submission order, so when the finishing job waits for this
        # upload it has already started: no deadlock on a full pool.
        config_up = self._pool.submit(self.backend.push_bytes, config_desc, config_bytes)
        job = (key, layer, config_up, manifest, mount_from)
        with self._lock:
            if layer is not None and mount_from:
                self._deferred.append(job)
            else:
                self._pending.append(self._pool.submit(self._finish_store, *job))

    def _entry(
        self,
        key: str,
        layer: LayerLike | None,
        history: dict[str, Any],
        config_delta: dict[str, Any],
    ) -> tuple[Descriptor, bytes, bytes]:
        """The cache entry for `key`: its config (descriptor and bytes) and manifest."""
        created = self.now()
        layers: list[Descriptor] = []
        diff_ids: list[str] = []
        if layer is not None:
            layers.append(Descriptor(layer.media_type, layer.digest, layer.size))
            diff_ids.append(layer.diff_id)
        entry = {"created": _format_time(created), **history}
        if layer is None:
            entry["empty_layer"] = True
        config = {
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "created": _format_time(created),
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [entry],
            "brickyard.cache": {"key": key, "config_delta": config_delta},
        }
        if self.platform.variant:
            config["variant"] = self.platform.variant
        config_bytes = canonical_json(config)
        config_desc = descriptor_for(config_bytes, OCI_CONFIG)
        annotations = {
            ANN_VERSION: FORMAT_VERSION,
            ANN_KEY: key,
            ANN_CREATED: _format_time(created),
            ANN_HISTORY: json.dumps(history, sort_keys=True, separators=(",", ":")),
            ANN_CONFIG_DELTA: json.dumps(config_delta, sort_keys=True, separators=(",", ":")),
            "org.opencontainers.image.created": _format_time(created),
        }
        if layer is not None:
            annotations[ANN_DIFF_ID] = layer.diff_id
        body = build_manifest(config_desc, layers, media_type=OCI_MANIFEST, annotations=annotations)
        return config_desc, config_bytes, body

    def _finish_store(
        self,
        key: str,
        layer: LayerLike | None,
        config_up: Future[None],
        manifest: bytes,
        mount_from: str | None,
    ) -> None:
        """The layer (mounted when it can be), then the manifest, which goes last: an entry
        is visible only once everything it names is there."""
        if layer is not None:
            desc = Descriptor(layer.media_type, layer.digest, layer.size)
            self.backend.push_layer(desc, Path(layer.path), mount_from)
        config_up.result()
        self.backend.put_manifest(key, manifest, OCI_MANIFEST)

    def start_deferred(self) -> None:
        """Start the stores that waited for their blob to reach `mount_from` (call once the
        build's own uploads finished); `flush` waits for them."""
        with self._lock:
            deferred, self._deferred = self._deferred, []
            self._pending += [self._pool.submit(self._finish_store, *job) for job in deferred]

    def flush(self) -> int:
        """Wait for queued stores; failures are warnings (a cache push never fails a build).
        Returns how many stores failed."""
        self.start_deferred()
        with self._lock:
            pending, self._pending = self._pending, []
        failed = 0
        for fut in pending:
            exc = fut.exception()
            if exc is None:
                continue
            if not isinstance(exc, BrickyardError | OSError):
                raise exc
            failed += 1
            log.warning("pushing to cache %s failed: %s", self.backend.location, exc)
        with self._lock:
            self.stats["stored"] += len(pending) - failed
            self.stats["store_failed"] += failed
        return failed

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)

    # ---- materialising a hit ----
    def fetch_layer(self, cached: CachedLayer, dest: Path) -> None:
        """Download a cached layer blob (digest verified) to `dest`: only needed when a later
        step misses and the rootfs has to be built from the layers."""
        if cached.layer is None:
            raise CacheError(f"cache entry {cached.key[:12]} has no layer to fetch")
        self.backend.fetch_blob(cached.layer, dest)


def open_step_cache(
    options: Any, client: RegistryClient, *, platform: Platform | None = None
) -> StepCache | None:
    """The build's StepCache from BuildOptions (duck-typed field names), None without --cache.

    `--cache-repo oci:/path` is a local layout; otherwise a registry repository reached with
    `client` (the build's RegistryClient, so auth, TLS and insecure settings are shared).
    """
    if not getattr(options, "cache", False):
        return None
    repo = cache_repo_for(getattr(options, "cache_repo", ""), getattr(options, "destination", ()))
    backend: CacheBackend
    if repo.startswith("oci:"):
        backend = LayoutBackend(Path(repo[len("oci:") :]))
    else:
        backend = RegistryBackend(client, repo)
    return StepCache(
        backend,
        ttl=getattr(options, "cache_ttl", dt.timedelta(hours=336)),
        push=not getattr(options, "no_push_cache", False),
        run_layers=getattr(options, "cache_run_layers", True),
        copy_layers=getattr(options, "cache_copy_layers", False),
        platform=platform,
    )
