"""Rootless id mapping: the caller is root inside, and its /etc/subuid and /etc/subgid
ranges (if any) are ids 1..N, mapped by the setuid helpers newuidmap/newgidmap, as podman
and buildah do. Without a range only uid/gid 0 exist inside the step."""

from __future__ import annotations

import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.errors import BuildError


class IdMapper(Protocol):
    def apply(self, pid: int) -> None: ...


@dataclass(frozen=True)
class IdMap:
    uid_args: tuple[str, ...]  # newuidmap's "inside outside count" triples
    gid_args: tuple[str, ...]
    newuidmap: str
    newgidmap: str

    def apply(self, pid: int) -> None:
        for tool, args in ((self.newuidmap, self.uid_args), (self.newgidmap, self.gid_args)):
            res = subprocess.run(
                [tool, str(pid), *args], capture_output=True, text=True, check=False
            )
            if res.returncode != 0:
                detail = (res.stderr.strip().splitlines() or ["failed"])[-1]
                raise BuildError(f"rootless: {Path(tool).name}: {detail}")


class IdentityMap:
    """Every id of our own namespace mapped to itself: for root without CAP_SYS_ADMIN (a
    default pod), whose step then gets a user namespace only to own its mount and pid
    namespaces. Written by the engine (CAP_SETUID/CAP_SETGID in the parent namespace) into
    the child's maps; our own extents are copied, so this also works inside a container
    that itself runs in a user namespace with a partial range."""

    def apply(self, pid: int) -> None:
        try:
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/self/{name}") as own:
                    extents = [line.split() for line in own if line.strip()]
                lines = "".join(f"{first} {first} {count}\n" for first, _, count in extents)
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(lines)
        except OSError as e:
            raise BuildError(f"cannot map the step's user namespace: {e.strerror}") from None


def _range(path: Path, owners: tuple[str, ...]) -> tuple[int, int] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in owners:
            continue
        start, count = fields[1], fields[2]
        if start.isdigit() and count.isdigit() and int(count) > 0:
            return int(start), int(count)
    return None


def subid_map(euid: int, egid: int, etc: Path = Path("/etc")) -> IdMap | None:
    """The mapping for this caller, or None when it has no subordinate ids or the helpers
    are missing (then the single-id mapping is used)."""
    try:
        name = pwd.getpwuid(euid).pw_name
    except KeyError:
        name = str(euid)
    owners = (name, str(euid))
    uids, gids = _range(etc / "subuid", owners), _range(etc / "subgid", owners)
    newuidmap, newgidmap = shutil.which("newuidmap"), shutil.which("newgidmap")
    if not (uids and gids and newuidmap and newgidmap):
        return None
    return IdMap(
        uid_args=("0", str(euid), "1", "1", str(uids[0]), str(uids[1])),
        gid_args=("0", str(egid), "1", "1", str(gids[0]), str(gids[1])),
        newuidmap=newuidmap,
        newgidmap=newgidmap,
    )


@dataclass(frozen=True)
class ContainerIds:
    """Host -> container id translation for what a rootless step wrote: the snapshotter
    or layer writer records container ids (the caller is root inside, subuid_start+k is
    k+1). Ids outside every range are unmapped inside and show as nobody (65534)."""

    host_uid: int
    host_gid: int
    uid_range: tuple[int, int] | None = None  # (start, count) from /etc/subuid
    gid_range: tuple[int, int] | None = None

    def uid(self, host: int) -> int:
        return _to_container(host, self.host_uid, self.uid_range)

    def gid(self, host: int) -> int:
        return _to_container(host, self.host_gid, self.gid_range)


OVERFLOW_ID = 65534


def _to_container(host: int, caller: int, sub: tuple[int, int] | None) -> int:
    if host == caller:
        return 0
    if sub is not None and sub[0] <= host < sub[0] + sub[1]:
        return host - sub[0] + 1
    return OVERFLOW_ID


def rootless_container_ids(euid: int, egid: int, etc: Path = Path("/etc")) -> ContainerIds:
    """The translation matching what RootlessIsolation maps for this caller."""
    mapping = subid_map(euid, egid, etc)
    if mapping is None:
        return ContainerIds(euid, egid)
    return ContainerIds(
        euid,
        egid,
        uid_range=(int(mapping.uid_args[4]), int(mapping.uid_args[5])),
        gid_range=(int(mapping.gid_args[4]), int(mapping.gid_args[5])),
    )
