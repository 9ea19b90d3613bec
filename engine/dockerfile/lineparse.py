"""BuildKit's line-level parsers: one logical line becomes a Node.

splitCommand and extractBuilderFlags, the per-instruction argument splitters
(parseWords, JSON vs shell form, ENV/LABEL key-value forms, HEALTHCHECK), and the
heredoc markers a RUN/COPY/ADD line opens. Each keeps BuildKit's quirks on purpose:
the differential tests compare them with BuildKit's own parser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from engine.dockerfile.model import Heredoc
from engine.dockerfile.shell import ShellError, ShellLex, go_trim_space, is_space

_TOKEN_WS = re.compile(r"[\t\v\f\r ]+")
_HEREDOC_RE = re.compile(r"(\d*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_HEREDOC_KEYWORDS = ("ADD", "COPY", "RUN")
_GO_BYTE_SPACE = frozenset(b"\t\n\v\f\r \x85\xa0")  # unicode.IsSpace(rune(byte))


class ParseError(Exception):
    """A line BuildKit's parser rejects (the caller adds file and line)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


def trim_left_space(line: str) -> str:
    i = 0
    while i < len(line) and is_space(line[i]):
        i += 1
    return line[i:]


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
    rest = trim_left_space(rest)
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
        raise ParseError(_NOT_STRINGS) from None
    if parsed is not None:
        return parsed, True
    return (rest,), False


def _maybe_json_to_list(rest: str) -> tuple[tuple[str, ...], bool]:
    try:
        parsed = _parse_json(rest)
    except _NotStringArray:
        raise ParseError(_NOT_STRINGS) from None
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
            raise ParseError(f"{key} must have two arguments")
        return (parts[0], parts[1]), True
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise ParseError(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value"
            )
        k, _, v = word.partition("=")
        out += [k, v]
    return tuple(out), False


def go_quote(text: str) -> str:
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


def node_from_line(line: str, escape: str) -> Node:
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
        values = tuple(_parse_words(rest, escape))
    elif kw in ("env", "label"):
        values, legacy = _name_val(rest, "LABEL" if kw == "label" else "ENV", escape)
    elif kw in ("expose", "from"):
        values = _whitespace_delimited(rest)
    elif kw == "healthcheck":
        values, json_form = _health(rest)
    elif kw in ("maintainer", "stopsignal", "user", "workdir"):
        values = (rest,) if rest else ()
    elif kw == "onbuild":
        if rest:
            sub = node_from_line(rest, escape)
            values, json_form = sub.values, sub.json_form
    else:
        values = ("",)  # BuildKit's parseIgnore: unknown keywords parse, fail later
    return Node(raw_cmd, line, flags, values, json_form, sub, legacy)


def can_contain_heredoc(node: Node) -> bool:
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
        raise ParseError(str(exc)) from None
    if len(words) != 1:
        return None
    if len(raw) != len(words):
        raise ParseError(f"internal lexing of heredoc produced inconsistent results: {rest}")
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
    except ParseError:
        return None


def heredocs_from_line(line: str) -> list[Heredoc]:
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
