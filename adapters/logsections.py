"""Collapsible log sections and secret masking in each CI's own syntax."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol, TextIO
from urllib.parse import urlsplit

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


# Variables whose values are credentials whatever the CI: names with these words
# (CI_JOB_TOKEN, GITHUB_TOKEN, INPUT_GITHUB-TOKEN, CI_REGISTRY_PASSWORD, AWS_SECRET_ACCESS_KEY,
# ACTIONS_RUNTIME_TOKEN ...), and the docker config a job may carry in a variable.
_SECRET_NAME = re.compile(
    r"TOKEN|PASSWORD|PASSWD|SECRET|PRIVATE.?KEY|API.?KEY|ACCESS.?KEY|CREDENTIAL|AUTH(?!OR)",
    re.IGNORECASE,
)
_NOT_SECRET_NAME = re.compile(r"_(TYPE|URL|FILE|PATH|COUNT|USER|USERNAME|NAME)$", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(://)[^/\s@'\"]*@")
# shorter values are flags and counts, and masking them would garble every log line
MIN_SECRET_LEN = 6


def env_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    """Credential values the job's environment holds: variables named like secrets, the
    passwords inside proxy URLs, and the auths of a docker config held in a variable."""
    found: list[str] = []
    for name, value in env.items():
        if not value:
            continue
        if _SECRET_NAME.search(name) and not _NOT_SECRET_NAME.search(name):
            found.append(value)
            found += _docker_config_secrets(value)
        with contextlib.suppress(ValueError):
            if "://" in value and (password := urlsplit(value).password):
                found.append(password)
    return tuple(
        dict.fromkeys(s for s in found if len(s) >= MIN_SECRET_LEN and s.lower() != "false")
    )


def _docker_config_secrets(text: str) -> list[str]:
    """auth, password and token values of a docker config JSON (DOCKER_AUTH_CONFIG)."""
    if not text.lstrip().startswith("{"):
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return docker_config_secrets(data)


def docker_config_secrets(data: object) -> list[str]:
    out: list[str] = []
    auths = data.get("auths") if isinstance(data, dict) else None
    for entry in auths.values() if isinstance(auths, dict) else ():
        if not isinstance(entry, dict):
            continue
        for key in ("auth", "password", "identitytoken", "registrytoken"):
            value = entry.get(key)
            if isinstance(value, str) and value:
                out.append(value)
                if key == "auth":
                    with contextlib.suppress(ValueError, UnicodeDecodeError):
                        out.append(base64.b64decode(value).decode().partition(":")[2])
    return out


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in `text` by `***`, and the user:password of any URL
    (for argv echoes and messages)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL_USERINFO.sub(r"\1***@", text)
