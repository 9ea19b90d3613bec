"""COPY and ADD: every Docker rule for sources and destinations.

    written = copy_sources(sources=["src/", "*.txt"], dest="/app/", src_root=context_dir,
                           rootfs=rootfs, workdir="/", chown="app", chmod="640",
                           is_add=False, ignore=matcher)

Returns the rootfs-relative paths written (created parents included), for
`Snapshotter.diff_paths`. `copy_instruction(ins, ...)` does the same from an Instruction.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from engine.copy.archive import extract_archive, is_archive
from engine.copy.remote import download, is_url, parse_checksum
from engine.copy.sources import IgnoreFn, Source, resolve_sources
from engine.copy.tree import Owner, TreeWriter
from engine.errors import BuildError
from engine.run.user import resolve_chown

INLINE_FILE_MODE = 0o644
SkipFn = Callable[[str, bool], bool]


def parse_chmod(chmod: str | None, keyword: str = "COPY") -> int | None:
    if not chmod:
        return None
    try:
        mode = int(chmod, 8)
    except ValueError:
        raise BuildError(f"{keyword} --chmod={chmod}: invalid octal mode") from None
    if mode > 0o7777:
        raise BuildError(f"{keyword} --chmod={chmod}: mode out of range")
    return mode


def _ignore_fn(ignore: Any) -> IgnoreFn | None:
    if ignore is None:
        return None
    excluded = getattr(ignore, "excluded", None)
    if callable(excluded):
        if not getattr(ignore, "patterns", True):
            return None
        return cast(IgnoreFn, excluded)
    if callable(ignore):
        return cast(IgnoreFn, ignore)
    raise TypeError("ignore must be a callable or have .excluded(rel)")


def _walk_skip(ignore: Any, fn: IgnoreFn | None) -> SkipFn | None:
    """Directory walks skip excluded entries; an excluded directory is still entered when
    an exception pattern may re-include something below it (Docker's walker rule)."""
    if fn is None:
        return None
    can_skip = getattr(ignore, "can_skip_dir", None)

    def skip(rel: str, is_dir: bool) -> bool:
        if not fn(rel):
            return False
        if is_dir and callable(can_skip):
            return bool(can_skip(rel))
        return True

    return skip


def _exclude_matcher(patterns: Sequence[str]) -> Any:
    if not patterns:
        return None
    from engine.context.dockerignore import matcher_from_patterns

    return matcher_from_patterns(patterns)


def _dest_path(dest: str, workdir: str) -> tuple[str, bool]:
    """Container destination and whether it names a directory (trailing / or .)."""
    wants_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith(("/.", "/.."))
    full = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    full = posixpath.normpath(full)
    if full.startswith("//"):
        full = "/" + full.lstrip("/")
    return full, wants_dir


@dataclass
class _Job:
    """One COPY/ADD's settings, shared by all its sources."""

    writer: TreeWriter
    uid: int
    gid: int
    mode: int | None
    is_add: bool
    checksum: str | None
    unpack: bool | None
    keep_archive_owners: bool
    ignore_skip: SkipFn | None
    exclude: Any
    session: Any
    keep_git_dir: bool = False

    @property
    def keyword(self) -> str:
        return self.writer.keyword

    def skip_for(self, item: Source) -> SkipFn | None:
        """Skip rule for a directory source's walk: .dockerignore on context paths,
        --exclude on paths relative to the source and to the root."""
        ignore_skip, exclude = self.ignore_skip, self.exclude
        if exclude is None:
            return ignore_skip

        def skip(rel: str, is_dir: bool) -> bool:
            inner = rel[len(item.rel) + 1 :] if item.rel else rel
            if exclude.excluded(inner) or exclude.excluded(rel):
                return not is_dir or bool(exclude.can_skip_dir(inner))
            return bool(ignore_skip and ignore_skip(rel, is_dir))

        return skip

    def excluded(self, item: Source) -> bool:
        if self.exclude is None or item.kind != "path" or not item.rel:
            return False
        return bool(self.exclude.excluded(item.rel) or self.exclude.excluded(item.name))


def copy_sources(
    ins: Any = None,
    /,
    *,
    sources: list[str] | None = None,
    dest: str | None = None,
    src_root: Path | None = None,
    rootfs: Path,
    workdir: str = "/",
    chown: str | None = None,
    chmod: str | None = None,
    is_add: bool = False,
    ignore: Any = None,
    checksum: str | None = None,
    inline: Mapping[str, str] | None = None,
    preserve_owner: bool = False,
    exclude: Sequence[str] = (),
    parents: bool = False,
    unpack: bool | None = None,
    keep_git_dir: bool = False,
    session: Any = None,
    **legacy: Any,
) -> list[str]:
    """Run one COPY/ADD. `ignore` is a .dockerignore matcher (or rel_path -> bool) for
    context sources; `preserve_owner` keeps source owners when no --chown is given (COPY
    --from a stage); `exclude`, `parents`, `unpack`, `keep_git_dir` are the flags of the
    same names.
    An Instruction as first argument is handled by copy_instruction."""
    if ins is not None:
        return copy_instruction(ins, rootfs=rootfs, workdir=workdir, ignore=ignore, **legacy)
    if sources is None or dest is None or src_root is None:
        raise TypeError("copy_sources needs sources, dest and src_root")
    keyword = "ADD" if is_add else "COPY"
    rootfs = Path(os.path.realpath(rootfs))
    if checksum is not None:
        if not all(is_url(s) for s in sources):
            raise BuildError(f"{keyword} --checksum can only be used with HTTP(S) sources")
        parse_checksum(checksum)
    uid, gid = resolve_chown(chown, rootfs)
    mode = parse_chmod(chmod, keyword)
    ignore_fn = _ignore_fn(ignore)
    items = resolve_sources(
        list(sources),
        src_root=Path(src_root),
        is_add=is_add,
        ignore_fn=ignore_fn,
        inline=dict(inline or {}),
        keyword=keyword,
        parents=parents,
    )
    full_dest, wants_dir = _dest_path(dest, workdir)
    if (len(items) > 1 or len(sources) > 1) and not (wants_dir or parents):
        raise BuildError(
            f"When using {keyword} with more than one source file, the destination must be "
            "a directory and end with a /"
        )
    keep = preserve_owner and chown is None
    job = _Job(
        writer=TreeWriter(
            rootfs, Owner(None if keep else uid, None if keep else gid, mode), keyword=keyword
        ),
        uid=uid,
        gid=gid,
        mode=mode,
        is_add=is_add,
        checksum=checksum,
        unpack=unpack,
        keep_archive_owners=chown is None,
        ignore_skip=_walk_skip(ignore, ignore_fn),
        exclude=_exclude_matcher(exclude),
        session=session,
        keep_git_dir=keep_git_dir,
    )
    for item in items:
        if job.excluded(item):
            continue
        if parents and item.keep:
            # --parents recreates the source's path under the destination directory.
            _copy_one(job, item, posixpath.join(full_dest, item.keep), wants_dir=False)
        else:
            _copy_one(job, item, full_dest, wants_dir)
    return job.writer.finish()


def _target_file(job: _Job, full_dest: str, wants_dir: bool, item: Source) -> str:
    """Host path of the file a single-file source becomes."""
    writer = job.writer
    dest_host = writer.host(full_dest)
    if wants_dir or os.path.isdir(dest_host):
        if not item.name or item.name == "/":
            raise BuildError(
                f"{job.keyword} {item.text}: cannot determine a file name for the destination"
            )
        writer.make_dirs(full_dest)
        return writer.host(posixpath.join(full_dest, item.name), follow_last=False)
    writer.make_dirs(posixpath.dirname(full_dest))
    # An existing symlink as destination is followed (inside the rootfs), as BuildKit does;
    # a dangling one gets its target's missing parents (inside the rootfs too).
    target = writer.host(full_dest)
    root = str(writer.rootfs)
    parent = os.path.dirname(target)
    if not os.path.lexists(parent) and parent.startswith(root + "/"):
        writer.make_dirs(parent[len(root) :])
    return target


def _copy_one(job: _Job, item: Source, full_dest: str, wants_dir: bool) -> None:
    writer = job.writer
    if item.kind == "git":
        from engine.copy.gitsource import checkout

        with checkout(item.text, keep_git_dir=job.keep_git_dir) as tree:
            dest_host = writer.make_dirs(full_dest)
            writer.copy_tree(str(tree), dest_host)
        return
    if item.kind == "inline":
        target = _target_file(job, full_dest, wants_dir, item)
        data = item.content.encode()
        pos = 0

        def read(n: int) -> bytes:
            nonlocal pos
            chunk = data[pos : pos + n]
            pos += len(chunk)
            return chunk

        writer.write_stream(
            target,
            read,
            uid=job.uid,
            gid=job.gid,
            mode=INLINE_FILE_MODE if job.mode is None else job.mode,
            mtime_ns=time.time_ns(),
        )
        return
    if item.kind == "url":
        if job.unpack:  # ADD --unpack=true <url>: fetch, then unpack like a local archive
            with tempfile.TemporaryDirectory(prefix="brickyard-add-") as tmp:
                scratch = TreeWriter(Path(tmp), Owner(0, 0, None), keyword="ADD")
                fetched = os.path.join(tmp, "download")
                download(
                    item.text,
                    fetched,
                    scratch,
                    checksum=job.checksum,
                    uid=os.geteuid(),
                    gid=os.getegid(),
                    mode=0o600,
                    session=job.session,
                )
                if is_archive(fetched):
                    _unpack(job, fetched, full_dest, item)
                    return
                _copy_path(
                    job,
                    Source("path", item.text, host=fetched, name=item.name),
                    full_dest,
                    wants_dir,
                )
            return
        target = _target_file(job, full_dest, wants_dir, item)
        download(
            item.text,
            target,
            writer,
            checksum=job.checksum,
            uid=job.uid,
            gid=job.gid,
            mode=job.mode,
            session=job.session,
        )
        return
    _copy_path(job, item, full_dest, wants_dir)


def _copy_path(job: _Job, item: Source, full_dest: str, wants_dir: bool) -> None:
    writer, keyword = job.writer, job.keyword
    st = os.lstat(item.host)  # already followed inside src_root when it leads somewhere
    if stat.S_ISDIR(st.st_mode):
        dest_host = writer.make_dirs(full_dest)
        if not os.path.isdir(dest_host):
            raise BuildError(f"{keyword} failed: cannot copy to non-directory: {full_dest}")
        writer.copy_tree(item.host, dest_host, src_rel=item.rel, skip=job.skip_for(item))
        return
    unpack = job.is_add if job.unpack is None else job.unpack
    if unpack and stat.S_ISREG(st.st_mode) and is_archive(item.host):
        _unpack(job, item.host, full_dest, item)
        return
    target = _target_file(job, full_dest, wants_dir, item)
    if os.path.isdir(target) and not os.path.islink(target):
        raise BuildError(f"{keyword} failed: cannot overwrite directory {full_dest} with a file")
    writer.copy_entry(item.host, target, st)


def _unpack(job: _Job, archive: str, full_dest: str, item: Source) -> None:
    writer = job.writer
    writer.make_dirs(full_dest)
    # Unpacked entries keep the archive's owners unless --chown was given (Docker).
    saved = writer.owner
    if job.keep_archive_owners:
        writer.owner = Owner(None, None, saved.chmod)
    try:
        extract_archive(archive, full_dest, writer, source=item.text)
    finally:
        writer.owner = saved


def copy_instruction(
    ins: Any,
    *,
    rootfs: Path,
    source_root: Path,
    workdir: str = "/",
    ignore: Any = None,
    scope: Any = None,
    is_add: bool | None = None,
    from_context: bool = True,
    session: Any = None,
) -> list[str]:
    """COPY/ADD from a parsed (and expanded) Instruction: --chown --chmod --checksum
    --exclude --parents --unpack (--from is the caller's: it picks source_root; --link
    changes nothing here), heredoc sources from ins.heredocs."""
    keyword = str(ins.keyword).upper()
    flag = getattr(ins, "flag", None)
    flag_all = getattr(ins, "flag_all", None)

    def get(name: str) -> str | None:
        return flag(name) if callable(flag) else None

    def get_bool(name: str) -> bool | None:
        value = get(name)
        return None if value is None else value.lower() in ("true", "1", "")

    args = [str(a) for a in ins.args]
    if len(args) < 2:
        raise BuildError(f"{keyword} requires at least two arguments")
    inline: dict[str, str] = {}
    for h in getattr(ins, "heredocs", ()) or ():
        content = h.content
        if scope is not None and hasattr(scope, "heredoc_content"):
            content = scope.heredoc_content(h)
        inline[h.name] = content
    return copy_sources(
        sources=args[:-1],
        dest=args[-1],
        src_root=source_root,
        rootfs=rootfs,
        workdir=workdir,
        chown=get("chown") or None,
        chmod=get("chmod") or None,
        is_add=keyword == "ADD" if is_add is None else is_add,
        ignore=ignore if from_context else None,
        checksum=get("checksum") or None,
        inline=inline,
        preserve_owner=not from_context,
        exclude=tuple(flag_all("exclude")) if callable(flag_all) else (),
        parents=bool(get_bool("parents")),
        unpack=get_bool("unpack"),
        keep_git_dir=bool(get_bool("keep-git-dir")),
        session=session,
    )


__all__ = ["copy_instruction", "copy_sources", "parse_chmod"]
