from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from engine.build.assemble import LayerRef, assemble, manifest_type_for_base, write_digest_files
from engine.build.config import EPOCH, StageConfig
from engine.build.log import BuildLog
from engine.build.report import BuildReport, LayerReport, StepReport, write_atomic
from engine.build.workspace import Workspace, copy_tree, remove_tree
from engine.errors import OutputError
from engine.image.model import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    sha256_digest,
)


def test_log_text_format_is_kaniko_style() -> None:
    out = io.StringIO()
    log = BuildLog(out, fmt="text")
    log.info("Running: [/bin/sh -c make]")
    log.debug("hidden at info level")
    assert out.getvalue() == "INFO[0000] Running: [/bin/sh -c make]\n"


def test_log_color_and_json_and_levels() -> None:
    out = io.StringIO()
    BuildLog(out, fmt="color").warn("careful")
    assert out.getvalue() == "\x1b[33mWARN\x1b[0m[0000] careful\n"
    out = io.StringIO()
    log = BuildLog(out, fmt="json", level="debug")
    log.debug("d")
    record = json.loads(out.getvalue())
    assert record["level"] == "debug" and record["msg"] == "d" and record["time"].endswith("Z")
    out = io.StringIO()
    BuildLog(out, fmt="text", level="error").info("quiet")
    assert out.getvalue() == ""


def test_write_atomic_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "digest"
    write_atomic(target, b"sha256:1")
    write_atomic(target, b"sha256:2")
    assert target.read_bytes() == b"sha256:2"
    assert os.listdir(target.parent) == ["digest"]


def test_write_atomic_failure_is_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        write_atomic(blocker / "digest", b"x")


def test_report_json_has_totals_and_adapter_keys(tmp_path: Path) -> None:
    report = BuildReport(digest="sha256:d", image_id="sha256:c", image_refs=["r/a:1"])
    report.steps.append(
        StepReport(0, 2, 3, "RUN make", 0.5, False, LayerReport("sha256:l", "sha256:i", 10, "m"))
    )
    report.steps.append(StepReport(0, 3, 3, "ENV A=1"))
    report.write(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["tags"] == ["r/a:1"] and data["image_id"] == "sha256:c"
    assert data["total_layer_bytes"] == 10
    assert data["cache"] == {"hits": 0, "misses": 2}
    assert [s["layer_size"] for s in data["steps"]] == [10, None]


def test_manifest_flavour_follows_base() -> None:
    assert manifest_type_for_base(OCI_MANIFEST) == OCI_MANIFEST
    assert manifest_type_for_base(DOCKER_MANIFEST) == DOCKER_MANIFEST
    assert manifest_type_for_base(None) == DOCKER_MANIFEST


def test_assemble_links_config_layers_and_digest() -> None:
    cfg = StageConfig.scratch()
    layer = LayerRef(
        Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "a" * 64, 5),
        "sha256:" + "b" * 64,
    )
    art = assemble(cfg, [layer], manifest_media_type=OCI_MANIFEST, created=EPOCH)
    manifest = json.loads(art.manifest)
    config = json.loads(art.config)
    assert manifest["config"]["mediaType"] == OCI_CONFIG
    assert manifest["config"]["digest"] == sha256_digest(art.config)
    assert manifest["layers"][0]["digest"] == "sha256:" + "a" * 64
    assert config["rootfs"]["diff_ids"] == ["sha256:" + "b" * 64]
    assert art.digest == sha256_digest(art.manifest)
    docker = assemble(cfg, [layer], manifest_media_type=DOCKER_MANIFEST, created=EPOCH)
    assert json.loads(docker.manifest)["config"]["mediaType"] == DOCKER_CONFIG


def test_digest_files_one_line_per_destination(tmp_path: Path) -> None:
    write_digest_files(
        digest="sha256:x",
        digest_file=str(tmp_path / "d"),
        name_with_digest_file=str(tmp_path / "n"),
        name_tag_with_digest_file=str(tmp_path / "t"),
        destinations=[("reg/a", "reg/a:1"), ("reg/b", "reg/b:latest")],
    )
    assert (tmp_path / "d").read_text() == "sha256:x"
    assert (tmp_path / "n").read_text() == "reg/a@sha256:x\nreg/b@sha256:x\n"
    assert (tmp_path / "t").read_text() == "reg/a:1@sha256:x\nreg/b:latest@sha256:x\n"


