"""Parser behaviour pinned from the Dockerfile reference and BuildKit's parser tests."""

from __future__ import annotations

import pytest

from engine.dockerfile import Instruction, parse_dockerfile
from engine.errors import DockerfileError


def only(text: str) -> Instruction:
    instructions = parse_dockerfile(text).instructions
    assert len(instructions) == 1, instructions
    return instructions[0]


@pytest.mark.parametrize(
    ("text", "keyword", "args", "json_form"),
    [
        ("FROM alpine", "FROM", ("alpine",), False),
        ("from alpine AS build", "FROM", ("alpine", "AS", "build"), False),
        ('CMD ["echo", "hi"]', "CMD", ("echo", "hi"), True),
        ("CMD [\"echo\", 'hi']", "CMD", ("[\"echo\", 'hi']",), False),
        ('CMD ["echo" "hi"]', "CMD", ('["echo" "hi"]',), False),
        ("CMD []", "CMD", (), True),
        ('ENTRYPOINT ["a"] trailing', "ENTRYPOINT", ("a",), True),
        ("RUN echo $HOME  &&  ls", "RUN", ("echo $HOME  &&  ls",), False),
        ("COPY a b  c/", "COPY", ("a", "b", "c/"), False),
        ('COPY ["a b", "c/"]', "COPY", ("a b", "c/"), True),
        ("ADD http://x/y.tgz /y", "ADD", ("http://x/y.tgz", "/y"), False),
        ('ENV A=1 B="x y"', "ENV", ("A", "1", "B", '"x y"'), False),
        ("ENV A x  y", "ENV", ("A", "x  y"), False),
        ("LABEL a=b 'c d'=e", "LABEL", ("a", "b", "'c d'", "e"), False),
        ('ARG A B=2 C="x y"', "ARG", ("A", "B=2", 'C="x y"'), False),
        ("EXPOSE 80 443/tcp", "EXPOSE", ("80", "443/tcp"), False),
        ('VOLUME ["/a", "/b"]', "VOLUME", ("/a", "/b"), True),
        ("VOLUME /a /b", "VOLUME", ("/a", "/b"), False),
        ("WORKDIR /a b", "WORKDIR", ("/a b",), False),
        ("USER app:app", "USER", ("app:app",), False),
        ("STOPSIGNAL SIGKILL", "STOPSIGNAL", ("SIGKILL",), False),
        ('SHELL ["bash", "-c"]', "SHELL", ("bash", "-c"), True),
        ("MAINTAINER Jane <j@x>", "MAINTAINER", ("Jane <j@x>",), False),
        ("HEALTHCHECK NONE", "HEALTHCHECK", ("NONE",), False),
        ("HEALTHCHECK CMD curl -f x", "HEALTHCHECK", ("CMD", "curl -f x"), False),
        ('HEALTHCHECK CMD ["curl", "x"]', "HEALTHCHECK", ("CMD", "curl", "x"), True),
    ],
)
def test_arguments_are_split_per_instruction_like_buildkit(
    text: str, keyword: str, args: tuple[str, ...], json_form: bool
) -> None:
    ins = only(text)
    assert (ins.keyword, ins.args, ins.json_form) == (keyword, args, json_form)


def test_keywords_are_case_insensitive_and_keep_their_spelling() -> None:
    ins = only("cOpY a b")
    assert ins.keyword == "COPY"
    assert ins.raw_keyword == "cOpY"


def test_flags_are_kept_unquoted_and_parsed() -> None:
    ins = only('COPY --from=build --chown="1:2" --link --exclude=*.md --exclude=x a b')
    assert ins.flags == ("--from=build", "--chown=1:2", "--link", "--exclude=*.md", "--exclude=x")
    assert ins.flag("from") == "build"
    assert ins.flag("link") == "true"
    assert ins.flag_all("exclude") == ("*.md", "x")
    assert ins.flag("parents") is None


def test_run_flags() -> None:
    ins = only("RUN --mount=type=cache,target=/root/.cache --network=none --security=insecure make")
    assert ins.flag_all("mount") == ("type=cache,target=/root/.cache",)
    assert ins.flag("network") == "none"
    assert ins.flag("security") == "insecure"
    assert ins.args == ("make",)


def test_double_dash_ends_flags() -> None:
    ins = only("RUN -- --not-a-flag")
    assert ins.flags == ()
    assert ins.args == ("--not-a-flag",)


