"""gitlab-ci-local (npm, run under bun, shell executor) runs a pipeline that includes the
brickyard component from the local repository, builds a real Dockerfile into the local
registry, and hands the digest to a later job through the dotenv report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.adapters.tools import NPM_BIN, NPM_MODULES, ROOT, path_with_console_scripts
from tests.support.registry import RunningRegistry

pytestmark = pytest.mark.integration

PIPELINE = """\
stages: [build, verify]
include:
  - component: $CI_SERVER_FQDN/grp/proj/brickyard@$CI_COMMIT_SHA
    inputs:
      images: {registry}/gl/app
      tag-rules: |
        type=ref,event=branch
        type=sha
      build-args: "GREETING=hello from gitlab"
      insecure-registries: {registry}
verify:
  stage: verify
  needs: [brickyard-build]
  script:
    - echo "digest=$BRICKYARD_IMAGE_DIGEST tags=$BRICKYARD_IMAGE_TAGS"
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_pipeline_including_component_builds_into_local_registry(
    registry: RunningRegistry, busybox_image: str, tmp_path: Path, httpserver: HTTPServer
) -> None:
    # GitLab's API for the component's after_script (`brickyard gitlab report`).
    statuses: list[dict[str, str]] = []

    def status(request: Request) -> Response:
        statuses.append(json.loads(request.data))
        return Response(json.dumps({"id": 1, **statuses[-1]}), 201, mimetype="application/json")

    httpserver.expect_request(
        re.compile(r"/api/v4/projects/[^/]+/statuses/[0-9a-f]{40}"),
        method="POST",
        headers={"PRIVATE-TOKEN": "glpat-e2e"},
    ).respond_with_handler(status)
    repo = tmp_path / "proj"
    (repo / "templates").mkdir(parents=True)
    shutil.copytree(ROOT / "templates" / "brickyard", repo / "templates" / "brickyard")
    (repo / "Dockerfile").write_text(
        f'FROM {busybox_image}\nARG GREETING\nRUN echo "$GREETING" > /greeting\n'
    )
    (repo / ".gitlab-ci.yml").write_text(PIPELINE.format(registry=registry.host))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "remote", "add", "origin", "https://gitlab.example.com/grp/proj.git")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "pipeline")
    sha = _git(repo, "rev-parse", "HEAD")
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "FORCE_COLOR": "0",
        "NO_COLOR": "1",
        "PATH": path_with_console_scripts(),
    }
    proc = subprocess.run(
        [
            str(NPM_BIN / "bun"),
            str(NPM_MODULES / "gitlab-ci-local" / "dist" / "index.js"),
            "--force-shell-executor",
            "--variable",
            "BRICKYARD_GITLAB_TOKEN=glpat-e2e",
            "--variable",
            f"CI_SERVER_URL={httpserver.url_for('').rstrip('/')}",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    tags = [f"{registry.host}/gl/app:main", f"{registry.host}/gl/app:sha-{sha[:8]}"]
    m = re.search(r"digest=(sha256:[0-9a-f]{64}) tags=(\S+)", log)
    assert m, log[-4000:]
    assert m.group(2).split(",") == tags
    pushed = requests.get(
        f"{registry.url}/v2/gl/app/manifests/sha-{sha[:8]}",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
        timeout=10,
    )
    assert pushed.status_code == 200
    assert pushed.headers["Docker-Content-Digest"] == m.group(1)
    # gitlab-ci-local parses GitLab's section_start/section_end markers like the real log view
    assert "brickyard_build took" in log and "brickyard_auth took" in log
    assert [(s["state"], s["name"], s["ref"]) for s in statuses] == [
        ("success", "brickyard", "main")
    ]
    assert statuses[0]["description"] == f"image {m.group(1)[:19]}"
