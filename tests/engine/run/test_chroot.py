"""The chroot backend against a real busybox rootfs (this machine allows mounts as root)."""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from engine.errors import BuildError, UsageError
from engine.run import (
    ChrootIsolation,
    InplaceIsolation,
    RootlessIsolation,
    run_step,
    select_isolation,
    transient_paths,
)
from tests.engine.run.procs import pids_running


def sh(rootfs: Path, script: str, out: io.StringIO, **kw: object) -> int:
    args: dict = {"env": {}, "cwd": "/", "user": None, "step_label": "[1/1]"}
    args.update(kw)
    return ChrootIsolation().run(["/bin/sh", "-c", script], rootfs=rootfs, out=out, **args)


def lines(out: io.StringIO) -> list[str]:
    return [ln for ln in out.getvalue().splitlines() if not ln.startswith("note:")]


def processes_rooted_at(rootfs: Path) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/root") == str(rootfs):
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def test_output_is_streamed_with_step_label(rootfs: Path, out: io.StringIO) -> None:
    assert sh(rootfs, "echo hello; echo oops >&2; printf 'no newline'", out) == 0
    assert lines(out) == ["[1/1] hello", "[1/1] oops", "[1/1] no newline"]


def test_env_is_exactly_the_given_env_plus_default_path_and_home(
    rootfs: Path, out: io.StringIO
) -> None:
    sh(rootfs, "env | grep -v -e ^PWD= -e ^SHLVL= | sort", out, env={"A": "1", "B": "x y"})
    assert lines(out) == [
        "[1/1] A=1",
        "[1/1] B=x y",
        "[1/1] HOME=/root",
        "[1/1] PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]


def test_home_comes_from_passwd_unless_given(rootfs: Path, out: io.StringIO) -> None:
    sh(rootfs, "echo $HOME", out, user="app")
    sh(rootfs, "echo $HOME", out, user="app", env={"HOME": "/custom"})
    sh(rootfs, "echo $HOME", out, user="4242")
    assert lines(out) == ["[1/1] /home/app", "[1/1] /custom", "[1/1] /"]


def test_given_path_is_kept_and_used_for_lookup(rootfs: Path, out: io.StringIO) -> None:
    (rootfs / "opt/tools").mkdir(parents=True)
    (rootfs / "opt/tools/hello").write_text("#!/bin/sh\necho from-opt\n")
    os.chmod(rootfs / "opt/tools/hello", 0o755)
    status = ChrootIsolation().run(
        ["hello"],
        rootfs=rootfs,
        env={"PATH": "/opt/tools:/bin"},
        cwd="/",
        user=None,
        step_label="s",
        out=out,
    )
    assert status == 0
    assert lines(out) == ["s from-opt"]


def test_user_by_name_switches_ids_and_groups(rootfs: Path, out: io.StringIO) -> None:
    sh(rootfs, "id -u; id -g; id -G; touch /tmp/f", out, user="app")
    assert lines(out) == ["[1/1] 1000", "[1/1] 1000", "[1/1] 1000 50"]
    st = (rootfs / "tmp/f").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_user_uid_gid_numbers(rootfs: Path, out: io.StringIO) -> None:
    sh(rootfs, "id -u; id -G", out, user="4242:4243")
    assert lines(out) == ["[1/1] 4242", "[1/1] 4243"]


def test_unknown_user_fails_before_running(rootfs: Path, out: io.StringIO) -> None:
    with pytest.raises(BuildError, match="unable to find user ghost"):
        sh(rootfs, "touch /ran", out, user="ghost")
    assert not (rootfs / "ran").exists()


def test_cwd_is_created_when_missing(rootfs: Path, out: io.StringIO) -> None:
    sh(rootfs, "pwd", out, cwd="/srv/app/sub")
    assert lines(out) == ["[1/1] /srv/app/sub"]
    assert (rootfs / "srv/app/sub").is_dir()


def test_exit_status_and_signal_status(rootfs: Path, out: io.StringIO) -> None:
    assert sh(rootfs, "exit 3", out) == 3
    # The step's main process is pid 1 of its namespace (signals to itself are ignored,
    # as in Docker), so a child shell takes the signal.
    assert sh(rootfs, "sh -c 'kill -9 $$'; exit $?", out) == 137


def test_run_step_raises_one_line_build_error(rootfs: Path, out: io.StringIO) -> None:
    with pytest.raises(BuildError) as info:
        run_step(
            ChrootIsolation(),
            ["/bin/sh", "-c", "exit 7"],
            step=4,
            command="exit 7",
            rootfs=rootfs,
            env={},
            cwd="/",
            user=None,
            step_label="[4/5]",
            out=out,
        )
    assert str(info.value) == "step 4: RUN exit 7: exit status 7"


def test_missing_executable_is_a_build_error(rootfs: Path, out: io.StringIO) -> None:
    with pytest.raises(BuildError, match='step 2: RUN nope: exec: "nope": executable file not'):
        run_step(
            ChrootIsolation(),
            ["nope"],
            step=2,
            command="nope",
            rootfs=rootfs,
            env={},
            cwd="/",
            user=None,
            step_label="[2/5]",
            out=out,
        )


def test_resolv_conf_and_hosts_are_provided_and_do_not_leak(rootfs: Path, out: io.StringIO) -> None:
    (rootfs / "etc/hosts").write_text("image-hosts\n")
    before = (rootfs / "etc/hosts").stat()
    sh(rootfs, "cat /etc/resolv.conf /etc/hosts > /tmp/seen; echo junk >> /etc/hosts", out)
    seen = (rootfs / "tmp/seen").read_text()
    assert Path("/etc/resolv.conf").read_text() in seen or "nameserver" in seen
    assert "image-hosts" not in seen
    after = (rootfs / "etc/hosts").stat()
    assert (rootfs / "etc/hosts").read_text() == "image-hosts\n"
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
    )
    assert not os.path.lexists(rootfs / "etc/resolv.conf")


