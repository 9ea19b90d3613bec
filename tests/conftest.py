"""Shared pytest fixtures. Other suites may add small fixtures here (targeted edits only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registry import RunningRegistry, start_registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A plain-HTTP docker-registry on 127.0.0.1 (.host "127.0.0.1:PORT", .url)."""
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def busybox_image(registry: RunningRegistry) -> str:
    """Reference "127.0.0.1:PORT/base/busybox:latest" of an offline-built busybox image."""
    from tests.support.images import push_busybox_image

    return push_busybox_image(registry.host, "base/busybox", "latest")


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI image layout dir holding the busybox image under tag "latest" (no registry)."""
    from tests.support.images import make_busybox_layout

    return make_busybox_layout(tmp_path_factory.mktemp("busybox-layout") / "layout")
