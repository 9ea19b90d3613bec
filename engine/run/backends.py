"""The isolation backends: chroot (root), rootless (user namespace), inplace (container /)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from engine.errors import BuildError
from engine.run.idmap import subid_map
from engine.run.prepare import prepare_rootfs
from engine.run.spawn import probe_child, run_child, spec_for
from engine.run.user import resolve_user

_notes_given: set[str] = set()
_probe_cache: dict[str, bool] = {}


def _note_once(key: str, text: str, out: TextIO) -> None:
    if key not in _notes_given:
        _notes_given.add(key)
        out.write(f"note: {text}\n")
        out.flush()


def _mounts_allowed(mode: str) -> bool:
    """Probed once per process and mode: can a child make mount+pid namespaces?"""
    if mode not in _probe_cache:
        spec = {"mode": mode, "host_uid": os.geteuid(), "host_gid": os.getegid()}
        _probe_cache[mode] = probe_child(spec)
    return _probe_cache[mode]


def _check_rootfs(rootfs: Path) -> Path:
    # The real path: the child chroots there and stray processes are found by it.
    rootfs = Path(os.path.realpath(rootfs))
    if not rootfs.is_dir():
        raise BuildError(f"RUN: rootfs is not a directory: {rootfs}")
    if os.path.realpath(rootfs) == "/":
        # chroot and rootless must never write the host's /: that is inplace's job.
        raise BuildError("RUN: refusing to use / as a chroot rootfs (use --isolation inplace)")
    return rootfs


class ChrootIsolation:
    """chroot into a private rootfs; mount+pid namespaces when allowed, mknod otherwise."""

    name = "chroot"

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
    ) -> int:
        rootfs = _check_rootfs(rootfs)
        ids = resolve_user(user, rootfs)
        use_mounts = _mounts_allowed(self.name)
        if not use_mounts:
            _note_once(
                "chroot-nomount",
                "mounts are not permitted here; RUN gets /dev nodes made with mknod "
                "and no /proc or /sys",
                out,
            )
        prep = prepare_rootfs(rootfs, use_mounts=use_mounts, make_dev_nodes=True)
        try:
            spec = spec_for(
                mode=self.name,
                rootfs=rootfs,
                argv=argv,
                env=env,
                cwd=cwd,
                uid=ids.uid,
                gid=ids.gid,
                groups=ids.groups,
                home=ids.home,
                use_mounts=use_mounts,
                mountpoints=prep.mountpoints,
                binds=prep.binds,
            )
            return run_child(spec, step_label=step_label, out=out)
        finally:
            prep.restore()


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
    ) -> int:
        rootfs = _check_rootfs(rootfs)
        ids = resolve_user(user, rootfs)
        if not _mounts_allowed(self.name):
            raise BuildError(
                "rootless isolation needs unprivileged user and mount namespaces, "
                "which this kernel or sandbox does not allow"
            )
        prep = prepare_rootfs(rootfs, use_mounts=True, make_dev_nodes=False)
        try:
            spec = spec_for(
                mode=self.name,
                rootfs=rootfs,
                argv=argv,
                env=env,
                cwd=cwd,
                uid=ids.uid,
                gid=ids.gid,
                groups=ids.groups,
                home=ids.home,
                use_mounts=True,
                mountpoints=prep.mountpoints,
                binds=prep.binds,
            )
            id_map = subid_map(os.geteuid(), os.getegid())
            return run_child(spec, step_label=step_label, out=out, id_map=id_map)
        finally:
            prep.restore()


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
    ) -> int:
        if not self.allowed:
            raise BuildError(
                "inplace isolation runs only inside brickyard's executor image "
                "(it writes the container's own /)"
            )
        if str(rootfs) != "/":
            raise BuildError(f"inplace isolation needs rootfs /, got {rootfs}")
        ids = resolve_user(user, Path("/"))
        os.makedirs(cwd or "/", exist_ok=True)
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
            mountpoints=[],
            binds=[],
        )
        return run_child(spec, step_label=step_label, out=out)
