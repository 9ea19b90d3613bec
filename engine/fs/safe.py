"""Path handling that never leaves a rootfs.

A stage's rootfs is a host directory that plays the role of `/` for the container.
Container paths are resolved component by component as the kernel would inside a chroot:
symlinks are followed, absolute link targets restart at the rootfs, and `..` stops at the
rootfs. The result is always a host path inside the rootfs. Used by layer extraction,
COPY/ADD and WORKDIR.

Extraction passes `strict=True`: there a `..` that would climb above the root (in an entry
name or in a symlink the entry is written through) marks a hostile layer and raises
`UnsafeLayer` instead of being clamped.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from engine.errors import UnsafeLayer

# Linux follows at most 40 symlinks while resolving one path (MAXSYMLINKS).
MAX_SYMLINKS = 40

_OPEN_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def clean_relative(path: str, *, strict: bool = False, what: str | None = None) -> str:
    """Clean a container path into a rootfs-relative one ("" is the root itself).

    Leading slashes are dropped (absolute names are relative to the root, as containerd
    does), `.` and empty components vanish, `..` pops a component. A `..` above the root is
    clamped, or raises `UnsafeLayer` naming `what` (or the path) when strict.
    """
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            elif strict:
                raise UnsafeLayer(f"{what or path!r}: path escapes the rootfs with '..'")
            continue
        out.append(part)
    return "/".join(out)


def resolve_in_root(
    rootfs: Path | str,
    path: str,
    *,
    follow_last: bool = True,
    strict: bool = False,
    what: str | None = None,
) -> Path:
    """Host path inside `rootfs` that container path `path` refers to.

    Components that do not exist are taken literally. With `follow_last=False` a symlink
    in the last component is not followed (lstat/unlink/lchown semantics). Raises OSError
    ELOOP after MAX_SYMLINKS links, and `UnsafeLayer` (strict only) when `..` in the path
    or in a followed link target would climb above the root.
    """
    root = os.fspath(rootfs).rstrip("/") or "/"
    pending = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            elif strict:
                raise UnsafeLayer(f"{what or path!r}: path escapes the rootfs with '..'")
            continue
        if not pending and not follow_last:
            resolved.append(part)
            break
        candidate = _join(root, [*resolved, part])
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
    return Path(_join(root, resolved))


def _join(root: str, parts: list[str]) -> str:
    if not parts:
        return root
    return root + "/" + "/".join(parts) if root != "/" else "/" + "/".join(parts)


def is_within(rootfs: Path | str, host_path: Path | str) -> bool:
    """True when host_path (already resolved) is rootfs or lies below it."""
    root = os.fspath(rootfs).rstrip("/")
    p = os.fspath(host_path)
    return p == root or p.startswith(root + "/")


def ensure_dirs(rootfs: Path | str, path: str, *, mode: int = 0o755, strict: bool = False) -> Path:
    """Create container directory `path` (and missing parents) inside rootfs, following
    symlinks safely. Returns the host path of the directory."""
    host = resolve_in_root(rootfs, path, strict=strict)
    if host.is_dir():
        return host
    rel = clean_relative(path, strict=strict)
    built = ""
    for part in rel.split("/") if rel else []:
        built = f"{built}/{part}" if built else part
        step = resolve_in_root(rootfs, built, strict=strict)
        # existing components of a resolved path are real directories, so makedirs
        # cannot be redirected; it also creates a link target's missing parents
        os.makedirs(step, mode, exist_ok=True)
    return resolve_in_root(rootfs, path, strict=strict)


def open_for_write(
    rootfs: Path | str, path: str, *, mode: int = 0o644, exclusive: bool = False
) -> int:
    """Open container file `path` for writing inside rootfs: parents are resolved safely,
    the last component is never followed (O_NOFOLLOW). Returns an fd; the caller closes it.
    An existing file is truncated unless `exclusive`, which fails on an existing name."""
    host = resolve_in_root(rootfs, path, follow_last=False)
    flags = _OPEN_WRITE_FLAGS | (os.O_EXCL if exclusive else os.O_TRUNC)
    return os.open(host, flags, mode)


def open_for_read(rootfs: Path | str, path: str) -> int:
    """Open container file `path` for reading, following symlinks inside the rootfs only."""
    host = resolve_in_root(rootfs, path)
    return os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
