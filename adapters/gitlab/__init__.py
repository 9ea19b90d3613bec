"""GitLab CI adapter: `brickyard gitlab build|render|lint|report`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from adapters.gitlab.component import parse_assignments, render_component, render_plain_job


def _build(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.gitlab.build import gitlab_build

    return gitlab_build(argv, env)


def _render(argv: list[str], env: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(
        prog="brickyard gitlab render",
        description="Print a plain build job (for include: remote: or copy-paste).",
    )
    parser.add_argument("--component", action="store_true", help="print the CI/CD component")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
    ns = parser.parse_args(argv)
    if ns.component:
        print(render_component(), end="")
    else:
        print(render_plain_job(parse_assignments(ns.input)), end="")
    return 0


def _lint(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.gitlab.api import lint

    return lint(argv, env)


def _report(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.gitlab.api import report

    return report(argv, env)


SUBCOMMANDS: dict[str, Callable[[list[str], Mapping[str, str]], int]] = {
    "build": _build,
    "render": _render,
    "lint": _lint,
    "report": _report,
}
