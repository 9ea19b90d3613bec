"""A whole build as an unprivileged user with --isolation rootless: the build runs in one
user namespace mapped with the user's /etc/subuid range, so the image's owners are the
container's (base files keep theirs, COPY --chown, files RUN makes as USER app)."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import E2E, Built, Entry, entry, exists

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SUBID_START = 600000  # away from the 300000 range tests/engine/run gives nobody
SUBID_COUNT = 65536
RUNS_ENGINE = (
    "import subprocess, sys; sys.path.insert(0, sys.argv[1]); import engine.build, ssl, isal; "
    f"assert sys.version_info == {tuple(sys.version_info)!r}; "
    "subprocess.run([sys.executable, '-c', 'import ssl'], check=True)"
)


@dataclass(frozen=True)
class BuildUser:
    name: str
    uid: int
    gid: int
    home: Path  # a private work dir the user owns

    def argv(self) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]


def _remove_line(path: Path, line: str) -> None:
    text = path.read_text()
    path.write_text(text.replace(line, "", 1))


@contextlib.contextmanager
def throwaway_user(*, subids: bool) -> Iterator[BuildUser]:
    """A system user (useradd gives those no range by itself), with a subordinate id range
    as an admin sets one up for rootless builds when `subids`; afterwards exactly the lines
    added are taken out and the user is deleted."""
    name = f"bkrl{os.getpid() % 100000}{'s' if subids else 'p'}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", name], check=True
    )
    line = f"{name}:{SUBID_START}:{SUBID_COUNT}\n"
    files = (Path("/etc/subuid"), Path("/etc/subgid")) if subids else ()
    before = {p: p.read_text() if p.exists() else None for p in files}
    home = Path(tempfile.mkdtemp(prefix="brickyard-rootless-build-"))
    try:
        for path in files:
            with path.open("a") as f:
                f.write(line)
        pw = pwd.getpwnam(name)
        os.chmod(home, 0o755)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        yield BuildUser(name, pw.pw_uid, pw.pw_gid, home)
    finally:
        for path in files:
            _remove_line(path, line)
            if before[path] is None and not path.read_text():
                path.unlink()
        shutil.rmtree(home, ignore_errors=True)
        deadline = time.monotonic() + 15
        # Exit status 8: a process of the user is still ending (a stopped build cleaning up).
        while subprocess.run(["userdel", name], check=False).returncode == 8:
            assert time.monotonic() < deadline, f"processes of {name} keep running"
            time.sleep(0.2)
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    for path in files:
        assert line not in (path.read_text() if path.exists() else "")


@pytest.fixture
def build_user() -> Iterator[BuildUser]:
    with throwaway_user(subids=True) as user:
        yield user


@pytest.fixture
def plain_user() -> Iterator[BuildUser]:
    with throwaway_user(subids=False) as user:
        yield user


# Bind the interpreter's prefix where the user can reach it, in a private mount
# namespace of the test's own: $0 source, $1 mount point, then the command.
BIND_THEN_EXEC = 'mount --bind "$0" "$1" && shift && exec "$@"'


@functools.cache
def as_user_with_python(user: BuildUser) -> tuple[str, ...]:
    """argv prefix that runs this test's own interpreter (and its packages) as the user.
    pyenv lives under /root, which only root may enter: its prefix is bind-mounted under
    the user's work dir for that one command; nothing on the host changes."""
    prefix = Path(sys.prefix).resolve()
    site = Path(sysconfig.get_paths()["purelib"]).resolve().relative_to(prefix)
    mountpoint = user.home / "python"
    mountpoint.mkdir(exist_ok=True)
    argv = (
        *("unshare", "--mount", "--propagation", "private", "sh", "-c", BIND_THEN_EXEC),
        *(str(prefix), str(mountpoint)),
        *user.argv(),
        # its RUNPATH names the private /root path: libpython from the mount point
        *("env", f"LD_LIBRARY_PATH={mountpoint / 'lib'}", f"PYTHONPATH={REPO}:{mountpoint / site}"),
        str(mountpoint / Path(sys.executable).resolve().relative_to(prefix)),
    )
    proc = subprocess.run([*argv, "-c", RUNS_ENGINE, str(REPO)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return argv


def owner(rootfs: Path, path: str) -> tuple[int, int]:
    e = entry(rootfs, path)
    return e.uid, e.gid


# Runs argv in a user namespace mapping every id to itself whose limit of nested user
# namespaces is 0: what a host with unprivileged user namespaces turned off looks like.
NO_NESTED_USERNS = """
import ctypes, os, sys
go_r, go_w = os.pipe()
made_r, made_w = os.pipe()
pid = os.fork()
if pid == 0:
    assert ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0
    os.write(made_w, b"1")
    os.read(go_r, 1)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    os.execvp(sys.argv[1], sys.argv[1:])
os.read(made_r, 1)
for name in ("uid_map", "gid_map"):
    with open(f"/proc/{pid}/{name}", "w") as f:
        f.write("0 0 4294967295")
os.write(go_w, b"1")
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def build_as(
    user: BuildUser,
    e2e: E2E,
    ctx: Path | str,
    *args: str,
    wrap: tuple[str, ...] = (),
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    code = "import sys; from engine.cli import executor_main; sys.exit(executor_main())"
    proc = subprocess.run(
        [
            *wrap,
            *as_user_with_python(user),
            "-c",
            code,
            "--context",
            str(ctx),
            "--insecure",
            "--insecure-pull",
            "--log-format",
            "text",
            "--isolation",
            "rootless",
            *args,
        ],
        cwd=REPO,
        env={
            "HOME": str(user.home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
        },
        input=stdin,
        capture_output=True,
        timeout=180,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode(errors="replace")
    )


def test_rootless_build_as_unprivileged_user_keeps_container_owners(
    e2e: E2E, build_user: BuildUser
) -> None:
    ctx = build_user.home / "ctx"
    ctx.mkdir()
    (ctx / "app.conf").write_text("x=1\n")
    (ctx / "plain.txt").write_text("p\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {e2e.base}\n"
        "COPY --chown=1000:50 app.conf /etc/app.conf\n"
        "COPY plain.txt /plain.txt\n"
        "RUN stat -c '%u:%g' /home/app /etc/app.conf > /seen && touch /root-made\n"
        "USER app\n"
        "RUN id -u > /tmp/uid && touch /home/app/file && mkdir /tmp/appdir\n"
    )
    for path in ctx.iterdir():
        os.chown(path, build_user.uid, build_user.gid)
    os.chown(ctx, build_user.uid, build_user.gid)
    kaniko_dir = build_user.home / "kaniko"
    kaniko_dir.mkdir()
    os.chown(kaniko_dir, build_user.uid, build_user.gid)
    ref = f"{e2e.registry}/e2e/rootless-user:latest"

    proc = build_as(build_user, e2e, ctx, "--destination", ref, "--kaniko-dir", str(kaniko_dir))

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no /etc/subuid" not in proc.stderr
    rootfs = Built(0, proc.stderr, ref, ctx, e2e).rootfs
    assert entry(rootfs, "/etc/app.conf") == Entry("file", 0o644, 1000, 50, "x=1\n")
    assert entry(rootfs, "/plain.txt") == Entry("file", 0o644, 0, 0, "p\n")
    assert owner(rootfs, "/root-made") == (0, 0)
    # RUN saw the base image's owners (extracted with real chown), not the caller's.
    assert entry(rootfs, "/seen").content == "1000:1000\n1000:50\n"
    assert entry(rootfs, "/tmp/uid").content == "1000\n"
    assert owner(rootfs, "/home/app/file") == (1000, 1000)
    assert entry(rootfs, "/tmp/appdir") == Entry("dir", 0o755, 1000, 1000)
    # /home/app is in the RUN layer as the new file's parent: still the base's owner.
    assert owner(rootfs, "/home/app") == (1000, 1000)
    assert entry(rootfs, "/tmp") == Entry("dir", 0o1777, 0, 0)
    assert not exists(rootfs, "/etc/resolv.conf")
    # The workspace (files owned by subordinate ids) was removed inside the namespace.
    assert os.listdir(kaniko_dir) == []


def layer_owners(layout: Path) -> dict[str, tuple[int, int]]:
    """name -> (uid, gid) over every layer of the layout's only image, read with tarfile."""

    def blob(digest: str) -> Path:
        return layout / "blobs" / "sha256" / digest.split(":", 1)[1]

    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    owners: dict[str, tuple[int, int]] = {}
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"]), mode="r:*") as tf:
            for info in tf:
                owners[info.name.rstrip("/")] = (info.uid, info.gid)
    return owners


def own_tree(path: Path, user: BuildUser) -> None:
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), user.uid, user.gid)
    os.chown(path, user.uid, user.gid)


