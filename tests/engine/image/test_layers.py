from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from engine.fs.extract import extract_layer
from engine.fs.snapshot import Snapshotter
from engine.image.layers import (
    DOCKER_LAYER_GZIP,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    iterate_layer,
    write_layer,
)

IS_ROOT = os.geteuid() == 0


def make_tree(root: Path, *, mtime: int = 1_700_000_000) -> list[str]:
    """A rootfs with every kind of entry; returns all its relative paths."""
    (root / "bin").mkdir(parents=True)
    (root / "etc/empty").mkdir(parents=True)
    (root / "bin/tool").write_bytes(b"\x7fELF" + bytes(range(256)) * 40)
    os.chmod(root / "bin/tool", 0o4755)
    os.setxattr(root / "bin/tool", "user.origin", b"brickyard")
    os.link(root / "bin/tool", root / "bin/tool-hl")
    (root / "bin/sh").symlink_to("/bin/tool")
    (root / ("etc/naïve name with a long path component " + "x" * 90)).write_text("pax")
    (root / "etc/conf").write_text("conf\n")
    os.chmod(root / "etc", 0o1755)
    os.mkfifo(root / "etc/fifo")
    (root / "etc/long-link").symlink_to("../" + "t" * 150)  # PAX linkpath
    if IS_ROOT:
        os.chown(root / "etc/conf", 1000, 50)
        (root / "etc/big-ids").write_text("uid and gid beyond ustar's 7 octal digits")
        os.chown(root / "etc/big-ids", 3_000_000, 4_000_000)  # PAX uid/gid
        os.mknod(root / "etc/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "etc/sock"))
    sock.close()
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            paths.append(str(p.relative_to(root)))
            os.utime(p, (mtime, mtime), follow_symlinks=False)
    return paths


def describe(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            st = p.lstat()
            data: object = None
            if stat.S_ISREG(st.st_mode):
                data = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                data = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode):
                data = st.st_rdev
            xattrs = (
                {}
                if p.is_symlink()
                else {k: os.getxattr(p, k) for k in os.listxattr(p) if k.startswith("user.")}
            )
            mtime = st.st_mtime_ns if not stat.S_ISLNK(st.st_mode) else None
            out[str(p.relative_to(root))] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                data,
                xattrs,
                mtime,
                st.st_nlink,
            )
    return out


def test_round_trip_every_entry_type(tmp_path: Path) -> None:
    src = tmp_path / "src"
    paths = make_tree(src)
    layer = write_layer(src, paths, [], tmp_path / "layer.tgz")
    assert layer.media_type == OCI_LAYER_GZIP and layer.size == layer.path.stat().st_size
    assert layer.digest == "sha256:" + hashlib.sha256(layer.path.read_bytes()).hexdigest()
    dst = tmp_path / "dst"
    dst.mkdir()
    extract_layer(layer.path, layer.media_type, dst)
    want = describe(src)
    del want["etc/sock"]  # sockets are skipped
    assert describe(dst) == want


def test_entries_sorted_pax_numeric_owner_hardlink_and_diff_id(tmp_path: Path) -> None:
    src = tmp_path / "src"
    paths = make_tree(src)
    layer = write_layer(
        src, paths, ["gone/file"], tmp_path / "l.tar", compression="none", opaque=["etc"]
    )
    assert layer.digest == layer.diff_id
    with tarfile.open(layer.path) as tf:  # Python's own reader accepts it
        members = tf.getmembers()
    names = [m.name for m in members]
    assert names[:3] == ["bin", "bin/sh", "bin/tool"]
    assert "etc/.wh..wh..opq" in names and "gone/.wh.file" in names
    assert names.index("etc/.wh..wh..opq") == names.index("etc") + 1
    assert "etc/sock" not in names
    assert all(not n.startswith("/") for n in names)
    assert all(m.uname == "" and m.gname == "" for m in members)
    hl = next(m for m in members if m.name == "bin/tool-hl")
    assert hl.islnk() and hl.linkname == "bin/tool"
    raw = layer.path.read_bytes()
    assert b"bin/\x00" in raw  # directories carry a trailing slash
    assert b"SCHILY.xattr.user.origin=brickyard" in raw
    entries = {e.name: e for e in iterate_layer(layer.path)}
    assert entries["bin/tool"].xattrs() == {"user.origin": b"brickyard"}


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_reproducible_digest_same_across_dirs_and_times(tmp_path: Path, compression: str) -> None:
    digests = set()
    for i, when in enumerate((1_600_000_000, 1_700_000_000)):
        root = tmp_path / f"build{i}" / ("deeper" if i else "") / "rootfs"
        paths = make_tree(root, mtime=when)
        if i:
            time.sleep(0.01)
        blob = write_layer(
            root, paths, ["x/y"], tmp_path / f"l{i}", compression=compression, reproducible=True
        )
        digests.add((blob.diff_id, blob.digest))
        with tarfile.open(blob.path) if compression != "zstd" else _zstd_tar(blob.path) as tf:
            assert {m.mtime for m in tf.getmembers()} == {0}
    assert len(digests) == 1


