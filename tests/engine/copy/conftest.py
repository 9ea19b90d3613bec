from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.busybox import GROUP, PASSWD

MTIME_NS = 1_600_000_000_123_456_789


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    """A small rootfs: /etc/passwd and /etc/group for --chown names, /tmp."""
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    return root


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A build context with files, a nested tree, links and distinctive modes and times."""
    ctx = tmp_path / "context"
    (ctx / "dir/sub").mkdir(parents=True)
    (ctx / "a.txt").write_text("A")
    (ctx / "b.txt").write_text("B")
    (ctx / "notes.md").write_text("N")
    (ctx / "dir/d.txt").write_text("D")
    (ctx / "dir/debug.log").write_text("L")
    (ctx / "dir/sub/c.txt").write_text("C")
    (ctx / "dir/link").symlink_to("d.txt")
    (ctx / "dir/hard1").write_text("H")
    os.link(ctx / "dir/hard1", ctx / "dir/hard2")
    (ctx / "link_to_a").symlink_to("a.txt")
    (ctx / "escape").symlink_to("../../../../etc")  # resolved inside the context only
    os.chmod(ctx / "a.txt", 0o640)
    os.chmod(ctx / "dir/sub", 0o750)
    for p in sorted(ctx.rglob("*"), reverse=True):
        os.utime(p, ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)
    return ctx
