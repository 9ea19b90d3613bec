"""ADD: local archives unpacked safely (every compression), URLs downloaded."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from pytest_httpserver import HTTPServer

from engine.copy import copy_sources
from engine.errors import BuildError
from tests.support.gitrepo import git, serve_dumb_http

ARCHIVE_MTIME = 1_500_000_000


def tar_bytes(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in entries:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = ARCHIVE_MTIME
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def sample_tar() -> bytes:
    return tar_bytes(
        [
            entry("app", tarfile.DIRTYPE),
            entry("app/run.sh", mode=0o755, uid=1000, gid=1000),
            entry("app/readme", tarfile.SYMTYPE, linkname="run.sh"),
            entry("app/hard", tarfile.LNKTYPE, linkname="app/run.sh"),
        ],
        {"app/run.sh": b"#!/bin/sh\necho hi\n"},
    )


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


def add(ctx: Path, root: Path, sources: list[str], dest: str, **kw: object) -> list[str]:
    return copy_sources(  # type: ignore[arg-type]
        sources=sources, dest=dest, src_root=ctx, rootfs=root, is_add=True, **kw
    )


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_add_unpacks_local_archives(context: Path, rootfs: Path, compression: str) -> None:
    (context / "pkg.bin").write_bytes(COMPRESSORS[compression](sample_tar()))
    written = add(context, rootfs, ["pkg.bin"], "/opt")
    run = rootfs / "opt/app/run.sh"
    assert run.read_text() == "#!/bin/sh\necho hi\n"
    assert stat.S_IMODE(run.stat().st_mode) == 0o755
    assert run.stat().st_mtime == ARCHIVE_MTIME
    assert (run.stat().st_uid, run.stat().st_gid) == (1000, 1000)  # archive owners kept
    assert os.readlink(rootfs / "opt/app/readme") == "run.sh"
    assert (rootfs / "opt/app/hard").stat().st_ino == run.stat().st_ino
    assert (rootfs / "opt/app").stat().st_mtime == ARCHIVE_MTIME
    assert set(written) >= {"opt", "opt/app", "opt/app/run.sh", "opt/app/hard"}


def test_add_chown_overrides_archive_owners(context: Path, rootfs: Path) -> None:
    (context / "pkg.tgz").write_bytes(gzip.compress(sample_tar()))
    add(context, rootfs, ["pkg.tgz"], "/opt/", chown="app:staff")
    assert (rootfs / "opt/app/run.sh").stat().st_uid == 1000
    assert (rootfs / "opt/app/run.sh").stat().st_gid == 50


def test_copy_never_unpacks_and_add_copies_non_tar_compressed_files(
    context: Path, rootfs: Path
) -> None:
    (context / "pkg.tar").write_bytes(sample_tar())
    (context / "notes.gz").write_bytes(gzip.compress(b"just text, not a tar"))
    copy_sources(sources=["pkg.tar"], dest="/c/", src_root=context, rootfs=rootfs)
    assert (rootfs / "c/pkg.tar").read_bytes() == sample_tar()
    add(context, rootfs, ["notes.gz"], "/n/")
    assert gzip.decompress((rootfs / "n/notes.gz").read_bytes()) == b"just text, not a tar"


def test_hostile_archive_entries_are_refused(context: Path, rootfs: Path, tmp_path: Path) -> None:
    (context / "evil.tar").write_bytes(
        tar_bytes([entry("../../../../escaped")], {"../../../../escaped": b"x"})
    )
    with pytest.raises(BuildError, match="escapes the destination"):
        add(context, rootfs, ["evil.tar"], "/opt/")
    assert not any(p.name == "escaped" for p in tmp_path.rglob("escaped"))


def test_archive_symlinks_cannot_lead_writes_outside_the_rootfs(
    context: Path, rootfs: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    data = tar_bytes(
        [
            entry("lnk", tarfile.SYMTYPE, linkname=str(outside)),
            entry("lnk/pwned"),
            entry("up", tarfile.SYMTYPE, linkname="../../../../../.."),
            entry("up/pwned2"),
        ],
        {"lnk/pwned": b"1", "up/pwned2": b"2"},
    )
    (context / "links.tar").write_bytes(data)
    add(context, rootfs, ["links.tar"], "/x/")
    assert os.listdir(outside) == []
    # the writes land where they would inside a container: under the rootfs
    assert (rootfs / str(outside).lstrip("/") / "pwned").read_bytes() == b"1"
    assert (rootfs / "pwned2").read_bytes() == b"2"


def test_hardlink_to_a_name_not_in_the_archive_is_refused(context: Path, rootfs: Path) -> None:
    (context / "hl.tar").write_bytes(
        tar_bytes([entry("h", tarfile.LNKTYPE, linkname="../etc/passwd")], {})
    )
    with pytest.raises(BuildError, match="escapes the destination"):
        add(context, rootfs, ["hl.tar"], "/x/")


LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_EPOCH = 1445412480
BODY = b"downloaded content\n" * 1000


@pytest.fixture
def served(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/files/tool.tar.gz").respond_with_data(
        gzip.compress(sample_tar()), headers={"Last-Modified": LAST_MODIFIED}
    )
    httpserver.expect_request("/files/data.bin").respond_with_data(
        BODY, headers={"Last-Modified": LAST_MODIFIED}
    )
    httpserver.expect_request("/missing").respond_with_data("no", status=404)
    return httpserver


def test_add_url_into_directory_names_file_from_url_mode_0600_mtime_from_header(
    context: Path, rootfs: Path, served: HTTPServer
) -> None:
    written = add(context, rootfs, [served.url_for("/files/data.bin")], "/dl/")
    target = rootfs / "dl/data.bin"
    assert target.read_bytes() == BODY
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_mtime == LAST_MODIFIED_EPOCH
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert written == ["dl", "dl/data.bin"]
    assert os.listdir(rootfs / "dl") == ["data.bin"]


def test_add_url_archives_are_not_unpacked_and_dest_may_name_the_file(
    context: Path, rootfs: Path, served: HTTPServer
) -> None:
    add(context, rootfs, [served.url_for("/files/tool.tar.gz")], "/t.tgz", chmod="644")
    assert gzip.decompress((rootfs / "t.tgz").read_bytes()) == sample_tar()
    assert stat.S_IMODE((rootfs / "t.tgz").stat().st_mode) == 0o644


def test_add_url_checksum_is_verified(context: Path, rootfs: Path, served: HTTPServer) -> None:
    good = "sha256:" + hashlib.sha256(BODY).hexdigest()
    add(context, rootfs, [served.url_for("/files/data.bin")], "/ok", checksum=good)
    assert (rootfs / "ok").read_bytes() == BODY
    bad = "sha256:" + "0" * 64
    with pytest.raises(BuildError, match="checksum mismatch"):
        add(context, rootfs, [served.url_for("/files/data.bin")], "/bad/", checksum=bad)
    assert os.listdir(rootfs / "bad") == []  # nothing half-written
    with pytest.raises(BuildError, match="invalid digest"):
        add(context, rootfs, [served.url_for("/files/data.bin")], "/x", checksum="md5:abc")


def test_add_url_http_error_names_url_and_status(
    context: Path, rootfs: Path, served: HTTPServer
) -> None:
    url = served.url_for("/missing")
    with pytest.raises(BuildError, match=r"ADD http://.*/missing: HTTP 404"):
        add(context, rootfs, [url], "/m")


def test_add_url_without_a_file_name_gets_buildkits_placeholder(
    context: Path, rootfs: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/").respond_with_data("root page")
    add(context, rootfs, [httpserver.url_for("/")], "/web/")
    assert (rootfs / "web/__unnamed__").read_text() == "root page"


def test_unpack_flag_overrides_the_default(context: Path, rootfs: Path, served: HTTPServer) -> None:
    (context / "pkg.tar").write_bytes(sample_tar())
    add(context, rootfs, ["pkg.tar"], "/kept/", unpack=False)
    assert (rootfs / "kept/pkg.tar").read_bytes() == sample_tar()
    add(context, rootfs, [served.url_for("/files/tool.tar.gz")], "/remote", unpack=True)
    assert (rootfs / "remote/app/run.sh").read_text() == "#!/bin/sh\necho hi\n"


def test_archive_xattrs_are_applied(context: Path, rootfs: Path) -> None:
    info = entry("tool")
    info.pax_headers = {"SCHILY.xattr.user.origin": "archive"}
    (context / "x.tar").write_bytes(tar_bytes([info], {"tool": b"bin"}))
    add(context, rootfs, ["x.tar"], "/opt/")
    assert os.getxattr(rootfs / "opt/tool", "user.origin") == b"archive"


@pytest.fixture
def git_server(tmp_path: Path, httpserver: HTTPServer) -> str:
    """A repository served over git's dumb HTTP protocol: main has v1 (tagged) then v2."""
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    (work / "VERSION").write_text("1\n")
    (work / "docs/index.md").write_text("docs v1\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "v1", cwd=work)
    git("tag", "v1", cwd=work)
    (work / "VERSION").write_text("2\n")
    git("commit", "-q", "-am", "v2", cwd=work)
    return serve_dumb_http(httpserver, work, tmp_path / "repo.git")


def test_add_git_repository_checks_out_ref_and_subdir(
    context: Path, rootfs: Path, git_server: str
) -> None:
    add(context, rootfs, [git_server], "/src")
    assert (rootfs / "src/VERSION").read_text() == "2\n"
    assert not (rootfs / "src/.git").exists()
    add(context, rootfs, [git_server + "#v1"], "/old/", chown="app")
    assert (rootfs / "old/VERSION").read_text() == "1\n"
    assert (rootfs / "old/VERSION").stat().st_uid == 1000
    add(context, rootfs, [git_server + "#main:docs"], "/docs")
    assert os.listdir(rootfs / "docs") == ["index.md"]


def test_add_git_keep_git_dir_and_errors_name_the_repository(
    context: Path, rootfs: Path, git_server: str
) -> None:
    add(context, rootfs, [git_server + "#main"], "/src", keep_git_dir=True)
    assert (rootfs / "src/.git").is_dir()
    with pytest.raises(BuildError, match=r"ADD http://.*/repo.git#nope: git"):
        add(context, rootfs, [git_server + "#nope"], "/bad")
