"""RUN --mount as BuildKit reads it, and what each mount becomes for one step.

    spec = parse_mount("type=cache,target=/root/.cache,id=pip")
    with step_mounts([spec], sources) as mounts:   # -> [StepMount, ...]
        isolation.run(argv, ..., mounts=mounts)

bind: a directory or file of the context (default), of an earlier stage or of an image
(`from=`), read-only unless rw/readwrite; writes to a writable bind go to a copy thrown
away after the step. cache: a persistent directory keyed by `id` (default: the target)
under `MountSources.cache_root`, seeded from `from=`/`source=` when first made, created
with mode/uid/gid. tmpfs: an empty tmpfs. secret: `--secret id=X,src=PATH|env=VAR` files,
read-only, mode 0400 at /run/secrets/ID by default. ssh is refused. Nothing a step writes
through a mount reaches the rootfs (the run backends unmount it before the snapshot).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.errors import BuildError
from engine.fs.safe import clean_relative, resolve_in_root
from engine.run.mounts import StepMount

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_BOOL = {"": True, "true": True, "1": True, "false": False, "0": False}
_KEYS = {
    "type": "type",
    "from": "from_",
    "source": "source",
    "src": "source",
    "target": "target",
    "dst": "target",
    "destination": "target",
    "id": "id",
    "sharing": "sharing",
    "mode": "mode",
    "uid": "uid",
    "gid": "gid",
    "required": "required",
    "size": "size",
    "env": "env",
}


@dataclass(frozen=True)
class MountSpec:
    """One `--mount=` value, checked. Fields are BuildKit's option names."""

    kind: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    env: str = ""


def parse_mount(text: str) -> MountSpec:
    """BuildKit's CSV form: key=value pairs, bare `ro`/`rw`/`required`. Raises BuildError
    ("RUN --mount=...: why", no file or line: the caller adds those)."""
    values: dict[str, Any] = {}
    readonly: bool | None = None
    for raw in (p.strip() for p in text.split(",")):
        if not raw:
            continue
        key, sep, value = raw.partition("=")
        key = key.strip().lower()
        value = value.strip().strip('"')
        if key in ("ro", "readonly", "rw", "readwrite"):
            flag = _BOOL.get(value.lower() if sep else "")
            if flag is None:
                raise BuildError(f"RUN --mount={text}: invalid value for {key}: {value!r}")
            readonly = flag if key in ("ro", "readonly") else not flag
            continue
        if key == "required" and not sep:
            value = "true"
        elif not sep:
            raise BuildError(f"RUN --mount={text}: {key!r} needs a value")
        name = _KEYS.get(key)
        if name is None:
            raise BuildError(f"RUN --mount={text}: unknown option {key!r}")
        values[name] = value
    kind = str(values.pop("type", "bind")).lower()
    if kind not in MOUNT_TYPES:
        raise BuildError(f"RUN --mount={text}: unknown mount type {kind!r}")
    for name in ("mode", "uid", "gid"):
        if name in values:
            try:
                values[name] = int(values[name], 8 if name == "mode" else 10)
            except ValueError:
                raise BuildError(f"RUN --mount={text}: invalid {name} {values[name]!r}") from None
    if "required" in values:
        req = _BOOL.get(str(values["required"]).lower())
        if req is None:
            raise BuildError(f"RUN --mount={text}: invalid value for required")
        values["required"] = req
    values.pop("size", None)  # tmpfs size: a limit we do not enforce
    sharing = values.get("sharing", "shared")
    if sharing not in SHARING_MODES:
        raise BuildError(f"RUN --mount={text}: unknown sharing mode {sharing!r}")
    target = str(values.pop("target", ""))
    if kind == "secret" and not target and not values.get("env"):
        secret_id = values.get("id") or ""
        if not secret_id:
            raise BuildError(f"RUN --mount={text}: a secret mount needs id or target")
        target = f"/run/secrets/{secret_id}"
    if kind != "ssh" and kind != "secret" and not target:
        raise BuildError(f"RUN --mount={text}: target is required")
    if kind == "secret" and not values.get("id"):
        values["id"] = os.path.basename(target.rstrip("/"))
    if kind == "cache" and not values.get("id"):
        values["id"] = target
    if readonly is None:
        readonly = kind in ("bind", "secret", "ssh")
    return MountSpec(kind=kind, target=target, readonly=readonly, **values)


def target_in(cwd: str, target: str) -> str:
    """A relative target is relative to the step's working directory."""
    return target if target.startswith("/") else os.path.join(cwd or "/", target)


