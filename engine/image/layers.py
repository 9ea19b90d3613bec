"""Layer blobs: the streaming tar writer and reader.

write_layer makes one pass over the chosen paths of a rootfs:
    sorted PAX tar entries -> sha256 (diff_id) -> compressor -> sha256 (digest) -> file
Nothing holds a whole layer in memory: data moves in buffers of about 1 MiB. The compressor
runs in its own thread; for layers of many paths (with a snapshot index) two forked
processes build the tar entries of alternate batches, so the work uses both cores.

Entries: names without a leading '/', directories with a trailing '/', numeric uid/gid with
empty uname/gname, hardlinks kept within the layer (the first name in sort order carries the
data), sockets skipped, whiteouts `.wh.<name>` and `.wh..wh..opq`, xattrs security.capability
and user.* as SCHILY.xattr.* PAX records. `reproducible` zeroes every time.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import io
import marshal
import operator
import os
import queue
import stat
import struct
import tarfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, NoReturn, Protocol

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
    """Buffers tar bytes; hashes them (diff_id) in the caller's thread while a second thread
    compresses, hashes the compressed bytes (digest) and writes them. hashlib and the
    compressors release the GIL on large buffers, so the two run on two cores. The queue is
    bounded: at most _QUEUE buffers of ~1 MiB are in flight."""

    def __init__(self, out: BinaryIO, compressor: _Compressor) -> None:
        self._out = out
        self._comp = compressor
        self._buf = bytearray()
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.raw_size = 0
        self.size = 0
        self._queue: queue.Queue[bytes | bytearray | memoryview | None] = queue.Queue(_QUEUE)
        self._error: BaseException | None = None
        self._aborted = False
        self._thread = threading.Thread(target=self._compress_loop, name="layer-compress")
        self._thread.daemon = True
        self._thread.start()

    # The compressor always gets exactly _CHUNK bytes per call (the last call less): isal's
    # deflate output depends on how its input is split, and the digest of the same tar must
    # not depend on how it was produced (one process or forked builders, machine, timing).

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data
        if len(self._buf) >= _CHUNK:
            self._push_full()

    def write_large(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        if self._buf:
            need = _CHUNK - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) < _CHUNK:
                return
            self._push(self._buf)
            self._buf = bytearray()
        while len(view) >= _CHUNK:
            self._push(view[:_CHUNK])  # bytes are immutable: no copy needed
            view = view[_CHUNK:]
        if view:
            self._buf += view

    def _push_full(self) -> None:
        buf = self._buf
        whole = len(buf) - len(buf) % _CHUNK
        view = memoryview(buf)
        for start in range(0, whole, _CHUNK):
            self._push(view[start : start + _CHUNK])  # buf is never resized again
        self._buf = bytearray(view[whole:])

    def _push(self, data: bytes | bytearray | memoryview) -> None:
        if self._error is not None:
            raise self._error
        self.diff.update(data)
        self.raw_size += len(data)
        self._queue.put(data)

    def _compress_loop(self) -> None:
        # Runs until the None sentinel whatever happens, so the producer never blocks on
        # a full queue; after an error or abort the remaining buffers are dropped.
        while (data := self._queue.get()) is not None:
            if self._error is None and not self._aborted:
                try:
                    self._emit(self._comp.compress(data))
                except BaseException as exc:  # re-raised in the writer thread
                    self._error = exc
        if self._error is None and not self._aborted:
            try:
                self._emit(self._comp.flush())
            except BaseException as exc:
                self._error = exc

    def _emit(self, data: bytes) -> None:
        if data:
            self.blob.update(data)
            self._out.write(data)
            self.size += len(data)

    def close(self) -> None:
        """Flush everything and wait for the compressor; re-raises its error."""
        if self._buf:
            self._push(self._buf)
            self._buf = bytearray()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._aborted = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


# ---------------------------------------------------------------- writer


def whiteout_name(path: str) -> str:
    """Tar name of the whiteout that deletes rootfs-relative `path`."""
    parent, _, base = path.rpartition("/")
    return f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else f"{WHITEOUT_PREFIX}{base}"


# What write_layer needs from a snapshot index entry: engine.fs.snapshot.StatEntry, a
# NamedTuple (mode, uid, gid, size, mtime_ns, ctime_ns, inode, link, nlink, rdev). Plain
# tuple unpacking is the cheapest way to read it on the hot path.
StatLike = tuple[int, int, int, int, int, int, int, "str | None", int, int]


class _ByteSink(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> None: ...
    def write_large(self, data: bytes | bytearray | memoryview) -> None: ...


_SMALL_FILE = 64 * 1024  # read in one call and written with its header
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FORK_MIN = 2048  # paths from which forked tar builders pay off
_BATCH = 256  # paths per builder batch
_BUILDERS = 2
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031  # Linux fcntl
_FLAG_END = 1 << 62  # frame ends a batch; payload = entry count
_FLAG_ERROR = 1 << 63  # frame carries an error message
# Without an index the builders cannot know which name of a multiply linked file comes first
# in the whole layer; they send such a file between these two frames and the parent, which
# sees every batch in order, keeps it or turns it into a hardlink entry.
_FLAG_LINK = 1 << 61  # payload: marshalled (inode, name, mode, uid, gid, mtime)
_FLAG_LINK_END = 1 << 60
_FLAGS = _FLAG_END | _FLAG_ERROR | _FLAG_LINK | _FLAG_LINK_END
_QUEUE = 4


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
    one lstat per path and, for large layers, lets forked processes build the tar in
    parallel. Paths that vanished since they were listed are skipped, as are sockets."""
    if out is None:
        raise OutputError("write_layer needs an output path")
    out_path = Path(out)
    root = os.fspath(rootfs).rstrip("/")  # "" for "/"
    compressor = _make_compressor(compression, level)
    mt = media_type or layer_media_type(compression)

    # kind 0 = real path, 1 = whiteout, 2 = opaque marker. The marker's key "<dir>/\0" puts
    # it before every child of its directory, so extractors that apply it on sight work too.
    rels = [r for r in (p.strip("/") for p in paths) if r]
    deleted = [r for r in (d.strip("/") for d in deleted) if r]
    opaque = [d.strip("/") for d in opaque]
    ordered: list[tuple[int, str]]
    if not deleted and not opaque and all(map(operator.lt, rels, rels[1:])):
        ordered = [(0, r) for r in rels]  # already sorted and unique, as Diff.changed is
    else:
        items: dict[str, tuple[int, str]] = {r: (0, r) for r in rels}
        for rel in deleted:
            items[whiteout_name(rel)] = (1, rel)
        for rel in opaque:
            items[(rel + "/\0") if rel else "\0"] = (2, rel)
        ordered = [items[k] for k in sorted(items)]

    links = _first_names(ordered, index) if index is not None else None
    builders: _ForkedBuilders | None = None
    sink: _Sink | None = None
    try:
        if len(ordered) >= _FORK_MIN and hasattr(os, "fork"):
            # fork before the compressor thread exists; where fork is refused (process
            # limits, a sandbox) the layer is built in this process instead
            with contextlib.suppress(BlockingIOError, PermissionError, MemoryError):
                builders = _ForkedBuilders(root, ordered, index, links, reproducible)
        with open(out_path, "wb") as fh:
            sink = _Sink(fh, compressor)
            if builders is not None:
                entries = builders.pump(sink)
            else:
                writer = _TarWriter(root, reproducible, sink, links, index)
                try:
                    for kind, rel in ordered:
                        writer.item(kind, rel)
                finally:
                    writer.close()
                entries = writer.entries
            sink.write(_ZERO_BLOCK * 2)
            sink.close()
    except BaseException as exc:
        if sink is not None:
            sink.abort()
        if builders is not None:
            builders.close()
        out_path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write layer {out_path}: {exc.strerror or exc}") from exc
        raise
    if builders is not None:
        builders.close()
    return LayerBlob(
        path=out_path,
        diff_id="sha256:" + sink.diff.hexdigest(),
        digest="sha256:" + sink.blob.hexdigest(),
        size=sink.size,
        media_type=mt,
        uncompressed_size=sink.raw_size,
        entries=entries,
    )


