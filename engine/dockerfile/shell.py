"""Shell-style word processing as BuildKit's `frontend/dockerfile/shell` does it.

Handles `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?m}`, `${V?m}`,
`${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`, `${V/p/r}`, `${V//p/r}`, single and double
quotes and the escape token. It is not a shell: no command substitution, no globbing.
The switches mirror BuildKit's `Lex` fields, because the parser uses the same lexer in
"raw" modes to find heredoc markers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.errors import DockerfileError

_EOF = ""
_UNMATCHED = "unexpected end of statement while looking for matching "
_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class ShellError(ValueError):
    """A word could not be processed (bad substitution, unmatched quote, `${V?}`)."""


def is_space(ch: str) -> bool:
    """Go's unicode.IsSpace (Python's isspace also counts U+001C..U+001F)."""
    return ch.isspace() and ch not in "\x1c\x1d\x1e\x1f"


def go_trim_space(text: str) -> str:
    """Go's strings.TrimSpace."""
    start, end = 0, len(text)
    while start < end and is_space(text[start]):
        start += 1
    while end > start and is_space(text[end - 1]):
        end -= 1
    return text[start:end]


@dataclass
class _Words:
    """Word splitting that happens while a word is processed (`ProcessWords`)."""

    words: list[str] = field(default_factory=list)
    word: str = ""
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if is_space(ch):
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word += ch
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


@dataclass
class ProcessResult:
    result: str
    words: list[str]
    matched: set[str]
    unmatched: set[str]


class ShellLex:
    """One configuration of the word processor (BuildKit's `shell.Lex`)."""

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset_env: bool = False,
        skip_process_quotes: bool = False,
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset_env = skip_unset_env
        self.skip_process_quotes = skip_process_quotes

    def process(self, word: str, env: Mapping[str, str]) -> ProcessResult:
        run = _Run(self, word, env)
        try:
            result, words = run.stop_on(_EOF, self.raw_escapes)
        except ShellError as exc:
            raise ShellError(f"failed to process {_go_quote(word)}: {exc}") from None
        return ProcessResult(result, words, run.matched, run.unmatched)

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        return self.process(word, env).result

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        return self.process(word, env).words


