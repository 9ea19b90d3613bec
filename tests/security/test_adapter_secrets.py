"""CI adapters never print a token, password or config.json auth: not in the echoed executor
command, not in the build's stderr as it streams through, not in the error, the stderr tail,
the Markdown report (step summary, MR note) or the GitHub masks missing one."""

from __future__ import annotations

import base64
import io
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from adapters.ci import ref_context
from adapters.executor import execute, plan_build
from adapters.inputs import read_inputs
from adapters.logsections import GitHubSections, PlainSections, env_secrets
from adapters.report import redact_report, render_markdown

JOB_TOKEN = "glcbt-JobT0ken-abcdef"
REGISTRY_PASSWORD = "glcbt-RegPa55-123456"
OTHER_AUTH_PASSWORD = "dockerhubPa55word"
OTHER_AUTH = base64.b64encode(f"me:{OTHER_AUTH_PASSWORD}".encode()).decode()
PROXY_PASSWORD = "pr0xyPa55"
GITHUB_TOKEN = "ghs_GitHubT0kenValue1234"
REG_BASIC = base64.b64encode(f"gitlab-ci-token:{REGISTRY_PASSWORD}".encode()).decode()

GITLAB = {
    "GITLAB_CI": "true",
    "CI_PROJECT_DIR": "/builds/grp/app",
    "CI_COMMIT_BRANCH": "main",
    "CI_COMMIT_REF_NAME": "main",
    "CI_DEFAULT_BRANCH": "main",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "CI_COMMIT_SHORT_SHA": "01234567",
    "CI_REGISTRY": "registry.example.com",
    "CI_REGISTRY_IMAGE": "registry.example.com/grp/app",
    "CI_REGISTRY_USER": "gitlab-ci-token",
    "CI_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
    "CI_JOB_TOKEN": JOB_TOKEN,
    "DOCKER_AUTH_CONFIG": json.dumps({"auths": {"docker.io": {"auth": OTHER_AUTH}}}),
    "HTTPS_PROXY": f"http://proxyuser:{PROXY_PASSWORD}@proxy.example.com:3128",
}
GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REPOSITORY": "org/app",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_REF_NAME": "main",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    "GITHUB_WORKSPACE": "/w",
    "GITHUB_ACTOR": "octo",
    "GITHUB_TOKEN": GITHUB_TOKEN,
    "INPUT_GITHUB-TOKEN": GITHUB_TOKEN,
    "INPUT_PUSH": "true",
    "INPUT_TAGS": "ghcr.io/org/app:1",
}
GITLAB_SECRETS = (
    JOB_TOKEN,
    REGISTRY_PASSWORD,
    OTHER_AUTH,
    OTHER_AUTH_PASSWORD,
    PROXY_PASSWORD,
    REG_BASIC,
)
GITHUB_SECRETS = (GITHUB_TOKEN,)


def _hostile_runner(argv: list[str], env: Mapping[str, str]) -> int:
    """An engine that blurts every secret it can find, to stderr and into its report."""
    config = (Path(env["DOCKER_CONFIG"]) / "config.json").read_text()
    blurt = " ".join(GITLAB_SECRETS + GITHUB_SECRETS) + " " + config.replace("\n", " ")
    print(f"DEBUG Authorization: Basic {REG_BASIC} {blurt}", file=sys.stderr)
    print(f"error: push failed: {blurt}", file=sys.stderr)
    report_file = argv[argv.index("--report-file") + 1]
    report = {
        "error": f"push failed: {blurt}",
        "steps": [{"stage": 0, "instruction": f"RUN curl -u x:{JOB_TOKEN} {blurt}"}],
    }
    Path(report_file).write_text(json.dumps(report))
    return 1


@pytest.mark.parametrize(
    ("env", "secrets"),
    [(GITLAB, GITLAB_SECRETS), (GITHUB, GITHUB_SECRETS)],
    ids=["gitlab", "github"],
)
def test_nothing_the_adapter_prints_or_renders_holds_a_secret(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    env: dict[str, str],
    secrets: tuple[str, ...],
) -> None:
    argv = ["--build-arg", f"HTTPS_PROXY={env.get('HTTPS_PROXY', '')}"]
    inputs, extra = read_inputs(argv, env, prog="t")
    plan = plan_build(ref_context(env), inputs, env, workdir=tmp_path, executor_args=extra)
    out = io.StringIO()
    log = GitHubSections(out) if env is GITHUB else PlainSections(out)
    outcome = execute(plan, log, out, runner=_hostile_runner, docker_config_dir=tmp_path / "d")
    stdout, stderr = capfd.readouterr()
    printed = out.getvalue()
    if env is GITHUB:  # masks are the one place a secret may appear: as ::add-mask::
        assert f"::add-mask::{GITHUB_TOKEN}" in printed
        printed = "\n".join(ln for ln in printed.splitlines() if not ln.startswith("::add-mask::"))
    shown = [
        printed,
        stdout,
        stderr,
        outcome.error,
        "\n".join(outcome.stderr_tail),
        render_markdown(outcome.report),
    ]
    assert outcome.exit_code == 1 and outcome.error.startswith("push failed")
    for text in shown:
        for secret in secrets:
            assert secret not in text


def test_env_secrets_picks_tokens_and_passwords_not_ordinary_values() -> None:
    extra = {"CI_JOB_TOKEN_TYPE": "x", "TOKEN_COUNT": "3", "CI_COMMIT_AUTHOR": "Ann <a@b>"}
    found = env_secrets(GITLAB | GITHUB | extra)
    for secret in (JOB_TOKEN, REGISTRY_PASSWORD, GITHUB_TOKEN, OTHER_AUTH, PROXY_PASSWORD):
        assert secret in found
    assert "main" not in found and "3" not in found and "true" not in found
    assert "Ann <a@b>" not in found


def test_redact_report_masks_error_and_instructions() -> None:
    from adapters.report import parse_report

    report = parse_report(
        {"error": f"x {JOB_TOKEN}", "steps": [{"instruction": f"RUN echo {JOB_TOKEN}"}]}
    )
    clean = redact_report(report, (JOB_TOKEN,))
    assert JOB_TOKEN not in clean.error and JOB_TOKEN not in clean.steps[0].instruction


@pytest.mark.parametrize("sub", ["run", "apply"])
def test_jenkins_unreachable_error_masks_url_credentials(sub: str, tmp_path: Path) -> None:
    from adapters.jenkins import jobs
    from engine.errors import AdapterError

    (tmp_path / "Jenkinsfile").write_text("pipeline {}\n")
    env = {
        "JENKINS_URL": "http://ci:ApiT0ken-123456@127.0.0.1:9",
        "JENKINS_USER": "ci",
        "JENKINS_API_TOKEN": "t0k3n-abc",
    }
    argv = ["job1"] + (["--script", str(tmp_path / "Jenkinsfile")] if sub == "apply" else [])
    with pytest.raises(AdapterError) as info:
        getattr(jobs, sub)(argv, env)
    message = str(info.value)
    assert "ApiT0ken-123456" not in message and "127.0.0.1" in message and "\n" not in message
