"""The snippets README's CI sections tell users to paste are valid for their tools."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from adapters.cli import COMMANDS
from adapters.inputs import inputs_markdown
from tests.adapters.tools import (
    ROOT,
    actionlint,
    check_jsonschema,
    groovy_parse,
    kubernetes_validate,
)

README = (ROOT / "README.md").read_text()


def snippet(section: str, lang: str) -> str:
    body = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"```{lang}\n(.*?)```", body, re.S)
    assert match, f"no {lang} block in README section {section}"
    return match.group(1)


def test_gitlab_snippet_passes_gitlab_ci_schema(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(snippet("GitLab CI", "yaml"))
    result = check_jsonschema("gitlab-ci", path)
    assert result.returncode == 0, result.stdout + result.stderr
    inputs = yaml.safe_load(path.read_text())["include"][0]["inputs"]
    spec = yaml.safe_load_all((ROOT / "templates/brickyard/template.yml").read_text())
    assert set(inputs) <= set(next(iter(spec))["spec"]["inputs"])


def test_github_snippet_passes_actionlint_and_uses_declared_inputs(tmp_path: Path) -> None:
    text = "name: image\non: [push, pull_request]\n" + snippet("GitHub Actions", "yaml")
    path = tmp_path / "wf.yml"
    path.write_text(text)
    lint = actionlint([path], tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    step = yaml.safe_load(text)["jobs"]["build"]["steps"][1]
    action = yaml.safe_load((ROOT / "templates/github-action/action.yml").read_text())
    assert set(step["with"]) <= set(action["inputs"])


def test_jenkins_snippet_parses_as_groovy(tmp_path: Path) -> None:
    path = tmp_path / "Jenkinsfile"
    path.write_text(snippet("Jenkins", "groovy"))
    result = groovy_parse([path], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_snippet_renders_a_valid_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = snippet("Kubernetes", "sh").split("\nbrickyard ", 1)[1].split("|", 1)[0]
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[0] == "k8s"
    assert COMMANDS["k8s"](argv[1:], {}) == 0
    path = tmp_path / "job.yaml"
    path.write_text(capsys.readouterr().out)
    result = kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_inputs_doc_is_current() -> None:
    assert (ROOT / "docs/ci/inputs.md").read_text() == inputs_markdown()
