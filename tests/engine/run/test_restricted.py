"""RUN where a default Kubernetes pod runs it (Docker's default capabilities, no_new_privs,
so no mounts) and as an unprivileged user (rootless, user namespaces)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.run.procs import pids_running
from tests.support.busybox import make_busybox_rootfs

REPO = Path(__file__).resolve().parents[3]
DOCKER_DEFAULT_CAPS = (
    "chown",
    "dac_override",
    "fsetid",
    "fowner",
    "mknod",
    "net_raw",
    "setgid",
    "setuid",
    "setfcap",
    "setpcap",
    "net_bind_service",
    "sys_chroot",
    "kill",
    "audit_write",
)

# Runs RUN steps in a fresh interpreter and prints one JSON line per step, so the
# restrictions apply to the whole engine side, not only to the step's process.
SCRIPT = """
import io, json, os, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from engine.run import ChrootIsolation, StepMount, select_isolation
rootfs = Path(sys.argv[2])
if sys.argv[4:] == ["no-userns"]:
    iso = ChrootIsolation(userns=False)
elif sys.argv[4:] == ["chroot"]:
    iso = ChrootIsolation()
else:
    iso = select_isolation(None, os.geteuid())
for step in json.loads(sys.argv[3]):
    out = io.StringIO()
    try:
        files = [(n, c.encode(), 0o755) for n, c in step.get("files", {}).items()]
        mounts = [StepMount(*m) for m in step.get("mounts", [])]
        status = iso.run(["/bin/sh", "-c", step["sh"]], rootfs=rootfs, env={}, cwd="/",
                         user=step.get("user"), step_label="s", out=out, files=files,
                         network=step.get("network", "default"), mounts=mounts)
        print(json.dumps({"backend": iso.name, "status": status, "out": out.getvalue()}))
    except Exception as e:
        print(json.dumps({"backend": iso.name, "error": str(e), "out": out.getvalue()}))
