"""A hostile tar:// build context never writes outside the context directory."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from engine.context.sources import ContextRequest, open_context
from engine.errors import ContextError
from tests.security.tarcraft import entry, write_tar


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    victim = tmp_path / "outside"
    victim.mkdir(mode=0o755)
    (victim / "file").write_text("original")
    os.chmod(victim / "file", 0o644)
    return victim


def _open(tmp_path: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    tar = write_tar(tmp_path / "ctx.tar", entries)
    return open_context(f"tar://{tar}", ContextRequest(workdir=tmp_path / "ctx"))


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["file"]
    assert (outside / "file").read_text() == "original"
    assert stat.S_IMODE(os.stat(outside / "file").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o755


@pytest.mark.parametrize(
    "name", ["../outside/new", "/abs/new", "a/../../outside/new", "./../outside/new"]
)
def test_entry_names_leaving_the_context_are_refused(
    tmp_path: Path, outside: Path, name: str
) -> None:
    with pytest.raises(ContextError, match="leaves the context"):
        _open(tmp_path, [entry(name, data=b"pwned")])
    _untouched(outside)


def test_file_written_through_a_symlink_of_the_same_name_stays_inside(
    tmp_path: Path, outside: Path
) -> None:
    ctx = _open(
        tmp_path,
        [
            entry("link", tarfile.SYMTYPE, link=str(outside / "file")),
            entry("link", data=b"pwned", mode=0o777),
        ],
    )
    _untouched(outside)
    assert (ctx / "link").read_bytes() == b"pwned"
    assert not (ctx / "link").is_symlink()


def test_directory_entry_over_a_symlink_does_not_chmod_the_target(
    tmp_path: Path, outside: Path
) -> None:
    ctx = _open(
        tmp_path,
        [
            entry("d", tarfile.SYMTYPE, link=str(outside)),
            entry("d", tarfile.DIRTYPE, mode=0o777),
            entry("d/new", data=b"pwned"),
        ],
    )
    _untouched(outside)
    assert (ctx / "d").is_dir() and not (ctx / "d").is_symlink()
    assert (ctx / "d" / "new").read_bytes() == b"pwned"


def test_write_below_a_symlinked_directory_is_refused(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(ContextError, match="writes through a symlink"):
        _open(
            tmp_path,
            [entry("d", tarfile.SYMTYPE, link=str(outside)), entry("d/new", data=b"pwned")],
        )
    _untouched(outside)


def test_relative_symlink_chain_escape_is_refused(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(ContextError, match="writes through a symlink"):
        _open(
            tmp_path,
            [
                entry("up", tarfile.SYMTYPE, link=".."),
                entry("up/outside/new", data=b"pwned"),
            ],
        )
    _untouched(outside)


@pytest.mark.parametrize("link", ["/etc/passwd", "../outside/file", "sym/file"])
def test_hardlink_to_outside_is_refused(tmp_path: Path, outside: Path, link: str) -> None:
    with pytest.raises(ContextError, match="hard link"):
        _open(
            tmp_path,
            [
                entry("sym", tarfile.SYMTYPE, link=str(outside)),
                entry("h", tarfile.LNKTYPE, link=link),
            ],
        )
    _untouched(outside)


def test_hardlink_over_a_symlink_replaces_the_link_not_its_target(
    tmp_path: Path, outside: Path
) -> None:
    ctx = _open(
        tmp_path,
        [
            entry("real", data=b"inside"),
            entry("link", tarfile.SYMTYPE, link=str(outside / "file")),
            entry("link", tarfile.LNKTYPE, link="real"),
        ],
    )
    _untouched(outside)
    assert (ctx / "link").read_bytes() == b"inside"


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_nodes_are_refused(tmp_path: Path, kind: bytes) -> None:
    with pytest.raises(ContextError, match=r"device entry 'dev'"):
        _open(tmp_path, [entry("dev", kind)])
    assert not (tmp_path / "ctx" / "dev").exists()


def test_error_is_one_line_naming_the_tarball_and_entry(tmp_path: Path) -> None:
    with pytest.raises(ContextError) as info:
        _open(tmp_path, [entry("../x", data=b"")])
    message = str(info.value)
    assert "\n" not in message
    assert "ctx.tar" in message and "'../x'" in message


def test_dockerfile_and_dockerignore_symlinked_out_of_the_context_are_not_read(
    tmp_path: Path, outside: Path
) -> None:
    from engine.context.dockerignore import load_dockerignore
    from engine.context.sources import resolve_dockerfile_path

    (outside / "file").write_text("FROM scratch\nRUN TOKEN=host-secret\n")
    ctx = _open(
        tmp_path,
        [
            entry("Dockerfile", tarfile.SYMTYPE, link=str(outside / "file")),
            entry(".dockerignore", tarfile.SYMTYPE, link="../outside/file"),
        ],
    )
    with pytest.raises(ContextError, match="Dockerfile not found"):
        resolve_dockerfile_path("Dockerfile", ctx, cwd=tmp_path / "elsewhere")
    assert load_dockerignore(ctx).patterns == load_dockerignore(tmp_path / "empty").patterns
    # inside the context, links are followed
    (ctx / "real").mkdir()
    (ctx / "real/Dockerfile").write_text("FROM scratch\n")
    (ctx / "real/.dockerignore").write_text("x\n")
    (ctx / "df").symlink_to("/real/Dockerfile")
    assert resolve_dockerfile_path("df", ctx, cwd=tmp_path / "elsewhere") == ctx / "real/Dockerfile"


@pytest.mark.parametrize("name", [".", "./", "./."])
def test_a_symlink_naming_the_root_after_files_does_not_remove_them(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(ContextError, match="replaces the context"):
        _open(tmp_path, [entry("f", data=b"x"), entry(name, tarfile.SYMTYPE, link="/")])
    assert (tmp_path / "ctx/f").read_bytes() == b"x"
