"""Dockerfile parser that reproduces BuildKit's `frontend/dockerfile/parser` decisions.

Two layers, as in BuildKit: the file loop (directives, continuation lines, comments,
heredoc bodies; each logical line goes to lineparse.node_from_line) and the instruction
checks (known keyword, allowed flags, argument counts) of BuildKit's instructions.Parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.dockerfile.flags import FlagError, go_duration_seconds, parse_flags
from engine.dockerfile.lineparse import (
    Node,
    ParseError,
    can_contain_heredoc,
    go_quote,
    heredoc_marker,
    heredocs_from_line,
    node_from_line,
    trim_left_space,
)
from engine.dockerfile.model import KEYWORDS, Directive, Dockerfile, Heredoc, Instruction
from engine.dockerfile.shell import go_trim_space
from engine.errors import DockerfileError

__all__ = ["Node", "heredoc_marker", "parse_dockerfile", "parse_nodes", "to_instruction"]

_DIRECTIVE_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_VALID_DIRECTIVES = ("syntax", "escape", "check")
_STAGE_NAME_RE = re.compile(r"[a-z][a-z0-9\-_.]*\Z")


@dataclass
class _Directives:
    escape: str = "\\"
    continuation: re.Pattern[str] = field(default_factory=lambda: _continuation_re("\\"))
    done: bool = False
    seen: list[Directive] = field(default_factory=list)
    line: int = 0

    def set_escape(self, value: str) -> None:
        if value not in ("`", "\\"):
            raise ParseError(f"invalid escape token '{value}' does not match ` or \\")
        self.escape = value
        self.continuation = _continuation_re(value)

    def feed(self, line: str) -> bool:
        """Look at one (left-trimmed) line; True when it was a directive."""
        self.line += 1
        if self.done:
            return False
        if not line.startswith("#"):
            self.done = True
            return False
        m = _DIRECTIVE_RE.match(trim_left_space(line[1:]))
        if m is None or m.group(1).lower() not in _VALID_DIRECTIVES:
            self.done = True
            return False
        name = m.group(1).lower()
        if any(d.name == name for d in self.seen):
            raise ParseError(f"only one {name} parser directive can be used")
        self.seen.append(Directive(name, m.group(2), self.line))
        if name == "escape":
            self.set_escape(m.group(2))
        return True


def _continuation_re(token: str) -> re.Pattern[str]:
    t = re.escape(token)
    # A trailing escape token continues the line unless it is itself escaped.
    return re.compile(rf"([^{t}]){t}[ \t]*\Z|^{t}[ \t]*\Z")


# ---------------------------------------------------------------------------
# line splitting helpers


def _split_on_lf(text: str) -> list[str]:
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return trim_left_space(line).startswith("#")


def _trim_continuation(line: str, d: _Directives) -> tuple[str, bool]:
    m = d.continuation.search(line)
    if m is None:
        return line, True
    return line[: m.start()] + (m.group(1) or ""), False


# ---------------------------------------------------------------------------
# the file loop


def parse_nodes(
    text: str, filename: str = "Dockerfile"
) -> tuple[list[tuple[Node, int, int]], _Directives, list[str]]:
    """BuildKit's `parser.Parse`: (node, first line, last line) per instruction."""
    d = _Directives()
    lines = _split_on_lf(text)
    nodes: list[tuple[Node, int, int]] = []
    warnings: list[str] = []
    current = 0
    i = 0

    def fail(message: str, line: int) -> DockerfileError:
        return DockerfileError(message, file=filename, line=line or None)

    while i < len(lines):
        raw = lines[i]
        i += 1
        if current == 0 and raw.startswith("\ufeff"):
            raw = raw[1:]
        token = trim_left_space(_trim_newline(raw))
        try:
            d.feed(token)
        except ParseError as exc:
            raise fail(exc.message, current + 1) from None
        if _is_comment(token):
            token = ""
        current += 1
        start = current
        line, end_of_line = _trim_continuation(token, d)
        if end_of_line and line == "":
            continue
        parts = [line]
        has_empty = False
        while not end_of_line and i < len(lines):
            raw = lines[i]
            i += 1
            token = _trim_newline(raw)
            try:
                d.feed(token)
            except ParseError as exc:
                raise fail(exc.message, current + 1) from None
            current += 1
            if _is_comment(raw):
                continue
            if trim_left_space(token) == "":
                has_empty = True
                continue
            token, end_of_line = _trim_continuation(token, d)
            parts.append(token)
        line = "".join(parts)
        if has_empty:
            warnings.append(f"{filename}:{current}: empty continuation line found in: {line}")
        try:
            node = node_from_line(line, d.escape)
        except ParseError as exc:
            raise fail(exc.message, start) from None
        if can_contain_heredoc(node) and "<<" in line:
            try:
                docs = heredocs_from_line(line)
            except ParseError as exc:
                raise fail(exc.message, start) from None
            for doc in docs:
                body: list[str] = []
                terminated = False
                while i < len(lines):
                    raw = lines[i]
                    i += 1
                    current += 1
                    candidate = _trim_newline(raw)
                    if doc.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == doc.name:
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    raise fail("unterminated heredoc", start)
                node.heredocs.append(
                    Heredoc(doc.name, "".join(body), doc.expand, doc.chomp, doc.fd)
                )
        nodes.append((node, start, current))
    if not nodes:
        raise DockerfileError("file with no instructions", file=filename)
    return nodes, d, warnings


