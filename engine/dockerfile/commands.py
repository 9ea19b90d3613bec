"""How BuildKit turns RUN/CMD/ENTRYPOINT into argv, and ONBUILD triggers into instructions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.dockerfile.model import Heredoc, Instruction
from engine.dockerfile.parser import heredoc_marker, parse_nodes, to_instruction
from engine.errors import DockerfileError

DEFAULT_LINUX_SHELL = ("/bin/sh", "-c")
DEFAULT_WINDOWS_SHELL = ("cmd", "/S", "/C")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PIPES_DIR = "/dev/pipes"  # where BuildKit mounts a heredoc script that has a shebang
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


def default_shell(os_name: str = "linux") -> tuple[str, ...]:
    return DEFAULT_WINDOWS_SHELL if os_name == "windows" else DEFAULT_LINUX_SHELL


@dataclass(frozen=True)
class InlineFile:
    """A file BuildKit provides read-only to one RUN (a heredoc script with a shebang)."""

    path: str
    content: str
    mode: int = 0o755


@dataclass(frozen=True)
class RunCommand:
    argv: tuple[str, ...]
    files: tuple[InlineFile, ...] = ()


def with_shell(args: Sequence[str], shell: Sequence[str]) -> tuple[str, ...]:
    """Shell form: SHELL (or the default shell) plus the command as one string."""
    return (*shell, " ".join(args))


def command_argv(ins: Instruction, shell: Sequence[str]) -> tuple[str, ...]:
    """CMD / ENTRYPOINT / HEALTHCHECK CMD argv as stored in the image config."""
    args = ins.args[1:] if ins.keyword == "HEALTHCHECK" else ins.args
    return tuple(args) if ins.json_form else with_shell(args, shell)


def run_command(ins: Instruction, shell: Sequence[str], *, os_name: str = "linux") -> RunCommand:
    """RUN's argv the way BuildKit's dispatchRun builds it, heredocs included.

    - exec form: the JSON array as is;
    - `RUN <<EOF` alone: the body (tabs chomped for `<<-`) is the shell command, or, when
      it starts with `#!`, a file under /dev/pipes that the shell runs;
    - any other heredoc use: the line and the bodies are rejoined into one shell script.
    RUN bodies are never expanded by the frontend: the shell does that.
    """
    if ins.json_form:
        return RunCommand(tuple(ins.args))
    args = list(ins.args)
    files: list[InlineFile] = []
    if ins.heredocs:
        if len(args) != 1:
            raise DockerfileError(
                f"parsing produced an invalid run command: {args}", line=ins.line or None
            )
        first = ins.heredocs[0]
        if heredoc_marker(args[0]) is not None:
            data = _LEADING_TABS.sub("", first.content) if first.chomp else first.content
            if os_name != "windows" and data.startswith("#!"):
                path = f"{PIPES_DIR}/{first.name}"
                files.append(InlineFile(path, data))
                args = [path]
            else:
                args = [data]
        else:
            args = [args[0] + "".join("\n" + h.content + h.name for h in ins.heredocs)]
    return RunCommand(with_shell(args, shell), tuple(files))


@dataclass(frozen=True)
class CopySources:
    """COPY/ADD arguments split the way BuildKit's parseSourcesAndDest splits them."""

    paths: tuple[str, ...]  # sources from the context, a stage, an image or a URL
    heredocs: tuple[Heredoc, ...]  # inline files, named after their delimiter
    dest: str


def copy_sources(ins: Instruction) -> CopySources:
    """Source paths, heredoc files and destination of a (preferably expanded) COPY/ADD.

    A `<<NAME` source is an inline file even in JSON form, where its body is empty
    (BuildKit looks bodies up by name and finds none). Use scope.heredoc_content(h) for
    the file's bytes.
    """
    *sources, dest = ins.args
    bodies = {h.name: h for h in ins.heredocs}
    paths: list[str] = []
    docs: list[Heredoc] = []
    for src in sources:
        marker = heredoc_marker(src)
        if marker is None:
            paths.append(src)
            continue
        body = bodies.get(marker.name)
        docs.append(Heredoc(marker.name, body.content if body else "", marker.expand, marker.chomp))
    return CopySources(tuple(paths), tuple(docs), dest)


def parse_trigger(expression: str, *, filename: str = "Dockerfile", line: int = 0) -> Instruction:
    """An ONBUILD trigger (from a base image's config or a base stage) as an instruction.

    BuildKit parses each trigger as a one-instruction Dockerfile and reports it at the
    FROM line of the stage that runs it.
    """
    nodes, _, _ = parse_nodes(expression, filename)
    if len(nodes) != 1:
        raise DockerfileError(
            "onbuild trigger should be a single expression", file=filename, line=line or None
        )
    node, _, _ = nodes[0]
    if node.raw_cmd.upper() in ("ONBUILD", "FROM", "MAINTAINER"):
        raise DockerfileError(
            f"{node.raw_cmd.upper()} isn't allowed as an ONBUILD trigger",
            file=filename,
            line=line or None,
        )
    return to_instruction(node, line, line, filename=filename)