def _opaque_name(rel: str) -> str:
    return f"{rel}/{OPAQUE_WHITEOUT}" if rel else OPAQUE_WHITEOUT


def _first_names(ordered: list[tuple[int, str]], index: Mapping[str, StatLike]) -> dict[int, str]:
    """inode -> first name in tar order, for regular files with several links: that name
    carries the data, later names become hardlink entries."""
    firsts: dict[int, str] = {}
    for kind, rel in ordered:
        if kind == 0:
            e = index.get(rel)
            if e is not None and e[8] > 1 and stat.S_ISREG(e[0]):  # nlink, mode
                firsts.setdefault(e[6], rel)  # inode
    return firsts


# ---------------------------------------------------------------- parallel tar building


class _ForkedBuilders:
    """_BUILDERS forked processes build the tar bytes of alternate batches of paths and send
    them through pipes; the parent only hashes, compresses and writes, in batch order.

    Why processes: on a layer of many small files the cost is syscalls plus header building
    (pure Python). Threads would serialise on the GIL; processes use every core. Pipes are
    bounded, so memory is too. Children only make os calls and write to their pipe, then
    leave with os._exit (no atexit handlers, no stdio flush)."""

    def __init__(
        self,
        root: str,
        ordered: list[tuple[int, str]],
        index: Mapping[str, StatLike] | None,
        links: dict[int, str] | None,
        reproducible: bool,
    ) -> None:
        self.reproducible = reproducible
        chunks = [ordered[i : i + _BATCH] for i in range(0, len(ordered), _BATCH)]
        self.batches = len(chunks)
        self.pids: list[int] = []
        self.streams: list[IO[bytes]] = []
        self.closed = False
        try:
            for n in range(_BUILDERS):
                rfd, wfd = os.pipe()
                with contextlib.suppress(OSError):  # a larger pipe smooths the flow
                    fcntl.fcntl(wfd, _F_SETPIPE_SZ, _PIPE_SIZE)
                try:
                    pid = os.fork()
                except OSError:
                    os.close(rfd)
                    os.close(wfd)
                    raise
                if pid == 0:
                    # no cyclic GC in the child: finalizers of garbage inherited from the
                    # parent (say, a buffered file) must not run twice
                    gc.disable()
                    # the read ends of earlier builders must close here, or a builder
                    # could never see EPIPE when the parent gives up
                    for s in self.streams:
                        os.close(s.fileno())
                    os.close(rfd)
                    _builder_main(wfd, root, chunks[n::_BUILDERS], index, links, reproducible)
                os.close(wfd)
                self.pids.append(pid)
                self.streams.append(os.fdopen(rfd, "rb", buffering=_PIPE_SIZE))
        except BaseException:
            self.close()
            raise

    def pump(self, sink: _Sink) -> int:
        entries = 0
        firsts: dict[int, str] = {}  # deferred hardlinks: inode -> first name
        link_writer = _TarWriter("", self.reproducible, sink, None, None)
        skipping = False
        for i in range(self.batches):
            stream = self.streams[i % _BUILDERS]
            while True:
                head = stream.read(8)
                if len(head) != 8:
                    raise OutputError("layer builder process ended early")
                size = int.from_bytes(head, "little")
                flags = size & _FLAGS
                payload = stream.read(size & ~_FLAGS)
                if flags & _FLAG_ERROR:
                    raise OutputError(f"layer builder: {payload.decode(errors='replace')}")
                if flags & _FLAG_END:
                    entries += int.from_bytes(payload, "little")
                    break
                if flags & _FLAG_LINK:
                    ino, name, mode, uid, gid, mtime = marshal.loads(payload)
                    first = firsts.setdefault(ino, name)
                    skipping = first != name
                    if skipping:  # a later name: a hardlink entry instead of the data
                        sink.write(link_writer.header(name, mode, uid, gid, 0, mtime, b"1", first))
                    continue
                if flags & _FLAG_LINK_END:
                    skipping = False
                    continue
                if skipping:
                    continue
                if len(payload) >= _SMALL_FILE:
                    sink.write_large(payload)
                else:
                    sink.write(payload)
        return entries

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for stream in self.streams:
            stream.close()  # a builder still writing gets EPIPE and leaves
        for pid in self.pids:
            with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: auto-reaped
                os.waitpid(pid, 0)


