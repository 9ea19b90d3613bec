"""The seam between orchestration and the other engine packages' types.

Everything build/ needs from an `Instruction`, `Stage`, scope, snapshotter diff and copy
machinery goes through these small functions, so a change of shape there is fixed here once.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.build.config import StageConfig
from engine.errors import BuildError, DockerfileError


class UnsupportedInstruction(BuildError):
    """A valid instruction option brickyard cannot honour yet. Never ignored: running
    without it would change what the step does. Message: "FILE:LINE: what"."""


# ---- instructions -----------------------------------------------------------------------


def keyword(ins: Any) -> str:
    return str(ins.keyword).upper()


def line(ins: Any) -> int | None:
    value = getattr(ins, "line", None)
    return int(value) if value is not None else None


def args(ins: Any) -> list[str]:
    return [str(a) for a in (ins.args or [])]


def json_form(ins: Any) -> bool:
    return bool(getattr(ins, "json_form", False))


def flags(ins: Any) -> dict[str, str]:
    values = getattr(ins, "flag_values", None)
    if values:
        return {str(k): str(v) for k, v in values}
    raw = getattr(ins, "flags", None) or {}
    if isinstance(raw, Mapping):
        return {str(k).lstrip("-"): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for item in raw:
        key, _, value = str(item).lstrip("-").partition("=")
        out[key] = value
    return out


def single_arg(ins: Any) -> str:
    values = args(ins)
    if len(values) != 1:
        raise DockerfileError(f"{keyword(ins)} requires exactly one argument", line=line(ins))
    return values[0]


def pairs(ins: Any) -> list[tuple[str, str]]:
    """ENV / LABEL key-value pairs, whatever shape the parser gave them."""
    kv = getattr(ins, "pairs", None)
    if callable(kv):
        return [(str(k), str(v)) for k, v in kv()]
    out: list[tuple[str, str]] = []
    for item in args(ins):
        key, sep, value = item.partition("=")
        if not sep:
            raise DockerfileError(f"{keyword(ins)} needs key=value, got {item!r}", line=line(ins))
        out.append((key, value))
    return out


def arg_pairs(ins: Any) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for item in args(ins):
        key, sep, value = item.partition("=")
        out.append((key, value if sep else None))
    return out


def instruction_text(ins: Any) -> str:
    """How the log and errors name an instruction: as written ("RUN make")."""
    original = str(getattr(ins, "original", "") or "").strip()
    if original:
        return original
    kw = keyword(ins)
    fl = " ".join(f"--{k}={v}" for k, v in flags(ins).items())
    body = json.dumps(args(ins)) if json_form(ins) else " ".join(args(ins))
    heredocs = getattr(ins, "heredocs", None)
    if heredocs and not body:
        body = " ".join(f"<<{getattr(h, 'name', 'EOF')}" for h in heredocs)
    return " ".join(p for p in (kw, fl, body) if p)


def onbuild_expression(ins: Any) -> str:
    expression = getattr(ins, "expression", None)
    if isinstance(expression, str) and expression:
        return expression
    original = str(getattr(ins, "original", "") or "")
    head, _, rest = original.strip().partition(" ")
    if head.upper() == "ONBUILD" and rest.strip():
        return rest.strip()
    return " ".join(args(ins))


def go_list(argv: Sequence[str]) -> str:
    """kaniko prints argv the way Go prints a []string: [/bin/sh -c make]."""
    return "[" + " ".join(argv) + "]"


# ---- stages and scope ---------------------------------------------------------------------


def stage_instructions(stage: Any) -> list[Any]:
    return list(stage.instructions)


def stage_index(stage: Any) -> int:
    return int(stage.index)


def stage_name(stage: Any) -> str:
    return str(getattr(stage, "name", "") or "")


def expand(scope: Any, ins: Any) -> Any:
    if keyword(ins) == "ONBUILD":
        return ins  # Docker stores ONBUILD triggers unexpanded
    return scope.expand_instruction(ins)


def scope_apply(scope: Any, ins: Any) -> None:
    scope.apply(ins)


def run_env(scope: Any, config: StageConfig) -> dict[str, str]:
    from engine.run import step_env

    env = dict(scope.run_env())
    return step_env(env)


def visible_build_args(scope: Any, config: StageConfig) -> dict[str, str]:
    """Build args in scope that no ENV shadows: BuildKit lists them in RUN's history."""
    return dict(scope.run_build_args())


def run_command(ins: Any, shell: Sequence[str]) -> Any:
    """RUN's argv as BuildKit builds it (heredocs joined; a `#!` heredoc becomes a script
    under /dev/pipes, listed in `.files`): an `engine.dockerfile.RunCommand`."""
    from engine.dockerfile.commands import run_command as _run_command

    return _run_command(ins, shell)


NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")


def where(ins: Any, filename: str = "Dockerfile") -> str:
    """How errors name an instruction's place: "FILE:LINE"."""
    return f"{filename}:{line(ins)}" if line(ins) is not None else filename


