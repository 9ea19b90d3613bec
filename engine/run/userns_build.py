"""A whole rootless build inside one user namespace, as `buildah unshare` / `podman unshare`.

A non-root caller cannot give files away, so without this, base layers extracted, files
COPY wrote and files a RUN step made as USER app would all belong to the caller on disk,
and the snapshotter would record the caller's uid. Here the build process re-executes
itself in a new user namespace where the caller is uid/gid 0 and its /etc/subuid and
/etc/subgid ranges are ids 1..N (newuidmap/newgidmap, the same mapping RUN's rootless
backend uses). Inside, real chown works, `stat` shows container ids, so extraction, COPY
--chown, RUN (chroot backend, as namespace root) and snapshots need no translation.

    if userns_build.wanted(options.isolation, os.geteuid()):
        return userns_build.build_in_namespace(options, env, stdin=stdin, out=out)

The child is a fresh interpreter (never a fork of one that may hold threads or locks). It
gets (options, env) pickled in an unlinked file, the build's stdin as its stdin, writes its
log to a pipe the parent copies to `out`, and hands back the BuildResult or the error.
Without a subordinate id range (or newuidmap) there is nothing to map: the build runs as
before, in this process, and says once that file owners are the caller's.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, TextIO

from engine.errors import BrickyardError, BuildError
from engine.run.backends import ChrootIsolation
from engine.run.idmap import IdMap, subid_map
from engine.run.spawn import map_child

CLONE_NEWUSER = 0x10000000
NO_USERNS = b"!"  # result file prefix: the child could not make a user namespace
OWNERS = "files in new layers belong to the caller"
PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 30.0  # seconds a stopped child may take to clean its workspace up
ENGINE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding `engine/`
BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from engine.run.userns_build import child_main; sys.exit(child_main(sys.argv[2:]))"
)

_inside = False  # set in the child: RUN then runs as this namespace's root
_notes_given: set[str] = set()


def inside_build_namespace() -> bool:
    """True in the process that runs a build inside its user namespace."""
    return _inside


class NamespaceRootIsolation(ChrootIsolation):
    """RUN inside the build's user namespace: we are root there (with the caller's whole
    subordinate range mapped), so a step is a chroot with mount and pid namespaces of its
    own, switching to USER's ids directly. Reported as `rootless`."""

    name = "rootless"

    def __init__(self) -> None:
        # No nested identity-mapped user namespace: ours already is the step's.
        super().__init__(userns=False)


def wanted(isolation: str | None, euid: int) -> bool:
    """Enter a build namespace: --isolation rootless, not root, not already inside."""
    return isolation == "rootless" and euid != 0 and not _inside


def _note_once(key: str, text: str, out: TextIO) -> None:
    if key not in _notes_given:
        _notes_given.add(key)
        out.write(f"note: {text}\n")
        out.flush()


def build_in_namespace(
    options: Any,
    env: Mapping[str, str],
    *,
    stdin: IO[bytes] | None,
    out: TextIO,
    build: Callable[..., Any] | None = None,
) -> Any:
    """Run engine.build.build(options, env) in a child mapped with the caller's subordinate
    ids and return its BuildResult (or raise its error). Without a range, `build` (the
    in-process fallback) runs here instead."""
    id_map = subid_map(os.geteuid(), os.getegid())
    if id_map is None:
        _note_once(
            "no-subids",
            "no /etc/subuid and /etc/subgid range (or newuidmap) for this user; " + OWNERS,
            out,
        )
        return _in_process(build, options, env, stdin=stdin, out=out)
    return _run_child(options, env, stdin=stdin, out=out, id_map=id_map, build=build)


def _in_process(
    build: Callable[..., Any] | None,
    options: Any,
    env: Mapping[str, str],
    *,
    stdin: IO[bytes] | None,
    out: TextIO,
) -> Any:
    if build is None:
        raise BuildError("rootless build: cannot enter a user namespace for this build")
    return build(options, env, stdin=stdin, out=out)


def _stdin_for_child(stdin: IO[bytes] | None, stack: contextlib.ExitStack) -> Any:
    if stdin is None:
        return subprocess.DEVNULL
    try:
        stdin.fileno()
        return stdin
    except ValueError:  # closed
        return subprocess.DEVNULL
    except (AttributeError, OSError, io.UnsupportedOperation):
        # An in-memory stream (tests, adapters): hand its bytes over in a file.
        spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
        shutil.copyfileobj(stdin, spool)
        spool.seek(0)
        return spool


