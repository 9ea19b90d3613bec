from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.fs.snapshot import Snapshotter


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    for d in ("etc/sub", "usr/bin", "var/lib", "proc", "tmp"):
        (r / d).mkdir(parents=True)
    (r / "etc/passwd").write_text("root:x:0:0\n")
    (r / "etc/sub/conf").write_text("c")
    (r / "usr/bin/tool").write_text("t")
    (r / "usr/bin/link").symlink_to("tool")
    (r / "var/lib/data").write_text("d")
    (r / "proc/cpuinfo").write_text("ignored")
    return r


@pytest.fixture
def snap(root: Path) -> Snapshotter:
    s = Snapshotter(root, ignore=["/proc", "/etc/resolv.conf"])
    s.reset()
    return s


def tick() -> None:
    time.sleep(0.01)  # ctime granularity is ns on ext4/tmpfs, but be safe on coarse clocks


def test_no_change_gives_empty_diff(snap: Snapshotter) -> None:
    assert snap.diff().empty


def test_new_file_with_parents(snap: Snapshotter, root: Path) -> None:
    (root / "opt/app").mkdir(parents=True)
    (root / "opt/app/main").write_text("m")
    d = snap.diff()
    assert d.changed == ["opt", "opt/app", "opt/app/main"]
    assert d.deleted == [] and d.opaque_dirs == []
    assert snap.diff().empty  # committed


def test_content_change_with_restored_mtime_caught_by_ctime(snap: Snapshotter, root: Path) -> None:
    f = root / "etc/passwd"
    st = f.stat()
    tick()
    f.write_text("root:x:0:1\n")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_mtime_ns == st.st_mtime_ns
    assert snap.diff().changed == ["etc", "etc/passwd"]


def test_chmod_and_chown(snap: Snapshotter, root: Path) -> None:
    tick()
    os.chmod(root / "usr/bin/tool", 0o4755)
    os.chown(root / "var/lib/data", 1000, 1000)
    assert snap.diff().changed == [
        "usr",
        "usr/bin",
        "usr/bin/tool",
        "var",
        "var/lib",
        "var/lib/data",
    ]


def test_deleted_file_and_dir_become_topmost_whiteouts(snap: Snapshotter, root: Path) -> None:
    (root / "var/lib/data").unlink()
    (root / "etc/sub/conf").unlink()
    (root / "etc/sub").rmdir()
    d = snap.diff()
    assert d.deleted == ["etc/sub", "var/lib/data"]
    assert d.changed == ["etc", "var", "var/lib"]


def test_dir_replaced_by_file(snap: Snapshotter, root: Path) -> None:
    (root / "etc/sub/conf").unlink()
    (root / "etc/sub").rmdir()
    (root / "etc/sub").write_text("file now")
    d = snap.diff()
    assert d.changed == ["etc", "etc/sub"]
    assert d.deleted == []  # the file entry replaces the directory on extraction


def test_dir_removed_and_recreated_is_opaque(snap: Snapshotter, root: Path) -> None:
    (root / "etc/sub").rename(root.parent / "old-sub")  # old inode kept busy: a new one
    (root / "etc/sub").mkdir()
    (root / "etc/sub/fresh").write_text("f")
    d = snap.diff()
    assert d.opaque_dirs == ["etc/sub"]
    assert d.deleted == []  # etc/sub/conf is hidden by the marker, not whited out
    assert d.changed == ["etc", "etc/sub", "etc/sub/fresh"]


def test_dir_recreated_with_reused_inode_gets_whiteouts(snap: Snapshotter, root: Path) -> None:
    import shutil

    shutil.rmtree(root / "etc/sub")
    (root / "etc/sub").mkdir()  # the file system may hand back the same inode number
    (root / "etc/sub/fresh").write_text("f")
    d = snap.diff()
    if d.opaque_dirs:
        assert d.opaque_dirs == ["etc/sub"] and d.deleted == []
    else:  # per-file whiteouts are just as correct
        assert d.deleted == ["etc/sub/conf"]
    assert "etc/sub/fresh" in d.changed and "etc/sub" in d.changed


def test_symlink_retarget(snap: Snapshotter, root: Path) -> None:
    (root / "usr/bin/link").unlink()
    (root / "usr/bin/link").symlink_to("other")
    assert "usr/bin/link" in snap.diff().changed


def test_hardlink_change_reports_every_name(snap: Snapshotter, root: Path) -> None:
    os.link(root / "usr/bin/tool", root / "usr/bin/tool2")
    assert "usr/bin/tool2" in snap.diff().changed
    tick()
    with open(root / "usr/bin/tool2", "a") as fh:
        fh.write("more")
    d = snap.diff()
    assert {"usr/bin/tool", "usr/bin/tool2"} <= set(d.changed)


