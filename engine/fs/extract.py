"""Apply a layer blob to a rootfs, as Docker/containerd do, without ever writing outside it.

Entries are applied in tar order. Names are cleaned relative to the root; absolute names and
absolute hardlink targets are refused (DESIGN.md), as is a `..` that climbs above the root. Parent
directories are resolved with `resolve_in_root(strict=True)`, so a write through a symlink
lands where it would inside the container (absolute targets re-rooted) and never outside;
the last component is never followed (existing entries are removed first, files are created
with O_EXCL|O_NOFOLLOW). Hardlink targets resolve the same way and must already exist.

Whiteouts: `.wh.<name>` removes <name>; `.wh..wh..opq` empties its directory of everything
that did not come from this same layer, whichever side of the marker those entries were.
An existing directory is kept when the entry is a directory too; any other existing entry
is replaced (a file over a directory removes the directory, as Docker does).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.errors import ImageError, UnsafeLayer
from engine.fs.safe import clean_relative, resolve_in_root
from engine.image.layers import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, LayerEntry, iterate_layer

log = logging.getLogger(__name__)

_APPLIED_XATTRS = ("security.capability", "user.")
_CHUNK = 1 << 20
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class ExtractStats:
    entries: int = 0
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    specials: int = 0
    whiteouts: int = 0
    bytes: int = 0
    devices_skipped: int = 0
    chown_failures: int = 0
    xattr_failures: int = 0


def extract_layer(
    blob: Path | str | BinaryIO, media_type: str | None, rootfs: Path | str
) -> ExtractStats:
    """Apply one layer to rootfs (which must exist). `media_type` None sniffs compression."""
    root = os.path.realpath(os.fspath(rootfs))
    if not os.path.isdir(root):
        raise ImageError(f"rootfs {root} is not a directory")
    return _Extractor(root).run(blob, media_type)


class _Extractor:
    def __init__(self, root: str) -> None:
        self.root = root
        self.stats = ExtractStats()
        self.written: set[str] = set()  # rootfs-relative paths created by this layer
        self.dir_times: list[tuple[str, int]] = []
        self.parents: dict[str, str] = {}  # parent rel path -> resolved host dir
        self.warned_devices = False

    def run(self, blob: Path | str | BinaryIO, media_type: str | None) -> ExtractStats:
        for entry in iterate_layer(blob, media_type):
            self.stats.entries += 1
            try:
                self.apply(entry)
            except OSError as exc:
                name = entry.info.name
                if exc.errno == errno.ELOOP:
                    raise UnsafeLayer(f"layer entry {name!r}: symlink loop") from exc
                raise ImageError(f"layer entry {name!r}: {exc.strerror or exc}") from exc
        # Directory times last: creating entries inside a directory changes its mtime.
        for host, mtime_ns in reversed(self.dir_times):
            with contextlib.suppress(FileNotFoundError):  # removed by a later whiteout
                os.utime(host, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        return self.stats

    # ---------------------------------------------------------- helpers

    def host_parent(self, rel_parent: str, name: str) -> str:
        """Resolved host directory for rel_parent, created (0755) when missing."""
        cached = self.parents.get(rel_parent)
        if cached is not None:
            return cached
        host = str(resolve_in_root(self.root, rel_parent, strict=True, what=name))
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            self._make_parents(rel_parent, name)
            host = str(resolve_in_root(self.root, rel_parent, strict=True, what=name))
            st = os.lstat(host)
        if not stat.S_ISDIR(st.st_mode):
            raise ImageError(f"layer entry {name!r}: parent {rel_parent!r} is not a directory")
        self.parents[rel_parent] = host
        return host

    def _make_parents(self, rel_parent: str, name: str) -> None:
        built = ""
        for part in rel_parent.split("/"):
            built = f"{built}/{part}" if built else part
            host = resolve_in_root(self.root, built, strict=True, what=name)
            # every existing component of a resolved path is a real directory, so
            # makedirs cannot be redirected; it creates a link target's missing parents
            os.makedirs(host, 0o755, exist_ok=True)

    def mark_written(self, rel: str) -> None:
        # ancestors too: an opaque marker must not remove the directories holding our entries
        while rel and rel not in self.written:
            self.written.add(rel)
            rel = rel.rpartition("/")[0]

    def forget_parents(self) -> None:
        # A symlink appeared or something was removed: cached resolutions may be stale.
        self.parents.clear()

    def remove(self, host: str) -> None:
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(host)
            self.forget_parents()
        else:
            os.unlink(host)
            if stat.S_ISLNK(st.st_mode):
                self.forget_parents()

    # ---------------------------------------------------------- entries

    def apply(self, entry: LayerEntry) -> None:
        info = entry.info
        raw_name = info.name
        if raw_name.startswith("/"):
            # DESIGN: absolute names are refused, not re-rooted; no honest image tool writes them.
            raise UnsafeLayer(f"layer entry {raw_name!r}: absolute path")
        rel = clean_relative(raw_name, strict=True, what=repr(raw_name))
        parent, _, base = rel.rpartition("/")
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(parent, base, raw_name)
            return
        if rel == "":
            if info.isdir():  # the root itself ("./"): metadata only
                self.set_metadata(self.root, info, entry)
            return
        self.mark_written(rel)
        dir_host = self.host_parent(parent, raw_name)
        host = f"{dir_host}/{base}"
        try:
            existing = os.lstat(host)
        except FileNotFoundError:
            existing = None
        if existing is not None and not (info.isdir() and stat.S_ISDIR(existing.st_mode)):
            self.remove(host)
        if info.isreg():
            self.write_file(host, entry)
            self.stats.files += 1
        elif info.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(host, 0o700)
            self.stats.dirs += 1
        elif info.issym():
            os.symlink(info.linkname, host)
            self.forget_parents()
            self.stats.symlinks += 1
        elif info.islnk():
            self.hardlink(host, info, raw_name)
            self.stats.hardlinks += 1
            return  # shares the target's inode and metadata
        elif info.isfifo():
            os.mkfifo(host, 0o600)
            self.stats.specials += 1
        elif info.ischr() or info.isblk():
            if not self.mknod(host, info):
                return
            self.stats.specials += 1
        else:
            log.warning("layer entry %r: unsupported tar type %r skipped", raw_name, info.type)
            return
        self.set_metadata(host, info, entry)

    def whiteout(self, parent: str, base: str, raw_name: str) -> None:
        self.stats.whiteouts += 1
        dir_host = str(resolve_in_root(self.root, parent, strict=True, what=repr(raw_name)))
        if not os.path.isdir(dir_host):
            return
        if base == OPAQUE_WHITEOUT:
            self.opaque(parent, dir_host)
            return
        victim = base[len(WHITEOUT_PREFIX) :]
        if victim in ("", ".", ".."):
            raise UnsafeLayer(f"layer entry {raw_name!r}: invalid whiteout")
        self.remove(f"{dir_host}/{victim}")

    def opaque(self, rel_dir: str, dir_host: str) -> None:
        """Remove everything below rel_dir that this layer did not write."""
        prefix = f"{rel_dir}/" if rel_dir else ""
        with os.scandir(dir_host) as it:
            children = [e.name for e in it]
        for name in children:
            rel = prefix + name
            host = f"{dir_host}/{name}"
            if rel in self.written:
                if os.path.isdir(host) and not os.path.islink(host):
                    self.opaque(rel, host)
            else:
                self.remove(host)

    def write_file(self, host: str, entry: LayerEntry) -> None:
        fd = os.open(host, _CREATE_FLAGS, 0o600)
        with os.fdopen(fd, "wb") as dst:
            if entry.data is not None:
                while chunk := entry.data.read(_CHUNK):
                    dst.write(chunk)
                    self.stats.bytes += len(chunk)

    def hardlink(self, host: str, info: tarfile.TarInfo, raw_name: str) -> None:
        what = f"hardlink {raw_name!r} -> {info.linkname!r}"
        if info.linkname.startswith("/"):
            raise UnsafeLayer(f"layer entry {what}: absolute link target")
        target_rel = clean_relative(info.linkname, strict=True, what=what)
        if not target_rel:
            raise UnsafeLayer(f"layer entry {what}: target is the root")
        target = resolve_in_root(self.root, target_rel, follow_last=False, strict=True, what=what)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise ImageError(f"layer entry {what}: target does not exist") from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeLayer(f"layer entry {what}: target is a directory")
        os.link(target, host, follow_symlinks=False)

    def mknod(self, host: str, info: tarfile.TarInfo) -> bool:
        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
        try:
            os.mknod(host, kind | 0o600, os.makedev(info.devmajor, info.devminor))
        except PermissionError:
            self.stats.devices_skipped += 1
            if not self.warned_devices:
                log.warning(
                    "cannot create device nodes here (EPERM): skipping %r and others", info.name
                )
                self.warned_devices = True
            return False
        return True

    def set_metadata(self, host: str, info: tarfile.TarInfo, entry: LayerEntry) -> None:
        # Order matters: chown clears setuid/setgid and security.capability, so it goes
        # first, then the mode, then xattrs.
        is_link = info.issym()
        try:
            os.chown(host, info.uid, info.gid, follow_symlinks=False)
        except OSError as exc:
            # EPERM when not root, EINVAL for an id a user namespace does not map
            if exc.errno not in (errno.EPERM, errno.EINVAL):
                raise
            self.stats.chown_failures += 1
        if not is_link:
            os.chmod(host, info.mode & 0o7777)
            for name, value in entry.xattrs().items():
                if not name.startswith(_APPLIED_XATTRS):
                    continue
                try:
                    os.setxattr(host, name, value, follow_symlinks=False)
                except OSError:
                    self.stats.xattr_failures += 1
        mtime_ns = round(float(info.mtime) * 1_000_000_000)
        if info.isdir():
            self.dir_times.append((host, mtime_ns))
        else:
            os.utime(host, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