def run_mounts(ins: Any, filename: str = "Dockerfile") -> list[Any]:
    """RUN --mount values, parsed (`engine.run.mountspec.MountSpec`); a bad one is an
    UnsupportedInstruction naming the line."""
    from engine.run.mountspec import parse_mount

    flag_all = getattr(ins, "flag_all", None)
    values = list(flag_all("mount")) if callable(flag_all) else []
    out = []
    for value in values:
        try:
            spec = parse_mount(value)
        except BuildError as e:
            raise UnsupportedInstruction(f"{where(ins, filename)}: {e}") from None
        if spec.kind == "ssh":
            raise UnsupportedInstruction(
                f"{where(ins, filename)}: RUN --mount=type=ssh is not supported "
                "(no SSH agent forwarding)"
            )
        if spec.kind == "secret" and spec.env:
            raise UnsupportedInstruction(
                f"{where(ins, filename)}: RUN --mount=type=secret,env= is not supported; "
                "mount the secret as a file"
            )
        out.append(spec)
    return out


def run_network(ins: Any) -> str:
    """ "none" or "default" (=host: kaniko runs every step on the build's network)."""
    network = flags(ins).get("network", "default")
    return "none" if network == "none" else "default"


def check_run_flags(ins: Any, filename: str = "Dockerfile") -> None:
    """Refuse, naming the line, a RUN option that would change what the step does if it
    were ignored, or a malformed --mount. --network=default and =host both mean the
    build's own network, where kaniko runs every step."""
    at = where(ins, filename)
    values = flags(ins)
    run_mounts(ins, filename)
    security = values.get("security", "sandbox")
    if security not in SECURITY_MODES:
        raise UnsupportedInstruction(f"{at}: RUN --security={security}: unknown mode")
    if security == "insecure":
        raise UnsupportedInstruction(f"{at}: RUN --security=insecure is not supported yet")
    network = values.get("network", "default")
    if network not in NETWORK_MODES:
        raise UnsupportedInstruction(f"{at}: RUN --network={network}: unknown network mode")


# ---- snapshots ----------------------------------------------------------------------------


def new_snapshotter(rootfs: Path, extra_ignore: Sequence[str]) -> Any:
    from engine.fs.snapshot import Snapshotter
    from engine.run import transient_paths

    ignore = sorted({*transient_paths(), *extra_ignore})
    return Snapshotter(rootfs, ignore)


def full_diff(snapshotter: Any) -> tuple[list[str], list[str], list[str]]:
    """The snapshotter's diff minus directories whose only change is their timestamps and
    that hold nothing else that changed. RUN's own plumbing (resolv.conf and hosts made and
    removed in /etc, a temp file made and deleted) leaves exactly that behind; it is not a
    change of the image, and without this filter `RUN true` would make a layer."""
    before = snapshotter.index  # diff() swaps in a new dict; this one stays as it was
    diff = snapshotter.diff()
    after = snapshotter.index
    changed = list(diff.changed)
    deleted = list(diff.deleted)
    opaque = list(diff.opaque_dirs)
    candidates: set[str] = set()
    for path in changed:
        old, new = before.get(path), after.get(path)
        if old is None or new is None or not (stat.S_ISDIR(old.mode) and stat.S_ISDIR(new.mode)):
            continue
        if (old.mode, old.uid, old.gid) == (new.mode, new.uid, new.gid):
            candidates.add(path)
    real = [p for p in changed if p not in candidates] + deleted + opaque
    needed: set[str] = set(opaque)
    for path in real:  # every ancestor of a real change stays, as its parent entry
        while "/" in path:
            path = path.rsplit("/", 1)[0]
            if path in needed:
                break
            needed.add(path)
    keep = {p for p in changed if p not in candidates or p in needed}
    return [p for p in changed if p in keep], deleted, opaque


def snapshot_paths(snapshotter: Any, paths: Sequence[str]) -> list[str]:
    """What COPY wrote, with parents and directory contents; the index learns them too,
    so the next RUN's diff does not repeat them."""
    return list(snapshotter.diff_paths(paths).changed)


def run_files(command: Any) -> list[tuple[str, bytes, int]]:
    """A RunCommand's /dev/pipes files as the run backends take them."""
    return [(str(f.path), str(f.content).encode(), int(f.mode)) for f in command.files]


def resolve_user(spec: str, rootfs: Path) -> Any:
    from engine.run import resolve_user as _resolve

    return _resolve(spec, rootfs)


# ---- COPY / ADD ---------------------------------------------------------------------------


def copy_srcs_dest(ins: Any) -> tuple[list[str], str]:
    """Sources as BuildKit's history lists them (paths, then `<<NAME` for each heredoc
    file) and the destination."""
    from engine.dockerfile.commands import copy_sources

    if len(args(ins)) < 2:
        raise DockerfileError(f"{keyword(ins)} requires at least two arguments", line=line(ins))
    split = copy_sources(ins)
    return [*split.paths, *(f"<<{h.name}" for h in split.heredocs)], split.dest


def copy_flags_for_history(ins: Any) -> dict[str, str]:
    return {k: v for k, v in flags(ins).items() if k in ("from", "chown", "chmod", "link")}
