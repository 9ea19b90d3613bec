"""python-gitlab calls: project CI lint, commit status, merge-request note.

HTTP errors become AdapterError at this one boundary (python-gitlab's own style).
The job token cannot post statuses or notes, so a token input is required for `report`:
--token or BRICKYARD_GITLAB_TOKEN (a project/personal access token).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gitlab
import gitlab.exceptions

from adapters.logsections import env_secrets
from adapters.report import load_report, redact_report, render_markdown
from engine.errors import AdapterError

STATES = ("pending", "running", "success", "failed", "canceled")


def connect(url: str, token: str, job_token: str = "", ca_file: str = "") -> gitlab.Gitlab:
    if not url:
        raise AdapterError("GitLab URL unknown: pass --url or set CI_SERVER_URL")
    verify: bool | str = ca_file or True
    if token:
        return gitlab.Gitlab(url, private_token=token, ssl_verify=verify)
    if job_token:
        return gitlab.Gitlab(url, job_token=job_token, ssl_verify=verify)
    raise AdapterError("no GitLab token: pass --token or set BRICKYARD_GITLAB_TOKEN")


def _common(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    parser.add_argument("--url", default=env.get("CI_SERVER_URL", ""))
    parser.add_argument(
        "--project", default=env.get("CI_PROJECT_ID") or env.get("CI_PROJECT_PATH", "")
    )
    parser.add_argument("--token", default=env.get("BRICKYARD_GITLAB_TOKEN", ""))


def _project_of(gl: gitlab.Gitlab, project: str) -> Any:
    if not project:
        raise AdapterError("GitLab project unknown: pass --project or set CI_PROJECT_ID")
    return gl.projects.get(project, lazy=True)


def _fail(what: str, exc: gitlab.exceptions.GitlabError) -> AdapterError:
    return AdapterError(f"GitLab {what} failed: HTTP {exc.response_code}: {exc.error_message}")


def lint(argv: list[str], env: Mapping[str, str]) -> int:
    """`brickyard gitlab lint FILE`: the project CI lint API (POST /projects/:id/ci/lint)."""
    parser = argparse.ArgumentParser(prog="brickyard gitlab lint")
    parser.add_argument("file")
    parser.add_argument("--ref", default="", help="lint as if on this branch (dry run)")
    _common(parser, env)
    ns = parser.parse_args(argv)
    try:
        content = Path(ns.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise AdapterError(f"cannot read {ns.file}: {exc.strerror}") from None
    gl = connect(
        ns.url, ns.token, env.get("CI_JOB_TOKEN", ""), env.get("CI_SERVER_TLS_CA_FILE", "")
    )
    data: dict[str, object] = {"content": content}
    if ns.ref:
        data.update(dry_run=True, ref=ns.ref)
    try:
        result = _project_of(gl, ns.project).ci_lint.create(data)
    except gitlab.exceptions.GitlabError as exc:
        raise _fail("CI lint", exc) from None
    for warning in result.warnings or []:
        print(f"warning: {ns.file}: {warning}")
    for error in result.errors or []:
        print(f"error: {ns.file}: {error}", file=sys.stderr)
    print(f"{ns.file}: {'valid' if result.valid else 'invalid'}")
    return 0 if result.valid else 1


def report(argv: list[str], env: Mapping[str, str]) -> int:
    """`brickyard gitlab report`: commit status, and on merge requests a note with the report."""
    parser = argparse.ArgumentParser(prog="brickyard gitlab report")
    _common(parser, env)
    parser.add_argument("--report-file", default="brickyard-report.json")
    parser.add_argument("--state", choices=STATES, default=None)
    parser.add_argument("--name", default="brickyard")
    parser.add_argument("--sha", default=env.get("CI_COMMIT_SHA", ""))
    parser.add_argument("--ref", default=env.get("CI_COMMIT_REF_NAME", ""))
    parser.add_argument("--target-url", default=env.get("CI_JOB_URL", ""))
    parser.add_argument("--merge-request", default=env.get("CI_MERGE_REQUEST_IID", ""))
    ns = parser.parse_args(argv)
    # the note is public to the project: mask what the job's variables hold
    build = redact_report(load_report(Path(ns.report_file)), (*env_secrets(env), ns.token))
    # after_script sees CI_JOB_STATUS; a report with a digest means the build succeeded.
    state = ns.state or {"success": "success", "failed": "failed", "canceled": "canceled"}.get(
        env.get("CI_JOB_STATUS", ""), "success" if build.digest else "failed"
    )
    if not ns.sha:
        raise AdapterError("commit unknown: pass --sha or set CI_COMMIT_SHA")
    gl = connect(ns.url, ns.token, "", env.get("CI_SERVER_TLS_CA_FILE", ""))
    project = _project_of(gl, ns.project)
    description = f"image {build.digest[:19]}" if build.digest else "image build failed"
    status: dict[str, str] = {"state": state, "name": ns.name, "description": description}
    if ns.ref:
        status["ref"] = ns.ref
    if ns.target_url:
        status["target_url"] = ns.target_url
    try:
        project.commits.get(ns.sha, lazy=True).statuses.create(status)
        print(f"commit status {ns.name}={state} on {ns.sha[:8]}")
        if ns.merge_request:
            body = render_markdown(build, title=f"brickyard build ({state})")
            project.mergerequests.get(ns.merge_request, lazy=True).notes.create({"body": body})
            print(f"note added to merge request !{ns.merge_request}")
    except gitlab.exceptions.GitlabError as exc:
        raise _fail("report", exc) from None
    return 0
