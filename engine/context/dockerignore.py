""".dockerignore with Moby's exact semantics.

Reading follows moby/patternmatcher/ignorefile.ReadAll: a UTF-8 BOM is dropped, lines whose
first character is `#` are comments, surrounding whitespace is trimmed, `!` marks an
exception, each pattern is cleaned like Go's filepath.Clean and a leading `/` is dropped.

Matching follows moby/patternmatcher: every pattern is translated to a regular expression
the way Pattern.compile does (`*` and `?` never cross `/`, `**` crosses any number of
directories, `\\` escapes, `[...]` classes kept), with its exact/prefix/suffix shortcuts.
A path is excluded when the last pattern that matches it or one of its parent directories
is not an exception, evaluated top-down with the parent's per-pattern results
(MatchesUsingParentResults, what Docker's archive walker and BuildKit's fsutil use). It differs
from the older MatchesOrParentMatches in one corner: with `a/**` then `!*`, `a/x` stays
excluded, because `!*` was never tried on `a` (nothing was excluded yet there).

A walk may skip an excluded directory only when no exception pattern starts with that
directory (the rule of Docker's archive walker and fsutil): `!**/keep` does not reach back
into an excluded directory, exactly as with `docker build`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.context.gomatch import BadPattern, go_match
from engine.errors import ContextError
from engine.fs.safe import resolve_in_root

MatchType = Literal["exact", "prefix", "suffix", "regexp"]

_BOM = "\ufeff"
_ESCAPE = set(".+()|{}$")  # regexp specials without meaning in filepath.Match


def go_clean(path: str) -> str:
    """Go's path/filepath.Clean for "/"-separated paths."""
    if path == "":
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):  # POSIX keeps a double leading slash, Go does not
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def read_ignore_lines(text: str) -> list[str]:
    """ignorefile.ReadAll: the patterns of a .dockerignore file, in order."""
    patterns: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw[1:] if number == 0 and raw.startswith(_BOM) else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = go_clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


@dataclass
class Pattern:
    """One compiled pattern (patternmatcher.Pattern)."""

    text: str  # cleaned pattern without the leading "!"
    exclusion: bool
    match_type: MatchType = "exact"
    regex: re.Pattern[str] | None = None

    @classmethod
    def compile(cls, raw: str) -> Pattern:
        text = raw.strip()
        text = go_clean(text)
        exclusion = text.startswith("!")
        if exclusion:
            if len(text) == 1:
                raise ContextError('.dockerignore: illegal exclusion pattern: "!"')
            text = text[1:]
        try:  # Moby checks syntax with filepath.Match(p, ".")
            go_match(text, ".")
        except BadPattern:
            raise ContextError(f".dockerignore: syntax error in pattern {text!r}") from None
        pat = cls(text=text, exclusion=exclusion)
        pat._translate()
        return pat

    def _translate(self) -> None:
        regex = "^"
        kind: MatchType = "exact"
        chars = self.text
        i = 0
        step = 0
        while i < len(chars):
            ch = chars[i]
            i += 1
            if ch == "*":
                if i < len(chars) and chars[i] == "*":
                    i += 1
                    if i < len(chars) and chars[i] == "/":
                        i += 1  # "**/" behaves as "**"
                    if i >= len(chars):
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            regex += ".*"
                            kind = "regexp"
                    else:
                        regex += "(.*/)?"
                        kind = "regexp"
                    if step == 0:
                        kind = "suffix"
                else:
                    regex += "[^/]*"
                    kind = "regexp"
            elif ch == "?":
                regex += "[^/]"
                kind = "regexp"
            elif ch in _ESCAPE:
                regex += "\\" + ch
            elif ch == "\\":
                if i < len(chars):
                    nxt = chars[i]
                    i += 1
                    regex += _escaped(nxt)
                    kind = "regexp"
                else:
                    regex += "\\\\"
            elif ch in "[]":
                regex += ch
                kind = "regexp"
            else:
                regex += ch
            step += 1
        self.match_type = kind
        if kind != "regexp":
            return
        try:
            self.regex = re.compile(regex + "$", re.DOTALL)
        except re.error:
            raise ContextError(f".dockerignore: bad pattern {self.text!r}") from None

    def match(self, path: str) -> bool:
        if self.match_type == "exact":
            return path == self.text
        if self.match_type == "prefix":
            return path.startswith(self.text[:-2])
        if self.match_type == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None


