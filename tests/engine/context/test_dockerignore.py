from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.context.dockerignore import (
    IgnoreMatcher,
    Pattern,
    go_clean,
    load_dockerignore,
    read_ignore_lines,
)
from engine.context.gomatch import BadPattern, go_match
from engine.context.walk import walk_context
from engine.errors import ContextError


def test_read_all_like_moby() -> None:
    text = (
        "\ufefftest1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
        "! /inverted/abs/path\n!\n! \n"
    )
    assert read_ignore_lines(text) == [
        "test1",
        "test2",
        "a/file/here",
        "lastfile",
        "!inverted/abs/path",
        "!",
        "!",
    ]


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("  spaced/  ", "spaced"),
        ("a//b/./c/../d", "a/b/d"),
        ("/", "/"),
        ("./x", "x"),
        ("  # not a comment", "# not a comment"),
        ("!./keep/", "!keep"),
    ],
)
def test_lines_are_cleaned_like_filepath_clean(line: str, pattern: str) -> None:
    assert read_ignore_lines(line) == [pattern]


def test_lone_exclamation_is_an_illegal_exclusion_pattern() -> None:
    with pytest.raises(ContextError, match='illegal exclusion pattern: "!"'):
        IgnoreMatcher.from_lines(read_ignore_lines("!\n"))


def test_malformed_pattern_is_a_syntax_error() -> None:
    with pytest.raises(ContextError, match="syntax error in pattern"):
        IgnoreMatcher.from_lines(["a["])


# moby/patternmatcher TestMatches: one pattern, MatchesOrParentMatches.
MOBY_CASES = [
    ("**", "file", True),
    ("**", "file/", True),
    ("**/", "file", True),
    ("**/", "file/", True),
    ("**", "/", True),
    ("**/", "/", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**", "dir/file/", True),
    ("**/", "dir/file/", True),
    ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        True,
    ),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), MOBY_CASES)
def test_moby_pattern_table(pattern: str, path: str, expected: bool) -> None:
    assert IgnoreMatcher.from_lines([pattern]).excluded(path) is expected


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["!README.md", "*.md"], "README.md", True),  # last match wins
        (["docs", "!docs/keep.md"], "docs/keep.md", False),
        (["docs", "!docs/keep.md"], "docs/other.md", True),
        (["docs/", "!docs/keep.md"], "docs", True),
        (["*", "!src"], "src/main.py", False),
        (["*", "!src", "src/*.tmp"], "src/a.tmp", True),
        (["**/*.pyc"], "a/b/c.pyc", True),
        (["[a-c]?.txt"], "b1.txt", True),
        (["[a-c]?.txt"], "d1.txt", False),
        (["\\*.txt"], "*.txt", True),
        (["\\*.txt"], "a.txt", False),
        (["/build"], "build/out.o", True),
        (["build"], "src/build", False),  # patterns are rooted at the context
        (["node_modules", "!node_modules/x"], "node_modules/y", True),
    ],
)
def test_exceptions_order_and_parents(patterns: list[str], path: str, expected: bool) -> None:
    matcher = IgnoreMatcher.from_lines(read_ignore_lines("\n".join(patterns)))
    assert matcher.excluded(path) is expected


def test_excluded_dir_is_skippable_only_without_an_exception_starting_with_it() -> None:
    m = IgnoreMatcher.from_lines(["foo", "!foo/bar/keep.txt", "!**/x"])
    assert not m.can_skip_dir("foo")
    assert not m.can_skip_dir("foo/bar")
    assert m.can_skip_dir("foo/other")  # "!**/x" does not start with foo/: Docker skips it


def test_dockerfile_specific_ignore_file_takes_precedence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".dockerignore").write_text("a\n")
    (tmp_path / "sub").mkdir()
    dockerfile = tmp_path / "sub" / "app.Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    assert load_dockerignore(tmp_path, dockerfile).excluded("a")
    (tmp_path / "sub" / "app.Dockerfile.dockerignore").write_text("b\n")
    m = load_dockerignore(tmp_path, dockerfile)
    assert m.excluded("b") and not m.excluded("a")
    assert not load_dockerignore(tmp_path / "sub").patterns


