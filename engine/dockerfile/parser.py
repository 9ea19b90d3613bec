"""Dockerfile parser that reproduces BuildKit's `frontend/dockerfile/parser` decisions.

Two layers, as in BuildKit: the line parser (directives, continuation lines, comments,
heredoc bodies, flags, JSON vs shell form, per-instruction argument splitting) and the
instruction checks (known keyword, allowed flags, argument counts) that BuildKit does
in `instructions.Parse`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from engine.dockerfile.flags import FlagError, parse_flags, parse_go_duration
from engine.dockerfile.model import KEYWORDS, Directive, Dockerfile, Heredoc, Instruction
from engine.dockerfile.shell import ShellError, ShellLex, go_trim_space, is_space
from engine.errors import DockerfileError

_DIRECTIVE_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_VALID_DIRECTIVES = ("syntax", "escape", "check")
_TOKEN_WS = re.compile(r"[\t\v\f\r ]+")
_HEREDOC_RE = re.compile(r"(\d*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_HEREDOC_KEYWORDS = ("ADD", "COPY", "RUN")
_GO_BYTE_SPACE = frozenset(b"\t\n\v\f\r \x85\xa0")  # unicode.IsSpace(rune(byte))
_STAGE_NAME_RE = re.compile(r"[a-z][a-z0-9\-_.]*\Z")


class _ParseError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Directives:
    escape: str = "\\"
    continuation: re.Pattern[str] = field(default_factory=lambda: _continuation_re("\\"))
    done: bool = False
    seen: list[Directive] = field(default_factory=list)
    line: int = 0

    def set_escape(self, value: str) -> None:
        if value not in ("`", "\\"):
            raise _ParseError(f"invalid escape token '{value}' does not match ` or \\")
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
        m = _DIRECTIVE_RE.match(_trim_left_space(line[1:]))
        if m is None or m.group(1).lower() not in _VALID_DIRECTIVES:
            self.done = True
            return False
        name = m.group(1).lower()
        if any(d.name == name for d in self.seen):
            raise _ParseError(f"only one {name} parser directive can be used")
        self.seen.append(Directive(name, m.group(2), self.line))
        if name == "escape":
            self.set_escape(m.group(2))
        return True


def _continuation_re(token: str) -> re.Pattern[str]:
    t = re.escape(token)
    # A trailing escape token continues the line unless it is itself escaped.
    return re.compile(rf"([^{t}]){t}[ \t]*\Z|^{t}[ \t]*\Z")


@dataclass
class Node:
    """BuildKit's AST node for one instruction, before the instruction checks."""

    raw_cmd: str
    original: str
    flags: tuple[str, ...]
    values: tuple[str, ...]
    json_form: bool = False
    sub: Node | None = None
    legacy_form: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)


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


def _trim_left_space(line: str) -> str:
    i = 0
    while i < len(line) and is_space(line[i]):
        i += 1
    return line[i:]


def _is_comment(line: str) -> bool:
    return _trim_left_space(line).startswith("#")


def _trim_continuation(line: str, d: _Directives) -> tuple[str, bool]:
    m = d.continuation.search(line)
    if m is None:
        return line, True
    return line[: m.start()] + (m.group(1) or ""), False


# ---------------------------------------------------------------------------
# splitCommand / extractBuilderFlags / line parsers


