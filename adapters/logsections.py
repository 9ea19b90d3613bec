"""Collapsible log sections and secret masking in each CI's own syntax."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

from adapters.ci import CI


class LogSections(Protocol):
    def start(self, name: str, title: str) -> None: ...
    def end(self, name: str) -> None: ...
    def mask(self, secret: str) -> None: ...


class GitLabSections:
    """`section_start:<unix>:<name>[collapsed=true]` lines (GitLab job log sections)."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.time, collapsed: bool = True):
        self.out, self.clock, self.collapsed = out, clock, collapsed

    @staticmethod
    def _name(name: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", name)

    def start(self, name: str, title: str) -> None:
        opts = "[collapsed=true]" if self.collapsed else ""
        stamp = int(self.clock())
        self.out.write(f"\x1b[0Ksection_start:{stamp}:{self._name(name)}{opts}\r\x1b[0K{title}\n")
        self.out.flush()

    def end(self, name: str) -> None:
        self.out.write(f"\x1b[0Ksection_end:{int(self.clock())}:{self._name(name)}\r\x1b[0K\n")
        self.out.flush()

    def mask(self, secret: str) -> None:
        """GitLab masks only variables declared masked in settings; nothing to emit."""


class GitHubSections:
    """`::group::` / `::endgroup::` workflow commands; `::add-mask::` before any echo."""

    def __init__(self, out: TextIO):
        self.out = out
        self.masked: set[str] = set()

    def start(self, name: str, title: str) -> None:
        self.out.write(f"::group::{title}\n")
        self.out.flush()

    def end(self, name: str) -> None:
        self.out.write("::endgroup::\n")
        self.out.flush()

    def mask(self, secret: str) -> None:
        for line in secret.splitlines():  # one command per line: multi-line secrets too
            if line.strip() and line not in self.masked:
                self.masked.add(line)
                self.out.write(f"::add-mask::{line}\n")
        self.out.flush()


class PlainSections:
    """Jenkins and others: a plain heading line (Jenkins has no folding syntax in sh steps)."""

    def __init__(self, out: TextIO):
        self.out = out

    def start(self, name: str, title: str) -> None:
        self.out.write(f"--- {title}\n")
        self.out.flush()

    def end(self, name: str) -> None:
        pass

    def mask(self, secret: str) -> None:
        pass


def sections_for(ci: CI, out: TextIO) -> LogSections:
    if ci is CI.GITLAB:
        return GitLabSections(out)
    if ci is CI.GITHUB:
        return GitHubSections(out)
    return PlainSections(out)


@contextmanager
def section(log: LogSections, name: str, title: str) -> Iterator[None]:
    log.start(name, title)
    try:
        yield
    finally:
        log.end(name)


def redact(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """Replace every secret value in `text` by `***` (for argv echoes and messages)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
