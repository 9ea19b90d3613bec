from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

from adapters.auth import docker_config, plan_auth, strip_port, write_docker_config
from adapters.ci import CI
from adapters.network import certificate_flags, proxy_build_args, proxy_env

GITLAB = {
    "GITLAB_CI": "true",
    "CI_REGISTRY": "registry.gitlab.example.com",
    "CI_REGISTRY_USER": "gitlab-ci-token",
    "CI_REGISTRY_PASSWORD": "job-token-secret",
    "CI_DEPENDENCY_PROXY_SERVER": "gitlab.example.com:443",
    "CI_DEPENDENCY_PROXY_USER": "gitlab-ci-token",
    "CI_DEPENDENCY_PROXY_PASSWORD": "proxy-secret",
    "CI_COMMIT_REF_NAME": "feature",
    "CI_SERVER_HOST": "gitlab.example.com",
}


def _auth(entry: dict[str, str]) -> str:
    return base64.b64decode(entry["auth"]).decode()


def test_gitlab_registry_and_dependency_proxy_with_port_stripped(tmp_path: Path) -> None:
    plan = plan_auth(CI.GITLAB, GITLAB, base={})
    auths = docker_config(plan)["auths"]
    assert _auth(auths["registry.gitlab.example.com"]) == "gitlab-ci-token:job-token-secret"
    # A port-only key would never match "gitlab.example.com/group/dependency_proxy/...";
    # the *_IMAGE_PREFIX variables carry the port, so that key is written too.
    assert _auth(auths["gitlab.example.com"]) == "gitlab-ci-token:proxy-secret"
    assert _auth(auths["gitlab.example.com:443"]) == "gitlab-ci-token:proxy-secret"
    portless = plan_auth(CI.GITLAB, {**GITLAB, "CI_DEPENDENCY_PROXY_SERVER": "gl.example"}, base={})
    assert [login.registry for login in portless.logins] == [
        "registry.gitlab.example.com",
        "gl.example",
    ]
    assert plan.problems == ()


def test_strip_port_keeps_ipv6_brackets_and_portless_hosts() -> None:
    assert strip_port("[::1]:5000") == "[::1]"
    assert strip_port("gitlab.example.com") == "gitlab.example.com"


def test_protected_variable_mismatch_is_explained_in_one_line() -> None:
    env = {
        **GITLAB,
        "CI_COMMIT_REF_PROTECTED": "false",
        "BRICKYARD_REGISTRY": "docker.io",
        "BRICKYARD_REGISTRY_USER": "bot",
        "BRICKYARD_REGISTRY_PASSWORD": "",
    }
    plan = plan_auth(CI.GITLAB, env, base={})
    assert len(plan.problems) == 1
    problem = plan.problems[0]
    assert "BRICKYARD_REGISTRY_PASSWORD" in problem and "unprotected ref feature" in problem
    assert "\n" not in problem
    assert "docker.io" not in docker_config(plan)["auths"]


def test_github_token_logs_in_to_ghcr_as_actor_and_secret_is_listed_for_masking() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat"}
    plan = plan_auth(CI.GITHUB, env, github_token="ghs_abc", base={})
    assert _auth(docker_config(plan)["auths"]["ghcr.io"]) == "octocat:ghs_abc"
    basic = base64.b64encode(b"octocat:ghs_abc").decode()  # config.json's auth value
    assert plan.secrets == ("ghs_abc", basic)


def test_mounted_jenkins_secret_is_merged_not_replaced(tmp_path: Path) -> None:
    mounted = tmp_path / "secret"
    mounted.mkdir()
    existing = {"auths": {"harbor.example.com": {"auth": "dTpw"}}, "credHelpers": {"x": "y"}}
    (mounted / "config.json").write_text(json.dumps(existing))
    env = {"JENKINS_URL": "http://j/", "BRICKYARD_DOCKER_CONFIG": str(mounted)}
    config = docker_config(plan_auth(CI.JENKINS, env))
    assert config["auths"]["harbor.example.com"] == {"auth": "dTpw"}
    assert config["credHelpers"] == {"x": "y"}


def test_gitlab_docker_auth_config_variable_is_the_base() -> None:
    env = {**GITLAB, "DOCKER_AUTH_CONFIG": json.dumps({"auths": {"quay.io": {"auth": "eDp5"}}})}
    config = docker_config(plan_auth(CI.GITLAB, env))
    assert set(config["auths"]) == {
        "quay.io",
        "registry.gitlab.example.com",
        "gitlab.example.com",
        "gitlab.example.com:443",
    }


def test_config_written_owner_only(tmp_path: Path) -> None:
    directory = write_docker_config({"auths": {}}, tmp_path / "docker")
    mode = stat.S_IMODE((directory / "config.json").stat().st_mode)
    assert mode == 0o600
    assert json.loads((directory / "config.json").read_text()) == {"auths": {}}
    assert [p.name for p in directory.iterdir()] == ["config.json"]


def test_proxies_become_env_in_both_cases_and_build_args() -> None:
    env = {"https_proxy": "http://proxy:3128", "NO_PROXY": "localhost"}
    assert proxy_env(env) == {
        "https_proxy": "http://proxy:3128",
        "HTTPS_PROXY": "http://proxy:3128",
        "no_proxy": "localhost",
        "NO_PROXY": "localhost",
    }
    assert "https_proxy=http://proxy:3128" in proxy_build_args(env)


def test_ci_server_ca_file_becomes_registry_certificate_per_gitlab_host() -> None:
    env = {**GITLAB, "CI_SERVER_TLS_CA_FILE": "/builds/tmp/CA_FILE"}
    assert certificate_flags(env) == [
        "--registry-certificate=registry.gitlab.example.com=/builds/tmp/CA_FILE",
        "--registry-certificate=gitlab.example.com=/builds/tmp/CA_FILE",
    ]
    assert certificate_flags({"CI_REGISTRY": "r"}) == []
