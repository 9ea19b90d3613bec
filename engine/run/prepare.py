"""Rootfs preparation around one RUN step, and its exact undoing.

Everything made here for the step (mountpoint dirs, /dev nodes, resolv.conf and hosts)
is recorded in a `Prepared` and removed or restored by `Prepared.restore()`, so none of it
reaches a layer. The snapshotter must still ignore TRANSIENT_PATHS: a RUN may write there
(Docker drops those writes too) and restoring a stashed file changes its ctime.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BuildError
from engine.fs.safe import clean_relative, resolve_in_root
from engine.run.mounts import StepMount, pipe_files

TRANSIENT_PATHS: tuple[str, ...] = ("/proc", "/sys", "/dev", "/etc/resolv.conf", "/etc/hosts")
MOUNTPOINTS = ("proc", "dev", "sys")
# Docker's fallback when the host has no resolv.conf (public resolvers, as in libnetwork).
DEFAULT_RESOLV = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
DEFAULT_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

# name -> (major, minor): the nodes a container's /dev always has.
DEV_NODES: dict[str, tuple[int, int]] = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
DEV_LINKS: dict[str, str] = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}
DEV_DIRS: dict[str, int] = {"shm": 0o1777, "pts": 0o755}


@dataclass
class Prepared:
    """What a step's preparation did, in order, plus the mounts the child should make."""

    mountpoints: list[str] = field(default_factory=list)
    binds: list[tuple[str, str]] = field(default_factory=list)
    # for the child: /dev/pipes files (name, base64 content, mode), written after /dev is
    # mounted; RUN --mount mounts (kind, host source, host target, read-only), in order
    pipes: list[tuple[str, str, int]] = field(default_factory=list)
    step_mounts: list[tuple[str, str, str, bool]] = field(default_factory=list)
    tmpdir: Path | None = None
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def restore(self) -> None:
        # Best effort, every step: a RUN may have removed or replaced what we made.
        while self._undo:
            with contextlib.suppress(OSError):
                self._undo.pop()()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def _remove_created(path: Path) -> Callable[[], None]:
    def undo() -> None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            # Only when the step left it empty: a RUN's own files are its business.
            with contextlib.suppress(OSError):
                path.rmdir()
        else:
            path.unlink()

    return undo


