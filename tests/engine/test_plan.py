from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from engine import cli
from engine.options import parse_build_options
from engine.plan import run_plan

DOCKERFILE = """\
ARG BASE=alpine:3.20
FROM ${BASE} AS builder
ARG VERSION=1.0
ENV APP=/opt/app-$VERSION
WORKDIR $APP
COPY --chown=1000 src/ ./src/
COPY --exclude=*.md *.txt docs $APP/
RUN echo building $VERSION

FROM builder AS unused
RUN true

FROM scratch AS final
COPY --from=builder /opt /opt
COPY <<EOF /etc/motd
hi
EOF
ADD https://example.com/x.tgz /x
CMD ["/opt/app"]
"""

FILES = {
    "Dockerfile": DOCKERFILE,
    ".dockerignore": "node_modules\nb.txt\n",
    "a.txt": "a",
    "b.txt": "b",
    "src/main.py": "p",
    "src/pkg/m.py": "q",
    "node_modules/x.js": "n",
    "docs/guide.txt": "g",
    "docs/README.md": "r",
}


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def plan_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert cli.brickyard_main(["plan", "-o", "json", *argv], {}) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_plan_expands_args_and_env_and_lists_copy_files(
    context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = plan_json(["-c", str(context), "--build-arg", "VERSION=2.0"], capsys)
    builder = data["stages"][0]
    texts = [i["text"] for i in builder["instructions"]]
    assert texts[1] == "ENV APP=/opt/app-2.0"
    assert texts[2] == "WORKDIR /opt/app-2.0"
    assert texts[5] == "RUN echo building $VERSION"  # RUN text is left to the shell
    assert builder["base"] == "alpine:3.20"
    copy_src = builder["instructions"][3]["sources"][0]
    assert copy_src == {
        "pattern": "src/",
        "files": ["src/main.py", "src/pkg/m.py"],
        "kind": "context",
    }
    copy_txt = builder["instructions"][4]["sources"]
    assert copy_txt[0]["files"] == ["a.txt"]  # b.txt is in .dockerignore
    assert copy_txt[1]["files"] == ["docs/guide.txt"]  # --exclude=*.md
    assert data["context_files"] == 7  # node_modules and b.txt left out


def test_plan_target_selects_needed_stages(
    context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = plan_json(["-c", str(context), "--target", "final"], capsys)
    assert default["build_order"] == [0, 1, 2]  # kaniko builds every stage up to the target
    skipping = plan_json(["-c", str(context), "--target", "final", "--skip-unused-stages"], capsys)
    assert skipping["build_order"] == [0, 2]
    assert [s["needed"] for s in skipping["stages"]] == [True, False, True]
    only_builder = plan_json(["-c", str(context), "--target", "builder"], capsys)
    assert only_builder["build_order"] == [0]
    final = skipping["stages"][2]["instructions"]
    assert final[0]["from"] == "builder"
    assert final[0]["sources"] == [{"pattern": "/opt", "files": [], "kind": "stage"}]
    assert final[1]["sources"][0]["kind"] == "heredoc"
    assert final[2]["sources"][0]["kind"] == "url"


def test_plan_text_output(context: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "-c", f"dir://{context}", "--build-arg=NOPE=1", "--skip-unused-stages"]
    assert cli.brickyard_main(argv, {}) == 0
    out = capsys.readouterr().out
    assert 'Build order: stage 0 "builder", stage 2 "final"' in out
    assert "Unused build args: NOPE" in out
    assert 'stage 1 "unused": FROM builder (stage 0)  [skipped]' in out
    assert "     5  WORKDIR /opt/app-1.0" in out
    assert "          src/pkg/m.py" in out


def test_plan_from_a_tar_on_stdin(context: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(context, arcname=".")
    stdin = io.BufferedReader(io.BytesIO(gzip.compress(buf.getvalue())))
    options = parse_build_options(["-c", "tar://stdin"], {}, validate=False)
    out = io.StringIO()
    assert run_plan(options, {}, stdin=stdin, out=out) == 0
    assert "src/main.py" in out.getvalue()


def test_plan_never_needs_a_destination_or_implemented_flags(
    context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "-c", str(context), "--cache", "--single-snapshot", "--reproducible"]
    assert cli.brickyard_main(argv, {}) == 0
    assert 'stage 2 "final"' in capsys.readouterr().out


def test_plan_reports_missing_copy_source_and_exits_7(
    context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY missing.txt /\n")
    assert cli.brickyard_main(["plan", "-c", str(context)], {}) == 7
    captured = capsys.readouterr()
    assert "missing.txt: ERROR" in captured.out
    assert captured.err.startswith("error: plan: line 2: COPY source missing.txt: not found")


def test_plan_dockerfile_error_exits_3(context: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPPY a /\n")
    assert cli.brickyard_main(["plan", "-c", str(context)], {}) == 3
    assert capsys.readouterr().err.startswith("error: Dockerfile:2:")


def test_plan_missing_context_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.brickyard_main(["plan", "-c", str(tmp_path / "nope")], {}) == 4
    assert "does not exist" in capsys.readouterr().err


def test_plan_uses_the_dockerfile_specific_dockerignore(
    context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (context / "Dockerfile.dockerignore").write_text("a.txt\n")
    data = plan_json(["-c", str(context)], capsys)
    assert data["dockerignore"].endswith("Dockerfile.dockerignore")
    assert data["stages"][0]["instructions"][4]["sources"][0]["files"] == ["b.txt"]


def test_plan_copy_exclude_is_relative_to_the_copied_source(
    context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY --exclude=*.txt --exclude=src/pkg . /app\nCOPY --exclude=*.py src /s\n"
    )
    data = plan_json(["-c", str(context)], capsys)
    whole, src = (i["sources"][0]["files"] for i in data["stages"][0]["instructions"])
    # Moby pattern rules: "*.txt" stays at the top level of what is copied
    assert whole == [
        ".dockerignore",
        "Dockerfile",
        "docs/README.md",
        "docs/guide.txt",
        "src/main.py",
    ]
    assert src == ["src/pkg/m.py"]


def test_plan_stage_built_from_a_stage_starts_from_its_finished_scope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ARG values of the parent stage carry over (BuildKit), as they do in the build."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM alpine AS base\nARG V=1.5\nENV E=env-$V\n"
        "FROM base AS child\nWORKDIR /w-$V-$E\nRUN echo $V\n"
    )
    data = plan_json(["-c", str(ctx)], capsys)
    child = data["stages"][1]["instructions"]
    assert child[0]["text"] == "WORKDIR /w-1.5-env-1.5"
