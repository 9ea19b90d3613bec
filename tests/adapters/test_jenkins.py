from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer

from adapters.cli import COMMANDS
from adapters.jenkins import rendered_files
from adapters.jenkins.build import jenkins_build
from adapters.jenkins.render import JenkinsSettings, pipeline_job_xml
from tests.adapters.fake_jenkins import FakeJenkins
from tests.adapters.tools import groovy_parse, kubernetes_validate


@pytest.fixture
def jenkins(httpserver: HTTPServer) -> FakeJenkins:
    fake = FakeJenkins(httpserver)
    fake.install()
    return fake


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jenkins")
    settings = JenkinsSettings(images="registry.example.com/team/app", cache_claim="bk-cache")
    for name, text in rendered_files(settings, "https://git.example.com/team/app.git").items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return out


def test_pod_template_is_valid_kubernetes_and_unprivileged(rendered: Path) -> None:
    result = kubernetes_validate(rendered / "pod.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    pod = yaml.safe_load((rendered / "pod.yaml").read_text())
    (builder,) = pod["spec"]["containers"]
    assert builder["command"] == ["cat"] and builder["tty"] is True  # kept alive for sh steps
    assert builder["securityContext"] == {"privileged": False, "runAsUser": 0}
    assert "capabilities" not in builder["securityContext"]
    assert {v["name"] for v in pod["spec"]["volumes"]} == {"docker-config", "cache"}
    secret = pod["spec"]["volumes"][0]["secret"]
    assert secret["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]


def test_kubernetes_validate_catches_a_broken_pod(tmp_path: Path, rendered: Path) -> None:
    pod = yaml.safe_load((rendered / "pod.yaml").read_text())
    del pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(pod))
    assert kubernetes_validate(bad).returncode != 0


def test_jenkinsfiles_and_library_step_parse_with_groovy(rendered: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Broken.groovy"
    bad.write_text("pipeline { stages { stage('x') { steps { sh 'a' } }\n")
    files = [
        rendered / "Jenkinsfile",
        rendered / "Jenkinsfile.declarative",
        rendered / "vars" / "brickyardBuild.groovy",
        bad,
    ]
    result = groovy_parse(files, tmp_path)
    lines = result.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["ok", "ok", "ok", "FAIL"], (
        result.stdout + result.stderr
    )
    assert result.returncode == 1


def test_pod_yaml_embedded_in_jenkinsfile_is_the_pod(rendered: Path) -> None:
    text = (rendered / "Jenkinsfile").read_text()
    embedded = text.split("podTemplate(yaml: '''", 1)[1].split("''')", 1)[0]
    assert yaml.safe_load(embedded) == yaml.safe_load((rendered / "pod.yaml").read_text())


def test_job_xml_runs_the_repository_jenkinsfile(rendered: Path) -> None:
    root = ET.fromstring((rendered / "config.xml").read_text())
    definition = root.find("definition")
    assert definition is not None
    assert definition.get("class") == "org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition"
    assert definition.findtext("scriptPath") == "Jenkinsfile"
    assert root.findtext(".//hudson.plugins.git.UserRemoteConfig/url") == (
        "https://git.example.com/team/app.git"
    )
    assert root.findtext(".//hudson.plugins.git.BranchSpec/name") == "*/main"


def test_inline_script_job_is_sandboxed(tmp_path: Path) -> None:
    root = ET.fromstring(pipeline_job_xml(script="node { echo 'hi' }"))
    definition = root.find("definition")
    assert definition is not None
    assert definition.get("class") == "org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition"
    assert definition.findtext("script") == "node { echo 'hi' }"
    assert definition.findtext("sandbox") == "true"


def test_without_scm_url_no_job_xml_is_rendered() -> None:
    assert "config.xml" not in rendered_files(JenkinsSettings())


def test_job_apply_creates_then_updates(jenkins: FakeJenkins, rendered: Path) -> None:
    env = {"JENKINS_URL": jenkins.base, "JENKINS_USER": "admin", "JENKINS_API_TOKEN": "t0k"}
    config = str(rendered / "config.xml")
    assert COMMANDS["jenkins"](["job", "apply", "app-image", "--config", config], env) == 0
    assert jenkins.jobs["app-image"] == (rendered / "config.xml").read_text()
    assert (
        COMMANDS["jenkins"](["job", "apply", "app-image", "--scm-url", "https://g/x.git"], env) == 0
    )
    assert "CpsScmFlowDefinition" in jenkins.jobs["app-image"]
    assert jenkins.posts == ["/createItem", "/job/app-image/config.xml"]
    assert set(jenkins.crumbs_seen) == {"c0ffee"}


def test_job_run_streams_console_and_exits_with_result(
    jenkins: FakeJenkins, capsys: pytest.CaptureFixture[str]
) -> None:
    jenkins.jobs["app-image"] = "<flow-definition/>"
    env = {"JENKINS_URL": jenkins.base}
    assert COMMANDS["jenkins"](["job", "run", "app-image", "--poll", "0"], env) == 0
    out = capsys.readouterr().out
    assert "Started\nbrickyard build ok\n" in out and "app-image #1: SUCCESS" in out
    jenkins.result = "FAILURE"
    assert COMMANDS["jenkins"](["job", "run", "app-image", "--poll", "0"], env) == 1


def test_job_run_unknown_job_is_a_one_line_error(
    jenkins: FakeJenkins, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        COMMANDS["jenkins"](["job", "run", "nope", "--poll", "0"], {"JENKINS_URL": jenkins.base})
        == 11
    )
    assert "Jenkins job nope not found" in capsys.readouterr().err


def test_jenkins_build_reads_multibranch_env_and_leaves_report_in_workspace(tmp_path: Path) -> None:
    env = {
        "JENKINS_URL": "http://j/",
        "BUILD_NUMBER": "12",
        "JOB_NAME": "team/app/PR-9",
        "WORKSPACE": str(tmp_path),
        "GIT_COMMIT": "a" * 40,
        "BRANCH_NAME": "PR-9",
        "CHANGE_ID": "9",
        "CHANGE_TARGET": "main",
        "BRICKYARD_IMAGES": "registry.example.com/team/app",
        "BRICKYARD_TAG_RULES": "type=ref,event=pr\ntype=sha",
    }
    seen: list[list[str]] = []

    def runner(argv: list[str], run_env: Mapping[str, str]) -> int:
        seen.append(argv)
        report = argv[argv.index("--report-file") + 1]
        Path(report).write_text(json.dumps({"digest": "sha256:" + "e" * 64}))
        return 0

    out = io.StringIO()
    assert jenkins_build([], env, out=out, runner=runner) == 0
    dests = [seen[0][i + 1] for i, a in enumerate(seen[0]) if a == "--destination"]
    assert dests == [
        "registry.example.com/team/app:pr-9",
        "registry.example.com/team/app:sha-aaaaaaa",
    ]
    assert (tmp_path / "brickyard-digest").read_text() == "sha256:" + "e" * 64 + "\n"
    assert "sha256:" + "e" * 64 in (tmp_path / "brickyard-report.md").read_text()
    assert "team/app/PR-9 #12 (pr 9 at aaaaaaa)" in out.getvalue()