def _zstd_tar(path: Path) -> tarfile.TarFile:
    import io

    import zstandard

    data = zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read()
    return tarfile.open(fileobj=io.BytesIO(data))


def test_times_kept_without_reproducible(tmp_path: Path) -> None:
    root = tmp_path / "r"
    paths = make_tree(root, mtime=1_650_000_000)
    blob = write_layer(root, paths, [], tmp_path / "l.tgz")
    assert {e.info.mtime for e in iterate_layer(blob.path, blob.media_type)} == {1_650_000_000}


def test_compression_choices_and_docker_media_type(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "big").write_bytes(b"abc" * 1_000_000)
    z = write_layer(root, ["big"], [], tmp_path / "z", compression="zstd", level=5)
    g = write_layer(root, ["big"], [], tmp_path / "g", media_type=DOCKER_LAYER_GZIP, level=9)
    assert z.media_type == OCI_LAYER_ZSTD and z.path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    assert g.media_type == DOCKER_LAYER_GZIP and g.path.read_bytes()[:2] == b"\x1f\x8b"
    assert z.diff_id == g.diff_id and z.size < 100_000 and g.size < 100_000
    assert z.uncompressed_size == 512 + 3_000_320 + 1024  # header, padded data, end blocks


def test_snapshot_diff_layer_applies_changes_onto_base(tmp_path: Path) -> None:
    base = tmp_path / "work"
    make_tree(base)
    (base / "etc/dir/sub").mkdir(parents=True)
    (base / "etc/dir/sub/f").write_text("lower")
    (base / "etc/old").write_text("old")
    snap = Snapshotter(base)
    snap.reset()
    lower = tmp_path / "lower"  # the base as a first layer, applied to an empty rootfs
    lower.mkdir()
    first = write_layer(base, sorted(snap.index), [], tmp_path / "base.tgz")
    extract_layer(first.path, first.media_type, lower)
    (base / "etc/old").unlink()
    shutil.rmtree(base / "etc/dir")
    (base / "placeholder").write_text("p")
    (base / "etc/dir").mkdir()
    (base / "etc/dir/new").write_text("upper")
    with open(base / "bin/tool", "ab") as fh:
        fh.write(b"patched")
    (base / "bin/sh").unlink()
    (base / "bin/sh").symlink_to("tool")
    d = snap.diff()
    blob = write_layer(base, d.changed, d.deleted, tmp_path / "l", opaque=d.opaque_dirs)
    extract_layer(blob.path, blob.media_type, lower)
    got, want = describe(lower), describe(base)
    want.pop("etc/sock")
    for k in list(got):  # directory mtimes move when the extractor creates entries
        got[k] = got[k][:5] + got[k][6:]
    for k in list(want):
        want[k] = want[k][:5] + want[k][6:]
    assert got == want


@pytest.mark.integration
def test_umoci_unpacks_our_layer(tmp_path: Path) -> None:
    root = tmp_path / "r"
    paths = make_tree(root)
    layout = tmp_path / "layout"
    blobs = layout / "blobs/sha256"
    blobs.mkdir(parents=True)
    layer = write_layer(root, paths, [], tmp_path / "layer", reproducible=True)
    shutil.move(layer.path, blobs / layer.digest.split(":")[1])

    def put(obj: dict) -> dict:
        data = json.dumps(obj).encode()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config = put(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        }
    )
    manifest = put(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}],
        }
    )
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        **manifest,
                        "annotations": {"org.opencontainers.image.ref.name": "t"},
                    }
                ],
            }
        )
    )
    bundle = tmp_path / "bundle"
    cmd = ["umoci", "unpack", "--image", f"{layout}:t", str(bundle)]
    if not IS_ROOT:
        cmd.insert(2, "--rootless")
    subprocess.run(cmd, check=True, capture_output=True)
    rootfs = bundle / "rootfs"
    assert (rootfs / "bin/tool").read_bytes() == (root / "bin/tool").read_bytes()
    assert os.readlink(rootfs / "bin/sh") == "/bin/tool"
    assert (rootfs / "bin/tool-hl").stat().st_ino == (rootfs / "bin/tool").stat().st_ino
    assert stat.S_IMODE((rootfs / "bin/tool").stat().st_mode) == 0o4755


def _many_files(root: Path, n: int) -> None:
    for i in range(n):
        d = root / f"d{i // 50:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}").write_bytes(b"%d" % i * (i % 7))
    last = root / f"d{(n - 1) // 50:03d}"
    os.link(root / "d000/f00001", last / "zz-link")  # a hardlink across batches
    (root / "big").write_bytes(os.urandom(300_000))


