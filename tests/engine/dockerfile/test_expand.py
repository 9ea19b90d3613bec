"""Word expansion: the Dockerfile reference's table plus properties checked with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.dockerfile import expand, expand_words
from engine.errors import DockerfileError

ENV = {"V": "value", "EMPTY": "", "P": "/usr/local/lib/app.tar.gz", "S": "a b  c"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$V", "value"),
        ("${V}", "value"),
        ("x${V}y", "xvaluey"),
        ("$V.txt", "value.txt"),
        ("$UNSET", ""),
        ("${UNSET:-word}", "word"),
        ("${EMPTY:-word}", "word"),
        ("${EMPTY-word}", ""),
        ("${UNSET-word}", "word"),
        ("${V:-word}", "value"),
        ("${V:+word}", "word"),
        ("${EMPTY:+word}", ""),
        ("${EMPTY+word}", "word"),
        ("${UNSET+word}", ""),
        ("${UNSET:-$V}", "value"),
        ('${UNSET:-"a b"}', "a b"),
        ("${P#*/}", "usr/local/lib/app.tar.gz"),
        ("${P##*/}", "app.tar.gz"),
        ("${P%.*}", "/usr/local/lib/app.tar"),
        ("${P%%.*}", "/usr/local/lib/app"),
        ("${P#nomatch}", "/usr/local/lib/app.tar.gz"),
        ("${P/l/L}", "/usr/Local/lib/app.tar.gz"),
        ("${P//l/L}", "/usr/LocaL/Lib/app.tar.gz"),
        ("${P//\\//_}", "_usr_local_lib_app.tar.gz"),
        ("${V/?a/X}", "Xlue"),
        ("'$V'", "$V"),
        ('"$V"', "value"),
        ('"\\$V"', "$V"),
        ("\\$V", "$V"),
        ("a\\ b", "a b"),
        ('"a\\"b"', 'a"b'),
        ("'a\\b'", "a\\b"),
        ("$", "$"),
        ("$1", ""),
        ("${V:?is required}", "value"),
        ("100%", "100%"),
    ],
)
def test_expansion_table(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${UNSET:?must be set}", "UNSET: must be set"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${V", "missing '}'"),
        ("${}", "bad substitution"),
        ("${V:=x}", "unsupported modifier (:=) in substitution"),
        ("'open", "matching single-quote"),
        ('"open', "matching double-quote"),
    ],
)
def test_expansion_errors(word: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(word, ENV)


def test_backtick_escape() -> None:
    assert expand("`$V", ENV, escape="`") == "$V"
    assert expand("a\\b", ENV, escape="`") == "a\\b"


def test_words_split_after_expansion_but_not_inside_quotes() -> None:
    assert expand_words("$S 'x y' \"$V z\" q\\ r", ENV) == ["a", "b", "c", "x y", "value z", "q r"]
    assert expand_words('"" a', ENV) == ["a"]


# No example database: the suite must not write into the work tree.
settings.register_profile(
    "dockerfile-frontend",
    database=None,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
quick = settings.get_profile("dockerfile-frontend")

plain = st.text(alphabet=st.characters(blacklist_characters="$'\"\\`{}"), max_size=30)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
values = st.text(max_size=20)


@quick
@given(plain)
def test_text_without_specials_is_unchanged(text: str) -> None:
    assert expand(text, ENV) == text


@quick
@given(names, values)
def test_braced_and_bare_reference_give_the_value(name: str, value: str) -> None:
    assert expand("${" + name + "}", {name: value}) == value
    assert expand("$" + name, {name: value}) == value


@quick
@given(names, values, plain)
def test_default_forms(name: str, value: str, word: str) -> None:
    env = {name: value}
    assert expand("${" + name + ":-" + word + "}", env) == (value or word)
    assert expand("${" + name + "-" + word + "}", env) == value
    assert expand("${" + name + "-" + word + "}", {}) == word
    assert expand("${" + name + ":+" + word + "}", env) == (word if value else "")
    assert expand("${" + name + "+" + word + "}", env) == word


@quick
@given(names, st.text(alphabet="abc./", max_size=12), st.text(alphabet="abc./", max_size=3))
def test_prefix_and_suffix_removal_match_python(name: str, value: str, lit: str) -> None:
    env = {name: value}
    assert expand("${" + name + "#" + lit + "}", env) == value.removeprefix(lit)
    assert expand("${" + name + "%" + lit + "}", env) == value.removesuffix(lit)
    shortest = value.split("/", 1)[1] if "/" in value else value
    assert expand("${" + name + "#*/}", env) == shortest
    longest = value.rsplit("/", 1)[0] if "/" in value else value
    assert expand("${" + name + "%/*}", env) == longest


@quick
@given(names, st.text(alphabet="abc", max_size=12), st.sampled_from(["a", "b", "ab"]))
def test_replace_all_matches_str_replace(name: str, value: str, pat: str) -> None:
    assert expand("${" + name + "//" + pat + "/X}", {name: value}) == value.replace(pat, "X")
    assert expand("${" + name + "/" + pat + "/X}", {name: value}) == value.replace(pat, "X", 1)


@quick
@given(st.text(alphabet=st.characters(blacklist_characters="'"), max_size=30))
def test_single_quotes_keep_everything(text: str) -> None:
    assert expand("'" + text + "'", ENV) == text


@quick
@given(st.lists(st.text(alphabet="abcxyz-_./", min_size=1, max_size=6), max_size=6))
def test_words_split_on_whitespace(words: list[str]) -> None:
    assert expand_words("  ".join(words), {}) == words
