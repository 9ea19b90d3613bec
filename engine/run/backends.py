"""The isolation backends: chroot (root), rootless (user namespace), inplace (container /)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from engine.errors import BuildError
from engine.run.idmap import IdentityMap, IdMapper, subid_map
from engine.run.mounts import StepMount, check_network, pipe_files
from engine.run.prepare import Prepared, mount_target, prepare_rootfs, write_pipes
from engine.run.spawn import probe_child, run_child, spec_for
from engine.run.user import UserIds, resolve_user

_notes_given: set[str] = set()
_probe_cache: dict[tuple[str, str | None], bool] = {}

# How a step gets its mounts, best first.
MOUNTS = "mounts"  # mount+pid namespaces directly (CAP_SYS_ADMIN)
USERNS_MOUNTS = "userns"  # the same inside a user namespace (root without CAP_SYS_ADMIN)
MKNOD = "mknod"  # no mounts at all: /dev nodes made with mknod, no /proc or /sys


class NotAvailableHere(BuildError):
    """A RUN option this isolation tier cannot give (no namespaces for --network=none or
    --mount). The build names the Dockerfile line; the message says what is missing."""


def _note_once(key: str, text: str, out: TextIO) -> None:
    if key not in _notes_given:
        _notes_given.add(key)
        out.write(f"note: {text}\n")
        out.flush()


def _probe(mode: str, userns: str | None) -> bool:
    """Probed once per process: can a child make the namespaces a step needs?"""
    key = (mode, userns)
    if key not in _probe_cache:
        spec = {
            "mode": mode,
            "userns": userns,
            "host_uid": os.geteuid(),
            "host_gid": os.getegid(),
        }
        _probe_cache[key] = probe_child(spec)
    return _probe_cache[key]


def _check_rootfs(rootfs: Path) -> Path:
    # The real path: the child chroots there and stray processes are found by it.
    rootfs = Path(os.path.realpath(rootfs))
    if not rootfs.is_dir():
        raise BuildError(f"RUN: rootfs is not a directory: {rootfs}")
    if str(rootfs) == "/":
        # chroot and rootless must never write the host's /: that is inplace's job.
        raise BuildError("RUN: refusing to use / as a chroot rootfs (use --isolation inplace)")
    return rootfs


def _run_prepared(
    mode: str,
    argv: list[str],
    *,
    rootfs: Path,
    env: Mapping[str, str],
    cwd: str,
    ids: UserIds,
    step_label: str,
    out: TextIO,
    use_mounts: bool,
    userns: str | None,
    id_map: IdMapper | None,
    files: Sequence[tuple[str, bytes, int]] = (),
    network: str = "default",
    mounts: Sequence[StepMount] = (),
) -> int:
    prep = prepare_rootfs(
        rootfs, use_mounts=use_mounts, make_dev_nodes=not use_mounts, files=files, mounts=mounts
    )
    try:
        spec = spec_for(
            mode=mode,
            rootfs=rootfs,
            argv=argv,
            env=env,
            cwd=cwd,
            uid=ids.uid,
            gid=ids.gid,
            groups=ids.groups,
            home=ids.home,
            use_mounts=use_mounts,
            userns=userns,
            mountpoints=prep.mountpoints,
            binds=prep.binds,
            pipes=prep.pipes,
            step_mounts=prep.step_mounts,
            network=network,
        )
        return run_child(spec, step_label=step_label, out=out, id_map=id_map)
    finally:
        prep.restore()


class ChrootIsolation:
    """chroot into a private rootfs. Mount and pid namespaces (fresh /proc, a private /dev,
    read-only /sys) when allowed: directly with CAP_SYS_ADMIN, else inside an identity-mapped
    user namespace when the kernel and seccomp allow one (userns=False turns this tier off);
    otherwise no mounts, /dev nodes made with mknod, said once."""

    name = "chroot"

    def __init__(self, *, userns: bool = True) -> None:
        self.userns = userns

    def tier(self) -> str:
        if _probe(self.name, None):
            return MOUNTS
        if self.userns and _probe(self.name, "single"):
            return USERNS_MOUNTS
        return MKNOD

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
    ) -> int:
        check_network(network)
        if os.geteuid() != 0:
            raise BuildError("chroot isolation needs root; use --isolation rootless")
        rootfs = _check_rootfs(rootfs)
        ids = resolve_user(user, rootfs)
        tier = self.tier()
        if tier == MKNOD:
            _refuse_without_namespaces(network, mounts)
            _note_once(
                "chroot-nomount",
                "mounts are not permitted here; RUN gets /dev nodes made with mknod "
                "and no /proc or /sys",
                out,
            )
        in_userns = tier == USERNS_MOUNTS
        return _run_prepared(
            self.name,
            argv,
            rootfs=rootfs,
            env=env,
            cwd=cwd,
            ids=ids,
            step_label=step_label,
            out=out,
            use_mounts=tier != MKNOD,
            userns="external" if in_userns else None,
            id_map=IdentityMap() if in_userns else None,
            files=files,
            network=network,
            mounts=mounts,
        )


class RootlessIsolation:
    """A user namespace mapping the caller to uid 0 (and its /etc/subuid range to 1..N),
    plus mount+pid namespaces and chroot. On disk, files the step makes as root belong
    to the caller, those made as uid N>0 to subuid_start+N-1."""

    name = "rootless"

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
    ) -> int:
        check_network(network)
        rootfs = _check_rootfs(rootfs)
        ids = resolve_user(user, rootfs)
        if not _probe(self.name, "single"):
            raise BuildError(
                "rootless isolation needs unprivileged user and mount namespaces, "
                "which this kernel or sandbox does not allow"
            )
        id_map = subid_map(os.geteuid(), os.getegid())
        return _run_prepared(
            self.name,
            argv,
            rootfs=rootfs,
            env=env,
            cwd=cwd,
            ids=ids,
            step_label=step_label,
            out=out,
            use_mounts=True,
            userns="external" if id_map else "single",
            id_map=id_map,
            files=files,
            network=network,
            mounts=mounts,
        )


class InplaceIsolation:
    """kaniko's model: the container's own / is the rootfs. Only usable when the executor
    image enabled it (allowed=True) and the caller passes rootfs=/ explicitly."""

    name = "inplace"

    def __init__(self, *, allowed: bool = False) -> None:
        self.allowed = allowed

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
    ) -> int:
        check_network(network)
        if not self.allowed:
            raise BuildError(
                "inplace isolation runs only inside brickyard's executor image "
                "(it writes the container's own /)"
            )
        if str(rootfs) != "/":
            raise BuildError(f"inplace isolation needs rootfs /, got {rootfs}")
        ids = resolve_user(user, Path("/"))
        os.makedirs(cwd or "/", exist_ok=True)
        # --mount / --network=none: a mount (and network) namespace of the step's own,
        # directly or inside an identity-mapped user namespace, as chroot's tiers.
        userns: str | None = None
        if mounts or network == "none":
            tier = ChrootIsolation().tier()
            if tier == MKNOD:
                _refuse_without_namespaces(network, mounts)
            userns = "external" if tier == USERNS_MOUNTS else None
        spec = spec_for(
            mode=self.name,
            rootfs=Path("/"),
            argv=argv,
            env=env,
            cwd=cwd,
            uid=ids.uid,
            gid=ids.gid,
            groups=ids.groups,
            home=ids.home,
            use_mounts=False,
            userns=userns,
            mountpoints=[],
            binds=[],
            network=network,
        )
        prep = Prepared()
        try:
            write_pipes(prep, Path("/dev"), pipe_files(files))
            spec["step_mounts"] = [list(mount_target(prep, Path("/"), m)) for m in mounts]
            id_map = IdentityMap() if userns else None
            return run_child(spec, step_label=step_label, out=out, id_map=id_map)
        finally:
            prep.restore()


def _refuse_without_namespaces(network: str, mounts: Sequence[StepMount]) -> None:
    if network == "none":
        raise NotAvailableHere(
            "RUN --network=none needs a network namespace, which is not allowed here"
        )
    if mounts:
        raise NotAvailableHere("RUN --mount needs mount namespaces, which are not allowed here")
