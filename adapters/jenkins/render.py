"""Jenkins files: podTemplate YAML, scripted and declarative Jenkinsfiles, the shared-library
step vars/brickyardBuild.groovy, and a pipeline job's config.xml.

The pod is data dumped as YAML; the Groovy files are jinja2 text (StrictUndefined).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from adapters.defaults import BUILDER_IMAGE, DOCKER_CONFIG_DIR
from adapters.inputs import INPUTS
from adapters.render import dump_yaml, groovy_string, render_template
from engine.errors import AdapterError

_SAFE_WORD = re.compile(r"^[A-Za-z0-9._/:@,+-]*$")


@dataclass(frozen=True)
class JenkinsSettings:
    images: str = "registry.example.com/team/app"
    image: str = BUILDER_IMAGE
    secret: str = "regcred"
    cache_claim: str = ""
    container: str = "brickyard"
    service_account: str = ""

    def check(self) -> None:
        for name in ("images", "image", "secret", "cache_claim", "container", "service_account"):
            if not _SAFE_WORD.match(getattr(self, name)):
                raise AdapterError(
                    f"jenkins render: {name} {getattr(self, name)!r} has unsafe characters"
                )


def pod_manifest(s: JenkinsSettings) -> dict[str, Any]:
    """The agent pod: builder kept alive (`cat` + tty) for container('...') { sh ... } steps."""
    mounts: list[dict[str, Any]] = [
        {"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True}
    ]
    volumes: list[dict[str, Any]] = [
        {
            "name": "docker-config",
            "secret": {
                "secretName": s.secret,
                "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
            },
        }
    ]
    env = [{"name": "BRICKYARD_DOCKER_CONFIG", "value": DOCKER_CONFIG_DIR}]
    if s.cache_claim:
        mounts.append({"name": "cache", "mountPath": "/cache"})
        volumes.append({"name": "cache", "persistentVolumeClaim": {"claimName": s.cache_claim}})
        env.append({"name": "BRICKYARD_CACHE_DIR", "value": "/cache"})
    container: dict[str, Any] = {
        "name": s.container,
        "image": s.image,
        "command": ["cat"],
        "tty": True,
        "env": env,
        # Root for chroot RUN steps, with the runtime's default capabilities: nothing added.
        "securityContext": {"privileged": False, "runAsUser": 0},
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    if s.service_account:
        spec["serviceAccountName"] = s.service_account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        # The Kubernetes plugin replaces the name with a generated one per build.
        "metadata": {"name": "brickyard-agent", "labels": {"app.kubernetes.io/name": "brickyard"}},
        "spec": spec,
    }


def render_pod(s: JenkinsSettings) -> str:
    s.check()
    return dump_yaml(pod_manifest(s))


def _values(s: JenkinsSettings) -> dict[str, Any]:
    s.check()
    return {
        "images": s.images,
        "secret": s.secret,
        "container": s.container,
        "pod_yaml_literal": groovy_string("\n" + dump_yaml(pod_manifest(s))),
    }


def render_scripted(s: JenkinsSettings) -> str:
    return render_template("jenkins/Jenkinsfile.scripted.j2", **_values(s))


def render_declarative(s: JenkinsSettings) -> str:
    return render_template("jenkins/Jenkinsfile.declarative.j2", **_values(s))


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(p.capitalize() for p in rest)


def library_inputs() -> list[tuple[str, str]]:
    skip = {"github-token", "dotenv"}
    return [(_camel(i.name), i.variable) for i in INPUTS if i.name not in skip]


def render_library_step(s: JenkinsSettings) -> str:
    s.check()
    return render_template(
        "jenkins/brickyardBuild.groovy.j2", container=s.container, inputs=library_inputs()
    )


def pipeline_job_xml(
    *,
    script: str = "",
    scm_url: str = "",
    branch: str = "*/main",
    script_path: str = "Jenkinsfile",
    description: str = "Built by brickyard",
    credentials_id: str = "",
) -> str:
    """config.xml of a Pipeline job: inline script (sandboxed) or Jenkinsfile from git."""
    root = ET.Element("flow-definition", plugin="workflow-job")
    ET.SubElement(root, "description").text = description
    ET.SubElement(root, "keepDependencies").text = "false"
    ET.SubElement(root, "properties")
    if script:
        definition = ET.SubElement(
            root,
            "definition",
            {
                "class": "org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition",
                "plugin": "workflow-cps",
            },
        )
        ET.SubElement(definition, "script").text = script
        ET.SubElement(definition, "sandbox").text = "true"
    elif scm_url:
        definition = ET.SubElement(
            root,
            "definition",
            {
                "class": "org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition",
                "plugin": "workflow-cps",
            },
        )
        scm = ET.SubElement(
            definition, "scm", {"class": "hudson.plugins.git.GitSCM", "plugin": "git"}
        )
        ET.SubElement(scm, "configVersion").text = "2"
        remotes = ET.SubElement(scm, "userRemoteConfigs")
        remote = ET.SubElement(remotes, "hudson.plugins.git.UserRemoteConfig")
        ET.SubElement(remote, "url").text = scm_url
        if credentials_id:
            ET.SubElement(remote, "credentialsId").text = credentials_id
        branches = ET.SubElement(scm, "branches")
        spec = ET.SubElement(branches, "hudson.plugins.git.BranchSpec")
        ET.SubElement(spec, "name").text = branch
        ET.SubElement(definition, "scriptPath").text = script_path
        ET.SubElement(definition, "lightweight").text = "true"
    else:
        raise AdapterError("pipeline job: give a script or an SCM url")
    ET.SubElement(root, "triggers")
    ET.SubElement(root, "disabled").text = "false"
    ET.indent(root)
    return "<?xml version='1.1' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="unicode") + "\n"
