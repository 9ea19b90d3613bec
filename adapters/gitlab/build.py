"""`brickyard gitlab build`: the job script. CI_* and BRICKYARD_* job variables -> executor.

After a push it writes a dotenv report (artifacts:reports:dotenv) so later jobs get
BRICKYARD_IMAGE, BRICKYARD_IMAGE_DIGEST, BRICKYARD_IMAGE_TAGS and BRICKYARD_IMAGE_REF.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from adapters.ci import CI, ref_context
from adapters.executor import BuildOutcome, Runner, plan_and_execute, run_executor, write_failure
from adapters.inputs import read_inputs
from adapters.logsections import GitLabSections, section
from adapters.report import render_markdown


def dotenv_lines(outcome: BuildOutcome) -> list[str]:
    dests = outcome.plan.destinations
    first = dests[0] if dests else ""
    name = (
        first.rsplit(":", 1)[0]
        if first.count(":") > first.count("/") * 0 and ":" in first.split("/")[-1]
        else first
    )
    lines = [
        f"BRICKYARD_IMAGE={first}",
        f"BRICKYARD_IMAGE_DIGEST={outcome.digest}",
        f"BRICKYARD_IMAGE_TAGS={','.join(dests)}",
    ]
    if outcome.digest and name:
        lines.append(f"BRICKYARD_IMAGE_REF={name}@{outcome.digest}")
    return lines


def write_dotenv(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)


def gitlab_build(
    argv: list[str],
    env: Mapping[str, str],
    *,
    out: TextIO | None = None,
    runner: Runner = run_executor,
) -> int:
    out = out or sys.stdout
    inputs, extra = read_inputs(argv, env, prog="brickyard gitlab build")
    # Kept in the project dir so `brickyard gitlab report` (after_script) can read it.
    # Relative: job scripts and artifact paths both start in the project directory.
    inputs = inputs.with_default("report-file", "brickyard-report.json")
    log = GitLabSections(out)
    outcome = plan_and_execute(
        ref_context(env, CI.GITLAB),
        inputs,
        env,
        executor_args=extra,
        log=log,
        out=out,
        runner=runner,
    )
    if outcome.exit_code == 0:
        dotenv = Path(inputs.text("dotenv"))
        write_dotenv(dotenv, dotenv_lines(outcome))
        with section(log, "brickyard_report", "Build report"):
            out.write(render_markdown(outcome.report))
            out.write(f"dotenv report: {dotenv}\n")
    else:
        write_failure(out, outcome)
    out.flush()
    return outcome.exit_code