class _PipeSink:
    """Frames tar bytes for the parent: 8-byte little-endian length (+ flags), payload."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data
        if len(self.buf) >= _CHUNK:
            self.flush()

    def write_large(self, data: bytes | bytearray | memoryview) -> None:
        self.flush()
        self.frame(0, data)

    def flush(self) -> None:
        if self.buf:
            self.frame(0, self.buf)
            self.buf = bytearray()

    def frame(self, flags: int, data: bytes | bytearray | memoryview) -> None:
        _write_all(self.fd, (len(data) | flags).to_bytes(8, "little"))
        _write_all(self.fd, data)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _builder_main(
    fd: int,
    root: str,
    chunks: list[list[tuple[int, str]]],
    index: Mapping[str, StatLike] | None,
    links: dict[int, str] | None,
    reproducible: bool,
) -> NoReturn:
    status = 0
    sink = _PipeSink(fd)
    try:
        for chunk in chunks:
            writer = _TarWriter(root, reproducible, sink, links, index)
            writer.defer_links = links is None
            for kind, rel in chunk:
                writer.item(kind, rel)
            writer.close()
            sink.flush()
            sink.frame(_FLAG_END, writer.entries.to_bytes(8, "little"))
    except BrokenPipeError:
        status = 0  # the parent stopped reading; it reports why
    except BaseException as exc:
        status = 1
        with contextlib.suppress(OSError):
            sink.buf = bytearray()
            sink.frame(_FLAG_ERROR, f"{type(exc).__name__}: {exc}".encode(errors="replace"))
    finally:
        os._exit(status)


# ---------------------------------------------------------------- tar entries


def _read_xattrs(target: str | int) -> list[tuple[str, bytes]]:
    """The xattrs layers carry, sorted, of a path (not followed) or an open fd."""
    follow = isinstance(target, int)  # an fd: "following" is meaningless and refused
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError:
        return []
    if not names:
        return []
    found: list[tuple[str, bytes]] = []
    for name in sorted(names):
        if not name.startswith(XATTR_PREFIXES):
            continue
        try:
            found.append((name, os.getxattr(target, name, follow_symlinks=follow)))
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


def _field_sum(data: bytes) -> int:
    """Sum of the bytes, exact for up to 256 bytes: adler32's low half is 1 + sum mod 65521."""
    return (zlib.adler32(data) & 0xFFFF) - 1


