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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from engine.copy.archive import extract_archive, is_archive
from engine.copy.remote import download, is_url, parse_checksum, url_filename
from engine.copy.tree import Owner, TreeWriter
from engine.errors import BuildError, ContextError
from engine.fs.safe import resolve_in_root
from engine.run.user import resolve_chown

IgnoreFn = Callable[[str], bool]
INLINE_FILE_MODE = 0o644


@dataclass(frozen=True)
class _Source:
    kind: str  # "path" | "url" | "inline"
    text: str  # as written, for messages
    host: str = ""  # resolved host path (kind "path")
    name: str = ""  # base name the destination gets
    content: str = ""  # kind "inline"
    rel: str = ""  # path relative to src_root (kind "path"), for .dockerignore below it


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


def _walk_skip(ignore: Any, fn: IgnoreFn | None) -> Callable[[str, bool], bool] | None:
    """Directory walks skip excluded entries; an excluded directory is still entered when
    an exception pattern may re-include something below it (Docker's walker rule)."""
    if fn is None:
        return None
    can_skip = getattr(ignore, "can_skip_dir", None)

    def skip(rel: str, is_dir: bool) -> bool:
        if not fn(rel):
            return False
        if is_dir and callable(can_skip):
            return bool(can_skip(rel)) is True
        return True

    return skip


def _clean_source(text: str, keyword: str) -> str:
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ContextError(f"{keyword} source {text} is outside the build context")
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _expand_wildcard(root: str, pattern: str) -> list[str]:
    """Go filepath.Match per path component (so * never crosses /), sorted per directory."""
    from engine.context.gomatch import BadPattern, go_match, has_magic

    matches = [""]
    for comp in pattern.split("/"):
        nxt: list[str] = []
        for base in matches:
            base_host = resolve_in_root(root, base) if base else Path(root)
            if not has_magic(comp):
                literal = comp.replace("\\", "")
                cand = f"{base}/{literal}" if base else literal
                if os.path.lexists(resolve_in_root(root, cand, follow_last=False)):
                    nxt.append(cand)
                continue
            try:
                names = sorted(os.listdir(base_host))
            except (NotADirectoryError, FileNotFoundError):
                continue
            try:
                nxt.extend(f"{base}/{n}" if base else n for n in names if go_match(comp, n))
            except BadPattern:
                raise BuildError(f"COPY source {pattern}: syntax error in pattern") from None
        matches = nxt
    return matches


def _resolve_sources(
    sources: list[str],
    *,
    src_root: Path,
    is_add: bool,
    ignore_fn: IgnoreFn | None,
    inline: Mapping[str, str],
    keyword: str,
) -> list[_Source]:
    from engine.context.gomatch import has_magic

    out: list[_Source] = []
    root = os.path.realpath(src_root)
    seen: set[str] = set()
    for text in sources:
        if text.startswith("<<") and text[2:].lstrip("-").strip("'\"") in inline:
            name = text[2:].lstrip("-").strip("'\"")
            out.append(_Source("inline", text, name=name, content=inline[name]))
            continue
        if text in inline:
            out.append(_Source("inline", text, name=text, content=inline[text]))
            continue
        if is_url(text):
            if not is_add:
                raise BuildError(f"COPY {text}: source can't be a URL for COPY")
            name = url_filename(text)
            out.append(_Source("url", text, name=name))
            continue
        if text.startswith("git@") or (text.endswith(".git") and "://" in text):
            raise BuildError(f"{keyword} {text}: git sources are not supported")
        rel = _clean_source(text, keyword)
        if has_magic(rel):
            hits = _expand_wildcard(root, rel)
            hits = [h for h in hits if not (ignore_fn and ignore_fn(h))]
        else:
            named = resolve_in_root(root, rel, follow_last=False) if rel else Path(root)
            if not os.path.lexists(named) or (rel and ignore_fn and ignore_fn(rel)):
                raise BuildError(f"{keyword} failed: file not found in build context: {text}")
            hits = [rel]
        for hit in hits:
            if hit in seen:
                continue
            seen.add(hit)
            # The named source itself is followed when it is a symlink (inside src_root).
            host = str(resolve_in_root(root, hit)) if hit else root
            if not os.path.lexists(host):  # a dangling link is copied as the link itself
                host = str(resolve_in_root(root, hit, follow_last=False))
            out.append(
                _Source("path", text, host=host, name=posixpath.basename(hit) or "/", rel=hit)
            )
    if not out:
        raise BuildError(
            f"{keyword} failed: no source files were specified (no match for {' '.join(sources)})"
        )
    return out