def test_ignored_paths_never_appear(snap: Snapshotter, root: Path) -> None:
    (root / "proc/cpuinfo").unlink()
    (root / "proc/new").write_text("x")
    (root / "etc/resolv.conf").write_text("nameserver 1.1.1.1\n")
    d = snap.diff()
    # etc's own mtime moved (an entry was added to it), so only the directory is listed
    assert d.changed == ["etc"] and d.deleted == [], d


def test_diff_paths_snapshots_only_given_paths(snap: Snapshotter, root: Path) -> None:
    (root / "app/src").mkdir(parents=True)
    (root / "app/src/a.py").write_text("a")
    (root / "unrelated").write_text("u")
    (root / "bin").symlink_to("/usr/bin")
    (root / "usr/bin/copied").write_text("c")
    d = snap.diff_paths(["/app", "/bin/copied"])
    assert d.changed == ["app", "app/src", "app/src/a.py", "usr", "usr/bin", "usr/bin/copied"]
    assert d.deleted == []
    rest = snap.diff()
    assert "unrelated" in rest.changed and "app/src/a.py" not in rest.changed


def test_parallel_scan_matches_single_process_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.fs import snapshot

    root = tmp_path / "big"
    for d in range(60):
        (root / f"d{d:02d}/sub").mkdir(parents=True)
        for f in range(20):
            (root / f"d{d:02d}/sub/f{f}").write_text(str(f))
        (root / f"d{d:02d}/l").symlink_to("sub/f1")
    monkeypatch.setattr(snapshot, "_SPLIT_MIN", 1)
    monkeypatch.setattr(snapshot, "_SPLIT_DIRS", 8)
    parallel = snapshot.scan(str(root))
    single = snapshot.scan(str(root), parallel=False)
    assert parallel == single and len(single) == 60 * 23
    assert all(type(v) is snapshot.StatEntry for v in parallel.values())
    assert parallel["d07/l"].link == "sub/f1"


def test_many_replaced_directories_each_become_opaque(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "r"
    for i in range(50):
        (root / f"d{i:02d}/old").mkdir(parents=True)
        (root / f"d{i:02d}/old/f").write_text("lower")
        (root / f"d{i:02d}/kept").write_text("same bytes")
    snap = Snapshotter(root)
    snap.reset()
    for i in range(50):
        d = root / f"d{i:02d}"
        d.rename(tmp_path / f"gone{i}")  # the old inode stays in use: the new one differs
        d.mkdir()
        (d / "new").write_text("upper")
        shutil.move(tmp_path / f"gone{i}" / "kept", d / "kept")  # keeps its inode
    diff = snap.diff()
    assert diff.opaque_dirs == [f"d{i:02d}" for i in range(50)]
    assert diff.deleted == []
    for d in diff.opaque_dirs:
        # everything now inside an opaque directory is in the layer, the moved file too
        assert {d, f"{d}/new", f"{d}/kept"} <= set(diff.changed)


def test_consecutive_diffs_start_from_the_last_one_with_overlapping_changes(
    snap: Snapshotter, root: Path
) -> None:
    # step 1 makes files, step 2 changes some of them again: each diff names only its step's
    # changes, with no reset() between them (a RUN after a RUN does not re-walk first)
    (root / "app").mkdir()
    for name in ("keep", "edit", "gone", "mode"):
        (root / "app" / name).write_text(name)
    os.link(root / "app/mode", root / "app/mode-link")
    first = snap.diff()
    assert first.changed == ["app", "app/edit", "app/gone", "app/keep", "app/mode", "app/mode-link"]
    tick()
    edit = root / "app/edit"
    st = edit.stat()
    edit.write_text("EDIT")  # same size, mtime put back: only ctime tells
    os.utime(edit, ns=(st.st_atime_ns, st.st_mtime_ns))
    (root / "app/gone").unlink()
    os.chmod(root / "app/mode", 0o600)  # metadata only; the other name shares the inode
    (root / "app/new").write_text("n")
    second = snap.diff()
    assert second.changed == ["app", "app/edit", "app/mode", "app/mode-link", "app/new"]
    assert second.deleted == ["app/gone"] and second.opaque_dirs == []
    assert snap.diff().empty
    # the committed index is what a fresh walk of the tree gives
    fresh = Snapshotter(root, ignore=["/proc", "/etc/resolv.conf"])
    fresh.reset()
    assert fresh.index == snap.index
