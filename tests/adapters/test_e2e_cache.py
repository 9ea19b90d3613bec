"""The `cache` input end to end: a second pipeline run of the same commit reuses the layers
from the registry cache repo, and the Markdown report says so."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from adapters.gitlab.build import gitlab_build
from tests.support.registry import RunningRegistry

pytestmark = pytest.mark.integration


def test_second_build_hits_the_registry_cache(
    registry: RunningRegistry, busybox_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(
        f"FROM {busybox_image}\nRUN echo one > /one\nRUN echo two > /two\n"
    )
    monkeypatch.chdir(project)
    env = {
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(project),
        "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_SHA": "5" * 40,
        "CI_COMMIT_SHORT_SHA": "55555555",
        "CI_REGISTRY_IMAGE": f"{registry.host}/cache/app",
        "BRICKYARD_CACHE": "true",
        "BRICKYARD_CACHE_REPO": f"{registry.host}/cache/app/cache",
        "BRICKYARD_INSECURE_REGISTRIES": registry.host,
        "BRICKYARD_REPRODUCIBLE": "true",
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    logs = []
    for _ in range(2):
        out = io.StringIO()
        assert gitlab_build([], env, out=out) == 0, out.getvalue()
        logs.append(out.getvalue())
    report = json.loads((project / "brickyard-report.json").read_text())
    run_steps = [s for s in report["steps"] if s["instruction"].startswith("RUN")]
    assert [s["cache_hit"] for s in run_steps] == [True, True], report["steps"]
    steps = len(report["steps"])
    hits = sum(1 for s in report["steps"] if s["cache_hit"])
    assert f"**Cache:** {hits}/{steps} steps cached" in logs[1]
    assert logs[1].count("| hit |") == hits >= 2
    assert "| hit |" not in logs[0]
