"""Jenkins adapter: `brickyard jenkins build|render|job apply|job run`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

from adapters.jenkins.render import (
    JenkinsSettings,
    pipeline_job_xml,
    render_declarative,
    render_library_step,
    render_pod,
    render_scripted,
)
from engine.errors import AdapterError, UsageError


def _build(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.jenkins.build import jenkins_build

    return jenkins_build(argv, env)


def rendered_files(s: JenkinsSettings, scm_url: str = "", branch: str = "*/main") -> dict[str, str]:
    files = {
        "pod.yaml": render_pod(s),
        "Jenkinsfile": render_scripted(s),
        "Jenkinsfile.declarative": render_declarative(s),
        "vars/brickyardBuild.groovy": render_library_step(s),
    }
    if scm_url:
        # The Jenkinsfiles use `checkout scm`, which only a job that reads its Jenkinsfile
        # from SCM has: the job runs the repository's Jenkinsfile.
        files["config.xml"] = pipeline_job_xml(scm_url=scm_url, branch=branch)
    return files


def _render(argv: list[str], env: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(
        prog="brickyard jenkins render",
        description="Render the podTemplate YAML, Jenkinsfiles, shared-library step and job XML.",
    )
    defaults = JenkinsSettings()
    parser.add_argument("--images", default=defaults.images, help="image name(s) to push")
    parser.add_argument("--image", default=defaults.image, help="brickyard executor image")
    parser.add_argument("--secret", default=defaults.secret, help="docker config secret name")
    parser.add_argument("--cache-claim", default="", help="PVC for the base-image cache")
    parser.add_argument("--container", default=defaults.container)
    parser.add_argument("--service-account", default="")
    parser.add_argument("--scm-url", default="", help="git URL: also render the job config.xml")
    parser.add_argument("--branch", default="*/main", help="branch spec for config.xml")
    parser.add_argument("--out", help="directory to write every file into")
    parser.add_argument("--what", default="Jenkinsfile", help="which file to print (no --out)")
    ns = parser.parse_args(argv)
    settings = JenkinsSettings(
        ns.images, ns.image, ns.secret, ns.cache_claim, ns.container, ns.service_account
    )
    files = rendered_files(settings, ns.scm_url, ns.branch)
    if ns.out:
        for name, text in files.items():
            path = Path(ns.out) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(path)
        return 0
    if ns.what not in files:
        raise AdapterError(f"--what {ns.what!r}: one of {', '.join(files)}")
    print(files[ns.what], end="")
    return 0


def _job(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.jenkins.jobs import apply, run

    actions = {"apply": apply, "run": run}
    if not argv or argv[0] not in actions:
        raise UsageError("usage: brickyard jenkins job {apply,run} NAME ...")
    return actions[argv[0]](argv[1:], env)


SUBCOMMANDS: dict[str, Callable[[list[str], Mapping[str, str]], int]] = {
    "build": _build,
    "render": _render,
    "job": _job,
}