def _escaped(ch: str) -> str:
    # Go regexp treats \d \w \s (and upper-case) as classes; Moby passes them through as is.
    if ch in "dDwWsS":
        return "\\" + ch
    return re.escape(ch)


@dataclass
class IgnoreMatcher:
    """The patterns of one .dockerignore; `excluded(rel)` answers for one context path."""

    patterns: list[Pattern] = field(default_factory=list)
    source: str = ""  # file the patterns came from, for messages

    @classmethod
    def from_lines(cls, lines: Sequence[str], source: str = "") -> IgnoreMatcher:
        compiled = [Pattern.compile(line) for line in lines if line.strip()]
        return cls(patterns=compiled, source=source)

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, rel: str) -> bool:
        """Is this "/"-separated context path left out? Evaluated from the top directory
        down, as Docker's and BuildKit's walkers do (MatchesUsingParentResults)."""
        return self.results_for(rel)[0] if self.patterns else False

    def results_for(self, rel: str) -> tuple[bool, tuple[bool, ...]]:
        """(excluded, per-pattern results) for a path, chaining its parent directories."""
        parts = go_clean(rel).split("/")
        excluded = False
        results: tuple[bool, ...] = (False,) * len(self.patterns)
        for depth in range(1, len(parts) + 1):
            excluded, results = self.match_with_parent("/".join(parts[:depth]), results)
        return excluded, results

    def match_with_parent(
        self, rel: str, parent: tuple[bool, ...]
    ) -> tuple[bool, tuple[bool, ...]]:
        """patternmatcher.MatchesUsingParentResults: a pattern that matched the parent
        directory matches here too; otherwise it is tried on this path alone, and only
        when it could change the outcome (an exception while excluded, or the reverse).
        Returns (excluded, results to hand to this entry's children)."""
        matched = False
        results: list[bool] = []
        for pat, parent_hit in zip(self.patterns, parent, strict=True):
            hit = parent_hit
            if not hit and pat.exclusion == matched:
                hit = pat.match(rel)
            results.append(hit)
            if hit:
                matched = not pat.exclusion
        return matched, tuple(results)

    def can_skip_dir(self, rel: str) -> bool:
        """May a walk skip this excluded directory? Only if no exception starts with it."""
        if not self.has_exceptions:
            return True
        dir_slash = go_clean(rel) + "/"
        return not any(p.exclusion and (p.text + "/").startswith(dir_slash) for p in self.patterns)

    def pruned(self, rel: str, is_dir: bool) -> bool:
        """True when a walk leaves this entry out entirely (and, for a directory, its tree)."""
        if not self.excluded(rel):
            return False
        return not is_dir or self.can_skip_dir(rel)


def dockerignore_path(context_dir: Path, dockerfile_path: Path | None) -> Path | None:
    """`<Dockerfile>.dockerignore` beside the Dockerfile wins over `<context>/.dockerignore`."""
    root = Path(context_dir).absolute()
    if dockerfile_path is not None:
        beside = Path(str(dockerfile_path) + ".dockerignore").absolute()
        if beside.is_relative_to(root):  # inside the context: its symlinks stay inside
            beside = resolve_in_root(root, str(beside.relative_to(root)))
        if beside.is_file():
            return beside
    # a hostile context's `.dockerignore -> /etc/shadow` resolves inside the context
    default = resolve_in_root(root, ".dockerignore")
    return default if default.is_file() else None


def load_dockerignore(context_dir: Path, dockerfile_path: Path | None = None) -> IgnoreMatcher:
    path = dockerignore_path(context_dir, dockerfile_path)
    if path is None:
        return IgnoreMatcher()
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as err:
        raise ContextError(f"cannot read {path}: {err.strerror}") from None
    return IgnoreMatcher.from_lines(read_ignore_lines(text), source=str(path))


def matcher_from_patterns(patterns: Iterable[str]) -> IgnoreMatcher:
    """A matcher from patterns as a .dockerignore would hold them (e.g. COPY --exclude)."""
    return IgnoreMatcher.from_lines(read_ignore_lines("\n".join(patterns)))