# ---------------------------------------------------------------------------
# instruction checks (BuildKit's instructions.Parse)


def _exactly_one(kw: str) -> str:
    return f"{kw} requires exactly one argument"


def _at_least_one(kw: str) -> str:
    return f"{kw} requires at least one argument"


def _check(node: Node, kw: str, flag_values: tuple[tuple[str, str], ...]) -> None:
    args = node.values
    if kw == "FROM":
        if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
            raise ParseError("FROM requires either one or three arguments")
        if len(args) == 3 and not _STAGE_NAME_RE.match(args[2].lower()):
            raise ParseError(
                f"invalid name for build stage: {go_quote(args[2])}, "
                "name can't start with a number or contain symbols"
            )
    elif kw in ("COPY", "ADD"):
        if len(args) < 2:
            raise ParseError(
                f"{kw} requires at least two arguments, but only one was provided. "
                "Destination could not be determined."
            )
        if heredoc_marker(args[-1]) is not None:
            raise ParseError(f"{kw} cannot accept a heredoc as a destination")
    elif kw in ("ENV", "LABEL"):
        if not args:
            raise ParseError(_at_least_one(kw))
        if any(args[i] == "" for i in range(0, len(args), 2)):
            raise ParseError(f"{kw} names can not be blank")
    elif kw == "ARG":
        if not args:
            raise ParseError(_at_least_one(kw))
        if any(a.partition("=")[0] == "" for a in args):
            raise ParseError("ARG names can not be blank")
    elif kw in ("MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"):
        if len(args) != 1:
            raise ParseError(_exactly_one(kw))
    elif kw in ("EXPOSE", "VOLUME"):
        if not args:
            raise ParseError(_at_least_one(kw))
        if kw == "VOLUME" and any(go_trim_space(a) == "" for a in args):
            raise ParseError("VOLUME specified can not be an empty string")
    elif kw == "SHELL":
        if not node.json_form:
            raise ParseError("SHELL requires the arguments to be in JSON form")
        if not args:
            raise ParseError(_at_least_one(kw))
    elif kw == "HEALTHCHECK":
        _check_healthcheck(args, flag_values)


def _check_healthcheck(args: tuple[str, ...], flag_values: tuple[tuple[str, str], ...]) -> None:
    if not args:
        raise ParseError(_at_least_one("HEALTHCHECK"))
    typ = args[0].upper()
    if typ == "NONE":
        if len(args) > 1:
            raise ParseError("HEALTHCHECK NONE takes no arguments")
        return
    if typ != "CMD":
        raise ParseError(f"Unknown type {go_quote(typ)} in HEALTHCHECK (try CMD)")
    if len(args) < 2 or (len(args) == 2 and args[1] == ""):
        raise ParseError("Missing command after HEALTHCHECK CMD")
    for name, value in flag_values:
        if name == "retries":
            try:
                retries = int(value) if value else 0
            except ValueError:
                raise ParseError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
            if retries < 0:
                raise ParseError(f"--retries cannot be negative ({retries})")
        elif value:
            try:
                seconds = go_duration_seconds(value)
            except ValueError as exc:
                raise ParseError(str(exc)) from None
            if seconds != 0 and seconds < 0.001:
                raise ParseError(f'Interval "{name}" cannot be less than 1ms')


def _to_instruction(node: Node, start: int, end: int, *, nested: bool = False) -> Instruction:
    kw = node.raw_cmd.upper()
    if kw not in KEYWORDS:
        raise ParseError(f"unknown instruction: {node.raw_cmd}")
    try:
        flag_values = parse_flags(kw, node.flags)
    except FlagError as exc:
        raise ParseError(str(exc)) from None
    sub: Instruction | None = None
    if kw == "ONBUILD":
        if node.sub is None:
            raise ParseError(_at_least_one("ONBUILD"))
        sub_kw = node.sub.raw_cmd.upper()
        if sub_kw == "ONBUILD":
            raise ParseError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if sub_kw in ("FROM", "MAINTAINER"):
            raise ParseError(f"{sub_kw} isn't allowed as an ONBUILD trigger")
        node.sub.heredocs = node.heredocs
        sub = _to_instruction(node.sub, start, end, nested=True)
    else:
        _check(node, kw, flag_values)
    return Instruction(
        keyword=kw,
        args=node.values,
        flags=node.flags,
        json_form=node.json_form,
        heredocs=tuple(node.heredocs),
        line=start,
        end_line=end,
        original=go_trim_space(node.original) if nested else node.original,
        raw_keyword=node.raw_cmd,
        sub=sub,
        legacy_form=node.legacy_form,
        flag_values=flag_values,
    )


def to_instruction(node: Node, start: int, end: int, *, filename: str) -> Instruction:
    """Check one parsed node the way BuildKit's instructions.Parse does."""
    try:
        return _to_instruction(node, start, end)
    except ParseError as exc:
        raise DockerfileError(exc.message, file=filename, line=start or None) from None


def parse_dockerfile(text: str, *, filename: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile text; raises DockerfileError naming file and line."""
    nodes, d, warnings = parse_nodes(text, filename)
    instructions = [to_instruction(n, start, end, filename=filename) for n, start, end in nodes]
    return Dockerfile(
        directives=tuple(d.seen),
        instructions=instructions,
        escape=d.escape,
        filename=filename,
        warnings=tuple(warnings),
    )
