"""Expansion cases from BuildKit's own shell tests (frontend/dockerfile/shell/lex_test.go):
the same inputs, variables and expected results or errors."""

from __future__ import annotations

import pytest

from engine.dockerfile import expand
from engine.dockerfile.shell import ShellError, ShellLex
from engine.errors import DockerfileError

SET = {"FOO": "xxx", "BAR": ""}

CASES: list[tuple[str, dict[str, str], str | None]] = [
    ("x", {"DUMMY": "dummy"}, "x"),
    ("x ${UNUSED}", {"DUMMY": "dummy"}, "x "),
    ("x ${FOO}", {"FOO": "y"}, "x y"),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", SET, "xxx  ccc"),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", SET, "xxx bbb ccc"),
    ("${FOO:-}", SET, "xxx"),
    ("${FOO:-}", {}, ""),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", SET, "aaa bbb "),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", SET, "aaa  "),
    ("${FOO?aaa}", SET, "xxx"),
    ("${BAR?bbb}", SET, ""),
    ("${BAZ?ccc}", SET, None),
    ("${FOO:?aaa}", SET, "xxx"),
    ("${BAR:?bbb}", SET, None),
    ("${BAZ:?ccc}", SET, None),
    ("${BAZ:?}", SET, None),
    ("${FOO=aaa}", SET, None),
    ("${FOO=:aaa}", SET, None),
    ("${FOO=}", {}, None),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x"),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx"),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y"),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy"),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y"),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy."),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a"),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    (
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
        "/foo.*/*.txt - /foo..*.txt",
    ),
    (
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
        "/tmp/bar.txt - /bar.txt",
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"},
        "/foo/b/c.txt - /foo/c.txt",
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT}",
        {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
        "https://google.de",
    ),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt"),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy"),
    ("${FOO//ww}", {"FOO": "xxyy"}, None),
    ("${FOO//}", {"FOO": "xxyy"}, None),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO///}", {}, ""),
    (
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
        {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"},
        "something-v1.2.3.linux-arm-v7.tar.gz",
    ),
]


@pytest.mark.parametrize(("word", "env", "expected"), CASES)
def test_buildkit_shell_vector(word: str, env: dict[str, str], expected: str | None) -> None:
    if expected is None:
        with pytest.raises(DockerfileError):
            expand(word, env)
    else:
        assert expand(word, env) == expected


def test_matched_and_unmatched_names_are_reported() -> None:
    result = ShellLex().process("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", SET)
    assert (result.matched, result.unmatched) == ({"FOO", "BAR"}, {"BAZ"})


@pytest.mark.parametrize(
    ("env", "word", "outcome"),
    [
        ({"VAR": "plain", "ARG": "x"}, "${VAR:?message here$ARG}", "plain"),
        ({"VAR": "", "ARG": "x"}, "${VAR:?message here$ARG}", ShellError),
        ({"ARG": "x"}, "${VAR:?message here$ARG}", ShellError),
        ({"VAR": "plain", "ARG": "x"}, "${VAR?message here$ARG}", "plain"),
        ({"VAR": "", "ARG": "x"}, "${VAR?message here$ARG}", ""),
        ({"ARG": "x"}, "${VAR?message here$ARG}", ShellError),
    ],
)
def test_mandatory_variables(env: dict[str, str], word: str, outcome: object) -> None:
    if outcome is ShellError:
        with pytest.raises(ShellError, match="message herex"):
            ShellLex().process_word(word, env)
    else:
        assert ShellLex().process_word(word, env) == outcome