def _go_quote(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


class _Run:
    """State of one `process` call: the text, a cursor and the variables looked up."""

    def __init__(self, lex: ShellLex, text: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.text = text
        self.pos = 0
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    # -- cursor -------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        if self.pos >= len(self.text):
            return _EOF
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False

    # -- grammar ------------------------------------------------------------
    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        quotes = not self.lex.skip_process_quotes
        while self.peek() != _EOF:
            ch = self.peek()
            if stop != _EOF and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch == "$":
                tmp = self.dollar()
                result.append(tmp)
                words.add_string(tmp)
            elif ch == "<":
                # `<<` takes the blanks after it, so `<< EOF` stays one word (BuildKit
                # lets a heredoc delimiter follow `<<` after spaces).
                tmp = self.possible_heredoc()
                result.append(tmp)
                words.add_raw_string(tmp)
            elif quotes and ch == "'":
                tmp = self.single_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            elif quotes and ch == '"':
                tmp = self.double_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            else:
                ch = self.next()
                if ch == self.lex.escape:
                    if self.raw_escapes:
                        words.add_raw_char(ch)
                        result.append(ch)
                    ch = self.next()
                    if ch == _EOF:
                        break
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop != _EOF:
            raise ShellError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def possible_heredoc(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        spaces = []
        while self.peek() in (" ", "\t"):
            spaces.append(self.next())
        return "<<" + "".join(spaces)

    def single_quote(self) -> str:
        out: list[str] = []
        ch = self.next()
        if self.lex.raw_quotes:
            out.append(ch)
        while True:
            ch = self.next()
            if ch == _EOF:
                raise ShellError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        out: list[str] = []
        ch = self.next()
        if self.lex.raw_quotes:
            out.append(ch)
        while True:
            nxt = self.peek()
            if nxt == _EOF:
                raise ShellError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if nxt == '"':
                ch = self.next()
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if nxt == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.lex.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if following == _EOF:
                    continue
                if following in ('"', "$", self.lex.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while self.peek() != _EOF:
            ch = self.peek()
            if not out and ch.isdecimal():  # Go's unicode.IsDigit is category Nd only
                while self.peek() != _EOF and self.peek().isdecimal():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset_env:
                return "$" + name
            return value

        self.next()
        if self.peek() == _EOF:
            raise ShellError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ShellError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == _EOF:
            raise ShellError("syntax error: missing '}'")
        mods = ch
        null_is_unset = False
        if ch == "}":
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset_env:
                return "${" + name + "}"
            return value
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            mods += ch
            return self._modifier(name, ch, mods, null_is_unset)
        if ch in ("+", "-", "?", "#", "%"):
            return self._modifier(name, ch, mods, null_is_unset)
        if ch == "/":
            return self._replace(name)
        raise ShellError(f"unsupported modifier ({mods}) in substitution")

    def _word_until_brace(self, raw_escapes: bool) -> str:
        try:
            word, _ = self.stop_on("}", raw_escapes)
        except ShellError:
            if self.peek() == _EOF:
                raise ShellError("syntax error: missing '}'") from None
            raise
        return word

    def _modifier(self, name: str, ch: str, mods: str, null_is_unset: bool) -> str:
        word = self._word_until_brace(ch in ("#", "%"))
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${" + name + mods + word + "}"
        if ch == "-":
            return word if not found or (null_is_unset and value == "") else value
        if ch == "+":
            return "" if not found or (null_is_unset and value == "") else word
        if ch == "?":
            if not found:
                raise ShellError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise ShellError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("#", "%"):
            greedy = False
            if word[:1] == ch:
                greedy = True
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise ShellError(f"unsupported modifier ({mods}) in substitution")

    def _replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern, _ = self.stop_on("/", True)
        except ShellError:
            if self.peek() == _EOF:
                raise ShellError("syntax error: missing '/' in ${}") from None
            raise
        replacement = self._word_until_brace(True)
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            return _go_replace_all(regex, value, replacement)
        match = regex.search(value)
        if match is None:
            return value
        return value[: match.start()] + replacement + value[match.end() :]


def _go_replace_all(regex: re.Pattern[str], value: str, template: str) -> str:
    """Go's ReplaceAllString: an empty match right after a match is not replaced."""
    out: list[str] = []
    search = 0
    last_end = 0
    while search <= len(value):
        m = regex.search(value, search)
        if m is None:
            break
        out.append(value[last_end : m.start()])
        if m.end() > last_end or m.start() == 0:
            out.append(_go_template(template, m))
        last_end = m.end()
        search = search + 1 if search + 1 > m.end() else m.end()
    out.append(value[last_end:])
    return "".join(out)


def _go_template(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand as ReplaceAllString uses it ($$, $0, ${0}; other groups empty)."""
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "$" or i + 1 >= len(template):
            out.append(ch)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end > 0 else ""
            if end < 0 or not re.fullmatch(r"\w+", name):
                out.append("$")
                i += 1
                continue
            i = end + 1
        else:
            m = re.match(r"\w+", template[i + 1 :])
            if m is None:
                out.append("$")
                i += 1
                continue
            name = m.group(0)
            i += 1 + len(name)
        if name.isdecimal() and int(name) == 0:
            out.append(match.group(0))
    return "".join(out)


_REGEX_SPECIAL = frozenset("[]{}.+()|^$")


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """Shell wildcard pattern (`*`, `?`, backslash escapes; no brackets) to a regex."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
        elif tok == "?":
            out.append(".")
        elif tok == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/"):
                continue
            tok = nxt
            i += 1
            if tok not in ("*", "?", "\\"):
                raise ShellError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{tok}'"
                )
            out.append("\\" + tok)
        elif tok in _REGEX_SPECIAL:
            out.append("\\" + tok)
        else:
            out.append(tok)
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[match.end() :] if match else value


def _reverse_pattern(pattern: str) -> str:
    # Reverse but keep escape pairs in order: a\*c -> c\*a.
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i != len(pattern) - 1:
            tokens.append(pattern[i : i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Regexes find leftmost matches; reverse both sides to find the rightmost one.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


_DEFAULT_LEX = ShellLex()


def expand(word: str, variables: Mapping[str, str], *, escape: str = "\\") -> str:
    """Expand one word as ADD/COPY/ENV/... do: variables substituted, quotes removed."""
    lex = _DEFAULT_LEX if escape == "\\" else ShellLex(escape)
    try:
        return lex.process_word(word, variables)
    except ShellError as exc:
        raise DockerfileError(str(exc)) from None


def expand_words(text: str, variables: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """Expand and split into words as EXPOSE does (splitting happens after expansion)."""
    lex = _DEFAULT_LEX if escape == "\\" else ShellLex(escape)
    try:
        return lex.process_words(text, variables)
    except ShellError as exc:
        raise DockerfileError(str(exc)) from None
