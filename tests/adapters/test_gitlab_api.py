"""python-gitlab calls against a local server answering as GitLab's documented REST API."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from adapters.cli import COMMANDS
from adapters.gitlab.build import gitlab_build

TOKEN = "glpat-test-token"


def _env(server: HTTPServer, **extra: str) -> dict[str, str]:
    return {
        "CI_SERVER_URL": server.url_for("").rstrip("/"),
        "CI_PROJECT_ID": "42",
        "BRICKYARD_GITLAB_TOKEN": TOKEN,
        **extra,
    }


def test_lint_posts_content_to_project_ci_lint_and_reports_errors(
    httpserver: HTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text("build:\n  script: [make]\n")
    # doc/api/lint.md: POST /projects/:id/ci/lint -> valid, errors, warnings, merged_yaml
    httpserver.expect_request(
        "/api/v4/projects/42/ci/lint",
        method="POST",
        headers={"PRIVATE-TOKEN": TOKEN},
        json={"content": ci.read_text(), "dry_run": True, "ref": "main"},
    ).respond_with_json(
        {
            "valid": False,
            "errors": ["jobs:build config contains unknown keys: scrpt"],
            "warnings": ["jobs:build may allow multiple pipelines"],
            "merged_yaml": None,
            "includes": [],
        }
    )
    code = COMMANDS["gitlab"](["lint", str(ci), "--ref", "main"], _env(httpserver))
    out = capsys.readouterr()
    assert code == 1
    assert "unknown keys: scrpt" in out.err and "may allow multiple pipelines" in out.out
    httpserver.check_assertions()


def test_lint_valid_file_exits_zero(httpserver: HTTPServer, tmp_path: Path) -> None:
    ci = tmp_path / "ci.yml"
    ci.write_text("build:\n  script: [make]\n")
    httpserver.expect_request("/api/v4/projects/42/ci/lint", method="POST").respond_with_json(
        {"valid": True, "errors": [], "warnings": [], "merged_yaml": "---\n", "includes": []}
    )
    assert COMMANDS["gitlab"](["lint", str(ci)], _env(httpserver)) == 0


def test_lint_http_error_names_status_without_token(
    httpserver: HTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ci = tmp_path / "ci.yml"
    ci.write_text("a: 1\n")
    httpserver.expect_request("/api/v4/projects/42/ci/lint").respond_with_json(
        {"message": "401 Unauthorized"}, status=401
    )
    assert COMMANDS["gitlab"](["lint", str(ci)], _env(httpserver)) == 11
    err = capsys.readouterr().err
    assert "HTTP 401" in err and TOKEN not in err


def test_report_sets_commit_status_and_adds_merge_request_note(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    report = tmp_path / "brickyard-report.json"
    report.write_text(
        json.dumps(
            {
                "digest": "sha256:" + "c" * 64,
                "tags": ["r/app:mr-7"],
                "steps": [{"instruction": "RUN make T=glcbt-job-secret", "cache_hit": True}],
            }
        )
    )
    notes: list[str] = []

    def note(request: Request) -> Response:
        notes.append(json.loads(request.data)["body"])
        return Response(json.dumps({"id": 1, "body": notes[-1]}), 201, mimetype="application/json")

    # doc/api/commits.md "Set the pipeline status of a commit": POST /projects/:id/statuses/:sha
    httpserver.expect_request(
        f"/api/v4/projects/42/statuses/{sha}",
        method="POST",
        json={
            "state": "success",
            "name": "brickyard",
            "description": "image sha256:cccccccccccc",
            "ref": "feature",
            "target_url": "https://gl/job/9",
        },
    ).respond_with_json(
        {"id": 93, "sha": sha, "status": "success", "name": "brickyard"}, status=201
    )
    httpserver.expect_request(
        "/api/v4/projects/42/merge_requests/7/notes", method="POST"
    ).respond_with_handler(note)
    env = _env(
        httpserver,
        CI_COMMIT_SHA=sha,
        CI_COMMIT_REF_NAME="feature",
        CI_MERGE_REQUEST_IID="7",
        CI_JOB_URL="https://gl/job/9",
        CI_JOB_TOKEN="glcbt-job-secret",
    )
    assert COMMANDS["gitlab"](["report", "--report-file", str(report)], env) == 0
    httpserver.check_assertions()
    assert "**Cache:** 1/1 steps cached" in notes[0] and "r/app:mr-7" in notes[0]
    assert "glcbt-job-secret" not in notes[0] and "RUN make T=***" in notes[0]


def test_report_without_token_is_refused_before_any_request(httpserver: HTTPServer) -> None:
    env = _env(httpserver, CI_COMMIT_SHA="abc")
    env.pop("BRICKYARD_GITLAB_TOKEN")
    assert COMMANDS["gitlab"](["report"], env) == 11
    assert httpserver.log == []


def test_gitlab_build_writes_dotenv_with_digest_for_later_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # GitLab starts job scripts in the project directory
    env = {
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(tmp_path),
        "CI_COMMIT_TAG": "v1.4.0",
        "CI_COMMIT_SHA": "f" * 40,
        "CI_REGISTRY_IMAGE": "reg.example.com/g/app",
        "BRICKYARD_TAG_RULES": "type=semver,pattern={{version}}",
    }
    digest = "sha256:" + "d" * 64

    def runner(argv: list[str], run_env: Mapping[str, str]) -> int:
        report = argv[argv.index("--report-file") + 1]
        Path(report).write_text(json.dumps({"digest": digest}))
        return 0

    assert gitlab_build([], env, out=io.StringIO(), runner=runner) == 0
    assert (tmp_path / "brickyard.env").read_text().splitlines() == [
        "BRICKYARD_IMAGE=reg.example.com/g/app:1.4.0",
        f"BRICKYARD_IMAGE_DIGEST={digest}",
        "BRICKYARD_IMAGE_TAGS=reg.example.com/g/app:1.4.0,reg.example.com/g/app:latest",
        f"BRICKYARD_IMAGE_REF=reg.example.com/g/app@{digest}",
    ]
    assert (tmp_path / "brickyard-report.json").is_file()
