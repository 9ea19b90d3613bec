"""The stat-index snapshotter.

The index maps every rootfs-relative path to what one lstat tells about it:
(st_mode incl. type, uid, gid, size, mtime_ns, ctime_ns, inode, link target). After a step a
single os.scandir walk builds the new index; comparing the two gives the layer:
- new or changed paths (any field differs; ctime catches content rewritten with its mtime
  restored, and chmod/chown), plus their parent directories;
- vanished paths become whiteouts (only the topmost vanished directory is named);
- a directory whose inode changed (removed and made again) becomes an opaque directory:
  one `.wh..wh..opq` marker and its whole current content, instead of per-file whiteouts.
No file content is read. COPY/ADD, which know what they wrote, use `diff_paths`.

Ignored paths (mount points such as proc, sys, dev; files provided only during RUN such as
etc/resolv.conf and etc/hosts) are skipped with everything below them, in both indexes.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import marshal
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from engine.fs.safe import clean_relative, resolve_in_root


class StatEntry(NamedTuple):
    mode: int  # st_mode, file type included
    uid: int
    gid: int
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    link: str | None  # symlink target
    nlink: int  # for the layer writer: hardlinks and device numbers without another lstat
    rdev: int


StatIndex = dict[str, StatEntry]


@dataclass(frozen=True)
class Diff:
    """What changed in a rootfs: paths are rootfs-relative without a leading '/'."""

    changed: list[str] = field(default_factory=list)  # sorted, parents included
    deleted: list[str] = field(default_factory=list)  # sorted, become `.wh.<name>`
    opaque_dirs: list[str] = field(default_factory=list)  # sorted, get `.wh..wh..opq`

    @property
    def empty(self) -> bool:
        return not (self.changed or self.deleted or self.opaque_dirs)


def normalize_ignore(paths: Iterable[str]) -> frozenset[str]:
    """Container paths ("/proc", "etc/hosts") -> rootfs-relative ignore set."""
    return frozenset(p for p in (clean_relative(x) for x in paths) if p)


_SPLIT_DIRS = 32  # pending directories before a helper process takes half of them
_SPLIT_MIN = 2000  # entries seen before forking pays off
_NEW = tuple.__new__
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def scan(
    root: str, ignore: frozenset[str] = frozenset(), start: str = "", *, parallel: bool = True
) -> StatIndex:
    """Index everything below root/start (start itself excluded) with one scandir walk.

    On big trees a forked helper process walks two thirds of the pending directories (lstat is
    most of the cost and one core can only do so many) and sends its part back."""
    index: StatIndex = {}
    stack = [start]
    helper: _ScanHelper | None = None
    new = _NEW
    stat_entry = _stat_entry
    try:
        while stack:
            if (
                parallel
                and helper is None
                and len(stack) >= _SPLIT_DIRS
                and len(index) >= _SPLIT_MIN
                and hasattr(os, "fork")
            ):
                # the helper takes two thirds: the parent also compares, sorts and
                # loads the helper's entries afterwards
                try:
                    helper = _ScanHelper(root, ignore, [d for i, d in enumerate(stack) if i % 3])
                    stack = stack[::3]
                except (BlockingIOError, PermissionError, MemoryError):
                    parallel = False  # fork refused (limits, sandbox): walk it all here
            rel = stack.pop()
            host = f"{root}/{rel}" if rel else (root or "/")
            prefix = f"{rel}/" if rel else ""
            try:
                # scandir on a directory fd: the stats become fstatat(dirfd, name), no path
                # walk from the rootfs for every entry
                dfd = os.open(host, _DIR_FLAGS)
            except (FileNotFoundError, NotADirectoryError):
                continue
            try:
                with os.scandir(dfd) as it:
                    entries = list(it)
                for de in entries:
                    r = prefix + de.name
                    if r in ignore:
                        continue
                    try:
                        st = de.stat(follow_symlinks=False)
                        mode = st.st_mode
                        link = os.readlink(de.name, dir_fd=dfd) if stat.S_ISLNK(mode) else None
                    except FileNotFoundError:
                        continue
                    index[r] = stat_entry(st, link)
                    if stat.S_ISDIR(mode):
                        stack.append(r)
            finally:
                os.close(dfd)
        if helper is not None:
            for key, value in helper.collect():
                index[key] = new(StatEntry, value)
    finally:
        if helper is not None:
            helper.close()
    return index


class _ScanHelper:
    """A forked process that scans some directories and sends back marshalled entries."""

    def __init__(self, root: str, ignore: frozenset[str], dirs: list[str]) -> None:
        rfd, wfd = os.pipe()
        try:
            self.pid = os.fork()
        except OSError:
            os.close(rfd)
            os.close(wfd)
            raise
        if self.pid == 0:  # child: walk, send, leave without running atexit handlers
            gc.disable()  # inherited garbage's finalizers must not run in the child
            status = 0
            try:
                os.close(rfd)
                entries: list[tuple[str, tuple[object, ...]]] = []
                for d in dirs:
                    entries.extend(
                        (k, tuple(v)) for k, v in scan(root, ignore, d, parallel=False).items()
                    )
                _send(wfd, marshal.dumps(entries))
            except BaseException as exc:
                status = 1
                with contextlib.suppress(OSError):
                    _send(wfd, marshal.dumps(f"{type(exc).__name__}: {exc}"))
            finally:
                os._exit(status)
        os.close(wfd)
        self.stream = os.fdopen(rfd, "rb")
        self.done = False

    def collect(self) -> list[tuple[str, tuple[object, ...]]]:
        head = self.stream.read(8)
        payload = self.stream.read(int.from_bytes(head, "little")) if len(head) == 8 else b""
        result = marshal.loads(payload) if payload else "scan helper ended early"
        if isinstance(result, str):
            raise OSError(errno.EIO, f"snapshot scan failed: {result}")
        entries: list[tuple[str, tuple[object, ...]]] = result
        return entries

    def close(self) -> None:
        if not self.done:
            self.done = True
            self.stream.close()
            with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: auto-reaped
                os.waitpid(self.pid, 0)


def _send(fd: int, data: bytes) -> None:
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(fd, view) :]


def _stat_entry(st: os.stat_result, link: str | None) -> StatEntry:
    """The index entry for one lstat (tuple.__new__: the walk makes one per file)."""
    return _NEW(
        StatEntry,
        (
            st.st_mode,
            st.st_uid,
            st.st_gid,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            link,
            st.st_nlink,
            st.st_rdev,
        ),
    )


def _entry(st: os.stat_result, host: str) -> StatEntry:
    return _stat_entry(st, os.readlink(host) if stat.S_ISLNK(st.st_mode) else None)


def _parents_into(paths: Iterable[str], out: set[str]) -> None:
    for p in paths:
        parent = p.rpartition("/")[0]
        while parent and parent not in out:
            out.add(parent)
            parent = parent.rpartition("/")[0]


class Snapshotter:
    """Tracks a rootfs between steps. `reset()` indexes the current state; `diff()` returns
    what changed since and (by default) makes the current state the new baseline."""

    def __init__(self, rootfs: Path | str, ignore: Iterable[str] = ()) -> None:
        self.rootfs = Path(os.path.realpath(os.fspath(rootfs)))
        self._root = str(self.rootfs).rstrip("/")  # "" when the rootfs is "/" (inplace)
        self.ignore = normalize_ignore(ignore)
        self.index: StatIndex = {}

    def reset(self) -> int:
        """Index the rootfs as it is now; returns the number of paths indexed."""
        self.index = scan(self._root, self.ignore)
        return len(self.index)

    def diff(self, *, commit: bool = True) -> Diff:
        """Compare the rootfs with the index: one walk, one lstat per path."""
        new = scan(self._root, self.ignore)
        old = self.index
        changed: set[str] = set()
        opaque: list[str] = []
        dirs_gone: set[str] = set()  # directories now something else
        for path, entry in new.items():
            before = old.get(path)
            if before == entry:
                continue
            changed.add(path)
            if before is None or not stat.S_ISDIR(before.mode):
                continue
            if not stat.S_ISDIR(entry.mode):
                dirs_gone.add(path)
            elif before.inode != entry.inode:
                opaque.append(path)
        deleted = [p for p in old if p not in new]
        if dirs_gone:
            # the new entry replaces the whole directory on extraction
            deleted = [p for p in deleted if not _under_any(p, dirs_gone)]
        if opaque:
            # The marker hides all lower content: keep everything now below those
            # directories, drop the whiteouts it makes redundant.
            opaque = _topmost(opaque)
            opaque_set = set(opaque)
            # one pass, O(paths x depth), however many directories were replaced
            changed.update(p for p in new if p not in changed and _under_any(p, opaque_set))
            deleted = [p for p in deleted if not _under_any(p, opaque_set)]
        deleted = _topmost(deleted)
        _parents_into(list(changed), changed)
        _parents_into(deleted, changed)
        if commit:
            self.index = new
        return Diff(sorted(changed), deleted, opaque)

    def diff_paths(self, paths: Iterable[str], *, commit: bool = True) -> Diff:
        """Snapshot only `paths` (rootfs-relative or container-absolute), e.g. what a COPY
        wrote: each path, everything below it when it is a directory, and its parents.
        Paths that do not exist are left out; nothing becomes a whiteout."""
        changed: set[str] = set()
        updates: StatIndex = {}
        for raw in paths:
            # resolve symlinked parents inside the rootfs, so the index keys real paths
            host = str(resolve_in_root(self._root, raw, follow_last=False))
            rel = host[len(self._root) + 1 :]
            if not rel or rel in self.ignore or _under_any(rel, self.ignore):
                continue
            try:
                st = os.lstat(host)
            except (FileNotFoundError, NotADirectoryError):
                continue
            updates[rel] = _entry(st, host)
            changed.add(rel)
            if stat.S_ISDIR(st.st_mode):
                below = scan(self._root, self.ignore, rel)
                updates.update(below)
                changed.update(below)
        _parents_into(list(changed), changed)
        if commit:
            for parent in changed.difference(updates):
                host = f"{self._root}/{parent}"
                try:
                    updates[parent] = _entry(os.lstat(host), host)
                except FileNotFoundError:
                    continue
            self.index.update(updates)
        return Diff(sorted(changed), [], [])


def _topmost(paths: Iterable[str]) -> list[str]:
    """Sorted paths with those below another listed path removed."""
    out: list[str] = []
    for p in sorted(paths, key=lambda x: x.split("/")):
        if out and (p + "/").startswith(out[-1] + "/"):
            continue
        out.append(p)
    return sorted(out)


def _under_any(path: str, dirs: set[str] | frozenset[str]) -> bool:
    parent = path.rpartition("/")[0]
    while parent:
        if parent in dirs:
            return True
        parent = parent.rpartition("/")[0]
    return False
