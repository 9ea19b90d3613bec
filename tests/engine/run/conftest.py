from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import busybox
from tests.support.busybox import make_busybox_rootfs

# The applets these tests call: linking all ~400 per rootfs (0.4 ms a symlink in this
# sandbox) would dominate the suite's time.
APPLETS = (
    "sh",
    "cat",
    "echo",
    "env",
    "grep",
    "id",
    "kill",
    "ls",
    "printf",
    "ps",
    "pwd",
    "setsid",
    "sleep",
    "sort",
    "touch",
    "true",
    "wc",
    "head",
    "cut",
)


# Package scope: the patch must end with this package, or base images that later tests
# (tests/e2e) build in the same session would lack applets such as awk.
@pytest.fixture(scope="package", autouse=True)
def _only_the_applets_used() -> Iterator[None]:
    available = set(busybox.busybox_applets())
    assert set(APPLETS) <= available
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(busybox, "busybox_applets", lambda: list(APPLETS))
        yield


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()
