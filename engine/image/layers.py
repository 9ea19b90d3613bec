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
from collections.abc import Iterable, Iterator
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
) -> LayerBlob:
    """Write the layer holding rootfs-relative `paths` (files, dirs, links; their parent
    directories must be listed too when they belong in the layer), whiteouts for `deleted`
    and opaque markers for the directories in `opaque`, to the blob file `out`.

    Paths that vanished since they were listed are skipped, as are sockets."""
    if out is None:
        raise OutputError("write_layer needs an output path")
    out_path = Path(out)
    root = os.fspath(rootfs).rstrip("/") or "/"
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

    entries = 0
    try:
        with open(out_path, "wb") as fh:
            sink = _Sink(fh, compressor)
            links: dict[tuple[int, int], str] = {}
            for key in sorted(items):
                kind, rel = items[key]
                if kind == 0:
                    entries += _add_path(sink, root, rel, links, reproducible)
                else:
                    name = whiteout_name(rel) if kind == 1 else _opaque_name(rel)
                    _write_header(sink, _marker_info(name))
                    entries += 1
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
        entries=entries,
    )


def _opaque_name(rel: str) -> str:
    return f"{rel}/{OPAQUE_WHITEOUT}" if rel else OPAQUE_WHITEOUT


def _marker_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.mtime = 0
    info.uname = info.gname = ""
    return info


def _write_header(sink: _Sink, info: tarfile.TarInfo) -> None:
    sink.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))


def _read_xattrs(host: str) -> dict[str, str]:
    try:
        names = os.listxattr(host, follow_symlinks=False)
    except OSError:
        return {}
    found: dict[str, str] = {}
    for name in sorted(names):
        if not name.startswith(XATTR_PREFIXES):
            continue
        try:
            value = os.getxattr(host, name, follow_symlinks=False)
        except OSError:
            continue
        # tarfile writes PAX values as UTF-8; surrogateescape keeps binary values intact
        found["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return found


def _add_path(
    sink: _Sink, root: str, rel: str, links: dict[tuple[int, int], str], reproducible: bool
) -> int:
    host = f"{root}/{rel}" if root != "/" else f"/{rel}"
    try:
        st = os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    mode = st.st_mode
    if stat.S_ISSOCK(mode):
        return 0
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(mode)
    info.uid = st.st_uid
    info.gid = st.st_gid
    info.uname = info.gname = ""
    info.mtime = 0 if reproducible else st.st_mtime_ns // 1_000_000_000
    info.size = 0
    if stat.S_ISREG(mode):
        if st.st_nlink > 1:
            first = links.setdefault((st.st_dev, st.st_ino), rel)
            if first != rel:
                info.type = tarfile.LNKTYPE
                info.linkname = first
        if info.type == tarfile.REGTYPE:
            info.size = st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        info.name = rel + "/"
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(host)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor = os.major(st.st_rdev)
        info.devminor = os.minor(st.st_rdev)
    else:
        return 0
    xattrs = _read_xattrs(host)
    if xattrs:
        info.pax_headers = xattrs
    if info.type != tarfile.REGTYPE or info.size == 0:
        _write_header(sink, info)
        return 1
    try:
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    with os.fdopen(fd, "rb", buffering=0) as src:
        _write_header(sink, info)
        _copy_data(sink, src, info.size)
    return 1


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