"""


def run_steps(
    prefix: list[str], python: str, rootfs: Path, steps: list[dict], *extra: str
) -> list[dict]:
    res = subprocess.run(
        [*prefix, python, "-c", SCRIPT, str(REPO), str(rootfs), json.dumps(steps), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def step_lines(result: dict) -> list[str]:
    return [ln for ln in result["out"].splitlines() if not ln.startswith("note:")]


DEFAULT_POD = [
    "setpriv",
    "--no-new-privs",
    "--inh-caps=-all",
    "--bounding-set=-all," + ",".join(f"+{c}" for c in DOCKER_DEFAULT_CAPS),
]


def test_chroot_with_docker_default_capabilities_mounts_inside_a_user_namespace(
    tmp_path: Path,
) -> None:
    """No CAP_SYS_ADMIN, but user namespaces allowed (a pod without a seccomp profile):
    the step still gets a fresh /proc and private /dev, and USER works (identity map)."""
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    steps = [
        {"sh": "ls /proc/1/status && ls /dev/null && head -c 3 /dev/zero | wc -c"},
        {"sh": "id -u; id -G; touch /tmp/by-app", "user": "app"},
        {"sh": "sleep 4141 & setsid sleep 4142 & echo bg"},
        {"sh": "/dev/pipes/EOF", "files": {"EOF": "#!/bin/sh\necho $0\n"}, "user": "app"},
        {"sh": "ls /sys/class/net; cat /sys/class/net/lo/flags", "network": "none"},
        {
            "sh": "cat /src/f; touch /src/g 2>/dev/null || echo ro; echo t >/tmp/t/x && echo tmpfs",
            "mounts": [["bind", "/src", str(tmp_path / "src")], ["tmpfs", "/tmp/t"]],
        },
    ]
    (tmp_path / "src").mkdir()
    (tmp_path / "src/f").write_text("bound\n")
    results = run_steps(DEFAULT_POD, sys.executable, rootfs, steps)
    assert [r["backend"] for r in results] == ["chroot"] * 6
    assert all("note:" not in r["out"] for r in results)
    assert step_lines(results[0]) == ["s /proc/1/status", "s /dev/null", "s 3"], results
    assert step_lines(results[1]) == ["s 1000", "s 1000 50"]
    assert (rootfs / "tmp/by-app").stat().st_uid == 1000  # identity map: real ids on disk
    assert step_lines(results[2]) == ["s bg"]
    assert pids_running(b"4141") == pids_running(b"4142") == []
    assert step_lines(results[3]) == ["s /dev/pipes/EOF"], results[3]
    assert step_lines(results[4]) == ["s lo", "s 0x9"], results[4]
    assert step_lines(results[5]) == ["s bound", "s ro", "s tmpfs"], results[5]
    assert not (rootfs / "src").exists()
    assert not (rootfs / "tmp/t").exists()
    assert os.listdir(rootfs / "dev") == []
    assert os.listdir(rootfs / "proc") == []
    assert sorted(os.listdir(rootfs / "etc")) == ["group", "passwd"]


def test_chroot_with_docker_default_capabilities_uses_mknod_fallback(tmp_path: Path) -> None:
    """No CAP_SYS_ADMIN and no user namespaces (Docker's seccomp profile blocks them):
    no mounts at all, /dev nodes made with mknod and removed afterwards."""
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    setpriv = DEFAULT_POD
    steps = [
        {"sh": "echo data > /dev/null && head -c 7 /dev/urandom | wc -c && ls /dev/zero"},
        {"sh": "id -u; id -G; touch /tmp/by-app", "user": "app"},
        {"sh": "grep -c nameserver /etc/resolv.conf >/dev/null && echo dns"},
        {"sh": "sleep 300 & setsid sleep 301 & echo bg"},
        {"sh": "exit 4"},
        {"sh": "/dev/pipes/EOF", "files": {"EOF": "#!/bin/sh\necho $0\n"}, "user": "app"},
        {"sh": "true", "network": "none"},
        {"sh": "true", "mounts": [["tmpfs", "/tmp/t"]]},
    ]
    results = run_steps(setpriv, sys.executable, rootfs, steps, "no-userns")
    assert [r["backend"] for r in results] == ["chroot"] * 8
    assert "note: mounts are not permitted here" in results[0]["out"]
    assert all("note:" not in r["out"] for r in results[1:])  # said once
    assert step_lines(results[0]) == ["s 7", "s /dev/zero"]
    assert step_lines(results[1]) == ["s 1000", "s 1000 50"]
    assert step_lines(results[2]) == ["s dns"]
    assert step_lines(results[3]) == ["s bg"]
    assert results[4]["status"] == 4
    assert step_lines(results[5]) == ["s /dev/pipes/EOF"]
    assert results[6]["error"] == (
        "RUN --network=none needs a network namespace, which is not allowed here"
    )
    assert results[7]["error"] == "RUN --mount needs mount namespaces, which are not allowed here"
    assert not (rootfs / "tmp/t").exists()
    # Nothing made for the steps is left behind, and no step process survived.
    assert os.listdir(rootfs / "dev") == []
    assert sorted(os.listdir(rootfs / "etc")) == ["group", "passwd"]
    assert (rootfs / "tmp/by-app").stat().st_uid == 1000
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            assert os.readlink(f"/proc/{pid}/root") != str(rootfs)
        except OSError:
            continue


NOBODY = 65534


@pytest.fixture
def nobody_rootfs() -> Iterator[Path]:
    # pytest's tmp_path is private to root; the unprivileged user needs its own tree.
    top = Path(tempfile.mkdtemp(prefix="brickyard-rootless-"))
    os.chmod(top, 0o755)
    rootfs = make_busybox_rootfs(top / "rootfs")
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(rootfs)], check=True)
    yield rootfs
    subprocess.run(["rm", "-rf", str(top)], check=True)


# The interpreter must start itself again (the engine spawns its RUN helper with it) and
# import the engine (the system python3 needs python3-zstandard, see install-deps.sh).
SPAWNS_ITSELF = (
    "import subprocess, sys; sys.path.insert(0, sys.argv[1]); import engine.run; "
    "subprocess.run([sys.executable, '-c', ''], check=True)"
)


def python_for_nobody() -> str:
    """An interpreter the unprivileged user may execute (pyenv under /root is private)."""
    last: list[str] = []
    for candidate in (sys.executable, "/usr/bin/python3"):
        ok = subprocess.run(
            [
                "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                candidate,
                "-c",
                SPAWNS_ITSELF,
                str(REPO),
            ],
            capture_output=True,
            check=False,
        )
        if ok.returncode == 0:
            return candidate
        last = ok.stderr.decode(errors="replace").strip().splitlines()[-1:]
    raise AssertionError(f"no Python interpreter runs the engine as uid 65534: {last}")


def test_rootless_as_unprivileged_user_maps_caller_to_root(nobody_rootfs: Path) -> None:
    assert int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    steps = [
        {"sh": "id -u; touch /root-made; ls /proc/1/ >/dev/null && echo proc; ls /dev/null"},
        {"sh": "grep -q nameserver /etc/resolv.conf && echo dns; exit 3"},
        {"sh": "true", "user": "app"},
        {
            "sh": "/dev/pipes/S; ls /sys/class/net; echo t > /t/f && echo tmpfs",
            "files": {"S": "#!/bin/sh\necho $0\n"},
            "network": "none",
            "mounts": [["tmpfs", "/t"]],
        },
    ]
    results = run_steps(nobody, python_for_nobody(), nobody_rootfs, steps)
    assert [r["backend"] for r in results] == ["rootless"] * 4
    assert step_lines(results[3]) == ["s /dev/pipes/S", "s lo", "s tmpfs"], results[3]
    assert not (nobody_rootfs / "t").exists()
    assert step_lines(results[0]) == ["s 0", "s proc", "s /dev/null"], results
    assert results[0]["status"] == 0
    # uid 0 inside is the caller outside: the file belongs to the unprivileged user.
    assert (nobody_rootfs / "root-made").stat().st_uid == NOBODY
    assert step_lines(results[1]) == ["s dns"]
    assert results[1]["status"] == 3
    assert "maps only uid 0" in results[2]["error"]
    chroot = run_steps(nobody, python_for_nobody(), nobody_rootfs, [{"sh": "true"}], "chroot")
    assert chroot[0]["error"] == "chroot isolation needs root; use --isolation rootless"
    assert not os.path.lexists(nobody_rootfs / "etc/resolv.conf")
    assert os.listdir(nobody_rootfs / "dev") == []


@pytest.fixture
def nobody_subids() -> Iterator[int]:
    """Give uid 65534 a subordinate id range, as an admin would for a rootless build user.
    Afterwards exactly the line added is taken out again (safe if suites run at once)."""
    start = 300000
    line = f"nobody:{start}:65536\n"
    existed = {p: p.exists() for p in (Path("/etc/subuid"), Path("/etc/subgid"))}
    for path in existed:
        with path.open("a") as f:
            f.write(line)
    try:
        yield start
    finally:
        for path, was_there in existed.items():
            text = path.read_text().replace(line, "", 1)
            if text or was_there:
                path.write_text(text)
            else:
                path.unlink()


def test_rootless_with_subordinate_ids_switches_user(
    nobody_rootfs: Path, nobody_subids: int
) -> None:
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    steps = [
        {"sh": "id -u; id -G; touch /tmp/by-app", "user": "app"},
        {"sh": "id -u; touch /tmp/by-root"},
    ]
    results = run_steps(nobody, python_for_nobody(), nobody_rootfs, steps)
    assert step_lines(results[0]) == ["s 1000", "s 1000 50"], results
    assert step_lines(results[1]) == ["s 0"]
    # inside uid N > 0 is subuid_start + N - 1 on disk; root is the caller
    assert (nobody_rootfs / "tmp/by-app").stat().st_uid == nobody_subids + 999
    assert (nobody_rootfs / "tmp/by-root").stat().st_uid == NOBODY
