"""Layer blobs: the streaming tar writer and reader.

write_layer makes one pass over the chosen paths of a rootfs:
    sorted PAX tar entries -> sha256 (diff_id) -> compressor -> sha256 (digest) -> file
Nothing holds a whole layer in memory: data moves in buffers of about 1 MiB.

Entries: names without a leading '/', directories with a trailing '/', numeric uid/gid with
empty uname/gname, hardlinks kept within the layer (the first name in sort order carries the
data), sockets skipped, whiteouts `.wh.<name>` and `.wh..wh..opq`, xattrs security.capability
and user.* as SCHILY.xattr.* PAX records. `reproducible` zeroes every time.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

from engine.errors import ImageError, OutputError

try:  # isal is a hard dependency; zlib keeps things working where its wheel is missing
    from isal import isal_zlib as _gzip_backend

    HAVE_ISAL = True
except ImportError:  # pragma: no cover - exercised only without the isal wheel
    _gzip_backend = zlib  # type: ignore[misc]
    HAVE_ISAL = False

import zstandard

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

COMPRESSIONS = ("gzip", "zstd", "none")
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
# xattrs carried in layers: file capabilities and user data. security.selinux and
# system.* describe the build machine, not the image, and would break determinism.
XATTR_PREFIXES = ("security.capability", "user.")

_CHUNK = 1 << 20
_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class LayerBlob:
    """A written layer: digests as "sha256:<hex>", size of the blob file in bytes."""

    path: Path
    diff_id: str
    digest: str
    size: int
    media_type: str
    uncompressed_size: int
    entries: int


def layer_media_type(compression: str, *, docker: bool = False) -> str:
    """The layer media type for a compression, OCI by default or Docker's on request."""
    table = {
        ("gzip", False): OCI_LAYER_GZIP,
        ("zstd", False): OCI_LAYER_ZSTD,
        ("none", False): OCI_LAYER,
        ("gzip", True): DOCKER_LAYER_GZIP,
        ("zstd", True): DOCKER_LAYER_ZSTD,
        ("none", True): DOCKER_LAYER,
    }
    try:
        return table[(compression, docker)]
    except KeyError:
        raise ImageError(f"unknown layer compression {compression!r}") from None


def compression_of(media_type: str) -> str:
    """gzip, zstd or none for a layer media type (OCI or Docker spelling)."""
    mt = media_type.lower()
    if mt.endswith(("+gzip", ".gzip", "tar.gz")):
        return "gzip"
    if mt.endswith(("+zstd", ".zstd")):
        return "zstd"
    if mt.endswith(("tar", "+tar")) or mt == "":
        return "none"
    raise ImageError(f"unsupported layer media type {media_type!r}")


# ---------------------------------------------------------------- compression


class _Compressor(Protocol):
    def compress(self, data: bytes | bytearray | memoryview, /) -> bytes: ...
    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes | bytearray | memoryview, /) -> bytes:
        return bytes(data)

    def flush(self) -> bytes:
        return b""


class _ZstdAdapter:
    def __init__(self, level: int) -> None:
        self._obj = zstandard.ZstdCompressor(level=level).compressobj()

    def compress(self, data: bytes | bytearray | memoryview, /) -> bytes:
        return self._obj.compress(data)

    def flush(self) -> bytes:
        return self._obj.flush()


def gzip_level(level: int | None) -> int:
    """Map a gzip level (1-9, kaniko's --compression-level) onto the backend's range.
    isal has levels 0-3; the default is its fastest full-compression level 1."""
    if not HAVE_ISAL:  # pragma: no cover
        return 6 if level is None else max(0, min(9, level))
    if level is None:
        return 1
    if level <= 0:
        return 0
    return 1 if level <= 2 else 2 if level <= 6 else 3


def _make_compressor(compression: str, level: int | None) -> _Compressor:
    if compression == "gzip":
        return _gzip_backend.compressobj(gzip_level(level), zlib.DEFLATED, 31)
    if compression == "zstd":
        return _ZstdAdapter(3 if level is None else level)
    if compression == "none":
        return _Identity()
    raise ImageError(f"unknown layer compression {compression!r}")