def test_forked_builders_give_the_same_bytes_as_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.image.layers as layers

    root = tmp_path / "r"
    _many_files(root, 600)
    snap = Snapshotter(root)
    d = snap.diff()
    monkeypatch.setattr(layers, "_BATCH", 16)
    monkeypatch.setattr(layers, "_FORK_MIN", 10**9)
    inline = write_layer(root, d.changed, ["gone"], tmp_path / "a", index=snap.index)
    monkeypatch.setattr(layers, "_FORK_MIN", 10)
    forked = write_layer(root, d.changed, ["gone"], tmp_path / "b", index=snap.index)
    assert (forked.digest, forked.diff_id, forked.entries) == (
        inline.digest,
        inline.diff_id,
        inline.entries,
    )
    assert inline.path.read_bytes() == forked.path.read_bytes()
    link = next(e for e in iterate_layer(forked.path) if e.name == "d011/zz-link")
    assert link.info.islnk() and link.info.linkname == "d000/f00001"


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_blob_digest_does_not_depend_on_how_the_tar_was_produced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """isal's output depends on how its input is split: the sink must always feed it the
    same way, or one process and forked builders would give different digests."""
    import engine.image.layers as layers

    root = tmp_path / "r"
    for i in range(400):  # ~8 MiB of tar in 20 KiB files, plus odd sizes
        d = root / f"d{i // 40}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(os.urandom(997 * (i % 41)) + bytes(20_000))
    (root / "large").write_bytes(os.urandom(3_000_001))
    paths = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    monkeypatch.setattr(layers, "_BATCH", 7)
    monkeypatch.setattr(layers, "_FORK_MIN", 10**9)
    one = write_layer(root, paths, [], tmp_path / "one", compression=compression)
    monkeypatch.setattr(layers, "_FORK_MIN", 10)
    forked = write_layer(root, paths, [], tmp_path / "forked", compression=compression)
    assert one.uncompressed_size > 10_000_000
    assert (forked.diff_id, forked.digest) == (one.diff_id, one.digest)


def test_forked_builders_without_index_keep_hardlinks_across_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a snapshot index the builders defer multiply linked files to the parent,
    which alone sees the whole order: same bytes as the one-process writer."""
    import engine.image.layers as layers

    root = tmp_path / "r"
    _many_files(root, 600)
    os.link(root / "big", root / "d011/zz-big")  # a large file linked across batches
    os.link(root / "d003/f00150", root / "d000/a-first")  # the link sorts before the original
    paths = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    monkeypatch.setattr(layers, "_BATCH", 16)
    monkeypatch.setattr(layers, "_FORK_MIN", 10**9)
    inline = write_layer(root, paths, ["gone"], tmp_path / "a")
    monkeypatch.setattr(layers, "_FORK_MIN", 10)
    children = _child_pids()
    forked = write_layer(root, paths, ["gone"], tmp_path / "b")
    assert _child_pids() <= children
    assert inline.path.read_bytes() == forked.path.read_bytes()
    assert forked.entries == inline.entries == len(paths) + 1
    entries = {e.name: e.info for e in iterate_layer(forked.path)}
    assert entries["d000/a-first"].isreg() and entries["d000/a-first"].size > 0
    assert entries["d003/f00150"].islnk()
    assert entries["d003/f00150"].linkname == "d000/a-first"
    assert entries["d011/zz-big"].islnk() and entries["d011/zz-big"].linkname == "big"
    dst = tmp_path / "dst"
    dst.mkdir()
    extract_layer(forked.path, forked.media_type, dst)
    assert (dst / "d011/zz-big").stat().st_ino == (dst / "big").stat().st_ino
    assert (dst / "big").read_bytes() == (root / "big").read_bytes()


def test_forked_builder_error_is_reported_and_output_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.image.layers as layers
    from engine.errors import OutputError

    root = tmp_path / "r"
    _many_files(root, 200)
    snap = Snapshotter(root)
    d = snap.diff()

    def broken(host: str) -> list[tuple[str, bytes]]:
        raise RuntimeError("xattr reader exploded")

    monkeypatch.setattr(layers, "_FORK_MIN", 10)
    monkeypatch.setattr(layers, "_read_xattrs", broken)
    children = _child_pids()
    with pytest.raises(OutputError, match="xattr reader exploded"):
        write_layer(root, d.changed, [], tmp_path / "out", index=snap.index)
    assert not (tmp_path / "out").exists()
    assert _child_pids() <= children  # every builder was reaped (no zombie left)


def _child_pids() -> set[int]:
    """Children of this process (zombies included), from /proc."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def test_fork_refused_falls_back_to_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.fs.snapshot as snapshot
    import engine.image.layers as layers

    root = tmp_path / "r"
    _many_files(root, 300)
    monkeypatch.setattr(layers, "_FORK_MIN", 10**9)
    snap = Snapshotter(root)
    d = snap.diff()
    want = write_layer(root, d.changed, [], tmp_path / "a", index=snap.index)

    def no_fork() -> int:
        raise BlockingIOError(11, "fork refused")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(layers, "_FORK_MIN", 10)
    monkeypatch.setattr(snapshot, "_SPLIT_MIN", 1)
    monkeypatch.setattr(snapshot, "_SPLIT_DIRS", 2)
    fds = len(os.listdir("/proc/self/fd"))
    assert snapshot.scan(str(root)) == snap.index
    got = write_layer(root, d.changed, [], tmp_path / "b", index=snap.index)
    assert got.digest == want.digest
    assert len(os.listdir("/proc/self/fd")) == fds  # no pipe left open
