"""`brickyard github build`: the container action's entry point.

Reads INPUT_* (the runner keeps hyphens: INPUT_BUILD-ARGS) and GITHUB_*, masks the token,
builds, and writes outputs to $GITHUB_OUTPUT with heredoc delimiters (multi-line safe:
aevea/action-kaniko#66), the report to $GITHUB_STEP_SUMMARY, and `::error file=,line=::`
annotations for Dockerfile errors.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from adapters.ci import CI, ref_context
from adapters.executor import BuildOutcome, Runner, plan_and_execute, run_executor
from adapters.inputs import read_inputs
from adapters.logsections import GitHubSections
from adapters.report import render_markdown
from engine.errors import BrickyardError

SUMMARY_LIMIT = 1024 * 1024  # the runner refuses step summaries above 1 MiB


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, **props: str | int | None) -> str:
    """A workflow command: `::error file=F,line=N,title=T::message` (escaped)."""
    given = [f"{k}={_escape_property(str(v))}" for k, v in props.items() if v not in (None, "")]
    head = f"{level} {','.join(given)}" if given else level
    return f"::{head}::{_escape_data(message)}"


def format_outputs(outputs: Mapping[str, str]) -> str:
    """`name<<DELIM` ... `DELIM` for every output, with a delimiter no value contains."""
    chunks = []
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        while delimiter in value:
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
        chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(chunks)


def _append(path: str, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)


def outputs_for(outcome: BuildOutcome) -> dict[str, str]:
    meta = outcome.plan.metadata
    tags = list(outcome.plan.destinations) if outcome.plan.push else []
    metadata = {
        "containerimage.digest": outcome.digest,
        "containerimage.config.digest": outcome.report.image_id,
        "image.name": ",".join(tags),
        "version": meta.version,
        "tags": tags,
        "labels": meta.labels,
    }
    return {
        "imageid": outcome.report.image_id or outcome.digest,
        "digest": outcome.digest,
        "metadata": json.dumps(metadata, indent=2),
        "tags": "\n".join(tags),
    }


def _annotation_file(error_file: str, dockerfile: str, workspace: str) -> str:
    """Repository-relative path of the Dockerfile the engine named."""
    candidate = dockerfile if Path(dockerfile).name == Path(error_file).name else error_file
    if workspace and candidate.startswith(workspace.rstrip("/") + "/"):
        return os.path.relpath(candidate, workspace)
    return os.path.normpath(candidate)


def github_build(
    argv: list[str],
    env: Mapping[str, str],
    *,
    out: TextIO | None = None,
    runner: Runner = run_executor,
) -> int:
    out = out or sys.stdout
    log = GitHubSections(out)
    try:
        inputs, extra = read_inputs(argv, env, prog="brickyard github build", github=True)
        token = inputs.text("github-token")
        if token:
            log.mask(token)  # before anything could echo it
        ctx = ref_context(env, CI.GITHUB)
        outcome = plan_and_execute(
            ctx,
            inputs,
            env,
            executor_args=extra,
            log=log,
            out=out,
            runner=runner,
            temp_root=env.get("RUNNER_TEMP") or None,
        )
    except BrickyardError as exc:
        out.write(annotation("error", str(exc), title="brickyard") + "\n")
        return exc.exit_code
    if outcome.exit_code != 0:
        if outcome.error_line is not None:
            argv = outcome.plan.argv
            dockerfile = argv[argv.index("--dockerfile") + 1]
            path = _annotation_file(outcome.error_file, dockerfile, env.get("GITHUB_WORKSPACE", ""))
            message = outcome.error.split(": ", 1)[-1] if ": " in outcome.error else outcome.error
            out.write(
                annotation("error", message, file=path, line=outcome.error_line, title="Dockerfile")
                + "\n"
            )
        else:
            out.write(annotation("error", outcome.error, title="brickyard build failed") + "\n")
        for problem in outcome.plan.auth.problems:
            out.write(annotation("warning", problem, title="registry credentials") + "\n")
        out.flush()
        failed = outcome.report if outcome.report.error else None
        _append(
            env.get("GITHUB_STEP_SUMMARY", ""),
            render_markdown(failed, title="brickyard build failed")
            if failed
            else f"### brickyard build failed\n\n`{outcome.error}`\n",
        )
        return outcome.exit_code
    _append(env.get("GITHUB_OUTPUT", ""), format_outputs(outputs_for(outcome)))
    summary = render_markdown(outcome.report)
    if len(summary.encode()) > SUMMARY_LIMIT:
        summary = summary[: SUMMARY_LIMIT // 2] + "\n\n(report truncated)\n"
    _append(env.get("GITHUB_STEP_SUMMARY", ""), summary)
    out.write(f"digest: {outcome.digest}\n")
    out.flush()
    return 0