def _run_child(
    options: Any,
    env: Mapping[str, str],
    *,
    stdin: IO[bytes] | None,
    out: TextIO,
    id_map: IdMap,
    build: Callable[..., Any] | None,
) -> Any:
    with contextlib.ExitStack() as stack:
        request = stack.enter_context(tempfile.TemporaryFile())
        pickle.dump((options, dict(env)), request)
        request.seek(0)
        result = stack.enter_context(tempfile.TemporaryFile())
        ready_r, ready_w = os.pipe()
        ack_r, ack_w = os.pipe()
        log_r, log_w = os.pipe()
        fds = (request.fileno(), result.fileno(), ready_w, ack_r)
        argv = [sys.executable, "-c", BOOTSTRAP, str(ENGINE_ROOT), str(os.getpid()), *map(str, fds)]
        out.flush()
        child_stdin = _stdin_for_child(stdin, stack)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=child_stdin,
                stderr=log_w,
                pass_fds=fds,
            )
        except OSError as e:
            for fd in (ready_r, ready_w, ack_r, ack_w, log_r, log_w):
                os.close(fd)
            raise BuildError(f"rootless build: cannot start {sys.executable}: {e}") from None
        for fd in (ready_w, ack_r, log_w):
            os.close(fd)
        try:
            map_child(proc, id_map, ready_r, ack_w)
            _copy_log(log_r, out)
            status = proc.wait()
        except BaseException:
            _stop(proc)
            raise
        finally:
            os.close(log_r)
        result.seek(0)
        payload = result.read()
        if payload[:1] == NO_USERNS:
            # Unprivileged user namespaces are off here (sysctl, seccomp): RUN could not
            # run either, but a build without RUN still can, with the caller's owners.
            _note_once("no-userns", f"rootless build: {payload[1:].decode()}; " + OWNERS, out)
            if child_stdin not in (stdin, subprocess.DEVNULL):  # spooled, still unread
                child_stdin.seek(0)
                stdin = child_stdin
            return _in_process(build, options, env, stdin=stdin, out=out)
    return _outcome(payload, status)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM first: the child then runs the build's cleanup, which only it can do (the
    workspace holds files owned by subordinate ids). SIGKILL if it does not end."""
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _copy_log(fd: int, out: TextIO) -> None:
    pending = b""
    while chunk := os.read(fd, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            out.write("".join(line.decode("utf-8", "replace") + "\n" for line in lines))
            out.flush()
    if pending:
        out.write(pending.decode("utf-8", "replace"))
        out.flush()


def _outcome(payload: bytes, status: int) -> Any:
    if not payload:
        raise BuildError(f"rootless build: the build process ended without a result ({status})")
    kind, value = pickle.loads(payload)  # our own child wrote it
    if kind == "ok":
        return value
    raise _rebuild_error(value)


def _rebuild_error(value: tuple[str, str, str, int, dict[str, Any]]) -> BrickyardError:
    """The child's error as the same class and message (exceptions with keyword-only
    __init__ arguments, like DockerfileError, do not survive pickling as such)."""
    module, qualname, message, exit_code, attrs = value
    cls: Any = BrickyardError
    with contextlib.suppress(ImportError, AttributeError):
        found = getattr(__import__(module, fromlist=["_"]), qualname)
        if isinstance(found, type) and issubclass(found, BrickyardError):
            cls = found
    exc: BrickyardError = cls.__new__(cls)
    exc.args = (message,)
    exc.__dict__.update(attrs)
    if cls is BrickyardError:
        exc.exit_code = exit_code
    return exc


# ---- child side -------------------------------------------------------------------------


class _NoUserNamespace(OSError):
    pass


def _unshare_user() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        err = ctypes.get_errno()
        raise _NoUserNamespace(f"cannot make a user namespace: {os.strerror(err)}")


def _enter(ready_w: int, ack_r: int) -> None:
    try:
        _unshare_user()
    except OSError:
        os.write(ready_w, b"0")
        raise
    os.write(ready_w, b"1")
    answer = os.read(ack_r, 1)
    if answer != b"1":
        raise OSError("the parent could not map this build's user namespace ids")
    # The caller's supplementary groups are unmapped here; root inside has none.
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _encode_error(exc: BaseException) -> tuple[str, tuple[str, str, str, int, dict[str, Any]]]:
    attrs: dict[str, Any] = {}
    for key, val in vars(exc).items():
        with contextlib.suppress(pickle.PicklingError, TypeError, AttributeError):
            pickle.dumps(val)
            attrs[key] = val
    code = getattr(exc, "exit_code", BrickyardError.exit_code)
    return "err", (type(exc).__module__, type(exc).__qualname__, str(exc), int(code), attrs)


def child_main(args: list[str]) -> int:
    """Inside the child: enter and wait to be mapped, become root there, build."""
    global _inside
    parent, request_fd, result_fd, ready_w, ack_r = (int(a) for a in args)
    # If the caller dies (a CI job cancelled), stop too, but through the build's finally
    # blocks: only this namespace can remove the workspace's subordinate-owned files.
    signal.signal(signal.SIGTERM, _terminated)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        return 1  # the parent was gone before the death signal was set
    with os.fdopen(result_fd, "wb") as result:
        try:
            try:
                _enter(ready_w, ack_r)
            finally:
                os.close(ready_w)
                os.close(ack_r)
        except _NoUserNamespace as e:
            result.write(NO_USERNS + str(e).encode())
            return 1
        except OSError as e:
            pickle.dump(_encode_error(BuildError(f"rootless build: {e.strerror or e}")), result)
            return 1
        _inside = True
        with os.fdopen(request_fd, "rb") as request:
            options, env = pickle.load(request)  # our parent wrote it
        from engine.build import build

        try:
            value = build(options, env, stdin=sys.stdin.buffer, out=sys.stderr)
        except BrickyardError as exc:
            pickle.dump(_encode_error(exc), result)
            return 1
        except KeyboardInterrupt:
            interrupted = BrickyardError("interrupted")
            interrupted.exit_code = 130
            pickle.dump(_encode_error(interrupted), result)
            return 130
        try:
            pickle.dump(("ok", value), result)
        except (pickle.PicklingError, TypeError, AttributeError):
            # The artifacts point into a workspace that is gone anyway; keep the rest.
            result.seek(0)
            result.truncate()
            pickle.dump(("ok", _without_artifacts(value)), result)
    return 0


def _without_artifacts(value: Any) -> Any:
    import dataclasses

    return dataclasses.replace(value, artifacts=None)
