"""ARG/ENV scoping and stage graphs, following the Dockerfile reference's examples."""

from __future__ import annotations

import pytest

from engine.dockerfile import (
    Instruction,
    StageScope,
    build_stage_graph,
    parse_dockerfile,
)
from engine.dockerfile.stages import StageGraph
from engine.errors import DockerfileError


def graph(text: str, build_args: dict[str, str] | None = None, **kw: object) -> StageGraph:
    return build_stage_graph(
        parse_dockerfile(text),
        build_args or {},
        platform=kw.pop("platform", "linux/arm64"),  # type: ignore[arg-type]
        build_platform=kw.pop("build_platform", "linux/amd64"),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def run_stage(
    g: StageGraph, index: int = -1, base_env: dict[str, str] | None = None
) -> tuple[StageScope, list[Instruction]]:
    scope = g.global_scope.stage_scope(base_env or {})
    out = []
    for ins in g.stages[index].instructions:
        ex = scope.expand_instruction(ins)
        scope.apply(ex)
        out.append(ex)
    return scope, out


def test_global_args_reach_from_only() -> None:
    g = graph("ARG VERSION=3.19\nFROM alpine:$VERSION\nRUN echo $VERSION\nENV V=$VERSION\n")
    assert g.stages[0].base == "alpine:3.19"
    scope, out = run_stage(g)
    assert out[1].args == ("V", "")
    assert "VERSION" not in scope.run_env()


def test_redeclared_global_arg_inherits_value() -> None:
    g = graph("ARG VERSION=3.19\nFROM alpine\nARG VERSION\nENV V=$VERSION\n")
    scope, _ = run_stage(g)
    assert scope.env == {"V": "3.19"}
    assert scope.run_env()["VERSION"] == "3.19"


def test_build_arg_overrides_default_and_is_consumed() -> None:
    g = graph("FROM a\nARG A=default\nARG B=$A-b\nENV OUT=$B\n", {"A": "given", "X": "1"})
    scope, _out = run_stage(g)
    assert scope.env["OUT"] == "given-b"
    assert g.global_scope.unused_build_args() == ["X"]
    assert g.unused_build_args() == ["X"]


def test_env_wins_over_arg() -> None:
    text = "FROM a\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nRUN echo $CONT_IMG_VER\n"
    scope, _ = run_stage(graph(text, {"CONT_IMG_VER": "v2.0.1"}))
    assert scope.run_env()["CONT_IMG_VER"] == "v1.0.0"


def test_arg_written_after_env_is_what_run_sees_but_image_keeps_env() -> None:
    # BuildKit's state env is last-writer-wins; the image config only takes ENV.
    g = graph("FROM a\nENV MODE=env\nARG MODE=arg\nWORKDIR /$MODE\nARG PATH=/nope\n")
    scope, out = run_stage(g, base_env={"PATH": "/usr/bin"})
    assert out[2].args == ("/arg",)
    assert scope.run_env()["MODE"] == "arg"
    assert scope.run_env()["PATH"] == "/nope"
    assert scope.env == {"PATH": "/usr/bin", "MODE": "env"}


def test_base_image_env_is_expandable() -> None:
    _scope, out = run_stage(graph("FROM a\nWORKDIR $HOME/x\n"), base_env={"HOME": "/root"})
    assert out[0].args == ("/root/x",)


def test_child_stage_inherits_parent_stage_args_and_env() -> None:
    g = graph("FROM a AS base\nARG V=1\nENV E=2\nFROM base\nRUN echo $V $E\n")
    parent, _ = run_stage(g, 0)
    child = g.global_scope.stage_scope(parent.env, parent=parent)
    assert child.run_env()["V"] == "1"
    assert child.env == {"E": "2"}
    assert child.run_build_args() == [("V", "1")]


def test_build_arg_value_skips_default_expansion() -> None:
    scope, out = run_stage(graph("FROM a\nARG A=${X:?never}\n", {"A": "given"}))
    assert scope.args == {"A": "given"}
    assert out[0].args == ("A=given",)


def test_env_pairs_expand_with_values_from_before_the_instruction() -> None:
    g = graph("FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n")
    scope, _ = run_stage(g)
    assert scope.env == {"abc": "bye", "def": "hello", "ghi": "bye"}


def test_arg_defaults_see_earlier_args_on_the_same_line() -> None:
    scope, out = run_stage(graph("FROM a\nARG A=1 B=${A}2\n"))
    assert scope.args == {"A": "1", "B": "12"}
    assert out[0].args == ("A=1", "B=12")


def test_arg_without_value_is_declared_but_unset() -> None:
    scope, _out = run_stage(graph("FROM a\nARG NOPE\nENV X=${NOPE-unset}\n"))
    assert scope.env["X"] == "unset"
    assert scope.run_build_args() == [("NOPE", "")]  # BuildKit's `RUN |1 NOPE= ...`


def test_proxy_args_reach_run_without_declaration_and_stay_out_of_history() -> None:
    g = graph("FROM a\nARG OTHER=1\nRUN env\n", {"HTTP_PROXY": "http://p:3128", "no_proxy": "x"})
    scope, _ = run_stage(g)
    assert scope.run_env()["HTTP_PROXY"] == "http://p:3128"
    assert scope.run_env()["no_proxy"] == "x"
    assert scope.run_build_args() == [("OTHER", "1")]
    assert g.global_scope.unused_build_args() == []


def test_platform_args_global_and_redeclared() -> None:
    text = (
        "FROM --platform=$BUILDPLATFORM golang AS build\n"
        "ARG TARGETOS TARGETARCH\n"
        "ENV T=$TARGETOS/$TARGETARCH B=${BUILDARCH:-none}\n"
        "FROM alpine:$TARGETARCH\n"
    )
    g = graph(text, platform="linux/arm/v7", build_platform="linux/amd64")
    assert g.stages[0].platform == "linux/amd64"
    assert g.stages[1].base == "alpine:arm"
    scope, _ = run_stage(g, 0)
    assert scope.env == {"T": "linux/arm", "B": "none"}
    assert g.global_scope.meta["TARGETVARIANT"] == "v7"
    assert g.global_scope.meta["TARGETPLATFORM"] == "linux/arm/v7"


def test_expansion_only_where_docker_expands() -> None:
    text = (
        "FROM a\nARG D=/dst U=app P=8080\n"
        "COPY --chown=$U:$U --from=other src/$D $D/\n"
        "ADD --chmod=755 --checksum=sha256:$U x $D\n"
        "EXPOSE $P ${P}/udp\nUSER $U\nWORKDIR $D\nVOLUME $D/v\nLABEL l=$U\nSTOPSIGNAL SIG$U\n"
        'RUN --mount=type=cache,target=$D/c echo $D\nCMD echo $D\nENTRYPOINT ["$D"]\n'
        'ONBUILD COPY $D .\nHEALTHCHECK CMD echo $D\nSHELL ["$D"]\nMAINTAINER $U\n'
    )
    _, out = run_stage(graph(text))
    by_kw = {i.keyword: i for i in out}
    assert by_kw["COPY"].args == ("src//dst", "/dst/")
    assert by_kw["COPY"].flag("chown") == "app:app"
    assert by_kw["COPY"].flag("from") == "other"
    assert by_kw["ADD"].flag("chmod") == "755"
    assert by_kw["ADD"].flag("checksum") == "sha256:app"
    assert by_kw["EXPOSE"].args == ("8080", "8080/udp")
    assert by_kw["USER"].args == ("app",)
    assert by_kw["WORKDIR"].args == ("/dst",)
    assert by_kw["VOLUME"].args == ("/dst/v",)
    assert by_kw["LABEL"].args == ("l", "app")
    assert by_kw["STOPSIGNAL"].args == ("SIGapp",)
    assert by_kw["RUN"].flag("mount") == "type=cache,target=/dst/c"
    assert by_kw["RUN"].args == ("echo $D",)
    assert by_kw["CMD"].args == ("echo $D",)
    assert by_kw["ENTRYPOINT"].args == ("$D",)
    assert by_kw["ONBUILD"].args == ("$D", ".")
    assert by_kw["HEALTHCHECK"].args == ("CMD", "echo $D")
    assert by_kw["SHELL"].args == ("$D",)
    assert by_kw["MAINTAINER"].args == ("$U",)


def test_heredoc_content_expansion_chomp_and_quoting() -> None:
    text = 'FROM a\nARG N=world\nCOPY <<-EOF <<"RAW" /x/\n\thello $N "q"\n\tEOF\n$N\nRAW\n'
    scope, out = run_stage(graph(text))
    copy = out[1]
    assert copy.args == ("<<-EOF", '<<"RAW"', "/x/")
    assert scope.heredoc_content(copy.heredocs[0]) == 'hello world "q"\n'
    assert scope.heredoc_content(copy.heredocs[1]) == "$N\n"
    assert scope.heredoc_content(copy.heredocs[0], expand=False) == 'hello $N "q"\n'


def test_expansion_error_names_the_line() -> None:
    g = graph("FROM a\n\nWORKDIR ${MISSING:?set it}\n")
    with pytest.raises(DockerfileError, match=r"^Dockerfile:3: .*MISSING: set it"):
        run_stage(g)


# -- stage graph -------------------------------------------------------------

MULTI = """\
ARG BASE=alpine
FROM $BASE AS deps
RUN make deps
FROM deps AS build
COPY --from=tools /bin/t /bin/t
RUN make
FROM golang AS tools
FROM scratch AS unused
FROM $BASE
COPY --from=build /out /out
COPY --from=0 /deps /deps
COPY --from=busybox:1 /bin/sh /bin/sh
RUN --mount=type=bind,from=tools,target=/t true
"""


def test_stages_names_bases_and_dependencies() -> None:
    g = graph(MULTI)
    assert [(s.index, s.name, s.base, s.base_stage) for s in g.stages] == [
        (0, "deps", "alpine", None),
        (1, "build", "deps", 0),
        (2, "tools", "golang", None),
        (3, "unused", "scratch", None),
        (4, None, "alpine", None),
    ]
    assert g.stages[1].depends_on == (0, 2)
    assert g.stages[4].depends_on == (1, 0, 2)
    assert g.stages[4].external_images == ("busybox:1",)
    assert g.stages[3].is_scratch
    assert g.target.index == 4


def test_skip_unused_stages_builds_only_what_the_target_needs() -> None:
    g = graph(MULTI, skip_unused_stages=True)
    assert [s.label for s in g.needed_stages()] == ["deps", "tools", "build", "stage-4"]
    g = graph(MULTI, skip_unused_stages=False)
    assert [s.label for s in g.needed_stages()] == ["deps", "tools", "build", "unused", "stage-4"]


def test_target_by_name_case_insensitive_or_index() -> None:
    assert graph(MULTI, target="BUILD", skip_unused_stages=True).target.name == "build"
    g = graph(MULTI, target="1", skip_unused_stages=True)
    assert [s.label for s in g.needed_stages()] == ["deps", "tools", "build"]
    g = graph(MULTI, target="build")
    assert [s.label for s in g.needed_stages()] == ["deps", "tools", "build"]


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("FROM a\n", {"target": "nope"}, 'target stage "nope" could not be found'),
        ("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n", {}, "circular"),
        ("FROM a AS x\nCOPY --from=x / /\n", {}, "circular dependency detected on stage: x"),
        ("FROM a\nCOPY --from=5 / /\n", {}, "Dockerfile:2: invalid stage index 5"),
        ("ARG A\nFROM $A\n", {}, "Dockerfile:2: base name ($A) should not be blank"),
        ("RUN x\nFROM a\n", {}, "Dockerfile:1: no build stage in current context"),
        ("ARG A=1\n", {}, "dockerfile contains no stages to build"),
        ("FROM --platform=linux a\n", {}, "failed to parse platform linux"),
        ("ARG P\nFROM --platform=$P a\n", {}, "empty platform value from expression $P"),
    ],
)
def test_graph_errors(text: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        graph(text, **kwargs)
    assert message in str(info.value)


def test_forward_copy_from_is_allowed_and_built_first() -> None:
    g = graph("FROM a AS first\nCOPY --from=second / /\nFROM b AS second\n", target="first")
    assert [s.label for s in g.needed_stages()] == ["second", "first"]


def test_from_names_only_earlier_stages_exactly_as_written() -> None:
    g = graph("FROM later AS first\nFROM b AS later\n")
    assert g.stages[0].base_stage is None
    g = graph("FROM a AS Base\nFROM base\nFROM BASE\n")
    assert [s.base_stage for s in g.stages] == [None, 0, None]


def test_duplicate_stage_names_warn_and_the_last_one_wins_for_copy_from() -> None:
    g = graph("FROM a AS x\nFROM b AS x\nFROM x AS y\nFROM c\nCOPY --from=X / /\n")
    assert g.warnings == ["Dockerfile:2: duplicate stage name 'x'"]
    assert g.stages[2].base_stage == 1
    assert g.stages[3].depends_on == (1,)


def test_global_arg_without_default_is_unset_in_from() -> None:
    assert graph("ARG TAG\nFROM alpine:${TAG-latest}\n").stages[0].base == "alpine:latest"
    assert graph("ARG TAG=\nFROM alpine:${TAG-latest}\n").stages[0].base == "alpine:"
    assert graph("ARG TAG\nFROM alpine:${TAG}\n", {"TAG": "3"}).stages[0].base == "alpine:3"


def test_copy_from_is_never_expanded() -> None:
    with pytest.raises(DockerfileError, match="Dockerfile:3: variable expansion is not supported"):
        graph("ARG S=a\nFROM a\nCOPY --from=$S / /\n")
