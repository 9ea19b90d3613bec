from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from engine.errors import UnsafeLayer
from engine.fs.safe import (
    clean_relative,
    ensure_dirs,
    is_within,
    open_for_write,
    resolve_in_root,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "usr/bin").mkdir(parents=True)
    (r / "etc").mkdir()
    return r


def test_clean_relative_strips_root_and_dots() -> None:
    assert clean_relative("/a/./b//c/") == "a/b/c"
    assert clean_relative("a/b/../c") == "a/c"
    assert clean_relative("../../x") == "x"
    assert clean_relative("/") == ""


def test_clean_relative_strict_refuses_escape() -> None:
    with pytest.raises(UnsafeLayer, match="escapes"):
        clean_relative("a/../../x", strict=True)


def test_absolute_symlink_is_rerooted(root: Path) -> None:
    (root / "bin").symlink_to("/usr/bin")
    assert resolve_in_root(root, "/bin/sh") == root / "usr/bin/sh"


def test_relative_symlink_dotdot_clamped_at_root(root: Path) -> None:
    (root / "etc/up").symlink_to("../../../../../usr")
    assert resolve_in_root(root, "etc/up/bin") == root / "usr/bin"


def test_strict_refuses_symlink_climbing_above_root(root: Path) -> None:
    (root / "etc/up").symlink_to("../../outside")
    with pytest.raises(UnsafeLayer):
        resolve_in_root(root, "etc/up/x", strict=True)


def test_symlink_to_host_absolute_path_stays_inside(root: Path, tmp_path: Path) -> None:
    (root / "evil").symlink_to(str(tmp_path / "sentinel"))
    got = resolve_in_root(root, "evil/file")
    assert is_within(root, got)
    assert got == root / str(tmp_path / "sentinel/file").lstrip("/")


def test_follow_last_false_keeps_final_symlink(root: Path) -> None:
    (root / "link").symlink_to("/etc")
    assert resolve_in_root(root, "link", follow_last=False) == root / "link"
    assert resolve_in_root(root, "link") == root / "etc"


def test_symlink_loop_raises_eloop(root: Path) -> None:
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    with pytest.raises(OSError) as info:
        resolve_in_root(root, "a/x")
    assert info.value.errno == errno.ELOOP


def test_chained_symlinks_and_missing_tail(root: Path) -> None:
    (root / "l1").symlink_to("l2")
    (root / "l2").symlink_to("/usr")
    assert resolve_in_root(root, "l1/bin/new/../tool") == root / "usr/bin/tool"


def test_ensure_dirs_through_symlink(root: Path) -> None:
    (root / "app").symlink_to("/usr")
    host = ensure_dirs(root, "/app/src/pkg")
    assert host == root / "usr/src/pkg" and host.is_dir()


def test_open_for_write_never_follows_last_symlink(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (root / "etc/passwd").symlink_to(str(outside))
    with pytest.raises(OSError) as info:
        open_for_write(root, "/etc/passwd")
    assert info.value.errno == errno.ELOOP
    fd = open_for_write(root, "/etc/new", exclusive=True)
    os.write(fd, b"x")
    os.close(fd)
    assert (root / "etc/new").read_bytes() == b"x"
    assert outside.read_text() == "keep"
