from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters.cli import COMMANDS
from adapters.k8s import K8sBuild, job_manifest, pod_manifest
from adapters.render import dump_yaml_documents
from engine.errors import AdapterError
from tests.adapters.tools import kubernetes_validate

SOURCES = [
    "volume:ctx-claim/app",
    "git:https://git.example.com/team/app.git#refs/heads/main",
    "bucket:s3://builds/app.tar.gz",
]


@pytest.mark.parametrize("source", SOURCES)
def test_pod_and_job_validate_for_every_context_source(source: str, tmp_path: Path) -> None:
    build = K8sBuild(
        destinations=("registry.example.com/team/app:1",),
        context_from=source,
        bucket_secret="s3-creds",
    )
    path = tmp_path / "m.yaml"
    path.write_text(dump_yaml_documents(pod_manifest(build), job_manifest(build)))
    result = kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_volume_context_is_mounted_read_only_and_dockerfile_absolute() -> None:
    pod = pod_manifest(K8sBuild(destinations=("r/a:1",), context_from="volume:ctx/app"))
    container = pod["spec"]["containers"][0]
    assert container["args"][:2] == [
        "--context=dir:///workspace",
        "--dockerfile=/workspace/Dockerfile",
    ]
    assert {
        "name": "context",
        "mountPath": "/workspace",
        "readOnly": True,
        "subPath": "app",
    } in container["volumeMounts"]
    assert container["securityContext"] == {"privileged": False, "runAsUser": 0}


def test_git_context_uses_kaniko_git_scheme() -> None:
    pod = pod_manifest(
        K8sBuild(destinations=("r/a:1",), context_from="git:https://g.example/x.git#refs/heads/dev")
    )
    assert (
        pod["spec"]["containers"][0]["args"][0] == "--context=git://g.example/x.git#refs/heads/dev"
    )


def test_job_never_retries_a_failed_build() -> None:
    job = job_manifest(K8sBuild(destinations=("r/a:1",)))
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_render_command_prints_both_documents(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        COMMANDS["k8s"](["render", "--kind", "both", "-d", "r/a:1", "--", "--cache=true"], {}) == 0
    )
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["Pod", "Job"]
    assert docs[0]["spec"]["containers"][0]["args"][-1] == "--cache=true"


def test_bad_name_and_source_are_refused() -> None:
    with pytest.raises(AdapterError, match="DNS label"):
        pod_manifest(K8sBuild(destinations=("r/a:1",), name="Bad_Name"))
    with pytest.raises(AdapterError, match="context-from"):
        pod_manifest(K8sBuild(destinations=("r/a:1",), context_from="ftp:x"))
