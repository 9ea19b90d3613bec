"""Build contexts: sources by URL scheme, .dockerignore, walking, COPY source matching."""

from __future__ import annotations

from engine.context.dockerignore import (
    IgnoreMatcher,
    dockerignore_path,
    load_dockerignore,
    matcher_from_patterns,
    read_ignore_lines,
)
from engine.context.gomatch import go_match
from engine.context.sources import (
    ContextRequest,
    open_context,
    parse_git_url,
    resolve_dockerfile_path,
)
from engine.context.walk import (
    ContextEntry,
    hash_files,
    included_files,
    match_sources,
    walk_context,
)

__all__ = [
    "ContextEntry",
    "ContextRequest",
    "IgnoreMatcher",
    "dockerignore_path",
    "go_match",
    "hash_files",
    "included_files",
    "load_dockerignore",
    "match_sources",
    "matcher_from_patterns",
    "open_context",
    "parse_git_url",
    "read_ignore_lines",
    "resolve_dockerfile_path",
    "walk_context",
]
