"""GitHub Actions adapter: `brickyard github build|render`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from adapters.defaults import BUILDER_IMAGE
from adapters.github.render import DEFAULT_ACTION_REF, render_action, render_workflow


def _build(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.github.build import github_build

    return github_build(argv, env)


def _render(argv: list[str], env: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(
        prog="brickyard github render", description="Print an example workflow (or action.yml)."
    )
    parser.add_argument("--action", action="store_true", help="print the action's action.yml")
    parser.add_argument("--image", default=BUILDER_IMAGE, help="executor image (with --action)")
    parser.add_argument("--uses", default=DEFAULT_ACTION_REF, help="action reference")
    parser.add_argument("--default-branch", default="main")
    parser.add_argument("--no-cache", action="store_true")
    ns = parser.parse_args(argv)
    if ns.action:
        print(render_action(ns.image), end="")
    else:
        print(render_workflow(ns.uses, ns.default_branch, not ns.no_cache), end="")
    return 0


SUBCOMMANDS: dict[str, Callable[[list[str], Mapping[str, str]], int]] = {
    "build": _build,
    "render": _render,
}