class _Sink:
    """Buffers tar bytes, hashes them (diff_id), compresses, hashes again and writes."""

    def __init__(self, out: BinaryIO, compressor: _Compressor) -> None:
        self._out = out
        self._comp = compressor
        self._buf = bytearray()
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.raw_size = 0
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data
        if len(self._buf) >= _CHUNK:
            self._drain()

    def write_large(self, data: bytes | bytearray | memoryview) -> None:
        if self._buf:
            self._drain()
        self._push(data)

    def _drain(self) -> None:
        self._push(self._buf)
        self._buf = bytearray()

    def _push(self, data: bytes | bytearray | memoryview) -> None:
        self.diff.update(data)
        self.raw_size += len(data)
        self._emit(self._comp.compress(data))

    def _emit(self, data: bytes) -> None:
        if data:
            self.blob.update(data)
            self._out.write(data)
            self.size += len(data)

    def close(self) -> None:
        self._drain()
        self._emit(self._comp.flush())


# ---------------------------------------------------------------- writer


def whiteout_name(path: str) -> str:
    """Tar name of the whiteout that deletes rootfs-relative `path`."""
    parent, _, base = path.rpartition("/")
    return f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else f"{WHITEOUT_PREFIX}{base}"


class StatLike(Protocol):
    """What write_layer needs from a snapshot index entry (engine.fs.snapshot.StatEntry)."""

    @property
    def mode(self) -> int: ...
    @property
    def uid(self) -> int: ...
    @property
    def gid(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def mtime_ns(self) -> int: ...
    @property
    def inode(self) -> int: ...
    @property
    def nlink(self) -> int: ...
    @property
    def rdev(self) -> int: ...
    @property
    def link(self) -> str | None: ...


# A prepared path: (rel, mode, uid, gid, size, mtime_ns, inode, nlink, rdev, link, xattrs,
# data). `data` holds a small regular file's content read ahead by a worker thread; None
# means "stream it from disk" (large files) or "no content".
_Prep = tuple[
    str,
    int,
    int,
    int,
    int,
    int,
    int,
    int,
    int,
    "str | None",
    list[tuple[str, bytes]],
    "bytes | None",
]

_SMALL_FILE = 64 * 1024  # read ahead by workers; bigger files are streamed by the writer
_BATCH = 128  # paths per worker task
_LOOKAHEAD = 4  # batches in flight: bounds read-ahead memory to ~_LOOKAHEAD*_BATCH*_SMALL
_THREADS = 2
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def write_layer(
    rootfs: Path | str,
    paths: Iterable[str],
    deleted: Iterable[str] = (),
    out: Path | str | None = None,
    *,
    opaque: Iterable[str] = (),
    compression: str = "gzip",
    level: int | None = None,
    reproducible: bool = False,
    media_type: str | None = None,
    index: Mapping[str, StatLike] | None = None,
) -> LayerBlob:
    """Write the layer holding rootfs-relative `paths` (files, dirs, links; their parent
    directories must be listed too when they belong in the layer), whiteouts for `deleted`
    and opaque markers for the directories in `opaque`, to the blob file `out`.

    `index` (a snapshot's stat index, e.g. `Snapshotter.index` right after `diff()`) saves
    one lstat per path. Paths that vanished since they were listed are skipped, as are
    sockets."""
    if out is None:
        raise OutputError("write_layer needs an output path")
    out_path = Path(out)
    root = os.fspath(rootfs).rstrip("/")  # "" for "/"
    compressor = _make_compressor(compression, level)
    mt = media_type or layer_media_type(compression)

    # kind 0 = real path, 1 = whiteout, 2 = opaque marker. The marker's key "<dir>/\0" puts
    # it before every child of its directory, so extractors that apply it on sight work too.
    items: dict[str, tuple[int, str]] = {}
    for p in paths:
        rel = p.strip("/")
        if rel:
            items[rel] = (0, rel)
    for d in deleted:
        rel = d.strip("/")
        if rel:
            items[whiteout_name(rel)] = (1, rel)
    for d in opaque:
        rel = d.strip("/")
        items[(rel + "/\x00") if rel else "\x00"] = (2, rel)
    ordered = [items[k] for k in sorted(items)]

    writer = _TarWriter(root, reproducible)
    try:
        with open(out_path, "wb") as fh:
            sink = _Sink(fh, compressor)
            writer.sink = sink
            for batch in _prepared_batches(root, ordered, index):
                for kind, rel, prep in batch:
                    if kind == 0:
                        if prep is not None:
                            writer.add(prep)
                    else:
                        name = whiteout_name(rel) if kind == 1 else _opaque_name(rel)
                        writer.marker(name)
            sink.write(_ZERO_BLOCK * 2)
            sink.close()
    except OSError as exc:
        out_path.unlink(missing_ok=True)
        raise OutputError(f"cannot write layer {out_path}: {exc.strerror or exc}") from exc
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    return LayerBlob(
        path=out_path,
        diff_id="sha256:" + sink.diff.hexdigest(),
        digest="sha256:" + sink.blob.hexdigest(),
        size=sink.size,
        media_type=mt,
        uncompressed_size=sink.raw_size,
        entries=writer.entries,
    )


def _opaque_name(rel: str) -> str:
    return f"{rel}/{OPAQUE_WHITEOUT}" if rel else OPAQUE_WHITEOUT


_Batch = list[tuple[int, str, "_Prep | None"]]


def _prepared_batches(
    root: str, ordered: list[tuple[int, str]], index: Mapping[str, StatLike] | None
) -> Iterator[_Batch]:
    """Batches of (kind, rel, prepared path) in order. Stats, xattrs and small files are
    read by worker threads ahead of the writer: the syscalls release the GIL, so they
    overlap with header building and compression."""

    def work(chunk: list[tuple[int, str]]) -> _Batch:
        return [(k, r, _prepare(root, r, index) if k == 0 else None) for k, r in chunk]

    chunks = [ordered[i : i + _BATCH] for i in range(0, len(ordered), _BATCH)]
    if len(chunks) <= 2:
        for chunk in chunks:
            yield work(chunk)
        return
    with ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="layer-read") as pool:
        pending: deque[Future[_Batch]] = deque()
        it = iter(chunks)
        for chunk in it:
            pending.append(pool.submit(work, chunk))
            if len(pending) >= _LOOKAHEAD:
                break
        while pending:
            batch = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(work, nxt))
            yield batch


