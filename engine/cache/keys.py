"""Layer-cache keys: pure functions, no I/O except reading the source files of COPY/ADD.

A step's key is sha256 over a canonical JSON document holding
  - the parent key (for the first step: `base_key(base image manifest digest)`),
  - the expanded instruction text (flags included, as the Dockerfile wrote them after expansion),
  - for RUN: the build args and environment the command sees (sorted KEY=VALUE),
  - for COPY/ADD: one digest over the source files after .dockerignore (`hash_sources`),
    or, for `COPY --from=<stage>`, that stage's final key (`stage_source_digest`) so that a
    fully cached build never needs the other stage's filesystem to compute a key.

Everything a step's output depends on reaches its key either directly or through the parent
chain (SHELL, USER, WORKDIR, ENV are earlier instructions), so a change invalidates exactly the
steps at and after the first step that sees it. File modification times are left out on
purpose: every CI checkout has fresh mtimes, and a key that saw them would never hit.

Keys are 64 lower-case hex characters, usable directly as a registry tag.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from engine.errors import ContextError

# Bump when the key's inputs or encoding change, so old cache entries stop matching.
KEY_VERSION = 1
_CHUNK = 1 << 20


def _digest(doc: Mapping[str, object]) -> str:
    # Canonical JSON: unambiguous field boundaries, unlike joining strings with "-".
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def base_key(base_digest: str | None, platform: str = "") -> str:
    """Key of the empty chain: the base image's (platform-specific) manifest digest.

    `None` means `FROM scratch`. A stage built on an earlier stage passes that stage's
    final key as `base_digest` instead of an image digest.
    """
    return _digest({"v": KEY_VERSION, "base": base_digest or "scratch", "platform": platform})


def step_key(
    parent: str,
    instruction: str,
    *,
    run_env: Mapping[str, str] | None = None,
    sources: str | None = None,
) -> str:
    """Key of one step.

    parent: the previous step's key (or `base_key(...)`).
    instruction: the expanded instruction text, e.g. `RUN make -j2` or
        `COPY --chown=app:app src/ /app/src/`.
    run_env: for RUN, the build args in scope and the ENV the command sees; `None` for every
        other instruction (their expanded text already carries what they use).
    sources: for COPY/ADD, `hash_sources(...)` or `stage_source_digest(...)`.
    """
    doc: dict[str, object] = {"v": KEY_VERSION, "parent": parent, "instruction": instruction}
    if run_env is not None:
        doc["env"] = sorted(f"{k}={v}" for k, v in run_env.items())
    if sources is not None:
        doc["sources"] = sources
    return _digest(doc)


def stage_source_digest(stage_key: str, source_paths: Iterable[str]) -> str:
    """Sources digest for `COPY --from=<stage or image>`: the stage's final key (or the
    image's manifest digest) plus the source paths as written."""
    return _digest({"v": KEY_VERSION, "from": stage_key, "paths": list(source_paths)})


def hash_file(path: Path, rel: str, owner: str = "") -> str:
    """Streamed hash of one file-system entry: relative path, type and permission bits, the
    owner the copy will give it (the --chown spec, "" when absent), content for regular
    files, target for symlinks. Never reads a whole file into memory."""
    h = hashlib.sha256()
    _feed_entry(h, path, rel, owner)
    return h.hexdigest()


def _feed_entry(
    h: hashlib._Hash, path: Path | str, rel: str, owner: str, mode: int | None = None
) -> None:
    """`mode`: the entry's lstat mode when the caller has it (a scandir walk)."""
    if mode is None:
        try:
            mode = os.lstat(path).st_mode
        except OSError as exc:
            raise ContextError(f"cannot stat COPY source {rel}: {exc.strerror}") from None
    header = f"{rel}\0{stat.S_IFMT(mode):o}\0{stat.S_IMODE(mode):o}\0{owner}\0"
    h.update(header.encode("utf-8", "surrogateescape"))
    if stat.S_ISLNK(mode):
        h.update(os.readlink(path).encode("utf-8", "surrogateescape"))
    elif stat.S_ISREG(mode):
        try:
            with open(path, "rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
        except OSError as exc:
            raise ContextError(f"cannot read COPY source {rel}: {exc.strerror}") from None
    h.update(b"\n")


def hash_sources(
    root: Path,
    sources: Iterable[Path],
    *,
    owner: str = "",
    excluded: Callable[[str], bool] | None = None,
    can_skip_dir: Callable[[str], bool] | None = None,
) -> str:
    """One digest over the COPY/ADD sources, in the order given.

    root: the context directory (paths are hashed relative to it, with "/" separators).
    sources: the matched sources (files or directories) under root, already filtered
        by .dockerignore at the top level; directories are walked in sorted order.
    owner: the --chown spec as written ("" when absent); it changes the layer, so the key.
    excluded: predicate on a root-relative path telling .dockerignore exclusions inside
        directories; excluded entries are not hashed.
    can_skip_dir: may an excluded directory's tree be left unread (no `!exception` pattern
        re-includes something below it)? Taken from the matcher when `excluded` is an
        IgnoreMatcher's bound method; without it excluded directories are still walked, so
        re-included files always count.
    """
    if can_skip_dir is None and excluded is not None:
        owner_obj = getattr(excluded, "__self__", None)
        can_skip_dir = getattr(owner_obj, "can_skip_dir", None)
    h = hashlib.sha256()
    h.update(f"brickyard-sources-v{KEY_VERSION}\n".encode())
    real_root = root.resolve()
    for src in sources:
        rel = _relative(root, src)
        _feed_entry(h, src, rel, owner)
        target = src
        if src.is_symlink():
            # COPY follows a symlink named as a source: what it points at is what is copied.
            resolved = src.resolve()
            if resolved.exists() and resolved.is_relative_to(real_root):
                target = root / resolved.relative_to(real_root)
                _feed_entry(h, target, _relative(root, target), owner)
        if target.is_dir() and not target.is_symlink():
            _feed_tree(h, root, target, owner, excluded, can_skip_dir)
    return h.hexdigest()


def _relative(root: Path, path: Path) -> str:
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        raise ContextError(f"COPY source {path} is outside the build context") from None
    return rel or "."


def _feed_tree(
    h: hashlib._Hash,
    root: Path,
    directory: Path,
    owner: str,
    excluded: Callable[[str], bool] | None,
    can_skip_dir: Callable[[str], bool] | None,
) -> None:
    # Iterative walk: deep trees must not hit the recursion limit. Paths stay strings
    # (relative = the directory's relative path + name): pathlib per entry cost more than
    # hashing a small file.
    stack = [(str(directory), _relative(root, directory))]
    while stack:
        current, current_rel = stack.pop()
        prefix = "" if current_rel == "." else current_rel + "/"
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as exc:
            raise ContextError(f"cannot list COPY source {current_rel}: {exc.strerror}") from None
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            rel = prefix + entry.name
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as exc:
                raise ContextError(f"cannot stat COPY source {rel}: {exc.strerror}") from None
            is_dir = stat.S_ISDIR(mode)
            if excluded is not None and excluded(rel):
                if is_dir and not (can_skip_dir and can_skip_dir(rel)):
                    subdirs.append((entry.path, rel))  # an exception may re-include below
                continue
            _feed_entry(h, entry.path, rel, owner, mode)
            if is_dir:
                subdirs.append((entry.path, rel))
        # A directory's entries first, then its subdirectories depth-first in sorted order.
        stack.extend(reversed(subdirs))
