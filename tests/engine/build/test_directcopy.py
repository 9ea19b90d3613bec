"""LowerView: what the lower layers leave at a COPY destination, from tar headers alone."""

from __future__ import annotations

import tarfile
from pathlib import Path

from engine.build.directcopy import LowerView, make_scratch


def info(
    name: str, kind: str = "dir", mode: int = 0o755, uid: int = 0, **pax: str
) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "link": tarfile.SYMTYPE}[kind]
    ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, uid, 1_700_000_000
    if kind == "link":
        ti.linkname = "/data"
    ti.pax_headers = dict(pax)
    return ti


def test_plain_directories_and_new_paths_are_safe(tmp_path: Path) -> None:
    view = LowerView("app/config")
    view.add_layer(
        [info("./"), info("app/", mode=0o750, uid=7), info("etc/"), info("etc/x", "file")]
    )
    view.add_layer([info("app/src/"), info("app/src/a.txt", "file")])
    assert view.verdict() == ""
    assert [p for p, _ in view.existing_dirs()] == ["app"]
    assert view.overlaps(["app", "app/config", "app/config/app.conf"]) == ""
    make_scratch(tmp_path, view)
    st = (tmp_path / "app").stat()
    assert (st.st_mode & 0o7777, st.st_uid, int(st.st_mtime)) == (0o750, 7, 1_700_000_000)


def test_symlinks_files_implied_dirs_and_xattrs_need_the_rootfs() -> None:
    link = LowerView("app/config")
    link.add_layer([info("app", "link")])
    assert "not a directory" in link.verdict()

    through = LowerView("app/config")
    through.add_layer([info("data/"), info("lnk", "link")])
    through.add_layer([info("lnk/x", "file")])
    assert "through the symlink" in through.verdict()

    implied = LowerView("app/config")
    implied.add_layer([info("app/src/a.txt", "file")])
    assert "implicitly" in implied.verdict()

    xattr = LowerView("app/config")
    xattr.add_layer([info("app/", **{"SCHILY.xattr.user.k": "v"})])
    assert "extended attributes" in xattr.verdict()

    over = LowerView("app")
    over.add_layer([info("app/"), info("app/conf", "file")])
    assert over.verdict() == ""
    assert "exists" in over.overlaps(["app/conf"])
    assert "outside" in over.overlaps(["etc/passwd"])


def test_whiteouts_and_opaque_directories_remove_lower_entries() -> None:
    view = LowerView("app")
    view.add_layer(
        [info("app/"), info("app/a", "file"), info("app/b", "file"), info("app2", "link")]
    )
    view.add_layer(
        [info("app/.wh.a", "file"), info("app/.wh..wh..opq", "file"), info("app/c", "file")]
    )
    assert view.overlaps(["app/a"]) == "" and view.overlaps(["app/b"]) == ""
    assert "exists" in view.overlaps(["app/c"])
    # a whited-out symlink no longer redirects later entries
    view.add_layer([info(".wh.app2", "file")])
    view.add_layer([info("app2/"), info("app2/x", "file")])
    assert view.verdict() == ""
    # a file replacing a directory forgets what was below it
    view.add_layer([info("app", "file")])
    assert "app/c" not in view.entries and "not a directory" not in view.verdict()


def test_entries_below_implied_directories_are_removed_with_them() -> None:
    view = LowerView("")  # every path tracked
    view.add_layer([info("opt/tool/bin", "file"), info("opt/tool/lib", "link")])
    view.add_layer([info("opt/.wh.tool", "file")])  # "opt/tool" never had its own entry
    assert not [p for p in view.entries if p.startswith("opt/tool")]
    assert "opt/tool/lib" not in view.symlinks
    view.add_layer([info("srv/data/x", "file")])
    view.add_layer([info("srv", "file")])  # a file over a directory only implied below
    assert "srv/data/x" not in view.entries and view.entries["srv"].kind == "other"


def _layer(path: Path, entries: list[tarfile.TarInfo], **kw: object) -> Path:
    with tarfile.open(path, "w:gz", **kw) as tf:  # type: ignore[call-overload]
        for e in entries:
            tf.addfile(e)
    return path


def test_blobs_are_read_by_headers_and_odd_tars_fall_back(tmp_path: Path) -> None:
    gz = "application/vnd.oci.image.layer.v1.tar+gzip"
    view = LowerView("app/config")
    view.add_blob(_layer(tmp_path / "a.tgz", [info("app", mode=0o711)]), gz)
    assert view.verdict() == "" and view.existing_dirs()[0][1].mode == 0o711
    # A global PAX header applies to every later entry: the lean reader leaves it to tarfile,
    # which means the COPY extracts the rootfs instead.
    odd = _layer(
        tmp_path / "b.tgz",
        [info("etc")],
        pax_headers={"x": "y"},
        format=tarfile.PAX_FORMAT,
    )
    view.add_blob(odd, gz)
    assert "general tar reader" in view.verdict()