def test_rootless_multistage_to_oci_layout_records_ids_in_the_layer_tars(
    e2e: E2E, build_user: BuildUser
) -> None:
    ctx = build_user.home / "ctx-stages"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {e2e.base} AS b\n"
        "RUN mkdir /out && touch /out/f && chown 1234:4321 /out/f\n"
        f"FROM {e2e.base}\n"
        "COPY --from=b /out/f /copied\n"
        "RUN touch /etc/group && mkdir /srv && chown 70000:70000 /srv 2>/dev/null; "
        "chown 65000:7 /srv\n"
    )
    own_tree(ctx, build_user)
    layout = build_user.home / "layout"

    proc = build_as(build_user, e2e, ctx, "--no-push", "--oci-layout-path", str(layout))

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert layout.stat().st_uid == build_user.uid  # outputs belong to the caller
    owners = layer_owners(layout)
    assert owners["copied"] == (1234, 4321)  # COPY --from keeps the stage's owners
    assert owners["srv"] == (65000, 7)  # the top of the range: subuid_start + 64999
    assert owners["etc/group"] == (0, 0)
    assert owners["home/app"] == (1000, 1000)  # base layer, kept as it was


def test_rootless_build_errors_keep_their_class_message_and_exit_code(
    e2e: E2E, build_user: BuildUser
) -> None:
    ctx = build_user.home / "ctx-errors"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {e2e.base}\nUSER app\nRUN exit 3\n")
    own_tree(ctx, build_user)
    failed = build_as(build_user, e2e, ctx, "--no-push")
    assert failed.returncode == 7, failed.stderr[-3000:]
    assert failed.stderr.strip().splitlines()[-1] == "error: step 3/3: RUN exit 3: exit status 3"

    (ctx / "Dockerfile").write_text(f"FROM {e2e.base}\nFOO bar\n")
    bad = build_as(build_user, e2e, ctx, "--no-push")
    assert bad.returncode == 3, bad.stderr[-3000:]
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {ctx / 'Dockerfile'}:2: "), last  # said once, not twice
    assert last.count("Dockerfile") == 1, last


