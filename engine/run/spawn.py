"""Start the child helper for one step, stream its output line by line, reap the group."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, TextIO

from engine.errors import BuildError
from engine.run.idmap import IdMapper

CHILD = Path(__file__).with_name("_child.py")
SETUP_FAILED = 125
# After the step's main process exits and its group is killed, how long a writer that
# escaped the group (setsid) may keep the output pipe open before we stop reading.
DRAIN_SECONDS = 2.0
MAP_TIMEOUT = 30.0  # seconds a child may take to reach unshare(CLONE_NEWUSER)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def step_env(env: Mapping[str, str], *, home: str | None = None) -> dict[str, str]:
    """The step's environment: exactly env, plus Docker's PATH when env has none and, as
    runc does, HOME from the user's passwd entry when env has none."""
    out = dict(env)
    out.setdefault("PATH", DEFAULT_PATH)
    if home is not None:
        out.setdefault("HOME", home)
    return out


def _child_cmd() -> list[str]:
    return [sys.executable, "-I", "-S", str(CHILD)]


def _spec_file(spec: Mapping[str, Any]) -> IO[bytes]:
    """The spec goes in on stdin from an unlinked file: argv would cap one string at
    128 KiB (a long RUN script or a large ARG), a pipe could fill before it is read."""
    f = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, closed by the caller
    f.write(json.dumps(spec).encode())
    f.seek(0)
    return f


def probe_child(spec: Mapping[str, Any]) -> bool:
    """Ask a throwaway child whether it may make the namespaces and mounts a step needs."""
    with _spec_file({**spec, "probe": True}) as spec_in:
        res = subprocess.run(_child_cmd(), stdin=spec_in, capture_output=True, check=False)
    return res.returncode == 0


MAX_LINE = 64 * 1024  # a longer run without newline (progress bars) is emitted in pieces


class _LineWriter:
    def __init__(self, out: TextIO, label: str) -> None:
        self.out, self.label, self.buf = out, label, b""

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        while len(self.buf) > MAX_LINE:
            lines.append(self.buf[:MAX_LINE])
            self.buf = self.buf[MAX_LINE:]
        for line in lines:
            self._emit(line)
        if lines:
            self.out.flush()

    def close(self) -> None:
        if self.buf:
            self._emit(self.buf)
            self.buf = b""
        self.out.flush()

    def _emit(self, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        self.out.write(f"{self.label} {text}\n" if self.label else f"{text}\n")


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_rooted_at(rootfs: str) -> None:
    """Kill processes whose root directory is rootfs: without a pid namespace this is how
    a step's daemons that left its process group (setsid) are found. Best effort: with
    no CAP_SYS_PTRACE, other users' /proc/PID/root cannot be read."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.readlink(f"/proc/{entry}/root") == rootfs:
                os.kill(int(entry), signal.SIGKILL)
        except OSError:
            continue


def run_child(
    spec: Mapping[str, Any], *, step_label: str, out: TextIO, id_map: IdMapper | None = None
) -> int:
    """Run the helper in its own session (process group = its pid); the step's stdin is
    /dev/null, its stdout and stderr one pipe streamed to out line by line. Returns the
    command's exit status; raises BuildError when the step could not start."""
    report_r, report_w = os.pipe()
    out_r, out_w = os.pipe()
    # With an id map the child stops after unshare(CLONE_NEWUSER) until we have mapped it.
    ready_r, ready_w = os.pipe() if id_map else (-1, -1)
    ack_r, ack_w = os.pipe() if id_map else (-1, -1)
    child_fds = (report_w, ready_w, ack_r) if id_map else (report_w,)
    extra = {"sync_fds": [ready_w, ack_r]} if id_map else {}
    try:
        with _spec_file({**spec, **extra, "report_fd": report_w}) as spec_in:
            proc = subprocess.Popen(
                _child_cmd(),
                stdin=spec_in,
                stdout=out_w,
                stderr=out_w,
                pass_fds=child_fds,
                start_new_session=True,
            )
    except BaseException:
        for fd in (report_r, report_w, out_r, out_w, ready_r, ready_w, ack_r, ack_w):
            if fd >= 0:
                os.close(fd)
        raise
    for fd in (*child_fds, out_w):
        os.close(fd)
    writer = _LineWriter(out, step_label)

    def reap() -> None:
        # The step is over when its main process is: background jobs die with it.
        _kill_group(proc.pid)
        if not spec["use_mounts"] and spec["rootfs"] != "/":
            kill_rooted_at(spec["rootfs"])

    try:
        if id_map:
            map_child(proc, id_map, ready_r, ack_w)
        status = _pump(proc, out_r, writer, reap)
    finally:
        reap()
        proc.wait()
        writer.close()
        os.close(out_r)
        report = _read_all(report_r)
        os.close(report_r)
    if status == SETUP_FAILED and report:
        raise BuildError(report.strip().splitlines()[-1])
    return status


def map_child(proc: subprocess.Popen[bytes], id_map: IdMapper, ready_r: int, ack_w: int) -> None:
    """Map the child's new user namespace once it says (on ready_r) it has made one, then
    answer on ack_w; closes both descriptors."""
    answer = b"0"
    try:
        ready, _, _ = select.select([ready_r], [], [], MAP_TIMEOUT)
        if ready and os.read(ready_r, 1) == b"1":
            id_map.apply(proc.pid)
            answer = b"1"
    finally:
        # The child reports a refusal itself (setup failure) and exits.
        with contextlib.suppress(BrokenPipeError):
            os.write(ack_w, answer)
        os.close(ready_r)
        os.close(ack_w)


def _pump(
    proc: subprocess.Popen[bytes], fd: int, writer: _LineWriter, reap: Callable[[], None]
) -> int:
    exited_at: float | None = None
    status = 0
    while True:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            writer.feed(chunk)
        if exited_at is None:
            rc = proc.poll()
            if rc is not None:
                status = rc if rc >= 0 else 128 - rc
                reap()
                exited_at = time.monotonic()
        elif time.monotonic() - exited_at > DRAIN_SECONDS:
            break
    if exited_at is None:
        rc = proc.wait()
        status = rc if rc >= 0 else 128 - rc
    return status


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def spec_for(
    *,
    mode: str,
    rootfs: Path,
    argv: list[str],
    env: Mapping[str, str],
    cwd: str,
    uid: int,
    gid: int,
    groups: tuple[int, ...],
    home: str,
    use_mounts: bool,
    userns: str | None = None,
    mountpoints: list[str],
    binds: list[tuple[str, str]],
    pipes: list[tuple[str, str, int]] | None = None,
    step_mounts: list[tuple[str, str, str, bool]] | None = None,
    network: str = "default",
) -> dict[str, Any]:
    return {
        "mode": mode,
        "rootfs": str(rootfs),
        "argv": list(argv),
        "env": step_env(env, home=home),
        "cwd": cwd,
        "uid": uid,
        "gid": gid,
        "groups": list(groups),
        "use_mounts": use_mounts,
        "userns": userns,
        "mountpoints": mountpoints,
        "binds": [list(b) for b in binds],
        "pipes": [list(p) for p in pipes or []],
        "step_mounts": [list(m) for m in step_mounts or []],
        "network": network,
        "host_uid": os.geteuid(),
        "host_gid": os.getegid(),
    }
