from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from adapters.ci import ref_context
from adapters.executor import execute, plan_build, qualify_cache_repo
from adapters.inputs import read_inputs
from adapters.logsections import PlainSections
from engine.errors import AdapterError

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
    "CI_REGISTRY_PASSWORD": "tok-secret",
}


def _plan(env: Mapping[str, str], argv: list[str] | None = None, tmp: Path = Path("/tmp/x")):
    inputs, extra = read_inputs(argv or [], env, prog="t")
    return plan_build(ref_context(env), inputs, env, workdir=tmp, executor_args=extra)


def _values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_gitlab_defaults_context_dockerfile_and_registry_image_tags() -> None:
    plan = _plan({**GITLAB, "BRICKYARD_TAG_RULES": "type=ref,event=branch\ntype=sha"})
    assert plan.argv[:4] == [
        "--context",
        "/builds/grp/app",
        "--dockerfile",
        "/builds/grp/app/Dockerfile",
    ]
    assert _values(plan.argv, "--destination") == [
        "registry.example.com/grp/app:main",
        "registry.example.com/grp/app:sha-01234567",
    ]
    assert "org.opencontainers.image.revision=" + GITLAB["CI_COMMIT_SHA"] in _values(
        plan.argv, "--label"
    )
    assert _values(plan.argv, "--report-file") == ["/tmp/x/report.json"]


def test_job_variables_map_to_kaniko_flags() -> None:
    env = {
        **GITLAB,
        "BRICKYARD_BUILD_ARGS": "A=1\nB=two words",
        "BRICKYARD_TARGET": "runtime",
        "BRICKYARD_CACHE": "true",
        "BRICKYARD_CACHE_REPO": "grp/app/cache",
        "BRICKYARD_CACHE_TTL": "24h",
        "BRICKYARD_REGISTRY_MIRROR": "mirror.example.com",
        "BRICKYARD_EXTRA_ARGS": "--snapshot-mode=redo \\\n --label 'x=a b'",
        "https_proxy": "http://proxy:3128",
    }
    argv = _plan(env, ["--", "--single-snapshot"]).argv
    assert _values(argv, "--build-arg") == [
        "A=1",
        "B=two words",
        "https_proxy=http://proxy:3128",
        "HTTPS_PROXY=http://proxy:3128",
    ]
    assert _values(argv, "--target") == ["runtime"]
    assert "--cache=true" in argv
    # a registry-less cache repo goes to the destination's registry, not Docker Hub
    assert _values(argv, "--cache-repo") == ["registry.example.com/grp/app/cache"]
    assert _values(argv, "--cache-ttl") == ["24h"]
    assert _values(argv, "--registry-mirror") == ["mirror.example.com"]
    assert argv[-4:] == ["--snapshot-mode=redo", "--label", "x=a b", "--single-snapshot"]


def test_cli_flag_beats_env_and_no_push_needs_no_destination() -> None:
    plan = _plan({"CI": "true"}, ["--push", "false", "--context", "/src"])
    assert "--no-push" in plan.argv and "--destination" not in plan.argv


def test_push_without_any_image_is_refused() -> None:
    with pytest.raises(AdapterError, match="no image to push"):
        _plan({"CI": "true"}, ["--context", "/src"])


def test_more_than_one_platform_is_refused() -> None:
    with pytest.raises(AdapterError, match="one platform"):
        _plan(GITLAB, ["--platforms", "linux/amd64,linux/arm64"])


def test_qualify_cache_repo_leaves_qualified_and_oci_repos_alone() -> None:
    dests = ["reg.io/a/b:1"]
    assert qualify_cache_repo("other.io/c", dests) == "other.io/c"
    assert qualify_cache_repo("oci:/cache", dests) == "oci:/cache"
    assert qualify_cache_repo("c/d", ["team/x:1"]) == "c/d"


def test_execute_writes_private_config_calls_runner_and_reads_report(tmp_path: Path) -> None:
    plan = _plan(GITLAB, [], tmp_path)
    seen: dict[str, object] = {}

    def runner(argv: list[str], env: Mapping[str, str]) -> int:
        config = json.loads((Path(env["DOCKER_CONFIG"]) / "config.json").read_text())
        seen["registries"] = sorted(config["auths"])
        report = {"digest": "sha256:" + "b" * 64, "tags": list(plan.destinations)}
        Path(_values(argv, "--report-file")[0]).write_text(json.dumps(report))
        return 0

    out = io.StringIO()
    outcome = execute(
        plan, PlainSections(out), out, runner=runner, docker_config_dir=tmp_path / "docker"
    )
    assert outcome.exit_code == 0
    assert outcome.digest == "sha256:" + "b" * 64
    assert seen["registries"] == ["registry.example.com"]
    assert "tok-secret" not in out.getvalue()


def test_execute_picks_dockerfile_file_and_line_from_engine_error(tmp_path: Path) -> None:
    plan = _plan(GITLAB, [], tmp_path)

    def runner(argv: list[str], env: Mapping[str, str]) -> int:
        print("error: Dockerfile:7: unknown instruction: RUNN", file=sys.stderr)
        return 3

    out = io.StringIO()
    outcome = execute(
        plan, PlainSections(out), out, runner=runner, docker_config_dir=tmp_path / "docker"
    )
    assert (outcome.exit_code, outcome.error_file, outcome.error_line) == (3, "Dockerfile", 7)
    assert outcome.error == "Dockerfile:7: unknown instruction: RUNN"


def test_private_docker_config_is_removed_after_the_build(tmp_path: Path) -> None:
    plan = _plan(GITLAB, [], tmp_path)
    dirs: list[Path] = []

    def runner(argv: list[str], env: Mapping[str, str]) -> int:
        dirs.append(Path(env["DOCKER_CONFIG"]))
        assert (dirs[0] / "config.json").is_file()
        return 0

    execute(plan, PlainSections(io.StringIO()), io.StringIO(), runner=runner)
    assert dirs and not dirs[0].exists()
