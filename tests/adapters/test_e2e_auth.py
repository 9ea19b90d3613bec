"""Registry auth and custom CA written by the adapters, used by the real engine against a
TLS + htpasswd registry: GitLab's CI_REGISTRY_* + CI_SERVER_TLS_CA_FILE, Jenkins' mounted
docker config secret + BRICKYARD_CA_FILE."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from adapters.gitlab.build import gitlab_build
from adapters.jenkins.build import jenkins_build
from tests.support.registry import RunningRegistry, make_tls, start_registry

pytestmark = pytest.mark.integration
USER, PASSWORD = "ci-bot", "s3cret-Pa55word"
DOCKERFILE = "FROM {base}\nRUN echo built > /built\n"


@pytest.fixture(scope="module")
def secure_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    work = tmp_path_factory.mktemp("secure-registry")
    tls = make_tls(work / "tls")
    reg = start_registry(
        work, tls=(tls.server_cert, tls.server_key), ca_cert=tls.ca_cert, users={USER: PASSWORD}
    )
    try:
        yield reg
    finally:
        reg.stop()


def _pushed_digest(reg: RunningRegistry, repo: str, tag: str) -> str:
    r = requests.get(
        f"{reg.url}/v2/{repo}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
        auth=(USER, PASSWORD),
        verify=str(reg.ca_cert),
        timeout=10,
    )
    r.raise_for_status()
    return str(r.headers["Docker-Content-Digest"])


def _project(tmp_path: Path, base: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    return project


def _gitlab_env(reg: RunningRegistry, registry: RunningRegistry, project: Path) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(project),
        "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_REF_NAME": "main",
        "CI_COMMIT_SHA": "9" * 40,
        "CI_COMMIT_SHORT_SHA": "99999999",
        "CI_REGISTRY": reg.host,
        "CI_REGISTRY_IMAGE": f"{reg.host}/grp/app",
        "CI_REGISTRY_USER": USER,
        "CI_REGISTRY_PASSWORD": PASSWORD,
        "CI_SERVER_HOST": "gitlab.example.com",
        "CI_SERVER_TLS_CA_FILE": str(reg.ca_cert),
        "BRICKYARD_CONTEXT": str(project),
        "BRICKYARD_INSECURE_REGISTRIES": registry.host,
        "BRICKYARD_DOTENV": str(project / "build.env"),
        "BRICKYARD_REPORT_FILE": str(project / "report.json"),
        "HOME": str(project),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }


def test_gitlab_job_logs_in_with_job_credentials_and_trusts_runner_ca(
    secure_registry: RunningRegistry,
    registry: RunningRegistry,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    project = _project(tmp_path, busybox_image)
    out = io.StringIO()
    code = gitlab_build([], _gitlab_env(secure_registry, registry, project), out=out)
    log = out.getvalue()
    assert code == 0, log
    assert PASSWORD not in log
    dotenv = dict(line.split("=", 1) for line in (project / "build.env").read_text().splitlines())
    assert dotenv["BRICKYARD_IMAGE_DIGEST"] == _pushed_digest(secure_registry, "grp/app", "main")


def test_gitlab_job_with_wrong_password_fails_with_registry_error_and_no_secret(
    secure_registry: RunningRegistry,
    registry: RunningRegistry,
    busybox_image: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = _project(tmp_path, busybox_image)
    env = {**_gitlab_env(secure_registry, registry, project), "CI_REGISTRY_PASSWORD": "wrong-pw-x"}
    out = io.StringIO()
    code = gitlab_build([], env, out=out)
    text = out.getvalue() + capsys.readouterr().err
    assert code == 5, text
    assert "wrong-pw-x" not in text and "error: build failed:" in text


def test_jenkins_mounted_docker_config_secret_is_used(
    secure_registry: RunningRegistry,
    registry: RunningRegistry,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    project = _project(tmp_path, busybox_image)
    secret = tmp_path / "secret"  # as the pod mounts it: items .dockerconfigjson -> config.json
    secret.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (secret / "config.json").write_text(
        json.dumps({"auths": {secure_registry.host: {"auth": auth}}})
    )
    secret.chmod(0o555)
    env = {
        "JENKINS_URL": "http://jenkins.example.com/",
        "BUILD_NUMBER": "3",
        "JOB_NAME": "app",
        "WORKSPACE": str(project),
        "GIT_COMMIT": "7" * 40,
        "GIT_BRANCH": "origin/release/1.x",
        "BRICKYARD_DOCKER_CONFIG": str(secret),
        "BRICKYARD_CA_FILE": str(secure_registry.ca_cert),
        "BRICKYARD_IMAGES": f"{secure_registry.host}/team/app",
        "BRICKYARD_INSECURE_REGISTRIES": registry.host,
        "HOME": str(project),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    out = io.StringIO()
    assert jenkins_build([], env, out=out) == 0, out.getvalue()
    digest = (project / "brickyard-digest").read_text().strip()
    assert digest == _pushed_digest(secure_registry, "team/app", "release-1.x")