def test_mountpoints_and_etc_made_for_a_step_are_removed(tmp_path: Path, out: io.StringIO) -> None:
    # A FROM-scratch-like tree: only busybox, no /proc /dev /sys /etc.
    root = tmp_path / "bare"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    (root / "bin/sh").symlink_to("busybox")
    status = ChrootIsolation().run(
        ["/bin/busybox", "sh", "-c", "/bin/busybox ls /proc/self/ >/dev/null && echo ok"],
        rootfs=root,
        env={},
        cwd="/",
        user=None,
        step_label="s",
        out=out,
    )
    assert status == 0
    assert lines(out) == ["s ok"]
    assert sorted(os.listdir(root)) == ["bin"]


def test_background_processes_do_not_survive_the_step(rootfs: Path, out: io.StringIO) -> None:
    status = sh(rootfs, "sleep 3131 & setsid sleep 3132 & echo started", out)
    assert status == 0
    assert lines(out) == ["[1/1] started"]
    assert pids_running(b"3131") == pids_running(b"3132") == []


def test_mounts_are_private_to_the_step(rootfs: Path, out: io.StringIO) -> None:
    sh(rootfs, "ls /proc | grep -c . ; ls /dev/null", out)
    assert "[1/1] /dev/null" in lines(out)
    assert os.listdir(rootfs / "proc") == []
    assert os.listdir(rootfs / "dev") == []
    assert str(rootfs) not in Path("/proc/self/mountinfo").read_text()


def test_refuses_the_hosts_root(out: io.StringIO) -> None:
    for backend in (ChrootIsolation(), RootlessIsolation()):
        with pytest.raises(BuildError, match="refusing to use /"):
            backend.run(
                ["true"], rootfs=Path("/"), env={}, cwd="/", user=None, step_label="s", out=out
            )


def test_inplace_refuses_unless_executor_image_and_root(rootfs: Path, out: io.StringIO) -> None:
    with pytest.raises(BuildError, match="only inside brickyard's executor image"):
        select_isolation("inplace", 0).run(
            ["true"], rootfs=Path("/"), env={}, cwd="/", user=None, step_label="s", out=out
        )
    allowed = select_isolation("inplace", 0, executor_image=True)
    assert isinstance(allowed, InplaceIsolation)
    with pytest.raises(BuildError, match="needs rootfs /"):
        allowed.run(["true"], rootfs=rootfs, env={}, cwd="/", user=None, step_label="s", out=out)


def test_select_isolation_defaults() -> None:
    assert isinstance(select_isolation(None, 0), ChrootIsolation)
    assert isinstance(select_isolation(None, 1000), RootlessIsolation)
    assert isinstance(select_isolation("rootless", 0), RootlessIsolation)
    with pytest.raises(UsageError, match="unknown backend 'docker'"):
        select_isolation("docker", 0)


def test_transient_paths_name_what_run_provides() -> None:
    assert set(transient_paths()) >= {"/etc/resolv.conf", "/etc/hosts", "/dev", "/proc", "/sys"}


