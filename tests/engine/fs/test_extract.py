from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.errors import ImageError, UnsafeLayer
from engine.fs.extract import extract_layer
from engine.image.layers import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from tests.engine.fs.tarmaker import make_tar

IS_ROOT = os.geteuid() == 0


def tree(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_bytes().decode(errors="replace")
    return out


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    r.mkdir()
    s = tmp_path / "sentinel"
    s.mkdir()
    (s / "keep.txt").write_text("untouched")
    return r


def sentinel_untouched(tmp_path: Path) -> None:
    assert tree(tmp_path / "sentinel") == {"keep.txt": "untouched"}
    allowed = {"rootfs", "sentinel"}
    assert {p.name for p in tmp_path.iterdir() if not p.name.endswith(".tar")} <= allowed


def apply(tmp_path: Path, rootfs: Path, entries: list[dict], name: str = "l.tar", **kw) -> None:
    blob = make_tar(tmp_path / name, entries, **kw)
    extract_layer(blob, OCI_LAYER, rootfs)


# ------------------------------------------------------------------ entry types


def test_every_entry_type_with_metadata(tmp_path: Path, rootfs: Path) -> None:
    entries = [
        {"name": "./", "type": "dir", "mode": 0o755, "mtime": 1_500_000_000},
        {"name": "bin/", "type": "dir", "mode": 0o711, "mtime": 1_400_000_000},
        {
            "name": "bin/tool",
            "data": b"#!x",
            "mode": 0o4755,
            "uid": 1000,
            "gid": 50,
            "xattrs": {
                "security.capability": b"\x01\x00\x00\x02\x00\x20\x00\x00" + bytes(12),
                "user.note": b"hi",
            },
        },
        {"name": "bin/same", "type": "link", "target": "bin/tool"},
        {"name": "bin/sh", "type": "sym", "target": "/bin/tool", "uid": 7, "gid": 7},
        {"name": "tmp/", "type": "dir", "mode": 0o1777},
        {"name": "tmp/fifo", "type": "fifo", "mode": 0o640},
        {"name": "dev/null", "type": "chr", "major": 1, "minor": 3, "mode": 0o666},
        {"name": "dev/loop9", "type": "blk", "major": 7, "minor": 9, "mode": 0o660},
        {"name": "srv/deep/file", "data": b"auto parents", "mode": 0o2750},
    ]
    blob = make_tar(tmp_path / "l.tar.gz", entries, compress="gzip")
    stats = extract_layer(blob, OCI_LAYER_GZIP, rootfs)
    tool = rootfs / "bin/tool"
    st = tool.lstat()
    assert tool.read_bytes() == b"#!x"
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert (st.st_uid, st.st_gid) == (1000, 50)
    assert st.st_mtime_ns == 1_600_000_000 * 10**9
    assert os.getxattr(tool, "user.note") == b"hi"
    assert os.getxattr(tool, "security.capability")[:4] == b"\x01\x00\x00\x02"
    assert (rootfs / "bin/same").lstat().st_ino == st.st_ino
    assert os.readlink(rootfs / "bin/sh") == "/bin/tool"
    assert (rootfs / "bin/sh").lstat().st_uid == 7
    assert stat.S_IMODE((rootfs / "tmp").stat().st_mode) == 0o1777
    assert stat.S_ISFIFO((rootfs / "tmp/fifo").lstat().st_mode)
    assert stat.S_IMODE((rootfs / "srv/deep/file").stat().st_mode) == 0o2750
    assert stat.S_IMODE((rootfs / "bin").stat().st_mode) == 0o711
    assert (rootfs / "bin").stat().st_mtime_ns == 1_400_000_000 * 10**9
    assert rootfs.stat().st_mtime_ns == 1_500_000_000 * 10**9
    assert stats.files == 2 and stats.hardlinks == 1 and stats.symlinks == 1
    null = (rootfs / "dev/null").lstat()
    if stats.devices_skipped == 0:
        assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1
        assert stat.S_ISBLK((rootfs / "dev/loop9").lstat().st_mode)
    else:  # no CAP_MKNOD: skipped with a warning, never half-created
        assert not (rootfs / "dev/null").exists()


@pytest.mark.parametrize(("compress", "mt"), [("zstd", OCI_LAYER_ZSTD), ("gzip", None)])
def test_zstd_and_sniffed_gzip(tmp_path: Path, rootfs: Path, compress: str, mt: str | None) -> None:
    blob = make_tar(tmp_path / "l.tar", [{"name": "a", "data": b"z" * 100000}], compress=compress)
    extract_layer(blob, mt, rootfs)
    assert (rootfs / "a").read_bytes() == b"z" * 100000


def test_extract_from_open_stream(tmp_path: Path, rootfs: Path) -> None:
    blob = make_tar(tmp_path / "l.tar", [{"name": "x", "data": b"1"}], compress="gzip")
    with open(blob, "rb") as fh:
        extract_layer(fh, OCI_LAYER_GZIP, rootfs)
    assert (rootfs / "x").read_bytes() == b"1"


# ------------------------------------------------------------------ whiteouts


def base_layer(tmp_path: Path, rootfs: Path) -> None:
    apply(
        tmp_path,
        rootfs,
        [
            {"name": "etc/", "type": "dir"},
            {"name": "etc/a", "data": b"a"},
            {"name": "etc/b", "data": b"b"},
            {"name": "etc/sub/", "type": "dir"},
            {"name": "etc/sub/c", "data": b"c"},
            {"name": "keep", "data": b"k"},
        ],
        name="base.tar",
    )


def test_whiteout_removes_file_and_dir(tmp_path: Path, rootfs: Path) -> None:
    base_layer(tmp_path, rootfs)
    apply(tmp_path, rootfs, [{"name": "etc/.wh.a"}, {"name": "etc/.wh.sub"}])
    assert tree(rootfs) == {"etc": "dir", "etc/b": "b", "keep": "k"}


def test_opaque_keeps_entries_of_same_layer_before_and_after_marker(
    tmp_path: Path, rootfs: Path
) -> None:
    base_layer(tmp_path, rootfs)
    apply(
        tmp_path,
        rootfs,
        [
            {"name": "etc/", "type": "dir"},
            {"name": "etc/+early", "data": b"e"},  # sorts before the marker
            {"name": "etc/sub/new", "data": b"n"},  # implicit parent from this layer
            {"name": "etc/.wh..wh..opq"},
            {"name": "etc/late", "data": b"l"},
        ],
    )
    assert tree(rootfs) == {
        "etc": "dir",
        "etc/+early": "e",
        "etc/late": "l",
        "etc/sub": "dir",
        "etc/sub/new": "n",
        "keep": "k",
    }


def test_file_replaces_dir_and_dir_replaces_file(tmp_path: Path, rootfs: Path) -> None:
    base_layer(tmp_path, rootfs)
    apply(
        tmp_path,
        rootfs,
        [
            {"name": "etc/sub", "data": b"now a file"},
            {"name": "keep/", "type": "dir", "mode": 0o700},
            {"name": "keep/inside", "data": b"i"},
        ],
    )
    assert (rootfs / "etc/sub").read_bytes() == b"now a file"
    assert (rootfs / "keep/inside").read_bytes() == b"i"


def test_existing_dir_is_kept_with_new_metadata(tmp_path: Path, rootfs: Path) -> None:
    base_layer(tmp_path, rootfs)
    apply(tmp_path, rootfs, [{"name": "etc/", "type": "dir", "mode": 0o750, "uid": 5}])
    assert (rootfs / "etc/a").exists()
    assert stat.S_IMODE((rootfs / "etc").stat().st_mode) == 0o750
    assert (rootfs / "etc").stat().st_uid == (5 if IS_ROOT else os.getuid())


def test_symlink_retarget_replaces_link(tmp_path: Path, rootfs: Path) -> None:
    apply(tmp_path, rootfs, [{"name": "l", "type": "sym", "target": "a"}], name="1.tar")
    apply(tmp_path, rootfs, [{"name": "l", "type": "sym", "target": "b"}], name="2.tar")
    assert os.readlink(rootfs / "l") == "b"


# ------------------------------------------------------------------ hostile layers


HOSTILE = {
    "dotdot-file": [{"name": "../sentinel/keep.txt", "data": b"pwned"}],
    "dotdot-deep": [{"name": "a/../../sentinel/evil", "data": b"pwned"}],
    "dotdot-dir": [{"name": "../sentinel/newdir/", "type": "dir"}],
    "dotdot-symlink-name": [{"name": "../sentinel/link", "type": "sym", "target": "/"}],
    "dotdot-whiteout": [{"name": "../sentinel/.wh.keep.txt"}],
    "dotdot-opaque": [{"name": "../sentinel/.wh..wh..opq"}],
    "hardlink-dotdot": [{"name": "h", "type": "link", "target": "../sentinel/keep.txt"}],
    "symlink-relative-escape-then-write": [
        {"name": "up", "type": "sym", "target": "../sentinel"},
        {"name": "up/keep.txt", "data": b"pwned"},
    ],
    "symlink-relative-escape-then-hardlink": [
        {"name": "up", "type": "sym", "target": "../../.."},
        {"name": "h", "type": "link", "target": "up/sentinel/keep.txt"},
    ],
    "symlink-chain-escape": [
        {"name": "a", "type": "sym", "target": "b/../.."},
        {"name": "b/", "type": "dir"},
        {"name": "a/sentinel/evil", "data": b"pwned"},
    ],
    "whiteout-through-escaping-symlink": [
        {"name": "up", "type": "sym", "target": "../sentinel"},
        {"name": "up/.wh.keep.txt"},
    ],
    "opaque-through-escaping-symlink": [
        {"name": "up", "type": "sym", "target": ".."},
        {"name": "up/sentinel/.wh..wh..opq"},
    ],
    "symlink-loop": [
        {"name": "a", "type": "sym", "target": "b"},
        {"name": "b", "type": "sym", "target": "a"},
        {"name": "a/x", "data": b"pwned"},
    ],
    "hardlink-to-dir": [
        {"name": "d/", "type": "dir"},
        {"name": "h", "type": "link", "target": "d"},
    ],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layer_refused_and_nothing_written_outside(
    tmp_path: Path, rootfs: Path, case: str
) -> None:
    blob = make_tar(tmp_path / "evil.tar", HOSTILE[case])
    with pytest.raises(UnsafeLayer) as info:
        extract_layer(blob, None, rootfs)
    assert "'" in str(info.value)  # names the entry
    sentinel_untouched(tmp_path)


def test_absolute_symlink_to_host_path_is_rerooted(tmp_path: Path, rootfs: Path) -> None:
    sentinel = tmp_path / "sentinel"
    apply(
        tmp_path,
        rootfs,
        [
            {"name": "evil", "type": "sym", "target": str(sentinel)},
            {"name": "evil/keep.txt", "data": b"inside"},
            {"name": "evil2", "type": "sym", "target": "/"},
            {"name": "evil2/etc/x", "data": b"rooted"},
            {"name": "rel-hl", "type": "link", "target": "evil2/etc/x"},
            {"name": "evil/.wh.nothing"},
        ],
    )
    sentinel_untouched(tmp_path)
    assert (rootfs / str(sentinel).lstrip("/") / "keep.txt").read_bytes() == b"inside"
    assert (rootfs / "etc/x").read_bytes() == b"rooted"
    assert (rootfs / "rel-hl").stat().st_ino == (rootfs / "etc/x").stat().st_ino


def test_absolute_entry_names_are_refused(tmp_path: Path, rootfs: Path) -> None:
    blob = make_tar(tmp_path / "abs.tar", [{"name": "/etc/abs", "data": b"a"}])
    with pytest.raises(UnsafeLayer, match="'/etc/abs': absolute path"):
        extract_layer(blob, None, rootfs)
    assert not (rootfs / "etc/abs").exists()
    sentinel_untouched(tmp_path)


def test_absolute_hardlink_target_is_refused(tmp_path: Path, rootfs: Path) -> None:
    entries = [{"name": "x", "data": b"a"}, {"name": "hl", "type": "link", "target": "/x"}]
    blob = make_tar(tmp_path / "abs-hl.tar", entries)
    with pytest.raises(UnsafeLayer, match="absolute link target"):
        extract_layer(blob, None, rootfs)
    sentinel_untouched(tmp_path)


def test_dot_slash_entry_names_are_relative_to_root(tmp_path: Path, rootfs: Path) -> None:
    apply(tmp_path, rootfs, [{"name": "./rel", "data": b"r"}])
    assert (rootfs / "rel").read_bytes() == b"r"
    sentinel_untouched(tmp_path)


def test_existing_symlink_to_outside_is_replaced_not_followed(tmp_path: Path, rootfs: Path) -> None:
    target = tmp_path / "sentinel" / "keep.txt"
    apply(
        tmp_path,
        rootfs,
        [
            {"name": "f", "type": "sym", "target": str(target)},
            {"name": "d", "type": "sym", "target": str(target.parent)},
        ],
        name="1.tar",
    )
    apply(
        tmp_path,
        rootfs,
        [
            {"name": "f", "data": b"pwned", "mode": 0o777},
            {"name": "d/", "type": "dir", "mode": 0o777},
        ],
        name="2.tar",
    )
    assert (rootfs / "f").read_bytes() == b"pwned" and not (rootfs / "f").is_symlink()
    assert (rootfs / "d").is_dir() and not (rootfs / "d").is_symlink()
    sentinel_untouched(tmp_path)
    assert stat.S_IMODE((tmp_path / "sentinel").stat().st_mode) != 0o777


def test_hardlink_to_a_symlink_links_the_link_itself(tmp_path: Path, rootfs: Path) -> None:
    outside = tmp_path / "sentinel" / "keep.txt"
    apply(
        tmp_path,
        rootfs,
        [
            {"name": "s", "type": "sym", "target": str(outside)},
            {"name": "h", "type": "link", "target": "s"},
        ],
    )
    assert os.readlink(rootfs / "h") == str(outside)
    assert (rootfs / "h").lstat().st_ino == (rootfs / "s").lstat().st_ino
    sentinel_untouched(tmp_path)


def test_entry_under_a_file_is_an_image_error(tmp_path: Path, rootfs: Path) -> None:
    blob = make_tar(
        tmp_path / "l.tar", [{"name": "f", "data": b"x"}, {"name": "f/y", "data": b"y"}]
    )
    with pytest.raises(ImageError, match="not a directory"):
        extract_layer(blob, None, rootfs)


def test_hardlink_to_missing_target_is_an_image_error(tmp_path: Path, rootfs: Path) -> None:
    blob = make_tar(tmp_path / "l.tar", [{"name": "h", "type": "link", "target": "nope"}])
    with pytest.raises(ImageError, match="does not exist"):
        extract_layer(blob, None, rootfs)


def test_corrupt_blob_is_an_image_error(tmp_path: Path, rootfs: Path) -> None:
    blob = tmp_path / "bad.tar"
    blob.write_bytes(b"\x1f\x8b" + os.urandom(2000))
    with pytest.raises(ImageError):
        extract_layer(blob, None, rootfs)


def test_device_nodes_skipped_with_one_warning_without_cap_mknod(tmp_path: Path) -> None:
    """Run the extraction in a child whose bounding set lacks CAP_MKNOD (as in a default
    unprivileged pod without it): device nodes are skipped, everything else is extracted."""
    import subprocess
    import sys

    blob = make_tar(
        tmp_path / "dev.tar",
        [
            {"name": "dev/null", "type": "chr", "major": 1, "minor": 3},
            {"name": "dev/zero", "type": "chr", "major": 1, "minor": 5},
            {"name": "dev/file", "data": b"ok"},
        ],
    )
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    code = (
        "import logging, sys; logging.basicConfig(level=logging.WARNING);"
        "from engine.fs.extract import extract_layer;"
        f"s = extract_layer({str(blob)!r}, None, {str(rootfs)!r});"
        "print(s.devices_skipped, s.files)"
    )
    cmd = [sys.executable, "-c", code]
    if IS_ROOT:
        cmd = ["setpriv", "--bounding-set=-mknod", "--inh-caps=-mknod", *cmd]
    res = subprocess.run(
        cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[3]
    )
    assert res.stdout.split() == ["2", "1"]
    assert res.stderr.count("cannot create device nodes") == 1
    assert (rootfs / "dev/file").read_bytes() == b"ok"
    assert not (rootfs / "dev/null").exists()


def test_extraction_as_non_root_counts_chown_failures() -> None:
    """As an unprivileged user (rootless builds) ownership cannot be set: files are still
    extracted with their modes, and the failed chowns are counted, not fatal. (The suite
    runs as root, like the chroot builds; setpriv switches to nobody.)"""
    import shutil
    import subprocess
    import sys
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="brickyard-nonroot-"))
    try:
        os.chmod(work, 0o755)
        blob = make_tar(
            work / "l.tar",
            [
                {"name": "etc/", "type": "dir", "uid": 0},
                {"name": "etc/owned", "data": b"x", "uid": 1000, "gid": 1000, "mode": 0o640},
                {"name": "bin/su", "data": b"y", "mode": 0o4755},
            ],
        )
        os.chmod(blob, 0o644)
        rootfs = work / "rootfs"
        rootfs.mkdir()
        os.chown(rootfs, 65534, 65534)
        code = (
            "from engine.fs.extract import extract_layer;"
            f"s = extract_layer({str(blob)!r}, None, {str(rootfs)!r});"
            "print(s.files, s.chown_failures)"
        )
        res = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                code,
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[3],
        )
        files, failures = map(int, res.stdout.split())
        assert files == 2 and failures >= 2
        st = (rootfs / "etc/owned").stat()
        assert st.st_uid == 65534 and stat.S_IMODE(st.st_mode) == 0o640
        assert stat.S_IMODE((rootfs / "bin/su").stat().st_mode) == 0o4755
    finally:
        shutil.rmtree(work)
