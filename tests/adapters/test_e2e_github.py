"""The action's entry point in an emulated runner (env and file commands as the runner sets
them), building a real Dockerfile with the engine into the local registry."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest
import requests

from adapters.github.build import github_build
from tests.adapters.test_github import _runner_env, parse_github_output
from tests.adapters.tools import path_with_console_scripts
from tests.support.registry import RunningRegistry

pytestmark = pytest.mark.integration


def test_github_action_builds_and_pushes_into_local_registry(
    registry: RunningRegistry, busybox_image: str, tmp_path: Path
) -> None:
    env = _runner_env(
        tmp_path,
        **{
            "INPUT_IMAGES": f"{registry.host}/gh/App",
            "INPUT_TAG-RULES": "type=ref,event=branch\ntype=sha",
            "INPUT_BUILD-ARGS": "GREETING=hello from actions",
            "INPUT_INSECURE-REGISTRIES": registry.host,
            "INPUT_EXTRA-ARGS": "--force",
            "PATH": path_with_console_scripts(),
        },
    )
    workspace = Path(env["GITHUB_WORKSPACE"])
    (workspace / "Dockerfile").write_text(
        f'FROM {busybox_image}\nARG GREETING\nRUN echo "$GREETING" > /greeting\n'
    )
    # As the runner does: `docker run -e INPUT_BUILD-ARGS=... image` -> the entry point process.
    proc = subprocess.run(
        ["brickyard", "github", "build"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workspace,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "::group::Build " in proc.stdout and "ghs_secret123" not in proc.stdout.replace(
        "::add-mask::ghs_secret123", ""
    )
    outputs = parse_github_output((tmp_path / "output").read_text())
    assert outputs["tags"].splitlines() == [
        f"{registry.host}/gh/app:main",
        f"{registry.host}/gh/app:sha-1234567",
    ]
    manifest = requests.get(
        f"{registry.url}/v2/gh/app/manifests/main",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
        timeout=10,
    )
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == outputs["digest"]
    config = requests.get(
        f"{registry.url}/v2/gh/app/blobs/{manifest.json()['config']['digest']}", timeout=10
    ).json()
    labels = config["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == env["GITHUB_SHA"]
    assert labels["org.opencontainers.image.source"] == "https://github.com/Octo/App"
    assert json.loads(outputs["metadata"])["containerimage.config.digest"] == outputs["imageid"]
    summary = (tmp_path / "summary").read_text()
    assert "RUN echo" in summary and outputs["digest"] in summary


def test_engine_dockerfile_error_becomes_annotation_on_the_right_line(
    registry: RunningRegistry, busybox_image: str, tmp_path: Path
) -> None:
    env = _runner_env(
        tmp_path,
        **{
            "INPUT_IMAGES": f"{registry.host}/gh/broken",
            "INPUT_INSECURE-REGISTRIES": registry.host,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        },
    )
    workspace = Path(env["GITHUB_WORKSPACE"])
    (workspace / "Dockerfile").write_text(f"FROM {busybox_image}\n\nRUNN echo hi\n")
    out = io.StringIO()
    assert github_build([], env, out=out) == 3
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("::error ")]
    assert len(lines) == 1 and lines[0].startswith(
        "::error file=Dockerfile,line=3,title=Dockerfile::"
    )
    assert "RUNN" in lines[0].upper()
    summary = (tmp_path / "summary").read_text()
    assert summary.startswith("### brickyard build failed") and "RUNN" in summary.upper()
