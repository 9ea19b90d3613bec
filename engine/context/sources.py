"""Build-context sources by URL, as kaniko's --context accepts them.

    /path, dir:///path          a local directory, used in place
    tar:///path/ctx.tar[.gz]    a tarball (gzip, bzip2, xz, zstd or plain), unpacked
    tar://stdin                 the same, read from standard input
    git://host/repo.git#ref#sha kaniko's git syntax (GIT_PULL_METHOD picks https/http)
    git+https://..., git+ssh://..., git+file://..., https://host/repo.git, git@host:repo.git
                                also git; a fragment `#ref[:subdir]` as in Docker
    https://host/ctx.tar.gz     a tarball downloaded over HTTP(S)
    s3://, gs://, az://, Azure blob URLs: not supported (ContextError naming the scheme)

Unpacking refuses entries that would leave the destination (absolute names, `..`, writing
through a symlink, hard links to outside). Remote contexts go into `request.workdir`.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from engine.context.redact import redact_text, redact_url
from engine.errors import ContextError
from engine.fs.safe import resolve_in_root
from engine.options import GitOptions

UNSUPPORTED = {
    "s3": "s3",
    "gs": "gs",
    "az": "azure",
    "azblob": "azure",
    "abfs": "azure",
    "abfss": "azure",
}


@dataclass(frozen=True)
class ContextRequest:
    """What opening a context needs besides its URL."""

    workdir: Path  # remote contexts are unpacked here (kaniko: $KANIKO_DIR/buildcontext)
    git: GitOptions = field(default_factory=GitOptions)
    stdin: IO[bytes] | None = None  # for tar://stdin
    env: Mapping[str, str] = field(default_factory=dict)  # GIT_*, PATH, HOME, proxies
    verify_tls: bool = True  # for https:// tarballs


class ContextSource(Protocol):
    def __call__(self, url: str, request: ContextRequest) -> Path: ...


# ---------------------------------------------------------------- dispatch


def open_context(url: str, request: ContextRequest, sub_path: str | None = None) -> Path:
    """Resolve a --context value to a local directory (unpacking remote ones)."""
    opener = _opener_for(url)
    root = opener(url, request)
    if not sub_path:
        return root
    sub = (root / sub_path.strip("/")).resolve()
    if not sub.is_relative_to(root.resolve()):
        raise ContextError(f"--context-sub-path {sub_path} leaves the build context")
    if not sub.is_dir():
        raise ContextError(f"--context-sub-path {sub_path} does not exist in the build context")
    return sub


def scheme_of(url: str) -> str:
    if url.startswith("git@"):
        return "git"
    head, sep, _ = url.partition("://")
    return head.lower() if sep else ""


def is_git_url(url: str) -> bool:
    scheme = scheme_of(url)
    if scheme == "git" or scheme.startswith("git+"):
        return True
    if scheme in ("http", "https", "ssh"):
        # Docker's rule: a URL whose path ends in .git (before any fragment) is a repository
        return urlsplit(url.split("#", 1)[0]).path.endswith(".git")
    return False


def _opener_for(url: str) -> Callable[[str, ContextRequest], Path]:
    scheme = scheme_of(url)
    if is_git_url(url):
        return open_git
    if scheme in ("", "dir"):
        return open_dir
    if scheme == "tar":
        return open_tar
    if scheme in ("http", "https"):
        host = urlsplit(url).hostname or ""
        if host.endswith(".blob.core.windows.net"):
            raise ContextError("build context scheme azure blob storage is not supported")
        return open_https
    if scheme in UNSUPPORTED:
        raise ContextError(f"build context scheme {scheme}:// is not supported")
    raise ContextError(f"unknown build context scheme {scheme}:// in --context")


# ---------------------------------------------------------------- local


def open_dir(url: str, request: ContextRequest) -> Path:
    raw = url[len("dir://") :] if url.lower().startswith("dir://") else url
    path = Path(raw).absolute()
    if not path.exists():
        raise ContextError(f"build context {raw} does not exist")
    if not path.is_dir():
        raise ContextError(f"build context {raw} is not a directory")
    return path


# ---------------------------------------------------------------- tarballs


def open_tar(url: str, request: ContextRequest) -> Path:
    raw = url[len("tar://") :]
    dest = _fresh_dir(request.workdir)
    if raw == "stdin":
        if request.stdin is None:
            raise ContextError("tar://stdin needs the tarball on standard input")
        extract_tar_stream(request.stdin, dest, name="stdin")
        return dest
    path = Path(raw)
    try:
        with open(path, "rb") as fh:
            extract_tar_stream(fh, dest, name=raw)
    except FileNotFoundError:
        raise ContextError(f"build context tarball {raw} does not exist") from None
    except IsADirectoryError:
        raise ContextError(f"build context tarball {raw} is a directory") from None
    return dest


def _fresh_dir(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        raise ContextError(f"context directory {workdir} is not empty")
    return workdir


_MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"


def _decompressed(stream: IO[bytes]) -> IO[bytes]:
    """Detect zstd by its magic; gzip/bz2/xz are left to tarfile's `r|*`."""
    buffered: Any = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
    head = buffered.peek(4)[:4]
    if head == _MAGIC_ZSTD:
        import zstandard

        reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(buffered)
        return reader
    return buffered


