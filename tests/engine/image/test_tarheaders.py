"""engine/image/tarheaders.py reads the same headers tarfile reads, or refuses."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.image.tarheaders import UnsupportedTar, scan_headers

FORMATS = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}

_segment = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="/\\"),
    min_size=1,
    max_size=40,
)
_name = st.lists(_segment, min_size=1, max_size=6).map("/".join)
_entry = st.tuples(
    _name,
    st.sampled_from(
        [
            tarfile.REGTYPE,
            tarfile.DIRTYPE,
            tarfile.SYMTYPE,
            tarfile.LNKTYPE,
            tarfile.FIFOTYPE,
            tarfile.CHRTYPE,
        ]
    ),
    st.integers(0, 0o7777),
    st.integers(0, 70000),  # uid/gid beyond 8 octal digits' range is covered below
    st.integers(0, 2000),  # size of a regular file
    st.integers(0, 2**33 - 1),  # mtime
    _name,  # link target
)


def _tar(entries: list[tuple[str, bytes, int, int, int, int, int, str]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data, kind, mode, uid, mtime, size, link in entries:
            info = tarfile.TarInfo(name)
            info.type = bytes([kind]) if isinstance(kind, int) else kind
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid + 1, mtime
            info.linkname = link if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            if info.type == tarfile.REGTYPE:
                info.size = size
                tf.addfile(info, io.BytesIO(data[:size]))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _fields(info: tarfile.TarInfo) -> tuple[object, ...]:
    xattrs = {k: v for k, v in info.pax_headers.items() if k.startswith("SCHILY.xattr.")}
    return (
        info.name.rstrip("/"),
        info.type,
        info.mode,
        info.uid,
        info.gid,
        info.size,
        int(info.mtime),
        info.linkname,
        xattrs,
    )


def _both(blob: bytes) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r|") as tf:
        expected = [_fields(i) for i in tf]
    return expected, [_fields(i) for i in scan_headers(io.BytesIO(blob))]


@settings(max_examples=60, deadline=None)
@given(st.lists(_entry, min_size=1, max_size=12), st.sampled_from(sorted(FORMATS)))
def test_same_headers_as_tarfile(entries: list[tuple], fmt: str) -> None:
    rows = []
    for name, kind, mode, uid, size, mtime, link in entries:
        if fmt == "ustar":  # ustar cannot hold long names, big numbers or long links
            name, link, uid, mtime = (
                name[:99],
                link[:99],
                min(uid, 0o7777777),
                min(mtime, 0o77777777777),
            )
        rows.append((name, b"x" * size, ord(kind), mode, uid, mtime, size, link))
    expected, got = _both(_tar(rows, FORMATS[fmt]))
    assert got == expected


def test_long_names_big_ids_xattrs_and_prefix() -> None:
    long_dir = "/".join(["directory-with-a-long-name"] * 6)  # > 100 bytes: prefix or extension
    blobs = {}
    for fmt in FORMATS.values():
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            d = tarfile.TarInfo(long_dir)
            d.type, d.mode = tarfile.DIRTYPE, 0o750
            tf.addfile(d)
            f = tarfile.TarInfo(long_dir + "/file.txt")
            f.size, f.uid, f.gid = 3, 3_000_000 if fmt != tarfile.USTAR_FORMAT else 7, 5
            if fmt == tarfile.PAX_FORMAT:
                f.pax_headers = {"SCHILY.xattr.user.note": "hello", "mtime": "1700000000.5"}
            tf.addfile(f, io.BytesIO(b"abc"))
            link = tarfile.TarInfo("short")
            link.type, link.linkname = tarfile.SYMTYPE, long_dir + "/file.txt"
            if fmt != tarfile.USTAR_FORMAT:
                tf.addfile(link)
        blobs[fmt] = buf.getvalue()
        expected, got = _both(blobs[fmt])
        assert got == expected
        assert got[1][0] == long_dir + "/file.txt"
    pax = list(scan_headers(io.BytesIO(blobs[tarfile.PAX_FORMAT])))
    assert pax[1].mtime == 1700000000.5  # sub-second mtimes survive, as extraction sets them


def _one_entry(kind: bytes = tarfile.REGTYPE) -> bytearray:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("a")
        info.type = kind
        tf.addfile(info)
    return bytearray(buf.getvalue())


def test_refuses_what_it_cannot_be_sure_of() -> None:
    corrupt = _one_entry()
    corrupt[10] = ord("z")  # name changed, checksum not
    with pytest.raises(UnsupportedTar, match="checksum"):
        list(scan_headers(io.BytesIO(bytes(corrupt))))
    with pytest.raises(UnsupportedTar, match="type"):
        list(scan_headers(io.BytesIO(bytes(_one_entry(tarfile.GNUTYPE_SPARSE)))))
    truncated = _tar(
        [("f", b"y" * 2000, ord(tarfile.REGTYPE), 0o644, 0, 0, 2000, "")], tarfile.GNU_FORMAT
    )[:1024]
    with pytest.raises(UnsupportedTar, match="ends inside"):
        list(scan_headers(io.BytesIO(truncated)))
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}
    ) as tf:
        tf.addfile(tarfile.TarInfo("a"))
    with pytest.raises(UnsupportedTar):  # a global header would apply to every later entry
        list(scan_headers(io.BytesIO(buf.getvalue())))


def test_empty_stream_and_trailing_blocks() -> None:
    assert list(scan_headers(io.BytesIO(b""))) == []
    blob = _tar([("f", b"", ord(tarfile.REGTYPE), 0o644, 0, 0, 0, "")], tarfile.GNU_FORMAT)
    assert [i.name for i in scan_headers(io.BytesIO(blob + b"\0" * 8192))] == ["f"]
