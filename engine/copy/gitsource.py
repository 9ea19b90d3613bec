"""ADD <git repository>: BuildKit's `URL#ref:subdir` form, checked out with the git CLI
into a temporary directory whose tree (without .git unless --keep-git-dir) is then copied
like a directory source."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.copy.urls import without_credentials
from engine.errors import BuildError
from engine.fs.safe import resolve_in_root

GIT_TIMEOUT = 600


@dataclass(frozen=True)
class GitRef:
    remote: str
    ref: str  # "" means the remote's HEAD
    subdir: str


def parse_git_ref(text: str) -> GitRef:
    remote, _, fragment = text.partition("#")
    ref, _, subdir = fragment.partition(":")
    subdir = subdir.strip("/")
    if ".." in subdir.split("/"):
        raise BuildError(f"ADD {without_credentials(text)}: subdirectory may not contain '..'")
    return GitRef(remote=remote, ref=ref, subdir=subdir)


def _userinfo_dropped(url: str) -> str:
    """url without user:password@ (scp-style remotes have no credentials to drop)."""
    if "://" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _git(args: list[str], cwd: Path, what: str) -> None:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1")
    try:
        res = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise BuildError(f"ADD {what}: git is not installed") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"ADD {what}: git {args[0]} timed out") from None
    if res.returncode != 0:
        detail = (res.stderr.strip().splitlines() or ["failed"])[-1]
        raise BuildError(f"ADD {what}: git {args[0]}: {without_credentials(detail)}")


@contextmanager
def checkout(text: str, *, keep_git_dir: bool = False) -> Iterator[Path]:
    """Yield the directory to copy: the checked-out tree, or its subdir."""
    ref = parse_git_ref(text)
    what = without_credentials(text)
    with tempfile.TemporaryDirectory(prefix="brickyard-git-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        _git(["init", "-q"], repo, what)
        _git(["remote", "add", "origin", ref.remote], repo, what)
        target = ref.ref or "HEAD"
        try:
            _git(["fetch", "-q", "--depth", "1", "origin", target], repo, what)
        except BuildError:
            # dumb HTTP and some servers cannot serve shallow fetches (or a bare commit)
            _git(["fetch", "-q", "--tags", "origin"], repo, what)
            if not ref.ref:
                _git(["remote", "set-head", "origin", "--auto"], repo, what)
            _git(["checkout", "-q", ref.ref or "origin/HEAD"], repo, what)
        else:
            _git(["checkout", "-q", "FETCH_HEAD"], repo, what)
        if (repo / ".gitmodules").exists():
            _git(["submodule", "update", "-q", "--init", "--recursive", "--depth", "1"], repo, what)
        if not keep_git_dir:
            shutil.rmtree(repo / ".git")
        elif _userinfo_dropped(ref.remote) != ref.remote:
            # the kept .git goes into the layer: its remote must not carry the credentials
            _git(["remote", "set-url", "origin", _userinfo_dropped(ref.remote)], repo, what)
        # a symlinked subdir resolves inside the checkout: a hostile repository's
        # `docs -> /root/.docker` must not copy the builder's files into the image
        tree = resolve_in_root(repo, ref.subdir) if ref.subdir else repo
        if not tree.is_dir():
            raise BuildError(f"ADD {what}: no directory {ref.subdir} in the repository")
        yield tree