def test_continuation_lines_skip_comments_and_blank_lines() -> None:
    df = parse_dockerfile("FROM a\nRUN echo a \\\n  # inside\n\n  && echo b\nRUN x\n")
    run = df.instructions[1]
    assert run.args == ("echo a   && echo b",)
    assert (run.line, run.end_line) == (2, 5)
    assert df.instructions[2].line == 6
    assert df.warnings  # the empty continuation line


def test_escaped_escape_at_end_is_not_a_continuation() -> None:
    df = parse_dockerfile("RUN echo \\\\\nRUN x")
    assert [i.args for i in df.instructions] == [("echo \\\\",), ("x",)]


def test_backtick_escape_directive() -> None:
    df = parse_dockerfile("# escape=`\nFROM w\nRUN dir c:\\ `\n  /s\n")
    assert df.escape == "`"
    assert df.instructions[1].args == ("dir c:\\   /s",)
    assert df.directive("escape") == "`"


def test_directives_stop_at_first_other_line() -> None:
    df = parse_dockerfile("# syntax=docker/dockerfile:1\n# check=skip=all\n\n# escape=`\nFROM a")
    assert [d.name for d in df.directives] == ["syntax", "check"]
    assert df.escape == "\\"


def test_repeated_directive_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="only one escape parser directive"):
        parse_dockerfile("# escape=`\n# escape=\\\nFROM a")


def test_check_directive_is_a_directive_like_in_current_buildkit() -> None:
    # BuildKit >= 0.14 knows `check`; so a later `escape` still counts and a repeat fails.
    df = parse_dockerfile("# check=error=true\n# escape=`\nFROM a\nRUN a `\n b\n")
    assert df.directive("check") == "error=true"
    assert df.instructions[1].args == ("a  b",)
    with pytest.raises(DockerfileError, match="only one check parser directive"):
        parse_dockerfile("# check=a\n# check=b\nFROM a")


def test_invalid_escape_token() -> None:
    with pytest.raises(DockerfileError, match="invalid escape token"):
        parse_dockerfile("# escape=x\nFROM a")


def test_heredoc_body_and_lines() -> None:
    df = parse_dockerfile("FROM a\nRUN <<EOF\necho $HOME\nEOF\nRUN b\n")
    run = df.instructions[1]
    assert run.args == ("<<EOF",)
    assert run.heredocs[0].name == "EOF"
    assert run.heredocs[0].content == "echo $HOME\n"
    assert run.heredocs[0].expand
    assert (run.line, run.end_line) == (2, 4)


def test_several_heredocs_on_one_line_quoted_and_chomped() -> None:
    text = 'COPY <<one 3<<-"two" /dst/\n1\none\n\t2\n\ttwo\n'
    docs = only(text).heredocs
    assert [(d.name, d.content, d.expand, d.chomp, d.fd) for d in docs] == [
        ("one", "1\n", True, False, 0),
        ("two", "\t2\n", False, True, 3),
    ]


def test_partly_quoted_heredoc_delimiter_disables_expansion() -> None:
    doc = only("RUN <<E'O'F\nx\nEOF\n").heredocs[0]
    assert (doc.name, doc.expand) == ("EOF", False)


def test_heredocs_only_for_run_copy_add_in_shell_form() -> None:
    assert only("ENV a=<<EOF").heredocs == ()
    with pytest.raises(DockerfileError, match="Dockerfile:2: unknown instruction: EOF"):
        parse_dockerfile('RUN ["<<EOF"]\nEOF\n')


def test_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileError, match="Dockerfile:2: unterminated heredoc"):
        parse_dockerfile("FROM a\nRUN <<EOF\nx\n")