def _extract_builder_flags(line: str) -> tuple[str, tuple[str, ...]]:
    """Leading `--flag` words; BuildKit scans bytes, so we do too (same quirks)."""
    data = line.encode("utf-8", "surrogateescape")
    words: list[str] = []
    word = bytearray()
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    quote = 0
    blank_ok = False
    pos = 0
    n = len(data)
    while pos <= n:
        ch = data[pos] if pos < n else -1
        if phase == in_spaces:
            if pos == n:
                break
            if ch in _GO_BYTE_SPACE:
                pos += 1
                continue
            if ch != 0x2D or pos + 1 == n or data[pos + 1] != 0x2D:
                return data[pos:].decode("utf-8", "replace"), tuple(words)
            phase = in_word
        if pos == n:
            if bytes(word) != b"--" and (blank_ok or word):
                words.append(word.decode("latin-1"))
            break
        if phase == in_word:
            if ch in _GO_BYTE_SPACE:
                phase = in_spaces
                if bytes(word) == b"--":
                    return data[pos:].decode("utf-8", "replace"), tuple(words)
                if blank_ok or word:
                    words.append(word.decode("latin-1"))
                word = bytearray()
                blank_ok = False
                pos += 1
                continue
            if ch in (0x27, 0x22):
                quote = ch
                blank_ok = True
                phase = in_quote
                pos += 1
                continue
            if ch == 0x5C:
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = data[pos]
            word.append(ch)
            pos += 1
            continue
        # in quote
        if ch == quote:
            phase = in_word
            pos += 1
            continue
        if ch == 0x5C:
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            ch = data[pos]
        word.append(ch)
        pos += 1
    return "", tuple(words)


def _split_command(line: str) -> tuple[str, tuple[str, ...], str]:
    parts = _TOKEN_WS.split(go_trim_space(line), maxsplit=1)
    flags: tuple[str, ...] = ()
    args = ""
    if len(parts) == 2:
        args, flags = _extract_builder_flags(parts[1])
    return parts[0], flags, go_trim_space(args)


def _parse_words(rest: str, escape: str) -> list[str]:
    """Split on spaces keeping quotes and escapes (BuildKit's parseWords)."""
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    quote = ""
    blank_ok = False
    buf: list[str] = []
    pos = 0
    n = len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if is_space(ch):
                pos += 1
                continue
            phase = in_word
        if pos == n:
            if blank_ok or buf:
                words.append("".join(buf))
            break
        if phase == in_word:
            if is_space(ch):
                phase = in_spaces
                if blank_ok or buf:
                    words.append("".join(buf))
                buf = []
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                buf.append(ch)
                pos += 1
                ch = rest[pos]
            buf.append(ch)
            pos += 1
            continue
        if ch == quote:
            phase = in_word
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            buf.append(ch)
            ch = rest[pos]
        buf.append(ch)
        pos += 1
    return words


def _reject_constant(name: str) -> object:
    raise ValueError(f"not JSON: {name}")  # Go's JSON has no NaN/Infinity


_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class _NotStringArray(Exception):
    pass


