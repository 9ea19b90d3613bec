"""ADD's local archive extraction: gzip, bzip2, xz, zstd or plain tar, detected by content
(as Docker does: a .tar.gz that is not a tar inside is copied as a file), streamed, and
never written outside the rootfs (names clamped to the destination, parents resolved
inside the rootfs, last components never followed, hardlinks only to extracted names)."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import lzma
import os
import stat
import tarfile
from collections.abc import Iterator
from typing import IO, BinaryIO, cast

from engine.copy.tree import TreeWriter
from engine.errors import BuildError, UnsafeLayer
from engine.fs.safe import clean_relative

log = logging.getLogger(__name__)
XATTR_PREFIX = "SCHILY.xattr."
_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def _compression(head: bytes) -> str:
    for magic, name in _MAGICS:
        if head.startswith(magic):
            return name
    return "none"


@contextlib.contextmanager
def _open_stream(path: str) -> Iterator[IO[bytes]]:
    with open(path, "rb") as raw:
        kind = _compression(raw.read(6))
        raw.seek(0)
        if kind == "gzip":
            with gzip.GzipFile(fileobj=raw) as g:
                yield cast(IO[bytes], g)
        elif kind == "bzip2":
            with bz2.BZ2File(raw) as b:
                yield b
        elif kind == "xz":
            with lzma.LZMAFile(raw) as x:
                yield x
        elif kind == "zstd":
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(raw) as z:
                yield z
        else:
            yield raw


def is_archive(path: str) -> bool:
    """Does path hold a (possibly compressed) tar? Reads at most one header."""
    try:
        with _open_stream(path) as stream:
            header = _read_exact(stream, tarfile.BLOCKSIZE)
    except (OSError, EOFError, lzma.LZMAError, ValueError):
        return False
    if len(header) < tarfile.BLOCKSIZE or header == bytes(tarfile.BLOCKSIZE):
        return False
    try:
        tarfile.TarInfo.frombuf(header, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def extract_archive(path: str, dest_dir: str, writer: TreeWriter, *, source: str) -> None:
    """Unpack the archive at host path `path` into container directory dest_dir (which
    exists). Owners come from the archive unless the writer's owner sets them."""
    with _open_stream(path) as stream:
        try:
            tar = tarfile.open(fileobj=stream, mode="r|", errorlevel=1)  # noqa: SIM115
        except tarfile.TarError as e:
            raise BuildError(f"ADD {source}: not a readable archive: {e}") from None
        with tar:
            try:
                for member in tar:
                    _extract_member(tar, member, dest_dir, writer, source)
            except (tarfile.TarError, EOFError, lzma.LZMAError) as e:
                raise BuildError(f"ADD {source}: broken archive: {e}") from None


def _container_name(dest_dir: str, name: str, source: str) -> str | None:
    try:
        rel = clean_relative(name, strict=True)
    except UnsafeLayer:
        raise BuildError(f"ADD {source}: archive entry {name!r} escapes the destination") from None
    if not rel:
        return None
    return f"{dest_dir.rstrip('/')}/{rel}"


def _apply_xattrs(host: str, m: tarfile.TarInfo) -> None:
    """PAX SCHILY.xattr.* records (file capabilities, user.*), after the chown."""
    for key, value in m.pax_headers.items():
        if key.startswith(XATTR_PREFIX):
            raw = value.encode("utf-8", "surrogateescape")
            with contextlib.suppress(OSError):
                os.setxattr(host, key[len(XATTR_PREFIX) :], raw, follow_symlinks=False)


def _extract_member(
    tar: tarfile.TarFile, m: tarfile.TarInfo, dest_dir: str, writer: TreeWriter, source: str
) -> None:
    name = _container_name(dest_dir, m.name, source)
    if name is None:
        return
    parent, _, _ = name.rpartition("/")
    writer.make_dirs(parent)
    host = writer.host(name, follow_last=False)
    uid = m.uid if writer.owner.uid is None else writer.owner.uid
    gid = m.gid if writer.owner.gid is None else writer.owner.gid
    mode = writer.owner.chmod if writer.owner.chmod is not None else stat.S_IMODE(m.mode)
    mtime_ns = int(m.mtime * 1_000_000_000)
    if m.isdir():
        if not writer._prepare_slot(host, want_dir=True):
            os.mkdir(host, 0o700)
        writer._chown(host, uid, gid)
        os.chmod(host, mode)
        writer.record(host)
        writer.remember_dir_time(host, mtime_ns)
        return
    if m.isreg():
        fileobj: BinaryIO | None = tar.extractfile(m)  # type: ignore[assignment]
        assert fileobj is not None
        writer.write_stream(host, fileobj.read, uid=uid, gid=gid, mode=mode, mtime_ns=mtime_ns)
        _apply_xattrs(host, m)
        return
    writer._prepare_slot(host, want_dir=False)
    if m.issym():
        os.symlink(m.linkname, host)
    elif m.islnk():
        target_name = _container_name(dest_dir, m.linkname, source)
        target = writer.host(target_name or dest_dir, follow_last=False)
        if not os.path.lexists(target) or os.path.isdir(target):
            raise BuildError(f"ADD {source}: hardlink {m.name!r} to a missing entry {m.linkname!r}")
        os.link(target, host, follow_symlinks=False)
        writer.record(host)
        return
    elif m.ischr() or m.isblk() or m.isfifo():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        try:
            os.mknod(host, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        except PermissionError:
            # rootless: no CAP_MKNOD; layer extraction skips device nodes the same way
            log.warning(
                "ADD %s: cannot create device node %r here (EPERM), skipped", source, m.name
            )
            return
        os.chmod(host, mode)
    else:
        return
    writer._chown(host, uid, gid)
    os.utime(host, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
    writer.record(host)
