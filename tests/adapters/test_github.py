from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from adapters.github.build import annotation, format_outputs, github_build
from adapters.github.render import render_action, render_workflow
from tests.adapters.tools import ROOT, actionlint, check_jsonschema

ACTION = ROOT / "templates" / "github-action" / "action.yml"


def parse_github_output(text: str) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT the way the runner does (name=value and name<<DELIM blocks)."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line:
            name, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            values[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
            i += 1
        else:
            i += 1
    return values


def test_committed_action_is_the_rendered_one() -> None:
    assert ACTION.read_text() == render_action()


def test_action_follows_build_push_action_inputs_and_outputs() -> None:
    action = yaml.safe_load(ACTION.read_text())
    for name in ("context", "file", "build-args", "tags", "labels", "push", "target", "platforms"):
        assert name in action["inputs"]
    assert action["inputs"]["push"]["default"] == "false"
    assert action["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert {"cache", "cache-repo", "registry-mirror", "extra-args"} <= set(action["inputs"])
    assert set(action["outputs"]) == {"imageid", "digest", "metadata", "tags"}
    assert action["runs"]["using"] == "docker" and action["runs"]["args"] == ["github", "build"]


def test_action_passes_github_actions_schema() -> None:
    result = check_jsonschema("github-actions", ACTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_passes_schema_and_actionlint(tmp_path: Path) -> None:
    wf = tmp_path / "build.yml"
    wf.write_text(render_workflow())
    result = check_jsonschema("github-workflows", wf)
    assert result.returncode == 0, result.stdout + result.stderr
    lint = actionlint([wf], tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "${{ steps.build.outputs.digest }}" in wf.read_text()


def test_actionlint_catches_a_bad_expression(tmp_path: Path) -> None:
    wf = tmp_path / "bad.yml"
    wf.write_text(
        render_workflow().replace("steps.build.outputs.digest", "steps.build.outputs.digest ||| x")
    )
    lint = actionlint([wf], tmp_path)
    assert lint.returncode == 1 and "bad.yml" in lint.stdout


def test_outputs_survive_multiline_values() -> None:
    outputs = {"tags": "r/a:1\nr/a:latest", "digest": "sha256:x", "metadata": '{\n "a": 1\n}'}
    assert parse_github_output(format_outputs(outputs)) == outputs


def test_annotation_escapes_properties_and_message() -> None:
    assert annotation("error", "bad: 50%\nnext", file="a,b:c", line=3) == (
        "::error file=a%2Cb%3Ac,line=3::bad: 50%25%0Anext"
    )


def _runner_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What the runner gives a container action (docs: variables reference, file commands)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "Dockerfile").write_text("FROM scratch\n")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": "main"}}))
    for name in ("output", "summary"):
        (tmp_path / name).touch()
    return {
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_SHA": "1234567890abcdef1234567890abcdef12345678",
        "GITHUB_REPOSITORY": "Octo/App",
        "GITHUB_REPOSITORY_OWNER": "Octo",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "RUNNER_TEMP": str(tmp_path),
        "HOME": str(tmp_path / "home"),
        "INPUT_GITHUB-TOKEN": "ghs_secret123",
        "INPUT_PUSH": "true",
        "INPUT_TAG-RULES": "type=edge\ntype=sha",
        "INPUT_BUILD-ARGS": "A=1\nB=2",
        **extra,
    }


def test_entry_point_reads_hyphenated_inputs_and_writes_outputs_and_summary(tmp_path: Path) -> None:
    env = _runner_env(tmp_path)
    calls: list[list[str]] = []

    def runner(argv: list[str], run_env: Mapping[str, str]) -> int:
        calls.append(argv)
        config = json.loads((Path(run_env["DOCKER_CONFIG"]) / "config.json").read_text())
        assert "ghcr.io" in config["auths"]
        Path(argv[argv.index("--report-file") + 1]).write_text(
            json.dumps(
                {
                    "digest": "sha256:" + "1" * 64,
                    "image_id": "sha256:" + "2" * 64,
                    "steps": [{"instruction": "FROM scratch", "duration_s": 0.1}],
                }
            )
        )
        return 0

    out = io.StringIO()
    assert github_build([], env, out=out, runner=runner) == 0
    argv = calls[0]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--build-arg"] == ["A=1", "B=2"]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--destination"] == [
        "ghcr.io/octo/app:edge",
        "ghcr.io/octo/app:sha-1234567",
    ]
    outputs = parse_github_output((tmp_path / "output").read_text())
    assert outputs["digest"] == "sha256:" + "1" * 64
    assert outputs["imageid"] == "sha256:" + "2" * 64
    assert outputs["tags"] == "ghcr.io/octo/app:edge\nghcr.io/octo/app:sha-1234567"
    assert json.loads(outputs["metadata"])["containerimage.digest"] == outputs["digest"]
    assert "**Digest:**" in (tmp_path / "summary").read_text()
    log = out.getvalue()
    assert log.startswith("::add-mask::ghs_secret123\n")
    assert log.count("ghs_secret123") == 1
    assert "::group::Build ghcr.io/octo/app:edge, ghcr.io/octo/app:sha-1234567" in log


def test_dockerfile_error_becomes_file_line_annotation(tmp_path: Path) -> None:
    env = _runner_env(tmp_path, **{"INPUT_FILE": "docker/app.Dockerfile"})
    env["INPUT_FILE"] = str(Path(env["GITHUB_WORKSPACE"]) / "docker" / "app.Dockerfile")

    def runner(argv: list[str], run_env: Mapping[str, str]) -> int:
        print(
            f"error: {argv[argv.index('--dockerfile') + 1]}:4: unknown instruction: RUNN",
            file=sys.stderr,
        )
        return 3

    out = io.StringIO()
    assert github_build([], env, out=out, runner=runner) == 3
    assert (
        "::error file=docker/app.Dockerfile,line=4,title=Dockerfile::unknown instruction: RUNN"
        in out.getvalue()
    )
    assert (tmp_path / "output").read_text() == ""


def test_bad_input_is_an_error_annotation(tmp_path: Path) -> None:
    env = _runner_env(tmp_path, **{"INPUT_PUSH": "maybe"})
    out = io.StringIO()
    assert github_build([], env, out=out, runner=lambda a, e: 0) == 11
    assert re.search(
        r"^::error title=brickyard::input push: 'maybe' is not true or false$", out.getvalue(), re.M
    )


@pytest.mark.parametrize("ref", ["refs/pull/5/merge"])
def test_pull_request_without_push_builds_with_no_push(tmp_path: Path, ref: str) -> None:
    env = _runner_env(tmp_path, GITHUB_REF=ref, INPUT_PUSH="false")
    seen: list[list[str]] = []
    assert github_build([], env, out=io.StringIO(), runner=lambda a, e: seen.append(a) or 0) == 0
    assert "--no-push" in seen[0] and "--destination" not in seen[0]
    assert parse_github_output((tmp_path / "output").read_text())["tags"] == ""


def test_extra_registry_login_from_step_env_is_masked_and_written(tmp_path: Path) -> None:
    env = _runner_env(
        tmp_path,
        BRICKYARD_REGISTRY="docker.io",
        BRICKYARD_REGISTRY_USER="bot",
        BRICKYARD_REGISTRY_PASSWORD="hub-pat-123",
    )
    seen: dict[str, list[str]] = {}

    def runner(argv: list[str], run_env: Mapping[str, str]) -> int:
        config = json.loads((Path(run_env["DOCKER_CONFIG"]) / "config.json").read_text())
        seen["auths"] = sorted(config["auths"])
        return 0

    out = io.StringIO()
    assert github_build([], env, out=out, runner=runner) == 0
    assert seen["auths"] == ["docker.io", "ghcr.io"]
    assert "::add-mask::hub-pat-123\n" in out.getvalue()
    assert out.getvalue().count("hub-pat-123") == 1