# ---- properties

SEGMENT = st.text(alphabet="abc.", min_size=1, max_size=3).filter(lambda s: s not in (".", ".."))
TOKENS = st.sampled_from(
    ["a", "b", ".", "*", "?", "/", "[ab]", "[^a]", "[a-b]", "\\*", "\\?", "\\["]
)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(TOKENS, min_size=1, max_size=6), st.lists(SEGMENT, min_size=1, max_size=3))
def test_without_double_star_a_pattern_matches_like_go_filepath_match(
    tokens: list[str], segments: list[str]
) -> None:
    raw = "".join(tokens)
    cleaned = go_clean(raw)
    path = "/".join(segments)
    try:
        expected = go_match(cleaned, path)
    except BadPattern:
        return
    if "**" in cleaned:
        return
    assert Pattern.compile(raw).match(path) is expected


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(SEGMENT, min_size=1, max_size=3),
    st.lists(SEGMENT, min_size=0, max_size=2),
    st.lists(SEGMENT, min_size=1, max_size=3),
)
def test_literal_pattern_excludes_itself_and_everything_below(
    pattern: list[str], below: list[str], other: list[str]
) -> None:
    literal = "/".join(pattern)
    m = IgnoreMatcher.from_lines(read_ignore_lines(literal))
    assert m.excluded("/".join(pattern + below))
    candidate = "/".join(other)
    if not (candidate == literal or candidate.startswith(literal + "/")):
        assert not m.excluded(candidate)


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(st.sampled_from(["*", "a*", "**/b", "a/**", "?", "c"]), max_size=4),
    st.lists(SEGMENT, min_size=1, max_size=3),
)
def test_a_trailing_exception_for_the_path_always_reincludes_it(
    patterns: list[str], segments: list[str]
) -> None:
    path = "/".join(segments)
    m = IgnoreMatcher.from_lines([*patterns, "!" + path])
    assert not m.excluded(path)


PATTERN_POOL = ["*", "a*", "**/b", "a/**", "?", "c", "a/b", "**/*.c", "[ab]", "b/*"]


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.booleans(), st.sampled_from(PATTERN_POOL)), min_size=1, max_size=5),
    st.lists(
        st.lists(st.sampled_from(["a", "b", "c", "a.c", "bb"]), min_size=1, max_size=3),
        min_size=1,
        max_size=6,
    ),
)
def test_walk_yields_exactly_the_kept_paths_below_unpruned_dirs(
    patterns: list[tuple[bool, str]], files: list[list[str]]
) -> None:
    m = IgnoreMatcher.from_lines([("!" if neg else "") + p for neg, p in patterns])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        made: set[str] = set()
        for segs in files:
            *dirs, name = segs
            parent = root.joinpath(*dirs)
            if any(root.joinpath(*segs[:i]).is_file() for i in range(1, len(segs))):
                continue  # a file already sits where a directory would go
            if (parent / name).is_dir():
                continue
            parent.mkdir(parents=True, exist_ok=True)
            (parent / name).write_text("x")
            made.update("/".join(segs[:i]) for i in range(1, len(segs) + 1))
        walked = {e.rel for e in walk_context(root, m)}

        def pruned_above(rel: str) -> bool:
            parts = rel.split("/")
            return any(
                m.excluded("/".join(parts[:i])) and m.can_skip_dir("/".join(parts[:i]))
                for i in range(1, len(parts))
            )

        expected = {r for r in made if not m.excluded(r) and not pruned_above(r)}
        assert walked == expected


def test_parent_results_corner_case_matches_moby_walkers() -> None:
    m = IgnoreMatcher.from_lines(["a/**", "!*"])
    assert not m.excluded("a")
    assert m.excluded("a/x")  # "!*" never ran on "a", so it cannot re-include "a/x"
