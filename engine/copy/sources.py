"""Which files a COPY/ADD names: heredocs, URLs, git repositories and paths under the source
root (wildcards with Go's filepath.Match, never leaving the root, .dockerignore applied)."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.context.gomatch import BadPattern, go_match, has_magic
from engine.copy.remote import is_url, url_filename
from engine.errors import BuildError, ContextError
from engine.fs.safe import resolve_in_root

IgnoreFn = Callable[[str], bool]
# BuildKit's git detection for ADD: git@host:repo, git://, ssh://, or an http(s) URL whose
# path ends in .git (with an optional #ref[:subdir] fragment).
_GIT_URL = re.compile(r"^(git@[^:]+:.+|git://.+|ssh://.+|https?://[^#]+\.git(#.*)?)$")


@dataclass(frozen=True)
class Source:
    kind: str  # "path" | "url" | "git" | "inline"
    text: str  # as written, for messages
    host: str = ""  # resolved host path (kind "path")
    name: str = ""  # base name the destination gets
    content: str = ""  # kind "inline"
    rel: str = ""  # path relative to src_root (kind "path")
    keep: str = ""  # --parents: the relative path recreated under the destination


def is_git(text: str) -> bool:
    return bool(_GIT_URL.match(text))


def clean_source(text: str, keyword: str) -> str:
    """Source path relative to the root; `..` may not climb above it (ContextError)."""
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


def _pivot(text: str, keyword: str) -> str:
    """--parents: the prefix before a `/./` marker is dropped from the kept path."""
    body = text.lstrip("/")
    while body.startswith("./"):
        body = body[2:]
    if "/./" not in body:
        return ""
    return clean_source(body.split("/./", 1)[0], keyword)


def _real_rel(root: str, host: str) -> str:
    """Context-relative path of host (resolved inside root)."""
    base = root.rstrip("/")
    return host[len(base) + 1 :] if host.startswith(base + "/") else ""


def expand_wildcard(root: str, pattern: str, keyword: str = "COPY") -> list[str]:
    """Go filepath.Match per path component (so * never crosses /), sorted per directory."""
    matches = [""]
    for comp in pattern.split("/"):
        found: list[str] = []
        for base in matches:
            if not has_magic(comp):
                literal = comp.replace("\\", "")
                cand = f"{base}/{literal}" if base else literal
                if os.path.lexists(resolve_in_root(root, cand, follow_last=False)):
                    found.append(cand)
                continue
            base_host = resolve_in_root(root, base) if base else Path(root)
            try:
                names = sorted(os.listdir(base_host))
            except (NotADirectoryError, FileNotFoundError):
                continue
            try:
                found.extend(f"{base}/{n}" if base else n for n in names if go_match(comp, n))
            except BadPattern:
                raise BuildError(f"{keyword} source {pattern}: syntax error in pattern") from None
        matches = found
    return matches


def _inline_name(text: str, inline: Mapping[str, str]) -> str | None:
    if text.startswith("<<"):
        name = text[2:].lstrip("-").strip("'\"")
        if name in inline:
            return name
    return text if text in inline else None


def resolve_sources(
    sources: list[str],
    *,
    src_root: Path,
    is_add: bool,
    ignore_fn: IgnoreFn | None,
    inline: Mapping[str, str],
    keyword: str,
    parents: bool = False,
) -> list[Source]:
    out: list[Source] = []
    root = os.path.realpath(src_root)
    seen: set[str] = set()
    for text in sources:
        name = _inline_name(text, inline)
        if name is not None:
            out.append(Source("inline", text, name=name, content=inline[name], keep=name))
            continue
        if is_git(text):
            if not is_add:
                raise BuildError(f"COPY {text}: source can't be a git repository for COPY")
            out.append(Source("git", text))
            continue
        if is_url(text):
            if not is_add:
                raise BuildError(f"COPY {text}: source can't be a URL for COPY")
            out.append(Source("url", text, name=url_filename(text), keep=url_filename(text)))
            continue
        rel = clean_source(text, keyword)
        pivot = _pivot(text, keyword) if parents else ""
        if has_magic(rel):
            hits = [
                h for h in expand_wildcard(root, rel, keyword) if not (ignore_fn and ignore_fn(h))
            ]
        else:
            named = resolve_in_root(root, rel, follow_last=False) if rel else Path(root)
            if not os.path.lexists(named) or (rel and ignore_fn and ignore_fn(rel)):
                raise BuildError(f"{keyword} failed: file not found in build context: {text}")
            hits = [rel]
        for hit in hits:
            if hit in seen:
                continue
            seen.add(hit)
            # The named source itself is followed when it is a symlink (inside src_root);
            # a dangling one is copied as the link itself.
            host = str(resolve_in_root(root, hit)) if hit else root
            if not os.path.lexists(host):
                host = str(resolve_in_root(root, hit, follow_last=False))
            walk_rel = _real_rel(root, host)
            if walk_rel != hit and ignore_fn and walk_rel and ignore_fn(walk_rel):
                # Docker never sends an ignored file: a symlink to one dangles there
                if has_magic(rel):
                    continue
                raise BuildError(f"{keyword} failed: file not found in build context: {text}")
            keep = posixpath.relpath(hit, pivot) if pivot and hit else hit
            name = posixpath.basename(hit) or "/"
            # a directory reached through a symlink is walked (and .dockerignore'd) by the
            # path its entries really have in the context
            out.append(Source("path", text, host=host, name=name, rel=walk_rel, keep=keep))
    if not out:
        raise BuildError(
            f"{keyword} failed: no source files were specified (no match for {' '.join(sources)})"
        )
    return out
