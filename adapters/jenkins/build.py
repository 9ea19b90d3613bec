"""`brickyard jenkins build`: the step inside the agent pod.

Reads Jenkins' env (BUILD_NUMBER, JOB_NAME, GIT_COMMIT, GIT_BRANCH, BRANCH_NAME, TAG_NAME,
CHANGE_ID, WORKSPACE, ...) and BRICKYARD_* inputs; leaves brickyard-report.json/.md and
brickyard-digest in the workspace for archiveArtifacts.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from adapters.ci import CI, ref_context
from adapters.executor import Runner, plan_and_execute, run_executor, write_failure
from adapters.inputs import read_inputs
from adapters.logsections import PlainSections, section
from adapters.report import render_markdown


def jenkins_build(
    argv: list[str],
    env: Mapping[str, str],
    *,
    out: TextIO | None = None,
    runner: Runner = run_executor,
) -> int:
    out = out or sys.stdout
    inputs, extra = read_inputs(argv, env, prog="brickyard jenkins build")
    workspace = Path(env.get("WORKSPACE") or ".")
    inputs = inputs.with_default("report-file", str(workspace / "brickyard-report.json"))
    log = PlainSections(out)
    ctx = ref_context(env, CI.JENKINS)
    if env.get("BUILD_NUMBER"):
        out.write(
            f"brickyard: {env.get('JOB_NAME', 'job')} #{env['BUILD_NUMBER']} "
            f"({ctx.kind} {ctx.name or '?'} at {ctx.short_sha or '?'})\n"
        )
    outcome = plan_and_execute(
        ctx, inputs, env, executor_args=extra, log=log, out=out, runner=runner
    )
    if outcome.exit_code == 0:
        markdown = render_markdown(outcome.report)
        (workspace / "brickyard-report.md").write_text(markdown, encoding="utf-8")
        (workspace / "brickyard-digest").write_text(outcome.digest + "\n", encoding="utf-8")
        with section(log, "report", "Build report"):
            out.write(markdown)
    else:
        write_failure(out, outcome)
    out.flush()
    return outcome.exit_code
