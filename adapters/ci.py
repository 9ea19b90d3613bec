"""Which CI runs us, and the git facts it exposes, as one CI-neutral `RefContext`.

Detection follows cibuildwheel: one enum of providers, the environment passed in as a
mapping (never `os.environ` read here), so every adapter and test drives it with a dict.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class CI(enum.Enum):
    GITLAB = "gitlab"
    JENKINS = "jenkins"
    GITHUB = "github"
    OTHER = "other"
    NONE = "none"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def detect_ci(env: Mapping[str, str]) -> CI:
    """The CI provider running this process, from its documented marker variables."""
    if _truthy(env.get("GITLAB_CI")):
        return CI.GITLAB
    if _truthy(env.get("GITHUB_ACTIONS")):
        return CI.GITHUB
    if env.get("JENKINS_URL") or env.get("JENKINS_HOME"):
        return CI.JENKINS
    if _truthy(env.get("CI")) or env.get("BUILD_NUMBER") or env.get("TF_BUILD"):
        return CI.OTHER
    return CI.NONE


@dataclass(frozen=True)
class RefContext:
    """What a commit is, in the terms docker/metadata-action's tag rules need.

    `kind` is "branch", "tag", "pr" or "none"; `name` is the branch or tag name (raw, may hold
    `/`) or the pull/merge request number. `event` is "schedule" for scheduled pipelines.
    """

    ci: CI
    kind: str = "none"
    name: str = ""
    sha: str = ""
    default_branch: str = ""
    event: str = "push"
    pr_prefix: str = "pr-"
    base_ref: str = ""
    short_sha_length: int = 7
    repo_name: str = ""
    repo_url: str = ""
    commit_date: str = ""
    default_images: tuple[str, ...] = ()
    workspace: str = ""

    @property
    def branch(self) -> str:
        return self.name if self.kind == "branch" else ""

    @property
    def tag(self) -> str:
        return self.name if self.kind == "tag" else ""

    @property
    def short_sha(self) -> str:
        return self.sha[: self.short_sha_length]

    @property
    def is_default_branch(self) -> bool:
        return self.kind == "branch" and bool(self.name) and self.name == self.default_branch


def _gitlab(env: Mapping[str, str]) -> RefContext:
    if env.get("CI_COMMIT_TAG"):
        kind, name = "tag", env["CI_COMMIT_TAG"]
    elif env.get("CI_MERGE_REQUEST_IID"):
        kind, name = "pr", env["CI_MERGE_REQUEST_IID"]
    elif env.get("CI_COMMIT_BRANCH") or env.get("CI_COMMIT_REF_NAME"):
        kind, name = "branch", env.get("CI_COMMIT_BRANCH") or env["CI_COMMIT_REF_NAME"]
    else:
        kind, name = "none", ""
    short = env.get("CI_COMMIT_SHORT_SHA", "")
    image = env.get("CI_REGISTRY_IMAGE", "")
    return RefContext(
        ci=CI.GITLAB,
        kind=kind,
        name=name,
        sha=env.get("CI_COMMIT_SHA", ""),
        default_branch=env.get("CI_DEFAULT_BRANCH", ""),
        event="schedule" if env.get("CI_PIPELINE_SOURCE") == "schedule" else "push",
        pr_prefix="mr-",
        base_ref=env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", ""),
        short_sha_length=len(short) if short else 8,
        repo_name=env.get("CI_PROJECT_NAME", ""),
        repo_url=env.get("CI_PROJECT_URL", ""),
        commit_date=env.get("CI_COMMIT_TIMESTAMP", ""),
        default_images=(image,) if image else (),
        workspace=env.get("CI_PROJECT_DIR", ""),
    )


def _github_event(env: Mapping[str, str]) -> dict[str, Any]:
    """The webhook payload the runner saved at GITHUB_EVENT_PATH (empty when absent)."""
    path = env.get("GITHUB_EVENT_PATH", "")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _github(env: Mapping[str, str]) -> RefContext:
    ref = env.get("GITHUB_REF", "")
    event = _github_event(env)
    sha = env.get("GITHUB_SHA", "")
    pr_head = (event.get("pull_request") or {}).get("head", {}).get("sha", "")
    if _truthy(env.get("DOCKER_METADATA_PR_HEAD_SHA")) and pr_head:
        sha = pr_head
    kind, name = "none", ""
    if ref.startswith("refs/heads/"):
        kind, name = "branch", ref.removeprefix("refs/heads/")
    elif ref.startswith("refs/tags/"):
        kind, name = "tag", ref.removeprefix("refs/tags/")
    elif m := re.fullmatch(r"refs/pull/(\d+)/(merge|head)", ref):
        kind, name = "pr", m.group(1)
    repo = env.get("GITHUB_REPOSITORY", "")
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    return RefContext(
        ci=CI.GITHUB,
        kind=kind,
        name=name,
        sha=sha,
        default_branch=env.get("BRICKYARD_DEFAULT_BRANCH", "")
        or (event.get("repository") or {}).get("default_branch", ""),
        event=env.get("GITHUB_EVENT_NAME", "push"),
        pr_prefix="pr-",
        base_ref=env.get("GITHUB_BASE_REF", ""),
        short_sha_length=int(env.get("DOCKER_METADATA_SHORT_SHA_LENGTH", "7") or 7),
        repo_name=repo.rsplit("/", 1)[-1],
        repo_url=f"{server}/{repo}" if repo else "",
        commit_date=(event.get("head_commit") or {}).get("timestamp", ""),
        # ghcr.io rejects upper-case repository names: owners often have capitals.
        default_images=(f"ghcr.io/{repo.lower()}",) if repo else (),
        workspace=env.get("GITHUB_WORKSPACE", ""),
    )


def _jenkins(env: Mapping[str, str]) -> RefContext:
    if env.get("TAG_NAME"):
        kind, name = "tag", env["TAG_NAME"]
    elif env.get("CHANGE_ID"):
        kind, name = "pr", env["CHANGE_ID"]
    elif env.get("BRANCH_NAME") or env.get("GIT_BRANCH") or env.get("GIT_LOCAL_BRANCH"):
        raw = env.get("BRANCH_NAME") or env.get("GIT_LOCAL_BRANCH") or env.get("GIT_BRANCH", "")
        # GIT_BRANCH is the remote branch ("origin/main"); the branch is what follows it.
        kind, name = "branch", re.sub(r"^(refs/heads/|origin/|refs/remotes/origin/)", "", raw)
    else:
        kind, name = "none", ""
    git_url = env.get("GIT_URL", "")
    job = env.get("JOB_NAME", "")
    return RefContext(
        ci=CI.JENKINS,
        kind=kind,
        name=name,
        sha=env.get("GIT_COMMIT", ""),
        default_branch=env.get("BRICKYARD_DEFAULT_BRANCH", "")
        or (name if _truthy(env.get("BRANCH_IS_PRIMARY")) else ""),
        pr_prefix="pr-",
        base_ref=env.get("CHANGE_TARGET", ""),
        short_sha_length=7,
        repo_name=re.sub(r"\.git$", "", git_url.rstrip("/").rsplit("/", 1)[-1])
        or job.split("/")[0],
        repo_url=re.sub(r"\.git$", "", git_url) if git_url.startswith("http") else "",
        workspace=env.get("WORKSPACE", ""),
    )


def _generic(env: Mapping[str, str]) -> RefContext:
    return RefContext(ci=detect_ci(env), workspace=env.get("PWD", ""))


CONTEXT_READERS: dict[CI, Callable[[Mapping[str, str]], RefContext]] = {
    CI.GITLAB: _gitlab,
    CI.GITHUB: _github,
    CI.JENKINS: _jenkins,
    CI.OTHER: _generic,
    CI.NONE: _generic,
}


def ref_context(env: Mapping[str, str], ci: CI | None = None) -> RefContext:
    """The git facts of the running pipeline, read by the provider's own reader."""
    return CONTEXT_READERS[ci or detect_ci(env)](env)
