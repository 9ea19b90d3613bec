"""Child side of a RUN step: namespaces, mounts, chroot, ids, exec.

Run as `python -I -S _child.py < SPEC_JSON` (standard library only, no engine import) so the
engine never forks a Python interpreter that holds threads or locks. The parent has already
prepared the rootfs (mountpoints, resolv.conf/hosts files, /dev nodes when mounts are not
allowed); this side only does what has to happen inside the new process.

Setup failures are written to the report fd as one line and end with exit status 125,
so the parent can tell them from the command's own exit status.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import json
import os
import platform
import signal
import socket
import struct
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
ST_KEEP = 2 | 4 | 8 | 1024 | 2048  # statvfs nosuid, nodev, noexec, noatime, nodiratime
ST_RELATIME = 4096
MS_RELATIME = 1 << 21
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
# pivot_root has no libc wrapper: syscall numbers by `uname -m`
SYS_PIVOT_ROOT = {
    "x86_64": 155,
    "aarch64": 41,
    "riscv64": 41,
    "ppc64le": 203,
    "s390x": 217,
    "i686": 217,
    "armv7l": 218,
}
SETUP_FAILED = 125

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]


class SetupError(Exception):
    pass


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(src: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)

    ret = _libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data) if data else None)
    _check(ret, f"mount {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter_user_namespace(uid: int, gid: int, sync_fds: list[int] | None = None) -> None:
    """A new user namespace with the caller as uid/gid 0. With sync_fds the parent maps
    the caller's /etc/subuid range too (newuidmap/newgidmap on our pid), so other ids
    exist inside; otherwise a single mapping of the caller only."""
    unshare(CLONE_NEWUSER)
    if sync_fds:
        ready, ack = sync_fds
        os.write(ready, b"1")
        answer = os.read(ack, 1)
        os.close(ready)
        os.close(ack)
        if answer != b"1":
            raise SetupError("could not map this step's user namespace ids")
        return
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1\n")
    _write("/proc/self/gid_map", f"0 {gid} 1\n")


DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
}


def mount_dev(target: str, in_userns: bool) -> None:
    """A private /dev like runc's: tmpfs with the safe host nodes bound in, never the
    host's whole /dev (a root RUN could otherwise write to host disks)."""
    mount("tmpfs", target, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name in DEV_NODES:
        node = os.path.join(target, name)
        open(node, "w").close()
        try:
            mount(f"/dev/{name}", node, None, MS_BIND)
        except OSError:
            os.unlink(node)  # e.g. no controlling tty on the host side
    for name, link in DEV_LINKS.items():
        os.symlink(link, os.path.join(target, name))
    for name, mode in (("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o755)):
        os.mkdir(os.path.join(target, name))
        os.chmod(os.path.join(target, name), mode)
    opts = "newinstance,ptmxmode=0666,mode=0620" + ("" if in_userns else ",gid=5")
    with contextlib.suppress(OSError):
        mount("devpts", os.path.join(target, "pts"), "devpts", MS_NOSUID | MS_NOEXEC, opts)


def mount_sys(target: str) -> None:
    try:
        mount("sysfs", target, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        # A user namespace that does not own the network namespace cannot mount sysfs.
        mount("/sys", target, None, MS_BIND | MS_REC)
        with contextlib.suppress(OSError):
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def mount_proc(target: str) -> None:
    try:
        mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        # A container whose /proc has masked paths refuses a fresh procfs
        # (mount_too_revealing); its own /proc bound recursively is the fallback.
        mount("/proc", target, None, MS_BIND | MS_REC)


def setup_mounts(spec: dict) -> None:
    rootfs = spec["rootfs"]
    in_userns = bool(spec.get("userns"))
    mp = spec["mountpoints"]
    # rootfs becomes a mount point of its own, so the step can pivot_root into it.
    mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    if "proc" in mp:
        mount_proc(os.path.join(rootfs, "proc"))
    if "dev" in mp:
        mount_dev(os.path.join(rootfs, "dev"), in_userns)
    if "sys" in mp:
        mount_sys(os.path.join(rootfs, "sys"))
    for src, dst in spec["binds"]:
        mount(src, dst, None, MS_BIND)
    if spec.get("pipes"):
        write_pipes(os.path.join(rootfs, "dev", "pipes"), spec["pipes"])
    for kind, src, dst, readonly in spec.get("step_mounts") or []:
        step_mount(kind, src, dst, readonly, rootfs)


def write_pipes(top: str, pipes: list) -> None:
    """BuildKit's /dev/pipes: small files (heredoc scripts) in the step's private /dev."""
    os.mkdir(top, 0o755)
    for name, content, mode in pipes:
        path = os.path.join(top, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(content))
        os.chmod(path, mode)


def step_mount(kind: str, src: str, dst: str, readonly: bool, rootfs: str = "/") -> None:
    """One RUN --mount on its host path (made by the parent; inside an earlier mount of
    this step, e.g. a tmpfs, made here). An earlier mount may hold symlinks the parent
    did not see: the target must still be inside rootfs."""
    real = os.path.realpath(dst)
    if rootfs != "/" and not (real + "/").startswith(rootfs.rstrip("/") + "/"):
        raise SetupError(f"RUN --mount: target {dst[len(rootfs) :]} leaves the rootfs")
    if not os.path.lexists(dst):
        if kind == "bind" and not os.path.isdir(src):
            open(dst, "w").close()
        else:
            os.makedirs(dst, 0o755)
    if kind == "tmpfs":
        mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV)
        return
    mount(src, dst, None, MS_BIND | MS_REC)
    if readonly:
        # A remount must keep the flags the kernel locked on the source (in a user
        # namespace dropping nosuid/nodev/noexec is EPERM).
        st = os.statvfs(dst).f_flag
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | (st & ST_KEEP)
        flags |= MS_RELATIME if st & ST_RELATIME else 0
        mount(None, dst, None, flags)


def loopback_up() -> None:
    """RUN --network=none: a fresh network namespace has only `lo`, and it is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def become_user(spec: dict) -> None:
    uid, gid, groups = spec["uid"], spec["gid"], spec["groups"]
    if spec.get("userns") == "single":
        if uid != 0 or gid != 0 or groups:
            # A single-id mapping knows only root; other ids would be EINVAL.
            raise SetupError(f"rootless isolation maps only uid 0; cannot switch to {uid}:{gid}")
        return
    try:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    except OSError as e:
        if spec.get("userns"):  # EINVAL: the id is outside the mapped ranges
            raise SetupError(f"cannot switch to {uid}:{gid}: {e.strerror}") from None
        raise


def pivot_into(rootfs: str) -> None:
    """pivot_root(".", ".") then detach the old root, as runc does: unlike chroot, the
    host's filesystem is then gone from the step's mount namespace, not just hidden."""
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(38, "pivot_root: unknown syscall number on this architecture")
    os.chdir(rootfs)
    _check(_libc.syscall(number, b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")


def enter_root(spec: dict) -> None:
    if spec["use_mounts"] and spec["mode"] != "inplace":
        try:
            pivot_into(spec["rootfs"])
            return
        except OSError:
            pass  # e.g. a root filesystem that cannot be pivoted (initramfs): chroot
    os.chroot(spec["rootfs"])
    os.chdir("/")


def exec_command(spec: dict) -> None:
    enter_root(spec)
    cwd = spec["cwd"] or "/"
    os.makedirs(cwd, mode=0o755, exist_ok=True)
    os.chdir(cwd)
    become_user(spec)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    exec_in_path(spec["argv"], spec["env"])


def exec_in_path(argv: list[str], env: dict[str, str]) -> None:
    """execvpe without os's lazy imports (they would be looked up inside the chroot),
    with Go's exec.LookPath messages, as Docker reports them."""
    name = argv[0]
    try:
        if "/" in name:
            os.execve(name, argv, env)
        denied = False
        for d in env.get("PATH", "").split(":"):
            try:
                os.execve(os.path.join(d or ".", name), argv, env)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except PermissionError:
                denied = True
        if denied:
            raise PermissionError
        raise FileNotFoundError
    except FileNotFoundError:
        where = "" if "/" in name else " in $PATH"
        raise SetupError(f'exec: "{name}": executable file not found{where}') from None
    except PermissionError:
        raise SetupError(f'exec: "{name}": permission denied') from None
    except OSError as e:
        raise SetupError(f'exec: "{name}": {e.strerror}') from None


def _status_of(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)


def probe(spec: dict) -> int:
    """Exit 0 when this process may make the namespaces and mounts a step needs."""
    try:
        if spec.get("userns"):
            enter_user_namespace(spec["host_uid"], spec["host_gid"])
        unshare(CLONE_NEWNS | CLONE_NEWPID)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
    except OSError as e:
        print(e.strerror, file=sys.stderr)
        return 1
    return 0


def _read_stdin() -> bytes:
    chunks = []
    while chunk := os.read(0, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def main() -> int:
    spec = json.loads(_read_stdin())
    # The step's stdin is /dev/null, as in docker build (opened before any chroot).
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if spec.get("probe"):
        return probe(spec)
    report = spec["report_fd"]
    for fd in [report, *(spec.get("sync_fds") or [])]:
        os.set_inheritable(fd, False)
    try:
        if spec.get("userns"):
            enter_user_namespace(spec["host_uid"], spec["host_gid"], spec.get("sync_fds"))
        no_net = spec.get("network") == "none"
        if spec["use_mounts"]:
            unshare(CLONE_NEWNS | CLONE_NEWPID | (CLONE_NEWNET if no_net else 0))
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            if no_net:
                loopback_up()
            pid = os.fork()  # the child is pid 1 of the step's pid namespace
            if pid:
                os.close(report)
                _, status = os.waitpid(pid, 0)
                return _status_of(status)
            setup_mounts(spec)
        elif spec.get("step_mounts") or no_net:
            # inplace: / is the container's own; the step's mounts (and network) are
            # made in namespaces of its own, no pid namespace, no pivot.
            unshare(CLONE_NEWNS | (CLONE_NEWNET if no_net else 0))
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            if no_net:
                loopback_up()
            for kind, src, dst, readonly in spec["step_mounts"]:
                step_mount(kind, src, dst, readonly)
        exec_command(spec)
    except Exception as e:  # process boundary: every setup failure goes to the parent
        os.write(report, (str(e).replace("\n", " ") + "\n").encode())
        return SETUP_FAILED
    return SETUP_FAILED  # not reached: exec replaced the process


if __name__ == "__main__":
    sys.exit(main())