_NUMBERS: dict[tuple[int, int, int, int, int], tuple[bytes, int]] = {}
_DEV_ZERO = b"%07o\0%07o\0" % (0, 0)
_CONST_SUM = _field_sum(b"        " + _USTAR_TAIL) + _field_sum(_DEV_ZERO)


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
    """One 512-byte ustar header; `name` and `link` are at most 100 bytes. The checksum is
    summed from the fields (cached numbers) instead of from the 512 bytes: this is the hot
    path of layers with many small files."""
    key = (mode, uid, gid, size, mtime)
    numbers = _NUMBERS.get(key)
    if numbers is None:
        if len(_NUMBERS) > 50_000:
            _NUMBERS.clear()
        text = b"%07o\0%07o\0%07o\0%011o\0%011o\0" % key
        numbers = _NUMBERS[key] = (text, _field_sum(text))
    chk = _CONST_SUM + numbers[1] + _field_sum(name) + flag[0]
    if link:
        chk += _field_sum(link)
    dev = _DEV_ZERO
    if major or minor:
        dev = b"%07o\0%07o\0" % (major, minor)
        chk += _field_sum(dev) - _field_sum(_DEV_ZERO)
    # struct's "100s" pads with NULs: name, numbers, checksum, flag, link, magic..., dev
    return _HEADER.pack(name, numbers[0], b"%06o\0 " % chk, flag, link, _USTAR_TAIL, dev)


