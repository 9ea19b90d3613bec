"""A hostile layer tar never writes, chmods, links or removes anything outside the rootfs."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from engine.errors import ImageError, UnsafeLayer
from engine.fs.extract import extract_layer
from tests.security.tarcraft import entry, write_tar


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    victim = tmp_path / "outside"
    victim.mkdir(mode=0o755)
    os.chmod(victim, 0o755)
    (victim / "file").write_text("original")
    os.chmod(victim / "file", 0o644)
    return victim


@pytest.fixture()
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    root.mkdir()
    return root


def _untouched(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["file"]
    assert (outside / "file").read_text() == "original"
    assert stat.S_IMODE(os.stat(outside / "file").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o755
    assert os.stat(outside / "file").st_nlink == 1


def _apply(tmp_path: Path, rootfs: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    extract_layer(write_tar(tmp_path / "layer.tar", entries), None, rootfs)


@pytest.mark.parametrize("name", ["../outside/new", "a/../../outside/new", "/abs"])
def test_names_leaving_the_root_are_refused(
    tmp_path: Path, rootfs: Path, outside: Path, name: str
) -> None:
    with pytest.raises(UnsafeLayer) as info:
        _apply(tmp_path, rootfs, [entry(name, data=b"pwned")])
    assert "\n" not in str(info.value) and repr(name) in str(info.value)
    _untouched(outside)


@pytest.mark.parametrize(
    "entries",
    [
        # a file over a symlink of the same name
        [("l", tarfile.SYMTYPE, "OUT/file", b""), ("l", tarfile.REGTYPE, "", b"pwned")],
        # a directory over a symlink, then a file in it
        [
            ("d", tarfile.SYMTYPE, "OUT", b""),
            ("d", tarfile.DIRTYPE, "", b""),
            ("d/file", tarfile.REGTYPE, "", b"pwned"),
        ],
        # writing below an absolute symlink: re-rooted inside the rootfs
        [("d", tarfile.SYMTYPE, "OUT", b""), ("d/new", tarfile.REGTYPE, "", b"pwned")],
        # a whiteout through a symlinked parent
        [("d", tarfile.SYMTYPE, "OUT", b""), ("d/.wh.file", tarfile.REGTYPE, "", b"")],
        [("d", tarfile.SYMTYPE, "OUT", b""), ("d/.wh..wh..opq", tarfile.REGTYPE, "", b"")],
        # a hardlink through a symlinked parent
        [("d", tarfile.SYMTYPE, "OUT", b""), ("h", tarfile.LNKTYPE, "d/file", b"")],
    ],
)
def test_symlink_tricks_stay_inside(
    tmp_path: Path,
    rootfs: Path,
    outside: Path,
    entries: list[tuple[str, bytes, str, bytes]],
) -> None:
    crafted = [
        entry(n, kind, link=link.replace("OUT", str(outside)), data=data, mode=0o777)
        for n, kind, link, data in entries
    ]
    try:
        _apply(tmp_path, rootfs, crafted)
    except (UnsafeLayer, ImageError) as err:
        assert "\n" not in str(err)
    _untouched(outside)


@pytest.mark.parametrize("link", ["/etc/passwd", "../../../../etc/passwd"])
def test_hardlinks_to_host_files_are_refused(
    tmp_path: Path, rootfs: Path, outside: Path, link: str
) -> None:
    links_before = os.stat("/etc/passwd").st_nlink
    with pytest.raises(UnsafeLayer):
        _apply(tmp_path, rootfs, [entry("h", tarfile.LNKTYPE, link=link)])
    assert not (rootfs / "h").exists()
    assert os.stat("/etc/passwd").st_nlink == links_before


def test_relative_symlink_climbing_out_is_refused_when_written_through(
    tmp_path: Path, rootfs: Path, outside: Path
) -> None:
    with pytest.raises(UnsafeLayer):
        _apply(
            tmp_path,
            rootfs,
            [entry("up", tarfile.SYMTYPE, link="../.."), entry("up/outside/new", data=b"x")],
        )
    _untouched(outside)
