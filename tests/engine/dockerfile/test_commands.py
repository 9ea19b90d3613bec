"""RUN/CMD/ENTRYPOINT argv and ONBUILD triggers, as BuildKit's dispatcher builds them."""

from __future__ import annotations

import pytest

from engine.dockerfile import Instruction, build_stage_graph, parse_dockerfile
from engine.dockerfile.commands import (
    DEFAULT_LINUX_SHELL,
    InlineFile,
    command_argv,
    default_shell,
    parse_trigger,
    run_command,
)
from engine.errors import DockerfileError

SH = DEFAULT_LINUX_SHELL


def ins(text: str) -> Instruction:
    return parse_dockerfile("FROM a\n" + text).instructions[1]


def test_shell_and_exec_form() -> None:
    assert run_command(ins("RUN echo $HOME"), SH).argv == ("/bin/sh", "-c", "echo $HOME")
    assert run_command(ins('RUN ["echo", "$HOME"]'), SH).argv == ("echo", "$HOME")
    assert run_command(ins("RUN dir"), ("cmd", "/S", "/C")).argv == ("cmd", "/S", "/C", "dir")
    assert default_shell("windows") == ("cmd", "/S", "/C")


def test_lone_heredoc_body_becomes_the_command_with_tabs_chomped() -> None:
    cmd = run_command(ins("RUN <<-EOF\n\techo $A\n\tls\n\tEOF\n"), SH)
    assert cmd.argv == ("/bin/sh", "-c", "echo $A\nls\n")
    assert cmd.files == ()


def test_heredoc_with_shebang_runs_as_a_file() -> None:
    cmd = run_command(ins("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"), SH)
    assert cmd.argv == ("/bin/sh", "-c", "/dev/pipes/EOF")
    assert cmd.files == (InlineFile("/dev/pipes/EOF", "#!/usr/bin/env python3\nprint(1)\n"),)
    windows = run_command(ins("RUN <<EOF\n#!x\nEOF\n"), SH, os_name="windows")
    assert windows.files == ()


def test_other_heredoc_uses_are_rejoined_for_the_shell() -> None:
    text = "RUN <<A cat > /a && <<-B cat > /b\na\nA\n\tb\n\tB\n"
    assert run_command(ins(text), SH).argv == (
        "/bin/sh",
        "-c",
        "<<A cat > /a && <<-B cat > /b\na\nA\n\tb\nB",
    )


def test_cmd_entrypoint_healthcheck_argv() -> None:
    assert command_argv(ins("CMD echo hi"), SH) == ("/bin/sh", "-c", "echo hi")
    assert command_argv(ins('ENTRYPOINT ["/app", "-v"]'), SH) == ("/app", "-v")
    assert command_argv(ins("HEALTHCHECK CMD curl -f x"), SH) == ("/bin/sh", "-c", "curl -f x")
    assert command_argv(ins('HEALTHCHECK CMD ["curl", "x"]'), SH) == ("curl", "x")


def test_parse_trigger_from_image_config() -> None:
    trigger = parse_trigger("COPY --chown=1 . /app", line=7)
    assert (trigger.keyword, trigger.args, trigger.flag("chown"), trigger.line) == (
        "COPY",
        (".", "/app"),
        "1",
        7,
    )
    with pytest.raises(DockerfileError, match="single expression"):
        parse_trigger("RUN a\nRUN b", line=3)
    with pytest.raises(DockerfileError, match="Dockerfile:3: FROM isn't allowed"):
        parse_trigger("FROM x", line=3)


def test_base_stage_onbuild_triggers_run_in_the_child_and_add_dependencies() -> None:
    text = "FROM a AS tools\nFROM a AS base\nONBUILD COPY --from=tools /t /t\nONBUILD RUN make\n"
    g = build_stage_graph(
        parse_dockerfile(text + "FROM base\n"),
        {},
        platform="linux/amd64",
        build_platform="linux/amd64",
        skip_unused_stages=True,
    )
    child = g.stages[2]
    assert [(t.keyword, t.args, t.line) for t in child.triggers] == [
        ("COPY", ("/t", "/t"), 5),
        ("RUN", ("make",), 5),
    ]
    assert [s.label for s in g.needed_stages()] == ["base", "tools", "stage-2"]


def test_copy_sources_split_paths_heredocs_and_destination() -> None:
    from engine.dockerfile import copy_sources

    got = copy_sources(ins('COPY a.txt <<one <<-"two" b/ /dst/\n1\none\n\t2\n\ttwo\n'))
    assert got.paths == ("a.txt", "b/")
    assert [(h.name, h.content, h.expand, h.chomp) for h in got.heredocs] == [
        ("one", "1\n", True, False),
        ("two", "\t2\n", False, True),
    ]
    assert got.dest == "/dst/"
    json_form = copy_sources(ins('COPY ["<<EOF", "/x"]'))
    assert (json_form.paths, [h.name for h in json_form.heredocs]) == ((), ["EOF"])


def test_heredoc_cannot_be_the_destination() -> None:
    with pytest.raises(DockerfileError, match="COPY cannot accept a heredoc as a destination"):
        ins("COPY a <<EOF\nx\nEOF\n")


def test_heredoc_markers_are_not_expanded_but_paths_are() -> None:
    g = build_stage_graph(
        parse_dockerfile("FROM a\nARG D=/d\nCOPY <<$D $D/\nbody\n$D\n"),
        {},
        platform="linux/amd64",
        build_platform="linux/amd64",
    )
    scope = g.global_scope.stage_scope({})
    out = [scope.expand_instruction(i) for i in g.stages[0].instructions]
    scope.apply(out[0])
    assert scope.expand_instruction(g.stages[0].instructions[1]).args == ("<<$D", "/d/")
