from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from pytest_httpserver import HTTPServer

from engine.context.sources import (
    ContextRequest,
    open_context,
    parse_git_url,
    resolve_dockerfile_path,
)
from engine.errors import ContextError
from engine.options import GitOptions


def tar_bytes(
    files: dict[str, str], extra: Callable[[tarfile.TarFile], None] | None = None
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            tar.addfile(info, io.BytesIO(data))
        if extra:
            extra(tar)
    return buf.getvalue()


FILES = {"Dockerfile": "FROM scratch\n", "app/main.py": "print(1)\n"}


def req(tmp_path: Path, **kw: object) -> ContextRequest:
    return ContextRequest(workdir=tmp_path / "ctx", **kw)  # type: ignore[arg-type]


def test_plain_path_and_dir_url_are_used_in_place(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    assert open_context(str(tmp_path / "src"), req(tmp_path)) == tmp_path / "src"
    assert open_context(f"dir://{tmp_path}/src", req(tmp_path)) == tmp_path / "src"
    with pytest.raises(ContextError, match="does not exist"):
        open_context(str(tmp_path / "missing"), req(tmp_path))


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [
        ("tar", lambda b: b),
        ("tar.gz", gzip.compress),
        ("tar.bz2", bz2.compress),
        ("tar.xz", lzma.compress),
        ("tar.zst", lambda b: zstandard.ZstdCompressor().compress(b)),
    ],
)
def test_tar_file_contexts_in_every_compression(
    tmp_path: Path, suffix: str, compress: Callable[[bytes], bytes]
) -> None:
    archive = tmp_path / f"ctx.{suffix}"
    archive.write_bytes(compress(tar_bytes(FILES)))
    root = open_context(f"tar://{archive}", req(tmp_path))
    assert (root / "app" / "main.py").read_text() == "print(1)\n"
    assert (root / "Dockerfile").stat().st_mode & 0o777 == 0o640


def test_tar_stdin_context(tmp_path: Path) -> None:
    stdin = io.BufferedReader(io.BytesIO(gzip.compress(tar_bytes(FILES))))
    root = open_context("tar://stdin", req(tmp_path, stdin=stdin), sub_path="app")
    assert root == (tmp_path / "ctx" / "app").resolve()
    assert (root / "main.py").exists()


def test_tar_stdin_without_stdin_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="standard input"):
        open_context("tar://stdin", req(tmp_path))


def _symlink_then_write(tar: tarfile.TarFile) -> None:
    link = tarfile.TarInfo("escape")
    link.type = tarfile.SYMTYPE
    link.linkname = "/tmp"
    tar.addfile(link)
    info = tarfile.TarInfo("escape/pwned")
    info.size = 1
    tar.addfile(info, io.BytesIO(b"x"))


def _hardlink_out(tar: tarfile.TarFile) -> None:
    link = tarfile.TarInfo("passwd")
    link.type = tarfile.LNKTYPE
    link.linkname = "../../etc/passwd"
    tar.addfile(link)


def _dotdot(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("a/../../outside")
    info.size = 1
    tar.addfile(info, io.BytesIO(b"x"))


def _absolute(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("/etc/evil")
    info.size = 1
    tar.addfile(info, io.BytesIO(b"x"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (_symlink_then_write, "writes through a symlink"),
        (_hardlink_out, "points outside"),
        (_dotdot, "leaves the context"),
        (_absolute, "leaves the context"),
    ],
)
def test_unsafe_tar_entries_are_refused(
    tmp_path: Path, extra: Callable[[tarfile.TarFile], None], message: str
) -> None:
    archive = tmp_path / "evil.tar"
    archive.write_bytes(tar_bytes({"ok": "1"}, extra))
    with pytest.raises(ContextError, match=message):
        open_context(f"tar://{archive}", req(tmp_path))
    assert not (tmp_path / "outside").exists()


def test_corrupt_tar_is_a_context_error(tmp_path: Path) -> None:
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ContextError, match=r"bad\.tar\.gz"):
        open_context(f"tar://{archive}", req(tmp_path))


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("s3://bucket/ctx.tgz", "s3://"),
        ("gs://bucket/ctx.tgz", "gs://"),
        ("az://container/ctx.tgz", "az://"),
        ("https://acct.blob.core.windows.net/c/ctx.tgz", "azure blob"),
        ("ftp://host/ctx.tgz", "ftp://"),
    ],
)
def test_unsupported_schemes_are_named(tmp_path: Path, url: str, scheme: str) -> None:
    with pytest.raises(ContextError, match=scheme):
        open_context(url, req(tmp_path))