def test_workspace_copy_keeps_owner_mode_links_and_removes_readonly(tmp_path: Path) -> None:
    ws = Workspace.create(str(tmp_path))
    assert ws.root.parent == tmp_path
    root = ws.new_rootfs(0)
    (root / "d").mkdir()
    (root / "d" / "f").write_text("x")
    os.chown(root / "d" / "f", 1000, 50)
    os.chmod(root / "d" / "f", 0o4711)
    os.symlink("/d/f", root / "link")
    os.chmod(root / "d", 0o500)
    copy = ws.stages / "copy"
    copy_tree(root, copy)
    st = os.stat(copy / "d" / "f")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 50, 0o4711)
    assert os.readlink(copy / "link") == "/d/f"
    remove_tree(copy)
    ws.cleanup()
    assert not ws.root.exists()


def test_workspace_releases_stage_filesystems_in_the_background(tmp_path: Path) -> None:
    ws = Workspace.create(str(tmp_path))
    root = ws.new_rootfs(0)
    for d in range(20):
        (root / f"d{d}").mkdir()
        for i in range(50):
            (root / f"d{d}" / f"f{i}").write_text("x")
    os.chmod(root / "d0", 0o500)  # a directory the build made unwritable
    blob = ws.blob_path("sha256:abc")
    blob.write_text("blob")
    ws.release_stages()
    # the stage filesystems are out of the way at once; blobs and layers stay for the push
    assert not ws.stages.exists()
    assert blob.read_text() == "blob"
    assert ws.cleanup() is None  # waits for the background removal
    assert not ws.root.exists()
    assert os.listdir(tmp_path) == []


def test_workspace_under_kaniko_dir_keeps_only_the_stage_filesystems(tmp_path: Path) -> None:
    ws = Workspace.create(str(tmp_path), keep_stages=True)
    assert ws.keep_stages
    root = ws.new_rootfs(0)
    (root / "d").mkdir()
    (root / "d" / "f").write_text("x")
    os.chmod(root / "d", 0o500)
    ws.blob_path("sha256:abc").write_text("blob")
    (ws.root / "secrets").mkdir(mode=0o700)
    (ws.root / "secrets" / "token").write_text("s3cr3t")
    ws.release_stages()  # nothing to do: they stay
    assert (root / "d" / "f").read_text() == "x"
    assert ws.cleanup() == ws.stages
    assert [p.name for p in ws.root.iterdir()] == ["stages"]
    assert (root / "d" / "f").read_text() == "x"


def test_workspace_with_nothing_built_is_removed_even_when_keeping(tmp_path: Path) -> None:
    ws = Workspace.create(str(tmp_path), keep_stages=True)
    ws.blob_path("sha256:abc").write_text("blob")
    assert ws.cleanup() is None
    assert os.listdir(tmp_path) == []


def test_private_temporary_workspace_never_keeps_stages(tmp_path: Path) -> None:
    ws = Workspace.create(str(tmp_path / "missing"), keep_stages=True)
    assert not ws.keep_stages
    (ws.new_rootfs(0) / "f").write_text("x")
    ws.release_stages()
    assert ws.cleanup() is None
    assert not ws.root.exists()


def test_workspace_falls_back_to_tmp_when_kaniko_dir_missing(tmp_path: Path) -> None:
    ws = Workspace.create(str(tmp_path / "missing"))
    try:
        assert not str(ws.root).startswith(str(tmp_path))
        assert ws.root.name.startswith("brickyard-build-")
    finally:
        ws.cleanup()


def test_json_log_turns_step_output_lines_into_records() -> None:
    out = io.StringIO()
    log = BuildLog(out, fmt="json")
    stream = log.step_output()
    stream.write("step 2/3 hello\nstep 2/3 wor")
    stream.write("ld\n")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["msg"] for r in records] == ["step 2/3 hello", "step 2/3 world"]
    text = io.StringIO()
    assert BuildLog(text, fmt="text").step_output() is text
