"""The instruction model the parser produces and the build engine consumes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

# Every instruction BuildKit knows (BuildKit's `command.Commands`).
KEYWORDS = (
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)


@dataclass(frozen=True)
class Heredoc:
    """A here-document attached to RUN/COPY/ADD (`<<EOF`, `<<-EOF`, `<<"EOF"`)."""

    name: str
    content: str  # exactly as in the file: not chomped, not expanded
    expand: bool  # False when any part of the delimiter was quoted
    chomp: bool  # `<<-`: leading tabs are stripped from the content
    fd: int = 0  # `3<<EOF` gives 3; 0 when no number was written


@dataclass(frozen=True)
class Directive:
    """A parser directive (`# syntax=`, `# escape=`, `# check=`) from the file's head."""

    name: str  # lower case
    value: str
    line: int


@dataclass(frozen=True)
class Instruction:
    """One logical Dockerfile instruction (continuation lines joined, heredocs attached).

    `args` is BuildKit's node value list: the JSON array items in JSON form; the whole
    rest of the line for RUN/CMD/ENTRYPOINT/SHELL/USER/WORKDIR/...; words for FROM,
    COPY, ADD, EXPOSE, VOLUME; `key, value, key, value, ...` for ENV and LABEL (values
    still quoted); raw words for ARG; `TYPE, cmd...` for HEALTHCHECK; for ONBUILD the
    trigger's args (the trigger itself is `.sub`).
    `flags` are the `--name=value` words with quotes removed, as BuildKit keeps them.
    """

    keyword: str  # upper case
    args: tuple[str, ...]
    flags: tuple[str, ...] = ()
    json_form: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    line: int = 0
    end_line: int = 0
    original: str = ""  # the logical line (continuations joined), heredoc bodies excluded
    raw_keyword: str = ""  # the keyword as written ("copy", "Run")
    sub: Instruction | None = None  # ONBUILD's trigger instruction
    legacy_form: bool = False  # ENV/LABEL written as `KEY value`
    flag_values: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    expanded: bool = field(default=False, compare=False)  # made by expand_instruction

    def flag(self, name: str, default: str | None = None) -> str | None:
        """Last value of `--name` (`"true"`/`"false"` for boolean flags)."""
        found = default
        for key, value in self.flag_values:
            if key == name:
                found = value
        return found

    def flag_all(self, name: str) -> tuple[str, ...]:
        """Every value of a repeatable flag (`--mount`, `--exclude`) in order."""
        return tuple(value for key, value in self.flag_values if key == name)

    def pairs(self) -> list[tuple[str, str]]:
        """ENV/LABEL arguments as (key, value) pairs (values not yet expanded)."""
        return [(self.args[i], self.args[i + 1]) for i in range(0, len(self.args) - 1, 2)]

    @property
    def expression(self) -> str:
        """ONBUILD's trigger text as it is stored in the image config."""
        return self.sub.original if self.sub is not None else ""

    def with_values(self, **changes: object) -> Instruction:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Dockerfile:
    directives: tuple[Directive, ...]
    instructions: list[Instruction]
    escape: str = "\\"
    filename: str = "Dockerfile"
    warnings: tuple[str, ...] = ()

    def directive(self, name: str) -> str | None:
        for d in self.directives:
            if d.name == name:
                return d.value
        return None

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.instructions)