def _ensure_dir(prep: Prepared, path: Path, mode: int = 0o755) -> bool:
    """A real directory at path (created and recorded if missing); False if something
    else (a symlink, a file) is there, in which case nothing is mounted on it."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        path.mkdir(mode=mode)
        os.chmod(path, mode)
        prep._undo.append(_remove_created(path))
        return True
    return stat.S_ISDIR(st.st_mode)


def _read_host_file(path: str, default: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return default.encode()


def prepare_rootfs(
    rootfs: Path,
    *,
    use_mounts: bool,
    make_dev_nodes: bool,
    host_etc: Path = Path("/etc"),
    files: Sequence[tuple[str, bytes, int]] = (),
    mounts: Sequence[StepMount] = (),
) -> Prepared:
    """Get rootfs ready for a step. With mounts, the child mounts proc/dev/sys on the
    mountpoints made here and binds our resolv.conf/hosts copies over regular files.
    Without, /dev nodes are made with mknod (when make_dev_nodes) and the two files are
    swapped in place, the originals stashed beside them and put back by restore().
    `files` go to the step's /dev/pipes: written by the child into its private /dev, or
    here into the rootfs's /dev (no mounts) and removed by restore(). `mounts` need
    use_mounts; their missing targets are made here and removed by restore()."""
    prep = Prepared()
    pipes = pipe_files(files)
    if mounts and not use_mounts:
        raise BuildError("RUN --mount needs mount namespaces, which are not allowed here")
    try:
        if use_mounts:
            for name in MOUNTPOINTS:
                if _ensure_dir(prep, rootfs / name):
                    prep.mountpoints.append(name)
            if pipes and "dev" not in prep.mountpoints:
                raise BuildError("RUN: the image's /dev is not a directory; cannot provide scripts")
            prep.pipes = [(n, base64.b64encode(c).decode(), m) for n, c, m in pipes]
            for m in mounts:
                prep.step_mounts.append(mount_target(prep, rootfs, m))
        elif make_dev_nodes:
            _make_dev_nodes(prep, rootfs)
        if pipes and not use_mounts:
            write_pipes(prep, rootfs / "dev", pipes)
        prep.tmpdir = Path(tempfile.mkdtemp(prefix="brickyard-run-"))
        etc = resolve_in_root(rootfs, "/etc")
        if _ensure_dir(prep, etc):  # an image whose /etc is not a directory gets neither file
            for name, default in (("resolv.conf", DEFAULT_RESOLV), ("hosts", DEFAULT_HOSTS)):
                content = _read_host_file(str(host_etc / name), default)
                _provide_file(prep, etc / name, content, use_mounts)
    except BaseException:
        prep.restore()
        raise
    return prep


def _provide_file(prep: Prepared, target: Path, content: bytes, use_mounts: bool) -> None:
    assert prep.tmpdir is not None
    try:
        st: os.stat_result | None = target.lstat()
    except FileNotFoundError:
        st = None
    if use_mounts and (st is None or stat.S_ISREG(st.st_mode)):
        # Bind a private copy: the rootfs file is never touched, the host's never exposed.
        copy = prep.tmpdir / target.name
        copy.write_bytes(content)
        os.chmod(copy, 0o644)
        if st is None:
            target.touch(mode=0o644)
            prep._undo.append(_remove_created(target))
        prep.binds.append((str(copy), str(target)))
        return
    if st is not None:
        stash = target.with_name(f".{target.name}.brickyard-{os.getpid()}")
        os.rename(target, stash)
        prep._undo.append(_restore_stash(stash, target))
    else:
        prep._undo.append(_remove_created(target))
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(content)


def _restore_stash(stash: Path, target: Path) -> Callable[[], None]:
    def undo() -> None:
        with contextlib.suppress(FileNotFoundError):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        os.rename(stash, target)

    return undo


def _make_dev_nodes(prep: Prepared, rootfs: Path) -> None:
    dev = rootfs / "dev"
    if not _ensure_dir(prep, dev):
        return
    for name, (major, minor) in DEV_NODES.items():
        path = dev / name
        if os.path.lexists(path):
            continue
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        except PermissionError:
            break  # no CAP_MKNOD either: the step runs without device nodes
        os.chmod(path, 0o666)
        prep._undo.append(_remove_created(path))
    for name, target in DEV_LINKS.items():
        path = dev / name
        if os.path.lexists(path):
            continue
        path.symlink_to(target)
        prep._undo.append(_remove_created(path))
    for name, mode in DEV_DIRS.items():
        path = dev / name
        if not os.path.lexists(path):
            _ensure_dir(prep, path, mode)


def write_pipes(prep: Prepared, dev: Path, pipes: Sequence[tuple[str, bytes, int]]) -> None:
    """The /dev/pipes files in a /dev that is a plain directory (no mounts); restore()
    removes them. An existing /dev/pipes is never written into."""
    if not pipes:
        return
    if not _ensure_dir(prep, dev):
        raise BuildError("RUN: the image's /dev is not a directory; cannot provide scripts")
    top = dev / "pipes"
    try:
        os.mkdir(top, 0o755)  # fails on anything already there, a symlink included
    except FileExistsError:
        raise BuildError(f"RUN: {top} already exists; cannot provide scripts") from None
    prep._undo.append(lambda: shutil.rmtree(top))
    os.chmod(top, 0o755)
    for name, content, mode in pipes:
        fd = os.open(top / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(top / name, mode)


def mount_target(prep: Prepared, rootfs: Path, m: StepMount) -> tuple[str, str, str, bool]:
    """The host path of m.target inside rootfs, made (and recorded) when missing: a
    directory, or an empty file when a file is bound there."""
    rel = clean_relative(m.target)
    if not rel:
        raise BuildError(f"RUN --mount: cannot mount over / (target {m.target})")
    want_file = m.kind == "bind" and not os.path.isdir(m.source)
    parts = rel.split("/")
    built = ""
    for i, part in enumerate(parts):
        built = f"{built}/{part}" if built else part
        host = resolve_in_root(rootfs, built)
        last = i == len(parts) - 1
        if os.path.lexists(host):
            if not last and not host.is_dir():
                raise BuildError(f"RUN --mount: {m.target}: a parent is not a directory")
            continue
        if last and want_file:
            host.touch(mode=0o644)
        else:
            host.mkdir(mode=0o755)
            os.chmod(host, 0o755)
        prep._undo.append(_remove_created(host))
    host = resolve_in_root(rootfs, rel)
    if host.is_dir() == want_file:
        kind = "file" if want_file else "directory"
        raise BuildError(f"RUN --mount: target {m.target} must be a {kind} like its source")
    return (m.kind, m.source, str(host), m.readonly)