def test_rootless_without_subordinate_ids_builds_in_process_and_says_so(
    e2e: E2E, plain_user: BuildUser
) -> None:
    ctx = plain_user.home / "ctx-plain"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {e2e.base}\nRUN id -u > /uid\n")
    own_tree(ctx, plain_user)
    layout = plain_user.home / "layout"
    proc = build_as(plain_user, e2e, ctx, "--no-push", "--oci-layout-path", str(layout))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("note: no /etc/subuid and /etc/subgid range") == 1
    assert "uid" in layer_owners(layout)


def test_rootless_without_user_namespaces_builds_in_process_and_says_so(
    e2e: E2E, build_user: BuildUser
) -> None:
    ctx = build_user.home / "ctx-nouserns"
    ctx.mkdir()
    (ctx / "f.txt").write_text("f\n")
    (ctx / "Dockerfile").write_text(f"FROM {e2e.base}\nCOPY f.txt /f.txt\n")
    own_tree(ctx, build_user)
    layout = build_user.home / "layout"
    wrap = (sys.executable, "-c", NO_NESTED_USERNS)
    proc = build_as(build_user, e2e, ctx, "--no-push", "--oci-layout-path", str(layout), wrap=wrap)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("note: rootless build: cannot make a user namespace: ") == 1
    assert "f.txt" in layer_owners(layout)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_rootless_build_stopped_with_its_caller_removes_its_workspace(
    e2e: E2E, build_user: BuildUser, sig: signal.Signals
) -> None:
    """The caller cannot delete files owned by its subordinate ids: when it is killed (a
    cancelled CI job) or interrupted, the namespace side must stop and clean up itself."""
    ctx = build_user.home / "ctx-cancel"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {e2e.base}\nRUN chown 1000 /tmp && touch /started && sleep 60\n"
    )
    own_tree(ctx, build_user)
    kaniko_dir = build_user.home / "kaniko"
    kaniko_dir.mkdir()
    os.chown(kaniko_dir, build_user.uid, build_user.gid)
    code = "import sys; from engine.cli import executor_main; sys.exit(executor_main())"
    proc = subprocess.Popen(
        [
            *as_user_with_python(build_user),
            "-c",
            code,
            *("--context", str(ctx), "--no-push", "--insecure-pull", "--isolation", "rootless"),
            *("--kaniko-dir", str(kaniko_dir)),
        ],
        cwd=REPO,
        env={"HOME": str(build_user.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(kaniko_dir.glob("*/stages/*/rootfs/started")):
            assert time.monotonic() < deadline and proc.poll() is None, "RUN never started"
            time.sleep(0.1)
        os.kill(proc.pid, sig)  # the caller only (after unshare/sh/setpriv/env exec'd it)
        rc = proc.wait(timeout=40)
        if sig == signal.SIGINT:
            # The caller waits for the namespace side to clean up, then says interrupted.
            assert rc == 130
            assert os.listdir(kaniko_dir) == []
        deadline = time.monotonic() + 20
        while os.listdir(kaniko_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.listdir(kaniko_dir) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_rootless_build_reads_a_tar_context_from_stdin(e2e: E2E, build_user: BuildUser) -> None:
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        for name, data in (("Dockerfile", f"FROM {e2e.base}\nCOPY --chown=7:8 a /a\n"), ("a", "a")):
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            tf.addfile(info, io.BytesIO(data.encode()))
    layout = build_user.home / "layout"
    proc = build_as(
        build_user,
        e2e,
        "tar://stdin",
        "--no-push",
        "--oci-layout-path",
        str(layout),
        stdin=tar.getvalue(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert layer_owners(layout)["a"] == (7, 8)
