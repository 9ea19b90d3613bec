from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import BuildError
from engine.run import UserIds, resolve_chown, resolve_user
from tests.support.busybox import GROUP, PASSWD


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the files resolution reads: a whole busybox tree is not needed here."""
    root = tmp_path_factory.mktemp("users")
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    return root


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, UserIds(0, 0, (), "/root")),
        ("", UserIds(0, 0, (), "/root")),
        ("root", UserIds(0, 0, (), "/root")),
        ("app", UserIds(1000, 1000, (50,), "/home/app")),
        ("1000", UserIds(1000, 1000, (50,), "/home/app")),
        ("app:staff", UserIds(1000, 50, (), "/home/app")),
        ("app:0", UserIds(1000, 0, (), "/home/app")),
        ("1000:4242", UserIds(1000, 4242, (), "/home/app")),
        ("4242", UserIds(4242, 0, (), "/")),
        ("4242:4243", UserIds(4242, 4243, (), "/")),
        ("nobody:nogroup", UserIds(65534, 65534, (), "/nonexistent")),
        (":staff", UserIds(0, 50, (), "/root")),
    ],
)
def test_resolve_user_follows_runc_rules(rootfs: Path, spec: str | None, expected: UserIds) -> None:
    assert resolve_user(spec, rootfs) == expected


def test_unknown_user_name_is_docker_error(rootfs: Path) -> None:
    with pytest.raises(
        BuildError, match="unable to find user ghost: no matching entries in passwd"
    ):
        resolve_user("ghost", rootfs)


def test_unknown_group_name_is_docker_error(rootfs: Path) -> None:
    with pytest.raises(BuildError, match="unable to find group ghosts: no matching entries"):
        resolve_user("app:ghosts", rootfs)


def test_missing_passwd_allows_only_numeric_ids(tmp_path: Path) -> None:
    assert resolve_user("7:8", tmp_path) == UserIds(7, 8, (), "/")
    with pytest.raises(BuildError, match="unable to find user app"):
        resolve_user("app", tmp_path)


def test_symlinked_etc_is_resolved_inside_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "real").mkdir(parents=True)
    (root / "real/passwd").write_text("svc:x:77:78::/srv:/bin/sh\n")
    (root / "etc").symlink_to("/real")  # absolute: must mean rootfs/real, not the host's /real
    assert resolve_user("svc", root) == UserIds(77, 78, (), "/srv")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, (0, 0)),
        ("10", (10, 10)),
        ("10:20", (10, 20)),
        ("app", (1000, 1000)),
        ("app:staff", (1000, 50)),
        ("bin", (2, 2)),
        ("0:staff", (0, 50)),
    ],
)
def test_resolve_chown_follows_docker_rules(
    rootfs: Path, spec: str | None, expected: tuple[int, int]
) -> None:
    assert resolve_chown(spec, rootfs) == expected


def test_chown_unknown_names_fail(rootfs: Path) -> None:
    with pytest.raises(BuildError, match="can't find uid for user ghost"):
        resolve_chown("ghost", rootfs)
    with pytest.raises(BuildError, match="can't find gid for group ghosts"):
        resolve_chown("app:ghosts", rootfs)