def test_onbuild_keeps_trigger() -> None:
    ins = only("ONBUILD COPY --chown=1 a b")
    assert ins.sub is not None
    assert ins.sub.keyword == "COPY"
    assert ins.sub.flag("chown") == "1"
    assert ins.expression == "COPY --chown=1 a b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a\nCOPPY a b", "Dockerfile:2: unknown instruction: COPPY"),
        ("FROM a\nCOPY --form=x a b", "Dockerfile:2: unknown flag: --form (did you mean --from?)"),
        ("FROM a\nRUN --mount x", "missing a value on flag: mount"),
        ("FROM a\nCOPY --link=maybe a b", "expecting boolean value for flag link, not: maybe"),
        ("FROM a\nCOPY --from=a --from=b a b", "duplicate flag specified: from"),
        ("FROM a\nWORKDIR --x=1 /a", "unknown flag: --x"),
        ("FROM a\nMAINTAINER --boo joe@example.com", "unknown flag: --boo"),
        ("FROM a\nHEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("FROM a\nONBUILD", "ONBUILD requires at least one argument"),
        ("FROM a\nEXPOSE", "EXPOSE requires at least one argument"),
        ("FROM a\nVOLUME", "VOLUME requires at least one argument"),
        ("FROM a\nLABEL", "LABEL requires at least one argument"),
        ("FROM a\nUSER", "USER requires exactly one argument"),
        ("FROM a\nSTOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("FROM a\nMAINTAINER", "MAINTAINER requires exactly one argument"),
        ("FROM a\nWORKDIR", "WORKDIR requires exactly one argument"),
        ("FROM a\nADD arg1", "ADD requires at least two arguments"),
        ("FROM a\nCOPY\t\n  quux \\\n      bar", "COPY requires at least two arguments"),
        ("foo bar", "Dockerfile:1: unknown instruction: foo"),
        ("FROM a b", "FROM requires either one or three arguments"),
        ("FROM a AS 1x", "invalid name for build stage"),
        ("FROM a\nCOPY a", "COPY requires at least two arguments"),
        ("FROM a\nENV", "ENV requires at least one argument"),
        ("FROM a\nENV a", "ENV must have two arguments"),
        ("FROM a\nENV a=1 b", 'can\'t find = in "b"'),
        ('FROM a\nCMD ["a", 1]', "arrays must be comprised of strings only"),
        ("FROM a\nSHELL sh -c", "SHELL requires the arguments to be in JSON form"),
        ("FROM a\nHEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("FROM a\nHEALTHCHECK FOO x", 'Unknown type "FOO" in HEALTHCHECK'),
        ("FROM a\nHEALTHCHECK --interval=5x CMD a", "invalid duration"),
        ("FROM a\nHEALTHCHECK --timeout=-1s CMD a", 'Interval "timeout" cannot be less than 1ms'),
        ("FROM a\nHEALTHCHECK --retries=-1 CMD a", "--retries cannot be negative (-1)"),
        ("FROM a\nONBUILD ONBUILD RUN a", "Chaining ONBUILD"),
        ("FROM a\nONBUILD FROM b", "FROM isn't allowed as an ONBUILD trigger"),
        ("# only a comment\n", "file with no instructions"),
    ],
)
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(text)
    assert message in str(info.value)
    assert str(info.value).startswith("Dockerfile")


def test_filename_is_used_in_errors() -> None:
    with pytest.raises(DockerfileError, match=r"^build/app\.Dockerfile:1: unknown instruction"):
        parse_dockerfile("BOGUS x", filename="build/app.Dockerfile")


def test_bom_and_crlf() -> None:
    df = parse_dockerfile("\ufeffFROM a\r\nRUN x \\\r\n  y\r\n")
    assert df.instructions[0].args == ("a",)
    assert df.instructions[1].args == ("x   y",)


# BuildKit's parser/json_test.go vectors, fed through CMD.
VALID_JSON = {
    "[]": (),
    '[""]': ("",),
    '["a"]': ("a",),
    '["a","b"]': ("a", "b"),
    '[ "a", "b" ]': ("a", "b"),
    '[\t"a",\t"b"\t]': ("a", "b"),
    '\t[\t"a",\t"b"\t]\t': ("a", "b"),
    '["abc 123", "♥", "☃", "\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000"]': (
        "abc 123",
        "♥",
        "☃",
        '" \\ / \b \f \n \r \t \x00',
    ),
}
NOT_STRING_ARRAYS = [
    '["a",42,"b"]',
    '["a",123.456,"b"]',
    '["a",{},"b"]',
    '["a",{"c": "d"},"b"]',
    '["a",["c"],"b"]',
    '["a",true,"b"]',
    '["a",false,"b"]',
    '["a",null,"b"]',
]


@pytest.mark.parametrize(("text", "expected"), VALID_JSON.items())
def test_json_arrays_of_strings(text: str, expected: tuple[str, ...]) -> None:
    ins = only("CMD " + text)
    assert (ins.json_form, ins.args) == (True, expected)


@pytest.mark.parametrize("text", NOT_STRING_ARRAYS)
def test_json_arrays_with_other_values_are_errors(text: str) -> None:
    with pytest.raises(DockerfileError, match="arrays must be comprised of strings only"):
        parse_dockerfile("CMD " + text)


# BuildKit's parser_heredoc_test.go (TestParseExtractsHeredoc): same file, same expectations.
# Newer than the oracle's BuildKit: `<<  EOF` (blanks after <<) opens a heredoc there too.
HEREDOC_CASES = [
    [("EMPTY", "", True, False, 0)],
    [("EMPTY2", "", True, False, 3)],
    [],
    [("INDENT", "\tfoo\n\tbar\n", True, False, 0)],
    [("UNINDENT", "\tbaz\n\tquux\n", True, True, 0)],
    [("UNINDENT2", "\tbaz\n\tquux\n", True, True, 0)],
    [("EXPAND", "\texpand $NAME\n", True, True, 0)],
    [("NOEXPAND", "\tdon't expand $NAME\n", False, True, 0)],
    [("COPY", "echo hello world\necho foo bar\n", True, False, 0)],
    [
        (
            "COMMENT",
            "# internal comment\necho hello world\necho foo bar # trailing comment\n",
            True,
            False,
            0,
        )
    ],
    [("MOUNT", "echo hello\n", True, False, 0)],
    [("FILE1", "content 1\n", True, False, 0), ("FILE2", "content 2\n", True, False, 0)],
    [("EOF", "\"foo\"\n'bar'\n", True, False, 0)],
    [("X", "Y\n", True, False, 0), ("Y", "X\n", True, False, 0)],
    [("COMPLEX", "print('hello world')\n", True, False, 0)],
    [("file.txt", "hello world\n", True, False, 0)],
    [("eof", "echo foo\n", False, False, 0)],
    [("eo'f", "echo foo\n", True, False, 0)],
    [("eo'f", "echo foo\n", False, False, 0)],
    [("one two", "echo bar\n", False, False, 0)],
    [("$EOF", "", True, False, 0)],
    [("EOF", "", True, False, 0)],
    [("EOF", "", True, False, 0)],
]


def test_buildkit_heredoc_extraction_cases() -> None:
    from pathlib import Path

    from engine.dockerfile.parser import parse_nodes

    text = (Path(__file__).parent / "buildkit_heredoc_cases.Dockerfile").read_text()
    nodes = [n for n, _, _ in parse_nodes(text)[0]]
    # Children 0..3 are FROM, ENV, RUN ls, USER <<INVALID (not a heredoc instruction),
    # then the INVALID line itself parses as an instruction.
    assert [n.heredocs for n in nodes[:5]] == [[], [], [], [], []]
    got = [[(h.name, h.content, h.expand, h.chomp, h.fd) for h in n.heredocs] for n in nodes[5:]]
    assert got == HEREDOC_CASES


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ("RUN <<EOF", ["EOF"]),
        ("RUN <<-EOF", ["EOF"]),
        ("RUN << -EOF", ["-EOF"]),
        ("RUN <<'EOF'", ["EOF"]),
        ("RUN 4<<EOF", ["EOF"]),
        ("RUN <<EOF <<EOF2", ["EOF", "EOF2"]),
        ("RUN '<<EOF'", []),
        ('RUN "<<EOF"', []),
        ("RUN cat << EOF > /x", ["EOF"]),
    ],
)
def test_heredocs_found_on_a_line(line: str, names: list[str]) -> None:
    body = "".join(f"x\n{n}\n" for n in names)
    ins = only(f"{line}\n{body}")
    assert [h.name for h in ins.heredocs] == names


@pytest.mark.parametrize("word", ["<<EOF", "<<'EOF'", '<<"EOF"', "<<-EOF", "<<-'EOF'",
                                  '<<-"EOF"', '<<EO"F"', "<< EOF", "<<- EOF"])  # fmt: skip
def test_heredoc_markers(word: str) -> None:
    from engine.dockerfile.parser import heredoc_marker

    doc = heredoc_marker(word)
    assert doc is not None and doc.name == "EOF"


@pytest.mark.parametrize("word", ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"])
def test_not_heredoc_markers(word: str) -> None:
    from engine.dockerfile.parser import heredoc_marker

    assert heredoc_marker(word) is None
