"""Git contexts (and ADD of a git URL) never show URL credentials, GIT_PASSWORD or GIT_TOKEN
in their errors, whatever the server answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from engine.context.sources import ContextRequest, open_context
from engine.copy import copy_sources
from engine.errors import BuildError, ContextError
from tests.support.gitrepo import git, serve_dumb_http

PASSWORD, TOKEN, ENV_PASSWORD = "urlPa55w0rd", "ghp_T0kenValue123", "envPa55w0rd"


@pytest.mark.parametrize("status", [401, 403, 404, 500])
@pytest.mark.parametrize("scheme", ["https", "git+https", "http"])
def test_git_context_errors_never_show_credentials(
    httpserver: HTTPServer, tmp_path: Path, status: int, scheme: str
) -> None:
    httpserver.expect_request("/org/repo.git/info/refs").respond_with_data(
        f"denied {PASSWORD}", status=status
    )
    base = httpserver.url_for("/org/repo.git").replace("http://", "")
    url = f"{scheme}://bob:{PASSWORD}@{base}?token={TOKEN}#main:sub"
    env = {"GIT_PASSWORD": ENV_PASSWORD, "GIT_USERNAME": "bob", "GIT_TOKEN": TOKEN}
    request = ContextRequest(workdir=tmp_path / "ctx", env=env)
    with pytest.raises(ContextError) as info:
        open_context(url, request)
    message = str(info.value)
    assert "\n" not in message
    assert "repo.git" in message
    for secret in (PASSWORD, TOKEN, ENV_PASSWORD):
        assert secret not in message


def test_unreachable_git_host_error_never_shows_credentials(tmp_path: Path) -> None:
    url = f"https://bob:{PASSWORD}@127.0.0.1:9/org/repo.git"
    request = ContextRequest(workdir=tmp_path / "ctx")
    with pytest.raises(ContextError) as info:
        open_context(url, request)
    assert PASSWORD not in str(info.value) and "127.0.0.1" in str(info.value)


def test_add_git_url_error_never_shows_credentials(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/org/repo.git/info/refs").respond_with_data("no", status=403)
    base = httpserver.url_for("/org/repo.git").replace("http://", "")
    root = tmp_path / "rootfs"
    root.mkdir()
    with pytest.raises((BuildError, ContextError)) as info:
        copy_sources(
            sources=[f"http://bob:{PASSWORD}@{base}#main"],
            dest="/src",
            src_root=tmp_path,
            rootfs=root,
            is_add=True,
        )
    assert PASSWORD not in str(info.value) and "repo.git" in str(info.value)


def _dumb_http_repo(
    httpserver: HTTPServer, tmp_path: Path, link: tuple[str, str] | None = None
) -> str:
    """A one-commit repository (branch main, file f) over git's dumb HTTP protocol."""
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "f").write_text("x")
    if link is not None:
        (work / link[0]).symlink_to(link[1])
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "one", cwd=work)
    return serve_dumb_http(httpserver, work, tmp_path / "repo.git")


def test_add_git_keep_git_dir_leaves_no_credentials_in_the_layer(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The kept .git must not hold the URL's credentials (BuildKit keeps a redacted remote)."""
    url = _dumb_http_repo(httpserver, tmp_path).replace("http://", f"http://bob:{PASSWORD}@")
    root = tmp_path / "rootfs"
    root.mkdir()
    copy_sources(
        sources=[url + "#main"],
        dest="/src",
        src_root=tmp_path,
        rootfs=root,
        is_add=True,
        keep_git_dir=True,
    )
    assert (root / "src/f").read_text() == "x"
    assert (root / "src/.git").is_dir()
    for p in (root / "src/.git").rglob("*"):
        if p.is_file():
            assert PASSWORD.encode() not in p.read_bytes(), p


def test_git_context_clone_keeps_no_credentials_in_git_config(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """COPY . copies the context's .git: its remote must not carry the URL's password."""
    url = _dumb_http_repo(httpserver, tmp_path).replace("http://", f"http://bob:{PASSWORD}@")
    ctx = open_context(url + "#main", ContextRequest(workdir=tmp_path / "ctx"))
    assert (ctx / "f").read_text() == "x"
    for p in (ctx / ".git").rglob("*"):
        if p.is_file():
            assert PASSWORD.encode() not in p.read_bytes(), p


def test_add_git_subdir_symlinked_out_of_the_checkout_copies_no_host_files(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("host credentials")
    url = _dumb_http_repo(httpserver, tmp_path, link=("docs", str(outside)))
    root = tmp_path / "rootfs"
    root.mkdir()
    try:
        copy_sources(
            sources=[url + "#main:docs"], dest="/src", src_root=tmp_path, rootfs=root, is_add=True
        )
    except BuildError as err:
        assert "docs" in str(err)
    for p in root.rglob("*"):
        if p.is_file():
            assert p.read_text() != "host credentials", p
