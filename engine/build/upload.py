"""Layer uploads that run while later steps build.

A layer of the final image's stage chain is handed to `Uploader.submit` as soon as it is
written (or, for a base image, fetched); each destination repository gets it in the
background: mounted from the base's repository when on the same registry, else uploaded.
`finish` waits for all of them and re-raises the first failure. Blobs that reach the
registry before a later step fails are harmless: no manifest or tag points at them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engine.build.assemble import LayerRef


class Uploader:
    def __init__(
        self,
        client: Any,
        destinations: Sequence[Any],
        ensure_local: Callable[[LayerRef], Path],
        *,
        workers: int = 3,
    ) -> None:
        self.client = client
        self.ensure_local = ensure_local
        self.destinations = list(destinations)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push")
        self._futures: dict[tuple[str, str], Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, layer: LayerRef) -> None:
        for ref in self.destinations:
            key = (str(ref.name), layer.descriptor.digest)
            with self._lock:
                if key not in self._futures:
                    self._futures[key] = self._pool.submit(self._push, ref, layer)

    def _push(self, ref: Any, layer: LayerRef) -> None:
        from engine.registry import Reference

        mount_from = None
        if layer.source_repo:
            src = Reference.parse(layer.source_repo)
            if src.registry == ref.registry and src.repository != ref.repository:
                mount_from = src
        desc = layer.descriptor
        if layer.path is None and mount_from is not None:
            # Base and cached layers on the same registry are mounted, never downloaded.
            if self.client.blob_exists(ref, desc.digest):
                return
            placeholder = Path("/nonexistent-brickyard-blob")
            try:
                self.client.push_blob(ref, desc, placeholder, mount_from=mount_from)
                return
            except OSError:
                pass  # the registry refused the mount: upload it after all
        self.client.push_blob(ref, desc, self.ensure_local(layer), mount_from=mount_from)

    def finish(self, layers: Sequence[LayerRef]) -> None:
        """Make sure every layer of the image is in every destination."""
        for layer in layers:
            self.submit(layer)
        with self._lock:
            futures = list(self._futures.values())
        for fut in futures:
            fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
