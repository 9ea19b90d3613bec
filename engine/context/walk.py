"""Walking a build context with .dockerignore, resolving COPY/ADD sources, hashing them."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.context.dockerignore import IgnoreMatcher, go_clean
from engine.context.gomatch import BadPattern, go_match, has_magic
from engine.errors import BuildError, ContextError


@dataclass(frozen=True)
class ContextEntry:
    rel: str  # "/"-separated, relative to the context root
    path: Path
    is_dir: bool  # a real directory (a symlink to a directory is not)


def walk_context(
    context_dir: Path, matcher: IgnoreMatcher | None = None, start: str = "."
) -> Iterator[ContextEntry]:
    """Entries .dockerignore keeps, depth-first in sorted order, below `start` (exclusive).

    An excluded directory is skipped whole unless an exception pattern starts with it; then
    the walk goes in (without yielding the directory) and yields only what is re-included.
    """
    matcher = matcher or IgnoreMatcher()
    root = Path(context_dir)
    first = root if start in (".", "") else root / start
    prefix = "" if start in (".", "") else go_clean(start) + "/"
    # filepath.Walk order: lexical, depth-first, a directory before its contents.
    # Each level carries its directory's per-pattern results (Moby's MatchInfo), so a
    # path is matched once per pattern instead of once per pattern and parent.
    top = matcher.results_for(start)[1] if prefix else (False,) * len(matcher.patterns)
    stack: list[tuple[Iterator[tuple[os.DirEntry[str], str]], tuple[bool, ...]]] = [
        (_listing(first, prefix), top)
    ]
    while stack:
        listing, parent_results = stack[-1]
        item = next(listing, None)
        if item is None:
            stack.pop()
            continue
        entry, rel = item
        is_dir = entry.is_dir(follow_symlinks=False)
        excluded, results = matcher.match_with_parent(rel, parent_results)
        if excluded:
            if is_dir and not matcher.can_skip_dir(rel):
                stack.append((_listing(Path(entry.path), rel + "/"), results))
            continue
        yield ContextEntry(rel, Path(entry.path), is_dir)
        if is_dir:
            stack.append((_listing(Path(entry.path), rel + "/"), results))


def _listing(directory: Path, rel_prefix: str) -> Iterator[tuple[os.DirEntry[str], str]]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as err:
        where = rel_prefix.rstrip("/") or "."
        raise ContextError(f"cannot list context directory {where}: {err.strerror}") from None
    for entry in entries:
        yield entry, rel_prefix + entry.name


def included_files(context_dir: Path, matcher: IgnoreMatcher | None = None) -> list[str]:
    """Relative paths of every non-directory entry the context keeps."""
    return [e.rel for e in walk_context(context_dir, matcher) if not e.is_dir]


def _clean_source(source: str) -> str:
    rel = go_clean(source.lstrip("/") or ".")
    if rel == ".." or rel.startswith("../"):
        raise ContextError(f"COPY source {source} is outside the build context")
    return rel


def match_sources(
    context_dir: Path, patterns: Sequence[str], matcher: IgnoreMatcher | None = None
) -> list[Path]:
    """COPY/ADD sources -> existing context paths, .dockerignore applied.

    A source without wildcards must exist and not be excluded; a wildcard source is matched
    with Go's filepath.Match against every kept path (as kaniko does) and may match nothing.
    Raises BuildError when nothing at all matched, ContextError for paths leaving the context.
    """
    matcher = matcher or IgnoreMatcher()
    root = Path(context_dir)
    found: list[Path] = []
    seen: set[str] = set()
    all_entries: list[ContextEntry] | None = None
    for source in patterns:
        rel = _clean_source(source)
        if has_magic(rel):
            if all_entries is None:
                all_entries = list(walk_context(root, matcher))
            try:
                hits = [e.rel for e in all_entries if go_match(rel, e.rel)]
            except BadPattern:
                raise BuildError(f"COPY source {source}: syntax error in pattern") from None
        else:
            path = root if rel == "." else root / rel
            if not os.path.lexists(path) or (rel != "." and matcher.excluded(rel)):
                raise BuildError(
                    f"COPY source {source}: not found in build context or excluded by .dockerignore"
                )
            hits = [rel]
        for hit in sorted(hits):
            if hit not in seen:
                seen.add(hit)
                found.append(root if hit == "." else root / hit)
    if not found:
        raise BuildError(f"COPY failed: no source files were specified ({', '.join(patterns)})")
    return found


def hash_files(
    context_dir: Path,
    paths: Sequence[Path],
    matcher: IgnoreMatcher | None = None,
    *,
    owner: str = "",
) -> str:
    """Cache-key digest of COPY/ADD sources: streamed sha256 over path, mode and content.

    Directories are walked with the same .dockerignore rules as `walk_context` (an excluded
    directory is entered only when an exception can re-include something inside it).
    """
    from engine.cache.keys import hash_sources  # one definition of the key's byte layout

    matcher = matcher or IgnoreMatcher()
    root = Path(context_dir)

    # Per-directory pattern results, so each entry is matched once per pattern (as in walk).
    dir_results: dict[str, tuple[bool, ...]] = {"": (False,) * len(matcher.patterns)}

    def results_of(directory: str) -> tuple[bool, ...]:
        if directory not in dir_results:
            dir_results[directory] = matcher.results_for(directory)[1]
        return dir_results[directory]

    def excluded(rel: str) -> bool:
        if not matcher.patterns:
            return False
        hit, results = matcher.match_with_parent(rel, results_of(os.path.dirname(rel)))
        full = root / rel
        is_dir = full.is_dir() and not full.is_symlink()
        if is_dir:  # its entries come next; files need no memo
            dir_results[rel] = results
        return hit and (not is_dir or matcher.can_skip_dir(rel))

    return hash_sources(root, paths, owner=owner, excluded=excluded)
