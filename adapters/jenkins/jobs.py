"""jenkinsapi calls: `brickyard jenkins job apply|run`.

apply: create or update a Pipeline job from a config.xml (or an inline Jenkinsfile / git URL,
rendered to config.xml); run: trigger it, stream the console, exit with the build's result.
Credentials: --user/--token or JENKINS_USER / JENKINS_API_TOKEN; never printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import requests
from jenkinsapi.custom_exceptions import JenkinsAPIException, UnknownJob
from jenkinsapi.jenkins import Jenkins

from adapters.jenkins.render import pipeline_job_xml
from adapters.logsections import redact
from engine.errors import AdapterError

# Exit codes for a finished build: only SUCCESS is 0.
RESULT_CODES = {"SUCCESS": 0, "UNSTABLE": 1, "FAILURE": 1, "ABORTED": 1, "NOT_BUILT": 1}


def _connect(ns: argparse.Namespace) -> Jenkins:
    if not ns.url:
        raise AdapterError("Jenkins URL unknown: pass --url or set JENKINS_URL")
    verify: bool | str = ns.ca_file or True
    try:
        return Jenkins(
            ns.url.rstrip("/"),
            username=ns.user,
            password=ns.token,
            ssl_verify=verify,
            lazy=True,
            timeout=30,
        )
    except (requests.RequestException, JenkinsAPIException) as exc:
        raise AdapterError(f"Jenkins {redact(ns.url, (ns.token,))}: {type(exc).__name__}") from None


def _common(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    parser.add_argument("name", help="job name (folders as a/b)")
    parser.add_argument("--url", default=env.get("JENKINS_URL", ""))
    parser.add_argument("--user", default=env.get("JENKINS_USER", ""))
    parser.add_argument("--token", default=env.get("JENKINS_API_TOKEN", ""))
    parser.add_argument("--ca-file", default="")


def _http_error(what: str, exc: requests.HTTPError) -> AdapterError:
    status = exc.response.status_code if exc.response is not None else "?"
    return AdapterError(f"Jenkins {what} failed: HTTP {status}")


def apply(argv: list[str], env: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="brickyard jenkins job apply")
    _common(parser, env)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="config.xml to upload as is")
    source.add_argument("--script", help="Jenkinsfile to inline (sandboxed)")
    source.add_argument("--scm-url", help="git URL whose Jenkinsfile the job runs")
    parser.add_argument("--branch", default="*/main")
    parser.add_argument("--script-path", default="Jenkinsfile")
    parser.add_argument("--credentials-id", default="")
    ns = parser.parse_args(argv)
    try:
        if ns.config:
            xml = Path(ns.config).read_text(encoding="utf-8")
        elif ns.script:
            xml = pipeline_job_xml(script=Path(ns.script).read_text(encoding="utf-8"))
        else:
            xml = pipeline_job_xml(
                scm_url=ns.scm_url,
                branch=ns.branch,
                script_path=ns.script_path,
                credentials_id=ns.credentials_id,
            )
    except OSError as exc:
        raise AdapterError(f"cannot read {exc.filename}: {exc.strerror}") from None
    jenkins = _connect(ns)
    try:
        if jenkins.has_job(ns.name):
            jenkins.get_job(ns.name).update_config(xml)
            print(f"updated job {ns.name}")
        else:
            jenkins.create_job(ns.name, xml)
            print(f"created job {ns.name}")
    except requests.HTTPError as exc:
        raise _http_error(f"job {ns.name}", exc) from None
    except requests.RequestException as exc:
        raise AdapterError(f"Jenkins {redact(ns.url, (ns.token,))}: {type(exc).__name__}") from None
    except JenkinsAPIException as exc:
        raise AdapterError(f"Jenkins job {ns.name}: {redact(str(exc), (ns.token,))}") from None
    return 0


def run(argv: list[str], env: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="brickyard jenkins job run")
    _common(parser, env)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between polls")
    ns = parser.parse_args(argv)
    params = dict(p.split("=", 1) for p in ns.param if "=" in p)
    jenkins = _connect(ns)
    out = sys.stdout
    try:
        job = jenkins.get_job(ns.name)
        queued = job.invoke(block=False, build_params=params or None)
        build = queued.block_until_building(delay=ns.poll)
        out.write(f"started {ns.name} #{build.get_number()}\n")
        for chunk in build.stream_logs(interval=ns.poll):
            out.write(chunk)
            out.flush()
        build.block_until_complete(delay=max(1, int(ns.poll)))
        build.poll()
        result = build.get_status() or "NOT_BUILT"
    except UnknownJob:
        raise AdapterError(f"Jenkins job {ns.name} not found") from None
    except requests.HTTPError as exc:
        raise _http_error(f"job {ns.name}", exc) from None
    except requests.RequestException as exc:
        raise AdapterError(f"Jenkins {redact(ns.url, (ns.token,))}: {type(exc).__name__}") from None
    except JenkinsAPIException as exc:
        raise AdapterError(f"Jenkins job {ns.name}: {redact(str(exc), (ns.token,))}") from None
    out.write(f"{ns.name} #{build.get_number()}: {result}\n")
    return RESULT_CODES.get(result, 1)