def _parse_json(rest: str) -> tuple[str, ...] | None:
    """JSON array of strings, or None when `rest` is not JSON (shell form)."""
    rest = _trim_left_space(rest)
    if not rest.startswith("["):
        return None
    try:
        # BuildKit (as vendored by the oracle) decodes the first JSON value only.
        value, _ = _JSON_DECODER.raw_decode(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _NotStringArray
    return tuple(value)


_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


def _maybe_json(rest: str) -> tuple[tuple[str, ...], bool]:
    if rest == "":
        return (), False
    try:
        parsed = _parse_json(rest)
    except _NotStringArray:
        raise _ParseError(_NOT_STRINGS) from None
    if parsed is not None:
        return parsed, True
    return (rest,), False


def _maybe_json_to_list(rest: str) -> tuple[tuple[str, ...], bool]:
    try:
        parsed = _parse_json(rest)
    except _NotStringArray:
        raise _ParseError(_NOT_STRINGS) from None
    if parsed is not None:
        return parsed, True
    return _whitespace_delimited(rest), False


def _whitespace_delimited(rest: str) -> tuple[str, ...]:
    return tuple(_TOKEN_WS.split(rest)) if rest else ()


def _name_val(rest: str, key: str, escape: str) -> tuple[tuple[str, ...], bool]:
    words = _parse_words(rest, escape)
    if not words:
        return (), False
    if "=" not in words[0]:
        parts = _TOKEN_WS.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _ParseError(f"{key} must have two arguments")
        return (parts[0], parts[1]), True
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise _ParseError(
                f"Syntax error - can't find = in {_go_q(word)}. Must be of the form: name=value"
            )
        k, _, v = word.partition("=")
        out += [k, v]
    return tuple(out), False


def _go_q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _health(rest: str) -> tuple[tuple[str, ...], bool]:
    data = rest.encode("utf-8", "surrogateescape")
    sep = 0
    while sep < len(data) and data[sep] not in _GO_BYTE_SPACE:
        sep += 1
    nxt = sep
    while nxt < len(data) and data[nxt] in _GO_BYTE_SPACE:
        nxt += 1
    if sep == 0:
        return (), False
    typ = data[:sep].decode("utf-8", "replace")
    cmd, json_form = _maybe_json(data[nxt:].decode("utf-8", "replace"))
    return (typ, *cmd), json_form


def _node_from_line(line: str, d: _Directives) -> Node:
    raw_cmd, flags, rest = _split_command(line)
    kw = raw_cmd.lower()
    values: tuple[str, ...] = ()
    json_form = False
    legacy = False
    sub: Node | None = None
    if kw in ("add", "copy", "volume"):
        values, json_form = _maybe_json_to_list(rest)
    elif kw in ("cmd", "entrypoint", "run", "shell"):
        values, json_form = _maybe_json(rest)
    elif kw == "arg":
        values = tuple(_parse_words(rest, d.escape))
    elif kw in ("env", "label"):
        values, legacy = _name_val(rest, "LABEL" if kw == "label" else "ENV", d.escape)
    elif kw in ("expose", "from"):
        values = _whitespace_delimited(rest)
    elif kw == "healthcheck":
        values, json_form = _health(rest)
    elif kw in ("maintainer", "stopsignal", "user", "workdir"):
        values = (rest,) if rest else ()
    elif kw == "onbuild":
        if rest:
            sub = _node_from_line(rest, d)
            values, json_form = sub.values, sub.json_form
    else:
        values = ("",)  # BuildKit's parseIgnore: unknown keywords parse, fail later
    return Node(raw_cmd, line, flags, values, json_form, sub, legacy)


def _can_contain_heredoc(node: Node) -> bool:
    target = node.sub if node.raw_cmd.lower() == "onbuild" and node.sub else node
    return target.raw_cmd.upper() in _HEREDOC_KEYWORDS and not target.json_form


def _heredoc_from_word(word: str) -> Heredoc | None:
    m = _HEREDOC_RE.match(word)
    if m is None or not m.group(3):
        return None
    rest = m.group(3)
    try:
        words = ShellLex(skip_unset_env=True).process_words(rest, {})
        raw = ShellLex(skip_unset_env=True, raw_quotes=True).process_words(rest, {})
    except ShellError as exc:
        raise _ParseError(str(exc)) from None
    if len(words) != 1:
        return None
    if len(raw) != len(words):
        raise _ParseError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(
        name=words[0],
        content="",
        expand=quotes == raw_quotes,
        chomp=m.group(2) == "-",
        fd=int(m.group(1)) if m.group(1) else 0,
    )


def heredoc_marker(word: str) -> Heredoc | None:
    """The heredoc a word like `<<-"EOF"` opens, or None (BuildKit's MustParseHeredoc)."""
    try:
        return _heredoc_from_word(word)
    except _ParseError:
        return None


def _heredocs_from_line(line: str) -> list[Heredoc]:
    lex = ShellLex(raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    try:
        words = lex.process_words(line, {})
    except ShellError:
        words = []  # BuildKit ignores the error here: no heredocs then
    docs = []
    for word in words:
        doc = _heredoc_from_word(word)
        if doc is not None:
            docs.append(doc)
    return docs


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
        token = _trim_left_space(_trim_newline(raw))
        try:
            d.feed(token)
        except _ParseError as exc:
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
            except _ParseError as exc:
                raise fail(exc.message, current + 1) from None
            current += 1
            if _is_comment(raw):
                continue
            if _trim_left_space(token) == "":
                has_empty = True
                continue
            token, end_of_line = _trim_continuation(token, d)
            parts.append(token)
        line = "".join(parts)
        if has_empty:
            warnings.append(f"{filename}:{current}: empty continuation line found in: {line}")
        try:
            node = _node_from_line(line, d)
        except _ParseError as exc:
            raise fail(exc.message, start) from None
        if _can_contain_heredoc(node) and "<<" in line:
            try:
                docs = _heredocs_from_line(line)
            except _ParseError as exc:
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
            raise _ParseError("FROM requires either one or three arguments")
        if len(args) == 3 and not _STAGE_NAME_RE.match(args[2].lower()):
            raise _ParseError(
                f"invalid name for build stage: {_go_q(args[2])}, "
                "name can't start with a number or contain symbols"
            )
    elif kw in ("COPY", "ADD"):
        if len(args) < 2:
            raise _ParseError(
                f"{kw} requires at least two arguments, but only one was provided. "
                "Destination could not be determined."
            )
        if heredoc_marker(args[-1]) is not None:
            raise _ParseError(f"{kw} cannot accept a heredoc as a destination")
    elif kw in ("ENV", "LABEL"):
        if not args:
            raise _ParseError(_at_least_one(kw))
        if any(args[i] == "" for i in range(0, len(args), 2)):
            raise _ParseError(f"{kw} names can not be blank")
    elif kw == "ARG":
        if not args:
            raise _ParseError(_at_least_one(kw))
        if any(a.partition("=")[0] == "" for a in args):
            raise _ParseError("ARG names can not be blank")
    elif kw in ("MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"):
        if len(args) != 1:
            raise _ParseError(_exactly_one(kw))
    elif kw in ("EXPOSE", "VOLUME"):
        if not args:
            raise _ParseError(_at_least_one(kw))
        if kw == "VOLUME" and any(go_trim_space(a) == "" for a in args):
            raise _ParseError("VOLUME specified can not be an empty string")
    elif kw == "SHELL":
        if not node.json_form:
            raise _ParseError("SHELL requires the arguments to be in JSON form")
        if not args:
            raise _ParseError(_at_least_one(kw))
    elif kw == "HEALTHCHECK":
        _check_healthcheck(args, flag_values)


def _check_healthcheck(args: tuple[str, ...], flag_values: tuple[tuple[str, str], ...]) -> None:
    if not args:
        raise _ParseError(_at_least_one("HEALTHCHECK"))
    typ = args[0].upper()
    if typ == "NONE":
        if len(args) > 1:
            raise _ParseError("HEALTHCHECK NONE takes no arguments")
        return
    if typ != "CMD":
        raise _ParseError(f"Unknown type {_go_q(typ)} in HEALTHCHECK (try CMD)")
    if len(args) < 2 or (len(args) == 2 and args[1] == ""):
        raise _ParseError("Missing command after HEALTHCHECK CMD")
    for name, value in flag_values:
        if name == "retries":
            try:
                retries = int(value) if value else 0
            except ValueError:
                raise _ParseError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
            if retries < 0:
                raise _ParseError(f"--retries cannot be negative ({retries})")
        elif value:
            try:
                seconds = parse_go_duration(value)
            except ValueError as exc:
                raise _ParseError(str(exc)) from None
            if seconds != 0 and seconds < 0.001:
                raise _ParseError(f'Interval "{name}" cannot be less than 1ms')


def _to_instruction(node: Node, start: int, end: int, *, nested: bool = False) -> Instruction:
    kw = node.raw_cmd.upper()
    if kw not in KEYWORDS:
        raise _ParseError(f"unknown instruction: {node.raw_cmd}")
    try:
        flag_values = parse_flags(kw, node.flags)
    except FlagError as exc:
        raise _ParseError(str(exc)) from None
    sub: Instruction | None = None
    if kw == "ONBUILD":
        if node.sub is None:
            raise _ParseError(_at_least_one("ONBUILD"))
        sub_kw = node.sub.raw_cmd.upper()
        if sub_kw == "ONBUILD":
            raise _ParseError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if sub_kw in ("FROM", "MAINTAINER"):
            raise _ParseError(f"{sub_kw} isn't allowed as an ONBUILD trigger")
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
    except _ParseError as exc:
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