def _dest_path(dest: str, workdir: str) -> tuple[str, bool]:
    """Container destination and whether it names a directory (trailing / or .)."""
    wants_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith(("/.", "/.."))
    full = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    full = posixpath.normpath(full)
    if full.startswith("//"):
        full = "/" + full.lstrip("/")
    return full, wants_dir


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
    session: Any = None,
    **legacy: Any,
) -> list[str]:
    """Run one COPY/ADD. `ignore` is a .dockerignore matcher (or rel_path -> bool) for
    context sources; `preserve_owner` keeps source owners when no --chown is given (COPY
    --from a stage). An Instruction as first argument is handled by copy_instruction."""
    if ins is not None:
        return copy_instruction(ins, rootfs=rootfs, workdir=workdir, ignore=ignore, **legacy)
    if sources is None or dest is None or src_root is None:
        raise TypeError("copy_sources needs sources, dest and src_root")
    keyword = "ADD" if is_add else "COPY"
    inline = dict(inline or {})
    rootfs = Path(os.path.realpath(rootfs))
    if checksum is not None and not all(is_url(s) for s in sources):
        raise BuildError(f"{keyword} --checksum can only be used with HTTP(S) sources")
    if checksum is not None:
        parse_checksum(checksum)
    uid, gid = resolve_chown(chown, rootfs)
    mode = parse_chmod(chmod, keyword)
    ignore_fn = _ignore_fn(ignore)
    items = _resolve_sources(
        list(sources),
        src_root=Path(src_root),
        is_add=is_add,
        ignore_fn=ignore_fn,
        inline=inline,
        keyword=keyword,
    )
    full_dest, wants_dir = _dest_path(dest, workdir)
    if (len(items) > 1 or len(sources) > 1) and not wants_dir:
        raise BuildError(
            f"When using {keyword} with more than one source file, the destination must be "
            "a directory and end with a /"
        )
    keep = preserve_owner and chown is None
    writer = TreeWriter(
        rootfs, Owner(None if keep else uid, None if keep else gid, mode), keyword=keyword
    )
    skip = _walk_skip(ignore, ignore_fn)
    for item in items:
        _copy_one(
            item,
            full_dest,
            wants_dir,
            writer,
            uid,
            gid,
            mode,
            is_add,
            checksum,
            skip,
            session,
            keep_archive_owners=chown is None,
        )
    return writer.finish()


def _target_file(
    full_dest: str, wants_dir: bool, name: str, writer: TreeWriter, keyword: str, what: str
) -> str:
    """Host path of the file a single-file source becomes."""
    dest_host = writer.host(full_dest)
    if wants_dir or os.path.isdir(dest_host):
        if not name or name == "/":
            raise BuildError(f"{keyword} {what}: cannot determine a file name for the destination")
        writer.make_dirs(full_dest)
        return writer.host(posixpath.join(full_dest, name), follow_last=False)
    parent = posixpath.dirname(full_dest)
    writer.make_dirs(parent)
    # An existing symlink as destination is followed (inside the rootfs), as BuildKit does.
    return writer.host(full_dest)


def _copy_one(
    item: _Source,
    full_dest: str,
    wants_dir: bool,
    writer: TreeWriter,
    uid: int,
    gid: int,
    mode: int | None,
    is_add: bool,
    checksum: str | None,
    skip: Callable[[str, bool], bool] | None,
    session: Any,
    *,
    keep_archive_owners: bool,
) -> None:
    keyword = writer.keyword
    if item.kind == "inline":
        target = _target_file(full_dest, wants_dir, item.name, writer, keyword, item.text)
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
            uid=uid,
            gid=gid,
            mode=INLINE_FILE_MODE if mode is None else mode,
            mtime_ns=time.time_ns(),
        )
        return
    if item.kind == "url":
        target = _target_file(full_dest, wants_dir, item.name, writer, keyword, item.text)
        download(
            item.text,
            target,
            writer,
            checksum=checksum,
            uid=uid,
            gid=gid,
            mode=mode,
            session=session,
        )
        return
    st = os.lstat(item.host)  # already followed inside src_root when it leads somewhere
    if stat.S_ISDIR(st.st_mode):
        dest_host = writer.make_dirs(full_dest)
        if not os.path.isdir(dest_host):
            raise BuildError(f"{keyword} failed: cannot copy to non-directory: {full_dest}")
        writer.copy_tree(item.host, dest_host, src_rel=item.rel, skip=skip)
        return
    if is_add and stat.S_ISREG(st.st_mode) and is_archive(item.host):
        writer.make_dirs(full_dest)
        # Unpacked entries keep the archive's owners unless --chown was given (Docker).
        saved = writer.owner
        if keep_archive_owners:
            writer.owner = Owner(None, None, saved.chmod)
        try:
            extract_archive(item.host, full_dest, writer, source=item.text)
        finally:
            writer.owner = saved
        return
    target = _target_file(full_dest, wants_dir, item.name, writer, keyword, item.text)
    if os.path.isdir(target) and not os.path.islink(target):
        raise BuildError(f"{keyword} failed: cannot overwrite directory {full_dest} with a file")
    writer.copy_entry(item.host, target, st)


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
    """COPY/ADD from a parsed (and expanded) Instruction: flags --chown --chmod --checksum
    (--from is the caller's: it picks source_root), heredoc sources from ins.heredocs."""
    keyword = str(ins.keyword).upper()
    flag = getattr(ins, "flag", None)

    def get(name: str) -> str | None:
        return flag(name) if callable(flag) else None

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
        session=session,
    )


__all__ = ["copy_instruction", "copy_sources", "parse_chmod"]
