"""What a step gets besides its rootfs: /dev/pipes files, --network=none, RUN --mount."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from engine.errors import BuildError
from engine.run import ChrootIsolation, StepMount


def sh(rootfs: Path, script: str, out: io.StringIO, **kw: object) -> int:
    args: dict = {"env": {}, "cwd": "/", "user": None, "step_label": "s"}
    args.update(kw)
    return ChrootIsolation().run(["/bin/sh", "-c", script], rootfs=rootfs, out=out, **args)


def lines(out: io.StringIO) -> list[str]:
    return [ln for ln in out.getvalue().splitlines() if not ln.startswith("note:")]


def test_files_are_in_the_steps_private_dev_pipes_and_nowhere_else(
    rootfs: Path, out: io.StringIO
) -> None:
    script = b'#!/bin/sh\necho "0=$0"; ls -l /dev/pipes | grep -c EOF\n'
    status = ChrootIsolation().run(
        ["/bin/sh", "-c", "/dev/pipes/EOF"],
        rootfs=rootfs,
        env={},
        cwd="/",
        user="app",  # readable and executable by a non-root USER
        step_label="s",
        out=out,
        files=[("EOF", script, 0o755), ("/dev/pipes/DATA", b"x", 0o644)],
    )
    assert status == 0
    assert lines(out) == ["s 0=/dev/pipes/EOF", "s 1"]
    assert os.listdir(rootfs / "dev") == []


def test_invalid_pipe_file_names_are_refused(rootfs: Path, out: io.StringIO) -> None:
    with pytest.raises(BuildError, match="invalid /dev/pipes file name"):
        sh(rootfs, "true", out, files=[("../etc/x", b"", 0o644)])


def test_network_none_has_only_loopback_and_it_is_up(rootfs: Path, out: io.StringIO) -> None:
    assert sh(rootfs, "ls /sys/class/net; cat /sys/class/net/lo/flags", out, network="none") == 0
    assert lines(out) == ["s lo", "s 0x9"]  # IFF_UP | IFF_LOOPBACK
    out.truncate(0)
    out.seek(0)
    sh(rootfs, "ls /sys/class/net", out)  # the default: the build's own network
    assert lines(out) == [f"s {name}" for name in sorted(os.listdir("/sys/class/net"))]


def test_unknown_network_mode_is_refused(rootfs: Path, out: io.StringIO) -> None:
    with pytest.raises(BuildError, match="--network=bridge: unknown network mode"):
        sh(rootfs, "true", out, network="bridge")


def test_bind_mount_is_read_only_and_leaves_no_trace(
    rootfs: Path, tmp_path: Path, out: io.StringIO
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "in.txt").write_text("from host\n")
    (tmp_path / "one.txt").write_text("single file\n")
    mounts = [
        StepMount("bind", "/mnt/deep/src", str(src)),
        StepMount("bind", "/etc/one.txt", str(tmp_path / "one.txt")),
    ]
    script = "cat /mnt/deep/src/in.txt /etc/one.txt; touch /mnt/deep/src/new || echo ro"
    assert sh(rootfs, script, out, mounts=mounts) == 0
    assert lines(out)[:2] == ["s from host", "s single file"]
    assert lines(out)[-1] == "s ro"
    assert sorted(os.listdir(src)) == ["in.txt"]
    assert not (rootfs / "mnt").exists()  # made for the step, removed after
    assert not (rootfs / "etc/one.txt").exists()


def test_writable_bind_and_tmpfs_keep_writes_out_of_the_rootfs(
    rootfs: Path, tmp_path: Path, out: io.StringIO
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (rootfs / "var").mkdir(exist_ok=True)
    mounts = [
        StepMount("bind", "/var/cache/app", str(cache), readonly=False),
        StepMount("tmpfs", "/scratch"),
        StepMount("tmpfs", "/scratch/inner/dir"),  # made inside the tmpfs by the step
    ]
    script = (
        "echo kept > /var/cache/app/f; echo gone > /scratch/g; "
        "touch /scratch/inner/dir/h && echo nested"
    )
    assert sh(rootfs, script, out, mounts=mounts) == 0
    assert lines(out) == ["s nested"]
    assert (cache / "f").read_text() == "kept\n"
    assert not (rootfs / "scratch").exists()
    assert not (rootfs / "var/cache").exists()
    assert (rootfs / "var").is_dir()  # existed before: kept


def test_mount_target_of_the_wrong_kind_is_refused(
    rootfs: Path, tmp_path: Path, out: io.StringIO
) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(BuildError, match="target /etc must be a file"):
        sh(rootfs, "true", out, mounts=[StepMount("bind", "/etc", str(tmp_path / "f"))])
    with pytest.raises(BuildError, match=r"bind source .* does not exist"):
        StepMount("bind", "/x", str(tmp_path / "missing"))


def test_a_target_through_a_symlink_in_an_earlier_mount_cannot_leave_the_rootfs(
    rootfs: Path, tmp_path: Path, out: io.StringIO
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "escape").symlink_to(tmp_path / "host")
    (tmp_path / "host").mkdir()
    mounts = [StepMount("bind", "/a", str(ctx)), StepMount("tmpfs", "/a/escape/x")]
    with pytest.raises(BuildError, match="target /a/escape/x leaves the rootfs"):
        sh(rootfs, "true", out, mounts=mounts)
    assert os.listdir(tmp_path / "host") == []