@dataclass
class MountSources:
    """Where mounts come from: the context (with its .dockerignore), earlier stages and
    images (`root_of(from)`: that filesystem's directory), the cache directory, secrets
    (id -> host file), and scratch space for per-step copies."""

    context_dir: Path
    root_of: Callable[[str], Path]
    cache_root: Path
    scratch: Path
    excluded: Callable[[str, bool], bool] | None = None  # (context rel path, is_dir)
    secrets: Mapping[str, Path] = field(default_factory=dict)


@contextlib.contextmanager
def step_mounts(
    specs: Sequence[MountSpec], sources: MountSources, *, cwd: str = "/"
) -> Iterator[list[StepMount]]:
    """The StepMounts for one step (relative targets are taken from `cwd`, the step's
    working directory); per-step copies and cache locks live until the block ends."""
    with contextlib.ExitStack() as stack:
        out: list[StepMount] = []
        caches: dict[str, Path] = {}  # one lock per id and step: a second flock would wait
        for spec in specs:
            if spec.target and not spec.target.startswith("/"):
                spec = replace(spec, target=target_in(cwd, spec.target))
            if spec.kind == "cache" and spec.id in caches:
                mount: StepMount | None = StepMount(
                    "bind", spec.target, str(caches[spec.id]), spec.readonly
                )
            else:
                mount = _resolve(spec, sources, stack)
                if spec.kind == "cache" and mount is not None:
                    caches[spec.id] = Path(mount.source)
            if mount is not None:
                out.append(mount)
        yield out


def _resolve(spec: MountSpec, src: MountSources, stack: contextlib.ExitStack) -> StepMount | None:
    if spec.kind == "tmpfs":
        return StepMount("tmpfs", spec.target)
    if spec.kind == "ssh":
        raise BuildError("RUN --mount=type=ssh is not supported (no SSH agent forwarding)")
    if spec.kind == "secret":
        return _secret(spec, src, stack)
    if spec.kind == "cache":
        return StepMount("bind", spec.target, str(_cache_dir(spec, src, stack)), spec.readonly)
    return _bind(spec, src, stack)


def _source_path(spec: MountSpec, src: MountSources) -> tuple[Path, Path]:
    """(root the source lives in, host path of the source), never outside that root."""
    root = src.root_of(spec.from_) if spec.from_ else src.context_dir
    path = resolve_in_root(root, spec.source or "/")
    where = f"stage or image {spec.from_}" if spec.from_ else "the build context"
    if not os.path.lexists(path):
        raise BuildError(f"RUN --mount: source {spec.source or '/'} not found in {where}")
    if not spec.from_ and src.excluded is not None:
        # A .dockerignore'd path is not in the context at all (BuildKit: not found).
        rel = clean_relative(os.path.relpath(path, root))
        if rel and src.excluded(rel, path.is_dir()):
            raise BuildError(f"RUN --mount: source {spec.source} not found in {where}")
    return root, path


def _scratch(src: MountSources, stack: contextlib.ExitStack, prefix: str) -> Path:
    src.scratch.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=src.scratch))
    stack.callback(shutil.rmtree, tmp, True)
    return tmp


def _bind(spec: MountSpec, src: MountSources, stack: contextlib.ExitStack) -> StepMount:
    root, path = _source_path(spec, src)
    filtered = not spec.from_ and src.excluded is not None
    if spec.readonly and not filtered:
        return StepMount("bind", spec.target, str(path), True)
    # A copy: writes to a writable bind are thrown away (BuildKit), and a context bind
    # shows only what .dockerignore lets through.
    copy = _scratch(src, stack, "bind-") / "src"
    rel = clean_relative(os.path.relpath(path, root)) if filtered else ""
    _copy_tree(path, copy, rel, src.excluded if filtered else None)
    return StepMount("bind", spec.target, str(copy), spec.readonly)


def _copy_tree(
    path: Path, dest: Path, rel: str, excluded: Callable[[str, bool], bool] | None
) -> None:
    if not path.is_dir() or path.is_symlink():
        shutil.copy2(path, dest, follow_symlinks=True)
        return

    def ignore(directory: str, names: list[str]) -> list[str]:
        if excluded is None:
            return []
        base = clean_relative(os.path.relpath(directory, path))
        prefix = "/".join(p for p in (rel, base) if p)
        skip = []
        for name in names:
            full = os.path.join(directory, name)
            is_dir = os.path.isdir(full) and not os.path.islink(full)
            if excluded(f"{prefix}/{name}" if prefix else name, is_dir):
                skip.append(name)
        return skip

    shutil.copytree(path, dest, symlinks=True, ignore=ignore)


