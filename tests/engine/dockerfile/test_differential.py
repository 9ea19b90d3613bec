"""Differential test: our parser against BuildKit's own Go parser (PyPI `dockerfile`).

The oracle binds BuildKit's `frontend/dockerfile/parser`; every file in corpus/ must
parse to the same instructions, field by field: keyword as written, ONBUILD trigger,
JSON form, original text, first and last line, flags and argument values, heredocs.
"""

from __future__ import annotations

from pathlib import Path

import dockerfile
import pytest

from engine.dockerfile import Instruction, build_stage_graph, parse_dockerfile
from engine.errors import DockerfileError

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.Dockerfile"))


def ours(ins: Instruction) -> dict[str, object]:
    target = ins.sub or ins
    # The oracle reads heredocs from the ONBUILD trigger node, where BuildKit keeps none.
    docs = () if ins.sub else ins.heredocs
    original = ins.original
    if docs:
        original += "\n" + "".join(d.content + d.name + "\n" for d in docs)
    return {
        "cmd": ins.raw_keyword,
        "sub_cmd": ins.sub.raw_keyword if ins.sub else None,
        "json": target.json_form,
        "original": original,
        "start_line": ins.line,
        "end_line": ins.end_line,
        "flags": ins.flags,
        "value": target.args,
        "heredocs": tuple((d.name, d.fd, d.content) for d in docs),
    }


def theirs(cmd: dockerfile.Command) -> dict[str, object]:
    return {
        "cmd": cmd.cmd,
        "sub_cmd": cmd.sub_cmd,
        "json": cmd.json,
        "original": cmd.original,
        "start_line": cmd.start_line,
        "end_line": cmd.end_line,
        "flags": tuple(cmd.flags),
        "value": tuple(cmd.value),
        "heredocs": tuple((h.name, h.file_descriptor, h.content) for h in cmd.heredocs),
    }


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 100


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_file_matches_buildkit_parser(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    expected = [theirs(c) for c in dockerfile.parse_string(text)]
    got = [ours(i) for i in parse_dockerfile(text, filename=path.name).instructions]
    assert got == expected


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_file_builds_a_stage_graph(path: Path) -> None:
    df = parse_dockerfile(path.read_bytes().decode("utf-8"), filename=path.name)
    graph = build_stage_graph(df, {}, platform="linux/amd64", build_platform="linux/amd64")
    assert graph.target in graph.needed_stages()
    assert all(s.index < len(graph.stages) for s in graph.needed_stages())


BROKEN = [
    'FROM a\nCMD ["a", 1]\n',
    'FROM a\nRUN ["a", ["b"]]\n',
    "FROM a\nENV A\n",
    "FROM a\nENV A=1 B\n",
    "FROM a\nLABEL a\n",
    "FROM a\nENV A=x\u00a0y B=z\n",  # Go's unicode.IsSpace splits at U+00A0
    "# escape=x\nFROM a\n",
    "# escape=`\n# escape=`\nFROM a\n",
    "FROM a\nRUN <<EOF\nno end\n",
    "FROM a\nCOPY <<A <<B /x\na\nA\n",
    "",
    "# only comments\n\n",
]


@pytest.mark.parametrize("text", BROKEN)
def test_inputs_buildkit_rejects_are_rejected(text: str) -> None:
    with pytest.raises(dockerfile.GoParseError):
        dockerfile.parse_string(text)
    with pytest.raises(DockerfileError):
        parse_dockerfile(text)
