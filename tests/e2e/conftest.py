"""One registry and one busybox base image for every end-to-end build."""

from __future__ import annotations

import pytest

from tests.e2e.harness import E2E
from tests.support.registry import RunningRegistry


@pytest.fixture(scope="session")
def e2e(
    registry: RunningRegistry, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> E2E:
    return E2E(registry.host, busybox_image, tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="session")
def minbase_image(registry: RunningRegistry) -> str:
    """Debian minbase (debootstrap, cached between runs) pushed to the local registry."""
    from tests.e2e.minbase import push_minbase_image

    return push_minbase_image(registry.host)
