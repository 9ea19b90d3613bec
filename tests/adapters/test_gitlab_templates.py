from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters.cli import COMMANDS
from adapters.gitlab.component import render_component, render_plain_job
from tests.adapters.tools import ROOT, check_each_document, check_jsonschema

COMPONENT = ROOT / "templates" / "brickyard" / "template.yml"


def test_committed_component_is_the_rendered_one() -> None:
    assert COMPONENT.read_text() == render_component()


def test_component_spec_declares_types_defaults_options_descriptions() -> None:
    spec, job = yaml.safe_load_all(COMPONENT.read_text())
    inputs = spec["spec"]["inputs"]
    assert inputs["push"] == {"type": "boolean", "default": True, "description": "push the image"}
    assert inputs["verbosity"]["options"] == ["trace", "debug", "info", "warn", "error"]
    assert all("description" in v and "default" in v for v in inputs.values())
    body = job["$[[ inputs.job-name ]]"]
    assert body["script"] == ["brickyard gitlab build"]
    assert body["variables"]["BRICKYARD_BUILD_ARGS"] == "$[[ inputs.build-args ]]"
    assert body["artifacts"]["reports"]["dotenv"] == "$[[ inputs.dotenv ]]"


def test_each_component_document_passes_the_gitlab_ci_schema(tmp_path: Path) -> None:
    results = check_each_document("gitlab-ci", COMPONENT.read_text(), tmp_path)
    assert len(results) == 2
    for r in results:
        assert r.returncode == 0, r.stdout + r.stderr


def test_plain_job_passes_schema_and_takes_given_inputs(tmp_path: Path) -> None:
    text = render_plain_job({"stage": "package", "cache": "true"})
    job = yaml.safe_load(text)["brickyard-build"]
    assert job["stage"] == "package" and job["variables"]["BRICKYARD_CACHE"] == "true"
    assert job["variables"]["BRICKYARD_CONTEXT"] == "."
    path = tmp_path / "job.yml"
    path.write_text(text)
    result = check_jsonschema("gitlab-ci", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_job(tmp_path: Path) -> None:
    job = yaml.safe_load(render_plain_job())
    job["brickyard-build"]["artifacts"]["when"] = "sometimes"
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(job))
    assert check_jsonschema("gitlab-ci", path).returncode != 0


def test_render_command_prints_component_and_refuses_unknown_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert COMMANDS["gitlab"](["render", "--component"], {}) == 0
    assert capsys.readouterr().out == render_component()
    assert COMMANDS["gitlab"](["render", "--input", "nope=1"], {}) == 11
