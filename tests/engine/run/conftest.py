from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.busybox import make_busybox_rootfs


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()
