from __future__ import annotations

import json
from pathlib import Path

from adapters.ci import CI, detect_ci, ref_context


def test_detects_each_provider_from_its_marker_variable() -> None:
    assert detect_ci({"GITLAB_CI": "true", "CI": "true"}) is CI.GITLAB
    assert detect_ci({"GITHUB_ACTIONS": "true", "CI": "true"}) is CI.GITHUB
    assert detect_ci({"JENKINS_URL": "http://j/", "BUILD_NUMBER": "3"}) is CI.JENKINS
    assert detect_ci({"CI": "true"}) is CI.OTHER
    assert detect_ci({"HOME": "/root"}) is CI.NONE
    assert detect_ci({"GITLAB_CI": "false"}) is CI.NONE


def test_gitlab_merge_request_uses_iid_and_eight_char_short_sha() -> None:
    ctx = ref_context(
        {
            "GITLAB_CI": "true",
            "CI_MERGE_REQUEST_IID": "17",
            "CI_COMMIT_REF_NAME": "feature/x",
            "CI_COMMIT_SHA": "0123456789abcdef0123",
            "CI_COMMIT_SHORT_SHA": "01234567",
            "CI_REGISTRY_IMAGE": "registry.example.com/grp/proj",
        }
    )
    assert (ctx.kind, ctx.name, ctx.pr_prefix) == ("pr", "17", "mr-")
    assert ctx.short_sha == "01234567"
    assert ctx.default_images == ("registry.example.com/grp/proj",)


def test_github_reads_default_branch_from_event_payload_and_lowercases_ghcr(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": "trunk"}}))
    ctx = ref_context(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REF": "refs/heads/trunk",
            "GITHUB_SHA": "abcdef1234567890",
            "GITHUB_REPOSITORY": "Octo-Org/My-App",
            "GITHUB_EVENT_PATH": str(event),
        }
    )
    assert ctx.is_default_branch
    assert ctx.default_images == ("ghcr.io/octo-org/my-app",)
    assert ctx.repo_url == "https://github.com/Octo-Org/My-App"
    assert ctx.short_sha == "abcdef1"


def test_github_pull_request_ref_gives_number() -> None:
    ctx = ref_context({"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/pull/42/merge"})
    assert (ctx.kind, ctx.name) == ("pr", "42")


def test_jenkins_strips_remote_from_git_branch_and_prefers_tag_and_change() -> None:
    base = {"JENKINS_URL": "http://j/", "GIT_COMMIT": "f" * 40, "GIT_BRANCH": "origin/main"}
    assert ref_context(base).name == "main"
    assert ref_context({**base, "CHANGE_ID": "9", "BRANCH_NAME": "PR-9"}).kind == "pr"
    assert ref_context({**base, "TAG_NAME": "v1.0.0"}).tag == "v1.0.0"
    ctx = ref_context({**base, "GIT_URL": "https://git.example.com/team/app.git"})
    assert (ctx.repo_name, ctx.repo_url) == ("app", "https://git.example.com/team/app")