def _prepare(root: str, rel: str, index: Mapping[str, StatLike] | None) -> _Prep | None:
    host = f"{root}/{rel}"
    known = index.get(rel) if index is not None else None
    if known is not None:
        mode, uid, gid, size = known.mode, known.uid, known.gid, known.size
        mtime_ns, ino, nlink, rdev, link = (
            known.mtime_ns,
            known.inode,
            known.nlink,
            known.rdev,
            known.link,
        )
    else:
        try:
            st = os.lstat(host)
        except (FileNotFoundError, NotADirectoryError):
            return None
        mode, uid, gid, size = st.st_mode, st.st_uid, st.st_gid, st.st_size
        mtime_ns, ino, nlink, rdev = st.st_mtime_ns, st.st_ino, st.st_nlink, st.st_rdev
        link = None
    fmt = stat.S_IFMT(mode)
    if fmt == stat.S_IFSOCK:
        return None
    if fmt == stat.S_IFLNK:
        if link is None:
            try:
                link = os.readlink(host)
            except (FileNotFoundError, NotADirectoryError):
                return None
        return (rel, mode, uid, gid, 0, mtime_ns, ino, nlink, rdev, link, [], None)
    xattrs = _read_xattrs(host)
    data = None
    if fmt == stat.S_IFREG and 0 < size <= _SMALL_FILE:
        try:
            fd = os.open(host, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            data = os.read(fd, size)
        finally:
            os.close(fd)
    return (rel, mode, uid, gid, size, mtime_ns, ino, nlink, rdev, link, xattrs, data)


def _read_xattrs(host: str) -> list[tuple[str, bytes]]:
    try:
        names = os.listxattr(host, follow_symlinks=False)
    except OSError:
        return []
    found: list[tuple[str, bytes]] = []
    for name in sorted(names):
        if not name.startswith(XATTR_PREFIXES):
            continue
        try:
            found.append((name, os.getxattr(host, name, follow_symlinks=False)))
        except OSError:
            continue
    return found


_TYPE_FLAGS = {
    stat.S_IFREG: b"0",
    stat.S_IFDIR: b"5",
    stat.S_IFLNK: b"2",
    stat.S_IFCHR: b"3",
    stat.S_IFBLK: b"4",
    stat.S_IFIFO: b"6",
}
_MAX_OCTAL_7 = 0o7777777
_MAX_OCTAL_11 = 0o77777777777
_PAX_NAME = b"././@PaxHeader"
_USTAR_TAIL = b"ustar\x0000" + bytes(64)
_NULS = bytes(167)


def _ustar(
    name: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    flag: bytes,
    link: bytes,
    major: int,
    minor: int,
) -> bytes:
    head = b"".join(
        (
            name.ljust(100, b"\0"),
            b"%07o\0%07o\0%07o\0%011o\0%011o\0        " % (mode, uid, gid, size, mtime),
            flag,
            link.ljust(100, b"\0"),
            _USTAR_TAIL,
            b"%07o\0%07o\0" % (major, minor),
            _NULS,
        )
    )
    return head[:148] + b"%06o\0 " % sum(head) + head[156:]


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n = len(b"%d" % n) + len(body)
    return b"%d" % n + body


class _TarWriter:
    """PAX tar headers written by hand: tarfile's TarInfo.tobuf costs ~50 us per entry,
    this about a tenth; the output is plain ustar plus PAX records where needed."""

    def __init__(self, root: str, reproducible: bool) -> None:
        self.root = root
        self.reproducible = reproducible
        self.sink: _Sink
        self.links: dict[tuple[int, int], str] = {}
        self.entries = 0

    def header(
        self,
        name: str,
        mode: int,
        uid: int,
        gid: int,
        size: int,
        mtime: int,
        flag: bytes,
        link: str = "",
        major: int = 0,
        minor: int = 0,
        xattrs: list[tuple[str, bytes]] | None = None,
    ) -> None:
        name_b = name.encode("utf-8", "surrogateescape")
        link_b = link.encode("utf-8", "surrogateescape")
        pax: list[bytes] = []
        if len(name_b) > 100 or not name_b.isascii():
            pax.append(_pax_record(b"path", name_b))
            name_b = name_b[:100]
        if len(link_b) > 100 or not link_b.isascii():
            pax.append(_pax_record(b"linkpath", link_b))
            link_b = link_b[:100]
        if size > _MAX_OCTAL_11:
            pax.append(_pax_record(b"size", b"%d" % size))
            size = 0
        if uid > _MAX_OCTAL_7:
            pax.append(_pax_record(b"uid", b"%d" % uid))
            uid = 0
        if gid > _MAX_OCTAL_7:
            pax.append(_pax_record(b"gid", b"%d" % gid))
            gid = 0
        if not 0 <= mtime <= _MAX_OCTAL_11:
            pax.append(_pax_record(b"mtime", b"%d" % mtime))
            mtime = 0
        if xattrs:
            for key, value in xattrs:
                pax.append(
                    _pax_record(b"SCHILY.xattr." + key.encode("utf-8", "surrogateescape"), value)
                )
        write = self.sink.write
        if pax:
            records = b"".join(pax)
            write(_ustar(_PAX_NAME, 0o644, 0, 0, len(records), 0, b"x", b"", 0, 0))
            write(records)
            pad = -len(records) % _BLOCK
            if pad:
                write(_ZERO_BLOCK[:pad])
        write(_ustar(name_b, mode, uid, gid, size, mtime, flag, link_b, major, minor))
        self.entries += 1

    def marker(self, name: str) -> None:
        self.header(name, 0o644, 0, 0, 0, 0, b"0")

    def add(self, prep: _Prep) -> None:
        rel, mode, uid, gid, size, mtime_ns, ino, nlink, rdev, link, xattrs, data = prep
        fmt = stat.S_IFMT(mode)
        flag = _TYPE_FLAGS.get(fmt)
        if flag is None:
            return
        perm = stat.S_IMODE(mode)
        mtime = 0 if self.reproducible else mtime_ns // 1_000_000_000
        if fmt == stat.S_IFREG:
            if nlink > 1:
                first = self.links.setdefault((ino, 0), rel)
                if first != rel:
                    self.header(rel, perm, uid, gid, 0, mtime, b"1", first)
                    return
            if data is None and size > 0:
                self._stream(rel, perm, uid, gid, size, mtime, xattrs)
                return
            self.header(rel, perm, uid, gid, size, mtime, flag, xattrs=xattrs)
            if size:
                body = data or b""
                if len(body) != size:  # changed while being read: keep the tar well formed
                    body = body[:size].ljust(size, b"\0")
                self.sink.write(body)
                pad = -size % _BLOCK
                if pad:
                    self.sink.write(_ZERO_BLOCK[:pad])
        elif fmt == stat.S_IFDIR:
            self.header(rel + "/", perm, uid, gid, 0, mtime, flag, xattrs=xattrs)
        elif fmt == stat.S_IFLNK:
            self.header(rel, perm, uid, gid, 0, mtime, flag, link or "")
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            self.header(
                rel,
                perm,
                uid,
                gid,
                0,
                mtime,
                flag,
                "",
                os.major(rdev),
                os.minor(rdev),
                xattrs=xattrs,
            )
        else:
            self.header(rel, perm, uid, gid, 0, mtime, flag, xattrs=xattrs)

    def _stream(
        self,
        rel: str,
        perm: int,
        uid: int,
        gid: int,
        size: int,
        mtime: int,
        xattrs: list[tuple[str, bytes]],
    ) -> None:
        try:
            fd = os.open(f"{self.root}/{rel}", _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return
        with os.fdopen(fd, "rb", buffering=0) as src:
            self.header(rel, perm, uid, gid, size, mtime, b"0", xattrs=xattrs)
            _copy_data(self.sink, src, size)


def _copy_data(sink: _Sink, src: IO[bytes], size: int) -> None:
    """Copy exactly `size` bytes (the size in the header): a file that shrank while being
    read is padded with zeros, one that grew is cut, so the tar stays well formed."""
    left = size
    while left > 0:
        chunk = src.read(min(_CHUNK, left))
        if not chunk:
            chunk = bytes(min(_CHUNK, left))
        if len(chunk) >= 65536:
            sink.write_large(chunk)
        else:
            sink.write(chunk)
        left -= len(chunk)
    pad = -size % _BLOCK
    if pad:
        sink.write(_ZERO_BLOCK[:pad])


# ---------------------------------------------------------------- reader


@contextmanager
def open_layer_stream(
    blob: Path | str | BinaryIO, media_type: str | None = None
) -> Iterator[BinaryIO]:
    """Context manager giving a readable stream of the layer's uncompressed tar. The
    compression comes from `media_type`, or from the blob's magic bytes when it is None.
    A file opened here is closed on exit; a stream passed in is left open."""
    with ExitStack() as stack:
        raw: Any = stack.enter_context(open(blob, "rb")) if isinstance(blob, (str, Path)) else blob
        if media_type is not None:
            kind = compression_of(media_type)
        else:
            if not isinstance(raw, io.BufferedReader):
                raw = io.BufferedReader(raw)
            head = raw.peek(4)[:4]
            kind = (
                "gzip"
                if head.startswith(_GZIP_MAGIC)
                else "zstd"
                if head.startswith(_ZSTD_MAGIC)
                else "none"
            )
        stream: Any
        if kind == "gzip" and HAVE_ISAL:
            from isal import igzip

            stream = igzip.IGzipFile(fileobj=raw, mode="rb")
        elif kind == "gzip":  # pragma: no cover - only without isal
            import gzip

            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif kind == "zstd":
            stream = zstandard.ZstdDecompressor().stream_reader(
                raw, read_across_frames=True, closefd=False
            )
        else:
            stream = raw
        yield stream


@dataclass
class LayerEntry:
    """One tar entry; `data` reads a regular file's content (only until the next entry)."""

    info: tarfile.TarInfo
    data: IO[bytes] | None

    @property
    def name(self) -> str:
        return self.info.name

    def xattrs(self) -> dict[str, bytes]:
        """SCHILY.xattr.* PAX records as name -> raw bytes."""
        out: dict[str, bytes] = {}
        for key, value in self.info.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                out[key[len("SCHILY.xattr.") :]] = value.encode("utf-8", "surrogateescape")
        return out


def iterate_layer(
    blob: Path | str | BinaryIO, media_type: str | None = None
) -> Iterator[LayerEntry]:
    """Stream the entries of a layer blob in order (compressed or not)."""
    errors = (tarfile.TarError, OSError, EOFError, zstandard.ZstdError)
    with open_layer_stream(blob, media_type) as stream:
        try:
            tf = tarfile.open(fileobj=stream, mode="r|", errorlevel=2)  # noqa: SIM115
        except errors as exc:
            raise ImageError(f"unreadable layer: {exc}") from exc
        with tf:
            it: Iterator[tarfile.TarInfo] = iter(tf)
            while True:
                try:
                    info = next(it)
                except StopIteration:
                    break
                except errors as exc:
                    raise ImageError(f"corrupt layer: {exc}") from exc
                data = tf.extractfile(info) if info.isreg() else None
                yield LayerEntry(info, data)