def test_https_tarball_context(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ctx.tar.gz").respond_with_data(gzip.compress(tar_bytes(FILES)))
    httpserver.expect_request("/missing.tar.gz").respond_with_data("no", status=404)
    root = open_context(httpserver.url_for("/ctx.tar.gz"), req(tmp_path))
    assert (root / "Dockerfile").read_text() == "FROM scratch\n"
    with pytest.raises(ContextError, match="HTTP 404"):
        open_context(httpserver.url_for("/missing.tar.gz"), req(tmp_path / "b"))


def test_sub_path_must_exist_and_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    assert open_context(str(tmp_path / "src"), req(tmp_path), "sub") == tmp_path / "src" / "sub"
    with pytest.raises(ContextError, match="does not exist"):
        open_context(str(tmp_path / "src"), req(tmp_path), "nope")
    with pytest.raises(ContextError, match="leaves the build context"):
        open_context(str(tmp_path / "src"), req(tmp_path), "../..")


# ---- git


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("repo")
    git(path, "init", "-q", "-b", "main")
    (path / "Dockerfile").write_text("FROM scratch\n")
    (path / "sub").mkdir()
    (path / "sub" / "file.txt").write_text("v1\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "one")
    first = git(path, "rev-parse", "HEAD")
    git(path, "tag", "v1")
    git(path, "checkout", "-q", "-b", "feature")
    (path / "sub" / "file.txt").write_text("feature\n")
    git(path, "commit", "-q", "-am", "two")
    git(path, "checkout", "-q", "main")
    (path / "sub" / "file.txt").write_text("main\n")
    git(path, "commit", "-q", "-am", "three")
    return path, first


@pytest.mark.parametrize(
    ("fragment", "git_opts", "content"),
    [
        ("", GitOptions(), "main\n"),
        ("#feature", GitOptions(), "feature\n"),
        ("#refs/heads/feature", GitOptions(single_branch=True), "feature\n"),
        ("#v1", GitOptions(), "v1\n"),
        ("", GitOptions(branch="feature"), "feature\n"),
        ("#main", GitOptions(branch="v1"), "v1\n"),
    ],
)
def test_git_context_refs(
    tmp_path: Path, repo: tuple[Path, str], fragment: str, git_opts: GitOptions, content: str
) -> None:
    path, _ = repo
    root = open_context(f"git+file://{path}{fragment}", req(tmp_path, git=git_opts))
    assert (root / "sub" / "file.txt").read_text() == content


def test_git_context_commit_and_subdir(tmp_path: Path, repo: tuple[Path, str]) -> None:
    path, first = repo
    root = open_context(f"git+file://{path}#main#{first}", req(tmp_path))
    assert (root / "sub" / "file.txt").read_text() == "v1\n"
    sub = open_context(f"git+file://{path}#feature:sub", req(tmp_path / "b"))
    assert sub.name == "sub" and (sub / "file.txt").read_text() == "feature\n"
    bare_commit = open_context(f"git+file://{path}#{first}", req(tmp_path / "c"))
    assert (bare_commit / "sub" / "file.txt").read_text() == "v1\n"


def test_git_context_unknown_ref_fails_with_one_line(
    tmp_path: Path, repo: tuple[Path, str]
) -> None:
    path, _ = repo
    with pytest.raises(ContextError, match=r"git .* failed") as info:
        open_context(f"git+file://{path}#no-such-branch", req(tmp_path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "env", "clone", "ref", "commit", "subdir"),
    [
        (
            "git://github.com/a/b.git#refs/heads/x#abc",
            {},
            "https://github.com/a/b.git",
            "refs/heads/x",
            "abc",
            "",
        ),
        ("git://host/a/b.git", {"GIT_PULL_METHOD": "http"}, "http://host/a/b.git", "", "", ""),
        ("git://host/a/b.git", {"GIT_PULL_METHOD": "ftp"}, "https://host/a/b.git", "", "", ""),
        (
            "https://host/a/b.git#main:docker/app",
            {},
            "https://host/a/b.git",
            "main",
            "",
            "docker/app",
        ),
        ("git@github.com:a/b.git#v2", {}, "git@github.com:a/b.git", "v2", "", ""),
        ("git+ssh://git@host/a/b#dev", {}, "ssh://git@host/a/b", "dev", "", ""),
    ],
)
def test_parse_git_url_kaniko_and_docker_syntax(
    url: str, env: dict[str, str], clone: str, ref: str, commit: str, subdir: str
) -> None:
    spec = parse_git_url(url, env)
    assert (spec.url, spec.ref, spec.commit, spec.subdir) == (clone, ref, commit, subdir)


def test_git_credentials_never_appear_in_errors(tmp_path: Path) -> None:
    env = {"GIT_TOKEN": "s3cr3t-token", "PATH": "/usr/bin:/bin"}
    with pytest.raises(ContextError) as info:
        open_context("git+https://user:pw@127.0.0.1:9/a/b.git", req(tmp_path, env=env))
    assert "s3cr3t" not in str(info.value) and "pw@" not in str(info.value)


def test_dockerfile_path_resolution_like_kaniko(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "sub" / "Dockerfile").write_text("FROM scratch\n")
    assert (
        resolve_dockerfile_path("sub/Dockerfile", ctx, cwd=tmp_path) == ctx / "sub" / "Dockerfile"
    )
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert resolve_dockerfile_path("Dockerfile", ctx, cwd=tmp_path) == tmp_path / "Dockerfile"
    with pytest.raises(ContextError, match="valid path to a Dockerfile"):
        resolve_dockerfile_path("nope", ctx, cwd=tmp_path)


def test_dockerfile_url_is_downloaded(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/Dockerfile").respond_with_data("FROM scratch\n")
    httpserver.expect_request("/gone").respond_with_data("", status=404)
    got = resolve_dockerfile_path(
        httpserver.url_for("/Dockerfile"), tmp_path, download_dir=tmp_path
    )
    assert got.read_text() == "FROM scratch\n"
    with pytest.raises(ContextError, match="HTTP 404"):
        resolve_dockerfile_path(httpserver.url_for("/gone"), tmp_path, download_dir=tmp_path)