def test_symlinked_resolv_conf_is_swapped_and_put_back(rootfs: Path, out: io.StringIO) -> None:
    (rootfs / "run/systemd/resolve").mkdir(parents=True)
    (rootfs / "run/systemd/resolve/stub-resolv.conf").write_text("nameserver 127.0.0.53\n")
    (rootfs / "etc/resolv.conf").symlink_to("../run/systemd/resolve/stub-resolv.conf")
    sh(rootfs, "cat /etc/resolv.conf", out)
    assert "127.0.0.53" not in out.getvalue()
    assert "nameserver" in out.getvalue()
    assert os.readlink(rootfs / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"
    assert sorted(os.listdir(rootfs / "etc")) == ["group", "passwd", "resolv.conf"]
    assert (rootfs / "run/systemd/resolve/stub-resolv.conf").read_text() == (
        "nameserver 127.0.0.53\n"
    )


def test_failed_step_still_restores_the_rootfs(rootfs: Path, out: io.StringIO) -> None:
    with pytest.raises(BuildError):
        sh(rootfs, "true", out, cwd="/", user="ghost")
    assert sh(rootfs, "exit 9", out) == 9
    assert sorted(os.listdir(rootfs / "etc")) == ["group", "passwd"]
    assert os.listdir(rootfs / "dev") == []


def test_large_scripts_and_env_reach_the_step_and_stdin_is_empty(
    rootfs: Path, out: io.StringIO
) -> None:
    # Together far above the 128 KiB a single argv string may have.
    script = "echo ${#BIG}; wc -c < /dev/stdin\n" + "# padding\n" * 9000
    assert sh(rootfs, script, out, env={"BIG": "x" * 100_000}) == 0
    assert lines(out) == ["[1/1] 100000", "[1/1] 0"]


def test_rootfs_is_restored_even_when_the_step_removes_what_was_provided(
    rootfs: Path, out: io.StringIO
) -> None:
    (rootfs / "etc/hosts").write_text("image-hosts\n")
    assert sh(rootfs, "rm -f /etc/hosts /etc/resolv.conf; echo gone", out) == 0
    assert (rootfs / "etc/hosts").read_text() == "image-hosts\n"
    assert not os.path.lexists(rootfs / "etc/resolv.conf")


def test_a_failed_id_mapping_fails_the_step_cleanly(
    rootfs: Path, out: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.run import backends

    class Refusing:
        def apply(self, pid: int) -> None:
            raise BuildError("cannot map the step's user namespace: refused")

    monkeypatch.setattr(backends, "IdentityMap", Refusing)
    monkeypatch.setattr(ChrootIsolation, "tier", lambda self: backends.USERNS_MOUNTS)
    with pytest.raises(BuildError, match="refused"):
        sh(rootfs, "touch /ran", out)
    assert not (rootfs / "ran").exists()
    assert processes_rooted_at(rootfs) == []
    assert sorted(os.listdir(rootfs / "etc")) == ["group", "passwd"]


def test_with_mounts_the_step_is_pivoted_not_just_chrooted(rootfs: Path, out: io.StringIO) -> None:
    # A chrooted process's root reads as the rootfs path from here; after pivot_root and
    # detaching the old root, the host's tree is not in the step's namespace at all.
    step = threading.Thread(target=sh, args=(rootfs, "sleep 2.7182", out))
    step.start()
    try:
        deadline = time.monotonic() + 10
        roots: list[str] = []
        while not roots and time.monotonic() < deadline:
            roots = [os.readlink(f"/proc/{pid}/root") for pid in pids_running(b"2.7182")]
            time.sleep(0.05)
    finally:
        step.join()
    assert roots == ["/"]


def test_a_step_snapshot_holds_only_what_the_command_changed(tmp_path: Path) -> None:
    from engine.fs.snapshot import Snapshotter

    # FROM-scratch-like: no /etc, /dev, /proc, /sys to begin with
    root = tmp_path / "bare"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    (root / "bin/sh").symlink_to("busybox")
    snap = Snapshotter(root, transient_paths())
    snap.reset()
    out = io.StringIO()
    status = ChrootIsolation().run(
        ["/bin/sh", "-c", "/bin/busybox mkdir /data && echo x > /data/f && echo y > /dev/null"],
        rootfs=root,
        env={},
        cwd="/",
        user=None,
        step_label="s",
        out=out,
    )
    assert status == 0
    diff = snap.diff()
    assert [p for p in diff.changed if p] == ["data", "data/f"]
    assert diff.deleted == [] and diff.opaque_dirs == []
