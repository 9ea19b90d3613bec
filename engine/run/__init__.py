"""How a RUN step executes: isolation backends behind one Protocol.

    iso = select_isolation(options.isolation, os.geteuid())
    status = iso.run(argv, rootfs=rootfs, env=env, cwd=workdir, user=user,
                     step_label="[2/5]", out=sys.stderr)

`run_step` does the same and raises BuildError "step N: RUN <cmd>: exit status K".
The snapshotter must ignore `transient_paths()` (relative to the rootfs) after a RUN.

chroot (root) gives a step, best first: mount+pid namespaces with a fresh /proc, a private
/dev and read-only /sys (CAP_SYS_ADMIN); the same inside an identity-mapped user namespace
(no CAP_SYS_ADMIN, user namespaces allowed: a default pod without seccomp); no mounts at
all, /dev nodes made with mknod (Docker's seccomp profile), said once. rootless (non-root)
maps the caller to 0 and its /etc/subuid range to 1..N. Every step runs in its own session;
its process group (and pid namespace) is killed when its main process exits.

Per step, `run(..., files=[(name, bytes, mode)])` puts files in the step's /dev/pipes (BuildKit's
heredoc scripts), `network="none"` gives it a network namespace with only loopback, and
`mounts=[StepMount(...)]` binds host paths or a tmpfs at container paths (RUN --mount, resolved
by the build). Tiers without namespaces refuse the last two with `NotAvailableHere`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TextIO

from engine.errors import BuildError, UsageError
from engine.run.backends import (
    ChrootIsolation,
    InplaceIsolation,
    NotAvailableHere,
    RootlessIsolation,
)
from engine.run.idmap import ContainerIds, rootless_container_ids
from engine.run.mounts import PIPES_DIR, StepMount
from engine.run.prepare import TRANSIENT_PATHS
from engine.run.spawn import DEFAULT_PATH, step_env
from engine.run.user import UserIds, resolve_chown, resolve_user


class Isolation(Protocol):
    name: str

    def run(
        self,
        argv: list[str],
        *,
        rootfs: Path,
        env: Mapping[str, str],
        cwd: str,
        user: str | None,
        step_label: str,
        out: TextIO,
        files: Sequence[tuple[str, bytes, int]] = (),
        network: str = "default",
        mounts: Sequence[StepMount] = (),
    ) -> int: ...


BACKENDS: dict[str, Callable[[], Isolation]] = {
    "chroot": ChrootIsolation,
    "rootless": RootlessIsolation,
    "inplace": InplaceIsolation,
}


def select_isolation(name: str | None, euid: int, *, executor_image: bool = False) -> Isolation:
    """--isolation NAME, or chroot as root and rootless otherwise. inplace is never a
    default and runs only when the executor image says so (executor_image=True)."""
    if not name:
        return ChrootIsolation() if euid == 0 else RootlessIsolation()
    if name not in BACKENDS:
        raise UsageError(f"--isolation: unknown backend {name!r} (chroot, rootless, inplace)")
    if name == "inplace":
        return InplaceIsolation(allowed=executor_image)
    return BACKENDS[name]()


def transient_paths() -> tuple[str, ...]:
    """Rootfs paths RUN provides or mounts for the step only; never snapshot them."""
    return TRANSIENT_PATHS


def run_step(
    isolation: Isolation,
    argv: list[str],
    *,
    step: int,
    command: str,
    rootfs: Path,
    env: Mapping[str, str],
    cwd: str,
    user: str | None,
    step_label: str,
    out: TextIO,
) -> None:
    """Run one step; a non-zero exit or a setup failure becomes a one-line BuildError."""
    try:
        status = isolation.run(
            argv, rootfs=rootfs, env=env, cwd=cwd, user=user, step_label=step_label, out=out
        )
    except BuildError as e:
        raise BuildError(f"step {step}: RUN {command}: {e}") from e
    if status != 0:
        raise BuildError(f"step {step}: RUN {command}: exit status {status}")


__all__ = [
    "BACKENDS",
    "DEFAULT_PATH",
    "PIPES_DIR",
    "ChrootIsolation",
    "ContainerIds",
    "InplaceIsolation",
    "Isolation",
    "NotAvailableHere",
    "RootlessIsolation",
    "StepMount",
    "UserIds",
    "resolve_chown",
    "resolve_user",
    "rootless_container_ids",
    "run_step",
    "select_isolation",
    "step_env",
    "transient_paths",
]
