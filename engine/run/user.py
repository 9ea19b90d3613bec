"""USER resolution against the rootfs' /etc/passwd and /etc/group, with runc's rules.

Docker (runc's GetExecUser) semantics:
- "name" or "uid", optionally ":group" or ":gid".
- A name must exist in passwd; a number need not (uid N, gid 0, home "/").
- Without an explicit group, the primary gid comes from passwd and the supplementary
  groups are the /etc/group entries listing the user's name. With an explicit group,
  there are no supplementary groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import BuildError
from engine.fs.safe import resolve_in_root

MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class UserIds:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    home: str = "/"


@dataclass(frozen=True)
class _PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class _GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _read_db(rootfs: Path, rel: str) -> list[list[str]]:
    """Colon-separated records of a rootfs file; missing file -> no records.
    Reads through resolve-in-root so a symlinked /etc never reads the host's files."""
    path = _safe_path(rootfs, rel)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rows.append(line.split(":"))
    return rows


def _safe_path(rootfs: Path, rel: str) -> Path:

    return resolve_in_root(rootfs, rel)


def _parse_int(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    return None


def _passwd(rootfs: Path) -> list[_PasswdEntry]:
    out = []
    for f in _read_db(rootfs, "/etc/passwd"):
        if len(f) < 4:
            continue
        uid, gid = _parse_int(f[2]), _parse_int(f[3])
        if uid is None or gid is None:
            continue
        out.append(_PasswdEntry(f[0], uid, gid, f[5] if len(f) > 5 and f[5] else "/"))
    return out


def _groups(rootfs: Path) -> list[_GroupEntry]:
    out = []
    for f in _read_db(rootfs, "/etc/group"):
        if len(f) < 3:
            continue
        gid = _parse_int(f[2])
        if gid is None:
            continue
        members = tuple(m for m in (f[3].split(",") if len(f) > 3 else []) if m)
        out.append(_GroupEntry(f[0], gid, members))
    return out


def resolve_user(spec: str | None, rootfs: Path) -> UserIds:
    """Turn a USER value into numeric ids, the way `docker run --user` does."""
    user_arg, _, group_arg = (spec or "").partition(":")
    # No USER means uid 0 even without a passwd file (FROM scratch), as in runc's defaults.
    user_arg = user_arg or "0"
    passwd = _passwd(rootfs)
    by_user = [e for e in passwd if e.name == user_arg or str(e.uid) == user_arg]
    numeric_uid = _parse_int(user_arg)
    if by_user:
        # runc prefers the name match, then the uid match, first entry wins.
        named = [e for e in by_user if e.name == user_arg]
        entry = (named or by_user)[0]
        uid, gid, home, name = entry.uid, entry.gid, entry.home, entry.name
    elif numeric_uid is not None:
        uid, gid, home, name = numeric_uid, 0, "/", ""
    else:
        raise BuildError(f"unable to find user {user_arg}: no matching entries in passwd file")
    if uid > MAX_ID:
        raise BuildError(f"uid {uid} out of range")

    groups = _groups(rootfs) if (group_arg or name) else []
    supplementary: tuple[int, ...] = ()
    if group_arg:
        match = [g for g in groups if g.name == group_arg or str(g.gid) == group_arg]
        if match:
            gid = match[0].gid
        elif (numeric_gid := _parse_int(group_arg)) is not None:
            gid = numeric_gid
        else:
            raise BuildError(f"unable to find group {group_arg}: no matching entries in group file")
        if gid > MAX_ID:
            raise BuildError(f"gid {gid} out of range")
    elif name:
        supplementary = tuple(dict.fromkeys(g.gid for g in groups if name in g.members))
    return UserIds(uid=uid, gid=gid, groups=supplementary, home=home)


def resolve_chown(spec: str | None, rootfs: Path) -> tuple[int, int]:
    """COPY/ADD --chown: "user[:group]", names looked up in the rootfs. Unlike USER, a
    user given without a group gets the same-numbered gid for numbers (Docker's rule:
    --chown=10 means 10:10) and the passwd gid for names; default is 0:0."""
    if not spec:
        return 0, 0
    user_arg, sep, group_arg = spec.partition(":")
    uid_num = _parse_int(user_arg)
    if uid_num is not None:
        uid, gid = uid_num, uid_num
    else:
        entries = [e for e in _passwd(rootfs) if e.name == user_arg]
        if not entries:
            raise BuildError(
                f"unable to convert uid/gid chown string to host mapping: "
                f"can't find uid for user {user_arg}"
            )
        uid, gid = entries[0].uid, entries[0].gid
    if sep and group_arg:
        gid_num = _parse_int(group_arg)
        if gid_num is not None:
            gid = gid_num
        else:
            match = [g for g in _groups(rootfs) if g.name == group_arg]
            if not match:
                raise BuildError(
                    f"unable to convert uid/gid chown string to host mapping: "
                    f"can't find gid for group {group_arg}"
                )
            gid = match[0].gid
    return uid, gid
