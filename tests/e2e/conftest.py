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
