"""ONE table of the build inputs every adapter accepts, and one reader for them.

An input `build-args` is, in each place a user can set it:
- GitHub action input `build-args` -> env `INPUT_BUILD-ARGS` (hyphens kept by the runner)
- GitLab/Jenkins job variable `BRICKYARD_BUILD_ARGS`
- command-line flag `--build-args` of `brickyard <ci> build`
Values flow CLI -> env -> default (cibuildwheel's rule). List inputs are newline-delimited
(or comma-delimited on one line where build-push-action accepts CSV).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapters.tags import split_list
from engine.errors import AdapterError


@dataclass(frozen=True)
class Input:
    name: str
    kind: str  # "str", "bool", "list", "csv" (list that also splits on commas), "args"
    default: str
    help: str
    github_default: str | None = None  # where build-push-action's default differs

    @property
    def variable(self) -> str:
        return "BRICKYARD_" + self.name.upper().replace("-", "_")

    @property
    def github_variable(self) -> str:
        return "INPUT_" + self.name.upper().replace(" ", "_")


INPUTS: tuple[Input, ...] = (
    Input(
        "context", "str", "", "build context (directory or kaniko context URL); default: workspace"
    ),
    Input("file", "str", "", "Dockerfile path; default: {context}/Dockerfile"),
    Input("images", "csv", "", "image names for generated tags; default: the CI's registry image"),
    Input("tags", "csv", "", "full image references to push (skips generated tags when set)"),
    Input("tag-rules", "list", "", "docker/metadata-action tag rules, one per line"),
    Input("flavor", "list", "", "metadata-action flavor: latest=auto|true|false, prefix=, suffix="),
    Input("labels", "list", "", "extra image labels KEY=VALUE, one per line"),
    Input("build-args", "list", "", "build args KEY=VALUE, one per line"),
    Input("target", "str", "", "build stage to stop at"),
    Input("platforms", "csv", "", "target platform os/arch[/variant] (one)"),
    Input("push", "bool", "true", "push the image", github_default="false"),
    Input("cache", "bool", "false", "use the registry layer cache"),
    Input("cache-repo", "str", "", "cache repository; default: <first image>/cache"),
    Input("cache-ttl", "str", "", "ignore cached layers older than this (e.g. 168h)"),
    Input("cache-dir", "str", "", "local base-image cache directory (kaniko's /cache)"),
    Input("registry-mirror", "csv", "", "pull-through mirrors for docker.io"),
    Input("insecure-registries", "csv", "", "registries reached over plain HTTP"),
    Input("reproducible", "bool", "false", "strip timestamps for reproducible digests"),
    Input("extra-args", "args", "", "more executor flags (shell words, may span lines)"),
    Input("verbosity", "str", "info", "log level: trace, debug, info, warn, error"),
    Input("dotenv", "str", "brickyard.env", "GitLab: dotenv report for later jobs"),
    Input("report-file", "str", "", "where to keep the JSON build report"),
    Input("github-token", "str", "", "GitHub: token to log in to ghcr.io"),
)
INPUTS_BY_NAME = {i.name: i for i in INPUTS}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class BuildInputs:
    values: dict[str, str]

    def text(self, name: str) -> str:
        return self.values[name].strip()

    def flag(self, name: str) -> bool:
        raw = self.values[name].strip().lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise AdapterError(f"input {name}: {self.values[name]!r} is not true or false")

    def items(self, name: str) -> list[str]:
        kind = INPUTS_BY_NAME[name].kind
        if kind == "args":
            return shlex.split(self.values[name].replace("\\\n", " "))
        return split_list(self.values[name], csv=kind == "csv")

    def with_default(self, name: str, value: str) -> BuildInputs:
        """These inputs, with `name` set to `value` when it was left empty."""
        if self.text(name):
            return self
        return BuildInputs({**self.values, name: value})


def build_parser(prog: str, *, github: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Build and push an image.")
    for item in INPUTS:
        default = (
            item.github_default if github and item.github_default is not None else item.default
        )
        parser.add_argument(
            f"--{item.name}",
            dest=item.name,
            default=None,
            help=f"{item.help} (env {item.github_variable if github else item.variable}"
            + (f", default {default!r})" if default else ")"),
        )
    parser.add_argument("executor_args", nargs="*", help="after --: passed to the executor")
    return parser


def read_inputs(
    argv: Sequence[str], env: Mapping[str, str], *, prog: str, github: bool = False
) -> tuple[BuildInputs, list[str]]:
    """Inputs from CLI flags, then env (INPUT_* on GitHub, BRICKYARD_* elsewhere), then defaults."""
    ns = build_parser(prog, github=github).parse_args(list(argv))
    values: dict[str, str] = {}
    for item in INPUTS:
        cli = getattr(ns, item.name)
        if cli is not None:
            values[item.name] = cli
            continue
        names = (item.github_variable, item.variable) if github else (item.variable,)
        found = next((env[n] for n in names if env.get(n, "") != ""), None)
        if found is not None:
            values[item.name] = found
        elif github and item.github_default is not None:
            values[item.name] = item.github_default
        else:
            values[item.name] = item.default
    return BuildInputs(values), list(ns.executor_args)


def inputs_markdown() -> str:
    """docs/ci/inputs.md: the table of inputs, where each is set in every CI."""
    lines = [
        "# Build inputs (every CI adapter)",
        "",
        "Generated from `adapters/inputs.py` (`python3 -m adapters.inputs`); a test keeps it",
        "current. List inputs take one value per line; `csv` ones also accept `a,b` on one line.",
        "Values flow: command-line flag, then environment, then default.",
        "",
        "| input | GitHub `with:` | GitLab / Jenkins variable | kind | default | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for item in INPUTS:
        default = item.default
        if item.github_default is not None:
            default = f"{item.default} (GitHub: {item.github_default})"
        lines.append(
            f"| `--{item.name}` | `{item.name}` | `{item.variable}` | {item.kind} | "
            f"{'`' + default + '`' if default else ''} | {item.help.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(inputs_markdown(), end="")
