"""COPY/ADD with hostile sources, archives and destinations stay inside the rootfs and
never read host files outside the context."""

from __future__ import annotations

import contextlib
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from engine.context.dockerignore import matcher_from_patterns
from engine.copy import copy_sources
from engine.errors import BuildError, ContextError
from tests.security.tarcraft import entry, write_tar


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    victim = tmp_path / "outside"
    victim.mkdir()
    (victim / "secret").write_text("host secret")
    return victim


@pytest.fixture()
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    return root


@pytest.fixture()
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "context"
    ctx.mkdir()
    return ctx


def _run(ctx: Path, root: Path, sources: list[str], dest: str, **kw: Any) -> list[str]:
    return copy_sources(sources=sources, dest=dest, src_root=ctx, rootfs=root, **kw)


def _untouched(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_text() == "host secret"


@pytest.mark.parametrize("link", ["/", "../..", "../../../../../../..", "/../.."])
def test_add_archive_into_a_dest_whose_parent_is_a_symlink_to_root_stays_in_rootfs(
    tmp_path: Path, rootfs: Path, context: Path, outside: Path, link: str
) -> None:
    (rootfs / "usr").mkdir()
    (rootfs / "usr/up").symlink_to(link)
    write_tar(context / "evil.tar", [entry(f"{outside.name}/secret", data=b"pwned")])
    _run(context, rootfs, ["evil.tar"], f"/usr/up{tmp_path}/", is_add=True)
    _untouched(outside)
    assert (rootfs / str(outside).lstrip("/") / "secret").read_bytes() == b"pwned"


def test_copy_file_into_a_dest_through_a_symlink_to_a_host_path_stays_in_rootfs(
    rootfs: Path, context: Path, outside: Path
) -> None:
    (context / "secret").write_text("pwned")
    (rootfs / "out").symlink_to(str(outside))  # absolute: means rootfs/<outside> in the container
    _run(context, rootfs, ["secret"], "/out/")
    _untouched(outside)
    assert (rootfs / str(outside).lstrip("/") / "secret").read_text() == "pwned"


def test_copy_onto_an_existing_symlink_follows_it_inside_the_rootfs(
    rootfs: Path, context: Path, outside: Path
) -> None:
    (context / "f").write_text("pwned")
    (rootfs / "f").symlink_to(str(outside / "secret"))
    (rootfs / "rel").symlink_to("../outside/secret")
    for dest in ("/f", "/rel"):
        try:
            _run(context, rootfs, ["f"], dest)
        except BuildError as err:
            assert "\n" not in str(err)
    _untouched(outside)
    # followed inside the rootfs, as BuildKit does, creating the dangling target's parents
    assert (rootfs / str(outside).lstrip("/") / "secret").read_text() == "pwned"


def test_archive_symlink_then_file_of_the_same_name_replaces_the_link(
    rootfs: Path, context: Path, outside: Path
) -> None:
    write_tar(
        context / "evil.tar",
        [
            entry("l", tarfile.SYMTYPE, link=str(outside / "secret")),
            entry("l", data=b"pwned"),
            entry("d", tarfile.SYMTYPE, link=str(outside)),
            entry("d", tarfile.DIRTYPE, mode=0o777),
            entry("d/secret", data=b"pwned"),
            entry("rel", tarfile.SYMTYPE, link="../../../outside/secret"),
            entry("rel", tarfile.LNKTYPE, link="l"),
        ],
    )
    _run(context, rootfs, ["evil.tar"], "/x/", is_add=True)
    _untouched(outside)
    assert oct(os.stat(outside).st_mode & 0o777) != oct(0o777)
    assert (rootfs / "x/l").read_bytes() == b"pwned"
    assert (rootfs / "x/d/secret").read_bytes() == b"pwned"


@pytest.mark.parametrize("link", ["/etc/passwd", "../../../../etc/passwd"])
def test_archive_hardlink_never_links_a_host_file(
    rootfs: Path, context: Path, outside: Path, link: str
) -> None:
    """A name is the rootfs's own (/etc/passwd is the rootfs's file) or refused."""
    write_tar(context / "evil.tar", [entry("h", tarfile.LNKTYPE, link=link)])
    try:
        _run(context, rootfs, ["evil.tar"], "/", is_add=True)
    except BuildError as err:
        assert "escapes the destination" in str(err)
    host_passwd = os.stat("/etc/passwd")
    h = rootfs / "h"
    if h.exists():
        assert os.stat(h).st_ino != host_passwd.st_ino


def test_archive_hardlink_through_a_symlinked_parent_stays_in_rootfs(
    rootfs: Path, context: Path, outside: Path
) -> None:
    write_tar(
        context / "evil.tar",
        [
            entry("s", tarfile.SYMTYPE, link=str(outside)),
            entry("h", tarfile.LNKTYPE, link="s/secret"),
        ],
    )
    with pytest.raises(BuildError, match="missing entry"):
        _run(context, rootfs, ["evil.tar"], "/", is_add=True)
    assert os.stat(outside / "secret").st_nlink == 1


def test_copy_of_a_symlink_pointing_outside_the_context_copies_the_link(
    rootfs: Path, context: Path, outside: Path
) -> None:
    (context / "leak").symlink_to(str(outside / "secret"))
    (context / "dir").mkdir()
    (context / "dir/leak").symlink_to("../../outside/secret")
    _run(context, rootfs, ["leak"], "/x/")
    _run(context, rootfs, ["dir"], "/y/")
    assert os.readlink(rootfs / "x/leak") == str(outside / "secret")
    assert os.readlink(rootfs / "y/leak") == "../../outside/secret"
    for p in (rootfs / "x").rglob("*"):
        if p.is_file() and not p.is_symlink():
            assert p.read_text() != "host secret"


def test_copy_through_a_context_symlink_to_outside_never_reads_the_host_file(
    rootfs: Path, context: Path, outside: Path
) -> None:
    (context / "out").symlink_to(str(outside))
    (context / "up").symlink_to("../outside")
    for src in ("out/secret", "up/secret", "out/*", "up/*"):
        try:
            _run(context, rootfs, [src], "/x/")
        except BuildError as err:
            assert "\n" not in str(err)
    for p in rootfs.rglob("*"):
        if p.is_file() and not p.is_symlink():
            assert p.read_text() != "host secret", p


def test_dockerignored_files_are_not_reachable_through_wildcards(
    rootfs: Path, context: Path
) -> None:
    (context / "app.txt").write_text("app")
    (context / "secret.txt").write_text("ignored secret")
    (context / "sub").mkdir()
    (context / "sub/.env").write_text("ignored env")
    (context / "sub/ok").write_text("ok")
    ignore = matcher_from_patterns(["secret.txt", "**/.env"])
    for src in ("*", "*.txt", "s*", "[s]ecret.txt", "sub", "sub/*", "sub/.e?v", "."):
        with contextlib.suppress(BuildError):  # a named ignored source is an error
            _run(context, rootfs, [src], "/x/", ignore=ignore)
    found = {p.read_text() for p in rootfs.rglob("*") if p.is_file()}
    assert "ignored secret" not in found and "ignored env" not in found
    assert "app" in found and "ok" in found


def test_dockerignored_files_are_not_reachable_through_context_symlinks(
    rootfs: Path, context: Path
) -> None:
    """Docker never sends ignored files: a symlink to one dangles there, so COPY through it
    must not read the ignored file (named, by wildcard, or as a directory's entry)."""
    (context / "secret.txt").write_text("ignored secret")
    (context / "secrets").mkdir()
    (context / "secrets/key").write_text("ignored key")
    (context / "parent").mkdir()
    (context / "parent/.env").write_text("ignored env")
    (context / "parent/ok").write_text("ok")
    (context / "alias").symlink_to("secret.txt")
    (context / "alias_abs").symlink_to("/secret.txt")
    (context / "alias_dir").symlink_to("secrets")
    (context / "alias_parent").symlink_to("parent")
    ignore = matcher_from_patterns(["secret.txt", "secrets", "parent/.env"])
    for src in ("alias", "alias_abs", "al*", "alias_dir", "alias_dir/key", "alias_parent", "*"):
        with contextlib.suppress(BuildError):
            _run(context, rootfs, [src], f"/x/{src.replace('*', 'star')}/", ignore=ignore)
    found = {p.read_text() for p in rootfs.rglob("*") if p.is_file() and not p.is_symlink()}
    assert not found & {"ignored secret", "ignored key", "ignored env"}, found
    assert "ok" in found


def test_add_archive_device_nodes_without_cap_mknod_are_skipped_not_a_crash(
    rootfs: Path, context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    write_tar(
        context / "dev.tar",
        [entry("null", tarfile.CHRTYPE), entry("disk", tarfile.BLKTYPE), entry("ok", data=b"1")],
    )
    monkeypatch.setattr(os, "mknod", refuse)
    _run(context, rootfs, ["dev.tar"], "/d/", is_add=True)
    assert sorted(os.listdir(rootfs / "d")) == ["ok"]


@pytest.mark.parametrize(
    "src", ["../outside/secret", "/../outside/secret", "a/../../outside/secret", "../*/secret"]
)
def test_copy_sources_climbing_out_of_the_context_never_read_the_host(
    rootfs: Path, context: Path, outside: Path, src: str
) -> None:
    try:
        _run(context, rootfs, [src], "/x/")
    except (BuildError, ContextError) as err:
        assert "\n" not in str(err) and src in str(err)
    for p in rootfs.rglob("*"):
        if p.is_file():
            assert p.read_text() != "host secret", p