# Extraction filters arrived in 3.11.4 (Debian 12 ships 3.11.2); members are checked by
# _check_member either way, so the filter only silences 3.12+'s deprecation warning.
_TRUSTED: dict[str, Any] = (
    {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
)


def extract_tar_stream(stream: IO[bytes], dest: Path, *, name: str) -> None:
    """Unpack a (compressed) tar stream into dest, refusing anything that would escape it."""
    root = Path(os.path.realpath(dest))
    try:
        with tarfile.open(fileobj=_decompressed(stream), mode="r|*") as tar:
            for member in tar:
                _check_member(member, root, name)
                _clear_slot(root / member.name, member)
                tar.extract(member, root, set_attrs=True, numeric_owner=True, **_TRUSTED)
    except tarfile.TarError as err:
        raise ContextError(f"build context tarball {name} is not a valid tar: {err}") from None
    except (EOFError, OSError) as err:
        raise ContextError(f"cannot unpack build context tarball {name}: {err}") from None


def _clear_slot(target: Path, member: tarfile.TarInfo) -> None:
    """Remove what an entry replaces, as Docker does: tarfile opens a regular file's name
    and chmods a directory's name following symlinks, so a symlink left there by an
    earlier entry would redirect the write (or the chmod) outside the context."""
    try:
        st = target.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not member.isdir():
            shutil.rmtree(target)
        return
    target.unlink()


def _inside(root: Path, candidate: str) -> bool:
    real = os.path.realpath(candidate)
    return real == str(root) or real.startswith(str(root) + os.sep)


def _check_member(member: tarfile.TarInfo, root: Path, name: str) -> None:
    entry = member.name
    parts = entry.split("/")
    if entry.startswith("/") or ".." in parts:
        raise ContextError(f"build context tarball {name}: entry {entry!r} leaves the context")
    if not member.isdir() and all(p in ("", ".") for p in parts):
        # only a directory may name the context root itself
        raise ContextError(f"build context tarball {name}: entry {entry!r} replaces the context")
    parent = os.path.dirname(os.path.join(root, entry))
    if not _inside(root, parent):  # a symlinked parent would redirect the write
        raise ContextError(
            f"build context tarball {name}: entry {entry!r} writes through a symlink"
        )
    if member.islnk():
        target = member.linkname
        if (
            target.startswith("/")
            or ".." in target.split("/")
            or not _inside(root, os.path.join(root, target))
        ):
            raise ContextError(
                f"build context tarball {name}: hard link {entry!r} points outside the context"
            )
    if member.ischr() or member.isblk() or member.isfifo():
        raise ContextError(f"build context tarball {name}: device entry {entry!r} refused")


# ---------------------------------------------------------------- https tarball


def open_https(url: str, request: ContextRequest) -> Path:
    from engine.httpclient import HttpError, get_as_configured

    dest = _fresh_dir(request.workdir)
    shown = _redact(url)
    try:
        env = request.env or None  # none given: the process environment
        with get_as_configured(url, env, verify_tls=request.verify_tls, timeout=60) as resp:
            if resp.status_code != 200:
                raise ContextError(f"build context {shown}: HTTP {resp.status_code}")
            with tempfile.TemporaryFile(dir=dest) as tmp:
                for chunk in resp.iter_content(1 << 20):
                    tmp.write(chunk)
                tmp.seek(0)
                extract_tar_stream(tmp, dest, name=shown)
    except HttpError as err:
        raise ContextError(f"build context {shown}: {err.reason}") from None
    return dest


def _redact(url: str) -> str:
    return redact_url(url, keep_fragment=False)


# ---------------------------------------------------------------- git


@dataclass(frozen=True)
class GitSpec:
    url: str  # what git clones
    ref: str = ""  # branch, tag or full ref name
    commit: str = ""  # kaniko's third `#` part
    subdir: str = ""  # Docker's `#ref:subdir`


def parse_git_url(url: str, env: Mapping[str, str]) -> GitSpec:
    """Split a git context URL into what to clone, which ref, which commit, which subdir."""
    base, _, fragment = url.partition("#")
    ref_part, _, commit = fragment.partition("#")
    ref, _, subdir = ref_part.partition(":")
    scheme = scheme_of(base)
    if scheme == "git":
        if base.startswith("git@"):
            clone = base
        else:
            # kaniko: git://host/repo is fetched over GIT_PULL_METHOD (https unless "http")
            method = env.get("GIT_PULL_METHOD", "https")
            method = method if method in ("https", "http") else "https"
            clone = f"{method}://{base[len('git://') :]}"
    elif scheme.startswith("git+"):
        clone = base[len("git+") :]
    else:
        clone = base
    return GitSpec(url=clone, ref=ref, commit=commit, subdir=subdir.strip("/"))


def _git_env(request: ContextRequest, insecure: bool) -> dict[str, str]:
    env = {k: v for k, v in request.env.items() if k in _GIT_PASSTHROUGH or k.startswith("GIT_SSH")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["GIT_TERMINAL_PROMPT"] = "0"
    config: list[tuple[str, str]] = [("advice.detachedHead", "false")]
    username = request.env.get("GIT_USERNAME", "")
    password = request.env.get("GIT_PASSWORD", "")
    token = request.env.get("GIT_TOKEN", "")
    if token:  # kaniko: a token is sent as the username with an empty password
        username, password = token, ""
    if username or password:
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        # via the environment, so the secret never shows in argv or logs
        config.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    if insecure:
        config.append(("http.sslVerify", "false"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


_GIT_PASSTHROUGH = {
    "PATH",
    "HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "GIT_SSL_CAINFO",
}


def _git_secrets(url: str, env: Mapping[str, str], git_env: Mapping[str, str]) -> tuple[str, ...]:
    """What git's messages must never show: the URL's password and user (a token is often
    sent as the user name), GIT_PASSWORD, GIT_TOKEN and the Basic value made of them."""
    try:
        parts = urlsplit(url)
        in_url = (parts.password or "", parts.username or "")
    except ValueError:
        in_url = ("", "")
    found = [*in_url, env.get("GIT_PASSWORD", ""), env.get("GIT_TOKEN", "")]
    found += [v.rpartition(" ")[2] for k, v in git_env.items() if k.startswith("GIT_CONFIG_VALUE_")]
    return tuple(s for s in found if len(s) >= 4)


def _git(
    args: list[str],
    env: Mapping[str, str],
    shown: str,
    cwd: Path | None = None,
    secrets: tuple[str, ...] = (),
) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise ContextError("git context needs the `git` command, which is not installed") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {done.returncode}"
        detail = redact_text(last.strip(), secrets)
        raise ContextError(f"git {args[0]} of {shown} failed: {detail}")
    return done.stdout


def _short_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def open_git(url: str, request: ContextRequest) -> Path:
    spec = parse_git_url(url, request.env)
    shown = _redact(spec.url)
    opts = request.git
    env = _git_env(request, opts.insecure_skip_tls)
    secrets = _git_secrets(spec.url, request.env, env)
    dest = _fresh_dir(request.workdir)
    ref = opts.branch or spec.ref  # kaniko: --git branch= wins over the URL fragment
    args = ["clone", "--quiet"]
    if opts.single_branch:
        args.append("--single-branch")
    if opts.recurse_submodules:
        args.append("--recurse-submodules")
    short = _short_ref(ref)
    plain_name = ref and (ref == short or ref.startswith(("refs/heads/", "refs/tags/")))
    if plain_name:
        args += ["--branch", short]
    try:
        _git([*args, "--", spec.url, str(dest)], env, shown, secrets=secrets)
    except ContextError:
        if not ref:
            raise
        # not a branch or tag name (a commit or another ref): clone, then fetch it
        _clear(dest)
        _git(["clone", "--quiet", "--", spec.url, str(dest)], env, shown, secrets=secrets)
        try:  # a commit already in the clone
            _git(["checkout", "--quiet", "--detach", ref], env, shown, cwd=dest, secrets=secrets)
        except ContextError:  # a ref the clone did not bring (refs/pull/1/head, ...)
            _git(["fetch", "--quiet", "origin", ref], env, shown, cwd=dest, secrets=secrets)
            _git(
                ["checkout", "--quiet", "--detach", "FETCH_HEAD"],
                env,
                shown,
                cwd=dest,
                secrets=secrets,
            )
    if spec.commit:
        _git(
            ["checkout", "--quiet", "--detach", spec.commit], env, shown, cwd=dest, secrets=secrets
        )
    if opts.recurse_submodules and (spec.commit or (ref and not plain_name)):
        _git(
            ["submodule", "update", "--quiet", "--init", "--recursive"],
            env,
            shown,
            cwd=dest,
            secrets=secrets,
        )
    bare_url = _userinfo_dropped(spec.url)
    if bare_url != spec.url:
        # COPY . would put .git/config into a layer: its remote must not carry credentials
        _git(["remote", "set-url", "origin", bare_url], env, shown, cwd=dest, secrets=secrets)
    if spec.subdir:
        sub = (dest / spec.subdir).resolve()
        if not sub.is_relative_to(dest.resolve()) or not sub.is_dir():
            raise ContextError(f"git context {shown}: subdirectory {spec.subdir} not found")
        return sub
    return dest


def _userinfo_dropped(url: str) -> str:
    """url without user:password@ (scp-style git@host:repo has no credentials to drop)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _clear(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# ---------------------------------------------------------------- Dockerfile path


def resolve_dockerfile_path(
    dockerfile: str,
    context_dir: Path,
    cwd: Path | None = None,
    *,
    download_dir: Path | None = None,
    verify_tls: bool = True,
) -> Path:
    """kaniko's resolveDockerfilePath: as given (absolute or cwd-relative) if it exists,
    else relative to the context. An http(s):// Dockerfile is downloaded into
    `download_dir` (a fresh temporary directory when None)."""
    if dockerfile.startswith(("http://", "https://")):
        return fetch_dockerfile(dockerfile, download_dir, verify_tls=verify_tls)
    given = Path(dockerfile)
    first = given if given.is_absolute() else (cwd or Path.cwd()) / given
    if first.is_file():
        return first.absolute()
    # Symlinks resolve inside the context, as in BuildKit: a hostile tar or git context's
    # `Dockerfile -> /proc/self/environ` must not put the builder's environment in a log.
    in_context = resolve_in_root(Path(context_dir).absolute(), dockerfile)
    if in_context.is_file():
        return in_context
    raise ContextError(
        f"please provide a valid path to a Dockerfile within the build context with "
        f"--dockerfile ({dockerfile} not found)"
    )


def fetch_dockerfile(url: str, download_dir: Path | None, *, verify_tls: bool = True) -> Path:
    """Download a Dockerfile given as an http(s) URL (kaniko accepts those for -f)."""
    from engine.httpclient import HttpError, get_as_configured

    target_dir = download_dir or Path(tempfile.mkdtemp(prefix="brickyard-dockerfile-"))
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "Dockerfile"
    shown = _redact(url)
    try:
        with get_as_configured(url, None, verify_tls=verify_tls, timeout=60) as resp:
            if resp.status_code != 200:
                raise ContextError(f"Dockerfile {shown}: HTTP {resp.status_code}")
            with open(target, "wb") as fh:
                for chunk in resp.iter_content(1 << 16):
                    fh.write(chunk)
    except HttpError as err:
        raise ContextError(f"Dockerfile {shown}: {err.reason}") from None
    return target