def _cache_dir(spec: MountSpec, src: MountSources, stack: contextlib.ExitStack) -> Path:
    key = hashlib.sha256(spec.id.encode()).hexdigest()[:32]
    src.cache_root.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(src.cache_root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    stack.callback(os.close, lock_fd)
    if spec.sharing == "locked":
        fcntl.flock(lock_fd, fcntl.LOCK_EX)  # another build's step: wait for it
    elif spec.sharing == "private":
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # In use elsewhere: this step gets a fresh instance of its own.
            fresh = _scratch(src, stack, "cache-") / "dir"
            _make_cache(spec, src, fresh)
            return fresh
    else:
        fcntl.flock(lock_fd, fcntl.LOCK_SH)  # only keeps creation below race-free
    target = src.cache_root / key
    if not target.is_dir():
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if not target.is_dir():
            partial = src.cache_root / f"{key}.new-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            _make_cache(spec, src, partial)
            os.rename(partial, target)
        if spec.sharing == "shared":
            fcntl.flock(lock_fd, fcntl.LOCK_SH)
    return target


def _make_cache(spec: MountSpec, src: MountSources, dest: Path) -> None:
    if spec.from_:
        _, path = _source_path(spec, src)
        if not path.is_dir():
            raise BuildError(f"RUN --mount=type=cache: source {spec.source or '/'} is not a dir")
        shutil.copytree(path, dest, symlinks=True)
        return
    dest.mkdir()
    os.chmod(dest, 0o755 if spec.mode is None else spec.mode)
    _chown(dest, spec)


def _secret(spec: MountSpec, src: MountSources, stack: contextlib.ExitStack) -> StepMount | None:
    if spec.env:
        raise BuildError("RUN --mount=type=secret,env=... is not supported; mount it as a file")
    given = src.secrets.get(spec.id)
    if given is None:
        if spec.required:
            raise BuildError(
                f"RUN --mount=type=secret: secret {spec.id!r} was not given (--secret)"
            )
        return None  # BuildKit: an optional secret that is missing is simply not mounted
    copy = _scratch(src, stack, "secret-") / "secret"
    shutil.copyfile(given, copy)
    os.chmod(copy, 0o400 if spec.mode is None else spec.mode)
    _chown(copy, spec)
    return StepMount("bind", spec.target, str(copy), True)


def _chown(path: Path, spec: MountSpec) -> None:
    # Not root (rootless): the caller is uid 0 in the step already; ids cannot be given away.
    if os.geteuid() == 0:
        os.chown(path, spec.uid or 0, spec.gid or 0)


def load_secrets(values: Sequence[str], env: Mapping[str, str], dest: Path) -> dict[str, Path]:
    """`--secret id=ID,src=PATH` / `id=ID,env=VAR` (docker buildx's form; with neither,
    the variable named ID) -> id -> a file holding it. Values from the environment are
    written under dest (0600). Errors name the id, never the value."""
    from engine.errors import UsageError

    out: dict[str, Path] = {}
    for value in values:
        fields: dict[str, str] = {}
        for part in value.split(","):
            key, _, val = part.partition("=")
            fields[key.strip().lower()] = val.strip()
        secret_id = fields.get("id", "")
        if not secret_id or "/" in secret_id:
            raise UsageError("--secret: needs id=ID (and src=PATH or env=VAR)")
        src = fields.get("src") or fields.get("source")
        if src:
            if not os.path.isfile(src):
                raise UsageError(f"--secret id={secret_id}: file {src} not found")
            out[secret_id] = Path(src)
            continue
        var = fields.get("env") or secret_id
        if var not in env:
            raise UsageError(f"--secret id={secret_id}: environment variable {var} is not set")
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = dest / hashlib.sha256(secret_id.encode()).hexdigest()[:32]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(env[var])
        out[secret_id] = path
    return out


def cache_root_for(kaniko_dir: str, workspace: Path) -> Path:
    """RUN --mount=type=cache lives under --kaniko-dir when it is a writable directory
    (it outlasts the build there, like BuildKit's cache mounts), else in the workspace."""
    if kaniko_dir and os.path.isdir(kaniko_dir) and os.access(kaniko_dir, os.W_OK):
        return Path(kaniko_dir) / "run-cache"
    return workspace / "run-cache"


def context_filter(matcher: Any) -> Callable[[str, bool], bool] | None:
    """A .dockerignore matcher as `MountSources.excluded` (None: nothing is excluded)."""
    if matcher is None or not getattr(matcher, "patterns", None):
        return None

    def excluded(rel: str, is_dir: bool) -> bool:
        if not matcher.excluded(rel):
            return False
        return not is_dir or bool(matcher.can_skip_dir(rel))

    return excluded
