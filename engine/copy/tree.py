"""Writing copied entries into a rootfs: ownership, modes, times, links, never through a
symlink's last component, never outside the rootfs (parents resolve with resolve_in_root)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BuildError
from engine.fs.safe import resolve_in_root

_CHUNK = 1 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Owner:
    """uid/gid to give new entries; None keeps the source's (COPY --from, archives)."""

    uid: int | None = 0
    gid: int | None = 0
    chmod: int | None = None


@dataclass
class TreeWriter:
    """Writes entries under rootfs and remembers every path written (rootfs-relative)."""

    rootfs: Path
    owner: Owner
    keyword: str = "COPY"
    written: list[str] = field(default_factory=list)
    _links: dict[tuple[int, int], str] = field(default_factory=dict)
    _dir_times: list[tuple[str, int, int]] = field(default_factory=list)

    # ---- bookkeeping -----------------------------------------------------------------
    def record(self, host: str) -> None:
        root = str(self.rootfs)
        if host.startswith(root + "/"):
            self.written.append(host[len(root) + 1 :])

    def host(self, container_path: str, *, follow_last: bool = True) -> str:
        return str(resolve_in_root(self.rootfs, container_path, follow_last=follow_last))

    def finish(self) -> list[str]:
        """Directory times last: writing children changed them."""
        for host, atime, mtime in reversed(self._dir_times):
            with contextlib.suppress(FileNotFoundError):
                os.utime(host, ns=(atime, mtime), follow_symlinks=False)
        self._dir_times.clear()
        return list(dict.fromkeys(self.written))

    # ---- attributes ------------------------------------------------------------------
    def _ids(self, st_uid: int, st_gid: int) -> tuple[int, int]:
        uid = st_uid if self.owner.uid is None else self.owner.uid
        gid = st_gid if self.owner.gid is None else self.owner.gid
        return uid, gid

    def _chown(self, host: str, uid: int, gid: int, *, fd: int | None = None) -> None:
        try:
            if fd is not None:
                os.fchown(fd, uid, gid)
            else:
                os.lchown(host, uid, gid)
        except PermissionError:
            # Rootless: an unprivileged engine cannot give files away; the owner is then
            # the caller's, which the user namespace shows as root.
            if os.geteuid() == 0:
                raise
        except OSError as err:
            # EINVAL: the id is not mapped in this user namespace (a rootless build without a
            # subordinate id range); extraction treats it the same way (engine/fs/extract.py).
            if err.errno != errno.EINVAL:
                raise

    def _mode(self, src_mode: int) -> int:
        return self.owner.chmod if self.owner.chmod is not None else stat.S_IMODE(src_mode)

    # ---- directories -----------------------------------------------------------------
    def make_dirs(self, container_dir: str) -> str:
        """Create container_dir and missing parents (0755, owned like new entries), following
        symlinked components inside the rootfs. Returns the host path."""
        parts = [p for p in container_dir.split("/") if p not in ("", ".")]
        current = ""
        for part in parts:
            current = f"{current}/{part}"
            host = self.host(current)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                # makedirs: a symlinked component may lead to a missing target's parents
                os.makedirs(host, 0o755)
                os.chmod(host, 0o755)
                uid, gid = self._ids(0, 0)
                self._chown(host, uid, gid)
                self.record(host)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise BuildError(f"{self.keyword} failed: cannot copy to non-directory: {current}")
        return self.host(container_dir or "/")

    def _followed_dir(self, host: str) -> str | None:
        """The directory a symlink at host leads to, resolved inside the rootfs."""
        if not os.path.islink(host):
            return None
        root = str(self.rootfs)
        if not host.startswith(root + "/"):
            return None
        target = self.host("/" + host[len(root) + 1 :])
        return target if os.path.isdir(target) and not os.path.islink(target) else None

    def _prepare_slot(self, host: str, want_dir: bool) -> bool:
        """Clear host for a new entry. Returns True when an existing directory is kept."""
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if want_dir:
                return True
            shutil.rmtree(host)
        else:
            os.unlink(host)
        return False

    # ---- entries ---------------------------------------------------------------------
    def copy_tree(
        self,
        src: str,
        dst: str,
        *,
        src_rel: str = "",
        skip: Callable[[str, bool], bool] | None = None,
    ) -> None:
        """Copy the directory src's contents into existing host dir dst."""
        with os.scandir(src) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{src_rel}/{entry.name}" if src_rel else entry.name
            st = entry.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            if skip is not None and skip(rel, is_dir):
                continue
            self.copy_entry(entry.path, os.path.join(dst, entry.name), st, src_rel=rel, skip=skip)

    def copy_entry(
        self,
        src: str,
        dst: str,
        st: os.stat_result,
        *,
        src_rel: str = "",
        skip: Callable[[str, bool], bool] | None = None,
    ) -> None:
        mode = st.st_mode
        uid, gid = self._ids(st.st_uid, st.st_gid)
        if stat.S_ISDIR(mode):
            target = self._followed_dir(dst)
            if target is not None:
                # An existing symlink to a directory (merged /usr: /lib -> usr/lib) is
                # followed inside the rootfs, not replaced, as kaniko does (classic
                # docker replaced it; older BuildKit refused: moby/moby#47367).
                self.copy_tree(src, target, src_rel=src_rel, skip=skip)
                return
            if not self._prepare_slot(dst, want_dir=True):
                os.mkdir(dst, 0o700)
            self._chown(dst, uid, gid)
            os.chmod(dst, self._mode(mode))
            self.record(dst)
            self.copy_tree(src, dst, src_rel=src_rel, skip=skip)
            self._dir_times.append((dst, st.st_atime_ns, st.st_mtime_ns))
            return
        if stat.S_ISSOCK(mode):
            return  # sockets are not files Docker copies
        self._prepare_slot(dst, want_dir=False)
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
            self._chown(dst, uid, gid)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._links:
                os.link(self._links[key], dst)  # hardlinks inside one copy stay hardlinks
                self.record(dst)
                return
            self._copy_file(src, dst, uid, gid, self._mode(mode))
            if st.st_nlink > 1:
                self._links[key] = dst
        else:  # fifo, char and block devices
            os.mknod(dst, stat.S_IFMT(mode) | 0o600, st.st_rdev)
            self._chown(dst, uid, gid)
            os.chmod(dst, self._mode(mode))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        self.record(dst)

    def _copy_file(self, src: str, dst: str, uid: int, gid: int, mode: int) -> None:
        in_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            out_fd = os.open(dst, _CREATE, 0o600)
            try:
                _copy_fd(in_fd, out_fd)
                self._chown(dst, uid, gid, fd=out_fd)
                os.fchmod(out_fd, mode)  # after chown, which clears setuid bits
                _copy_xattrs(in_fd, out_fd)  # last: chown drops security.capability
            finally:
                os.close(out_fd)
        finally:
            os.close(in_fd)

    def write_stream(
        self,
        dst: str,
        read: Callable[[int], bytes],
        *,
        uid: int,
        gid: int,
        mode: int,
        mtime_ns: int | None,
    ) -> None:
        """A new regular file at host path dst from a stream (archives, URLs, heredocs)."""
        self._prepare_slot(dst, want_dir=False)
        fd = os.open(dst, _CREATE, 0o600)
        try:
            while chunk := read(_CHUNK):
                _write_all(fd, chunk)
            self._chown(dst, uid, gid, fd=fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        if mtime_ns is not None:
            os.utime(dst, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        self.record(dst)

    def remember_dir_time(self, host: str, mtime_ns: int) -> None:
        self._dir_times.append((host, mtime_ns, mtime_ns))


def _copy_xattrs(in_fd: int, out_fd: int) -> None:
    """Extended attributes (file capabilities, user.*) as BuildKit copies them; a
    filesystem or privilege that refuses one is not an error (trusted.* needs root)."""
    try:
        names = os.listxattr(in_fd)
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            os.setxattr(out_fd, name, os.getxattr(in_fd, name))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _copy_fd(in_fd: int, out_fd: int) -> None:
    """copy_file_range/sendfile where the kernel has them, read/write otherwise."""
    try:
        while os.sendfile(out_fd, in_fd, None, 1 << 30) > 0:
            pass
        return
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
            raise
    while chunk := os.read(in_fd, _CHUNK):
        _write_all(out_fd, chunk)