_HEADER = struct.Struct("100s48s8s1s100s72s16s167x")  # 512 bytes


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n = len(b"%d" % n) + len(body)
    return b"%d" % n + body


class _TarWriter:
    """Tar entries for rootfs paths, headers written by hand: tarfile's TarInfo.tobuf costs
    ~50 us per entry, this a fraction. Plain ustar, plus PAX records where a field does
    not fit (long or non-ASCII names, big numbers) and for xattrs."""

    def __init__(
        self,
        root: str,
        reproducible: bool,
        sink: _ByteSink,
        links: dict[int, str] | None,
        index: Mapping[str, StatLike] | None,
    ) -> None:
        self.root = root
        self.reproducible = reproducible
        self.sink = sink
        self.links = links if links is not None else {}
        self.fixed_links = links is not None  # precomputed from the index: read only
        self.defer_links = False  # forked builder without an index: the parent decides
        self.index = index
        self.entries = 0
        self._dir = ""
        self._fd = -1  # fd of directory self._dir, opened on demand

    def _dir_fd(self, parent: str) -> int:
        if parent != self._dir or self._fd < 0:
            self.close()
            host = f"{self.root}/{parent}" if parent else (self.root or "/")
            self._fd = os.open(host, _DIR_FLAGS)
            self._dir = parent
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def item(self, kind: int, rel: str) -> None:
        if kind == 0:
            self.add(rel)
        elif kind == 1:
            self.marker(whiteout_name(rel))
        else:
            self.marker(_opaque_name(rel))

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
    ) -> bytes:
        self.entries += 1
        if (  # the common case (short ASCII name, no link, xattrs or device) first
            name.isascii()
            and len(name) <= 100
            and not (link or xattrs or major or minor)
            and size <= _MAX_OCTAL_11
            and uid <= _MAX_OCTAL_7
            and gid <= _MAX_OCTAL_7
            and 0 <= mtime <= _MAX_OCTAL_11
        ):
            return _ustar(name.encode(), mode, uid, gid, size, mtime, flag, b"", 0, 0)
        name_b = name.encode("utf-8", "surrogateescape")
        link_b = link.encode("utf-8", "surrogateescape")
        if (
            len(name_b) <= 100
            and len(link_b) <= 100
            and not xattrs
            and name_b.isascii()
            and link_b.isascii()
            and size <= _MAX_OCTAL_11
            and uid <= _MAX_OCTAL_7
            and gid <= _MAX_OCTAL_7
            and 0 <= mtime <= _MAX_OCTAL_11
        ):
            return _ustar(name_b, mode, uid, gid, size, mtime, flag, link_b, major, minor)
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
        for key, value in xattrs or ():
            pax.append(
                _pax_record(b"SCHILY.xattr." + key.encode("utf-8", "surrogateescape"), value)
            )
        records = b"".join(pax)
        return b"".join(
            (
                _ustar(_PAX_NAME, 0o644, 0, 0, len(records), 0, b"x", b"", 0, 0),
                records,
                _ZERO_BLOCK[: -len(records) % _BLOCK],
                _ustar(name_b, mode, uid, gid, size, mtime, flag, link_b, major, minor),
            )
        )

    def marker(self, name: str) -> None:
        self.sink.write(self.header(name, 0o644, 0, 0, 0, 0, b"0"))

    def add(self, rel: str) -> None:
        host = self.root + "/" + rel
        known = self.index.get(rel) if self.index is not None else None
        if known is not None:
            mode, uid, gid, size, mtime_ns, _ctime, ino, link, nlink, rdev = known
        else:
            try:
                st = os.lstat(host)
            except (FileNotFoundError, NotADirectoryError):
                return
            mode, uid, gid, size = st.st_mode, st.st_uid, st.st_gid, st.st_size
            mtime_ns, ino, nlink, rdev = st.st_mtime_ns, st.st_ino, st.st_nlink, st.st_rdev
            link = None
        fmt = mode & 0o170000  # stat.S_IFMT without the call
        flag = _TYPE_FLAGS.get(fmt)
        if flag is None:  # sockets (and anything unknown) are not part of images
            return
        perm = mode & 0o7777
        mtime = 0 if self.reproducible else mtime_ns // 1_000_000_000
        write = self.sink.write
        if fmt == stat.S_IFLNK:
            if link is None:
                try:
                    link = os.readlink(host)
                except (FileNotFoundError, NotADirectoryError):
                    return
            write(self.header(rel, perm, uid, gid, 0, mtime, flag, link))
            return
        if fmt == stat.S_IFREG and nlink > 1 and self.defer_links:
            self._deferred(host, rel, perm, uid, gid, size, mtime, ino)
            return
        if fmt == stat.S_IFREG and nlink > 1:
            first = self.links.get(ino) if self.fixed_links else self.links.setdefault(ino, rel)
            if first is not None and first != rel:
                write(self.header(rel, perm, uid, gid, 0, mtime, b"1", first))
                return
        if fmt == stat.S_IFREG and 0 < size <= _SMALL_FILE:
            # open relative to the (cached) parent directory fd, then read the xattrs from
            # the open file: two path walks fewer per file
            parent, _, base = rel.rpartition("/")
            try:
                fd = os.open(base, _READ_FLAGS, dir_fd=self._dir_fd(parent))
            except (FileNotFoundError, NotADirectoryError):
                return
            try:
                xattrs = _read_xattrs(fd)
                body = os.read(fd, size)
            finally:
                os.close(fd)
            if len(body) != size:  # changed while being read: keep the tar well formed
                body = body.ljust(size, b"\0")
            head = self.header(rel, perm, uid, gid, size, mtime, flag, xattrs=xattrs)
            write(b"".join((head, body, _ZERO_BLOCK[: -size % _BLOCK])))
            return
        xattrs = _read_xattrs(host)
        if fmt == stat.S_IFREG:
            if size == 0:
                write(self.header(rel, perm, uid, gid, 0, mtime, flag, xattrs=xattrs))
            else:
                self._stream(host, rel, perm, uid, gid, size, mtime, xattrs)
        elif fmt == stat.S_IFDIR:
            write(self.header(rel + "/", perm, uid, gid, 0, mtime, flag, xattrs=xattrs))
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            major, minor = os.major(rdev), os.minor(rdev)
            write(self.header(rel, perm, uid, gid, 0, mtime, flag, "", major, minor, xattrs))
        else:
            write(self.header(rel, perm, uid, gid, 0, mtime, flag, xattrs=xattrs))

    def _deferred(
        self, host: str, rel: str, perm: int, uid: int, gid: int, size: int, mtime: int, ino: int
    ) -> None:
        """Send a multiply linked file framed for the parent (see _FLAG_LINK)."""
        sink = self.sink
        assert isinstance(sink, _PipeSink)
        sink.flush()
        sink.frame(_FLAG_LINK, marshal.dumps((ino, rel, perm, uid, gid, mtime)))
        self._stream(host, rel, perm, uid, gid, size, mtime, _read_xattrs(host))
        sink.flush()
        sink.frame(_FLAG_LINK_END, b"")

    def _stream(
        self,
        host: str,
        rel: str,
        perm: int,
        uid: int,
        gid: int,
        size: int,
        mtime: int,
        xattrs: list[tuple[str, bytes]],
    ) -> None:
        try:
            fd = os.open(host, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return
        with os.fdopen(fd, "rb", buffering=0) as src:
            self.sink.write(self.header(rel, perm, uid, gid, size, mtime, b"0", xattrs=xattrs))
            _copy_data(self.sink, src, size)


def _copy_data(sink: _ByteSink, src: IO[bytes], size: int) -> None:
    """Copy exactly `size` bytes (the size in the header): a file that shrank while being
    read is padded with zeros, one that grew is cut, so the tar stays well formed."""
    left = size
    while left > 0:
        chunk = src.read(min(_CHUNK, left))
        if not chunk:
            chunk = bytes(min(_CHUNK, left))
        if len(chunk) >= _SMALL_FILE:
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
