"""What a RUN step is given besides its rootfs: mounts (RUN --mount, already resolved to
host paths by the build) and small files under /dev/pipes (BuildKit's heredoc scripts)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import BuildError

PIPES_DIR = "/dev/pipes"
NETWORK_MODES = ("default", "host", "none")


@dataclass(frozen=True)
class StepMount:
    """One mount for one step. kind "bind": `source` (a host directory or file) at
    `target` (a path in the container), read-only unless `readonly=False`; kind "tmpfs":
    an empty tmpfs at `target`. Whatever the step writes there never reaches the rootfs."""

    kind: str
    target: str
    source: str = ""
    readonly: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("bind", "tmpfs"):
            raise BuildError(f"RUN --mount: unknown mount type {self.kind!r}")
        if not self.target.startswith("/"):
            raise BuildError(f"RUN --mount: target must be absolute, got {self.target!r}")
        if self.kind == "bind" and not os.path.lexists(self.source):
            raise BuildError(f"RUN --mount: bind source {self.source} does not exist")


def pipe_files(files: Sequence[tuple[str, bytes, int]]) -> list[tuple[str, bytes, int]]:
    """(name, content, mode) with name a plain file name or /dev/pipes/NAME; checked."""
    out = []
    for name, content, mode in files:
        if name.startswith(PIPES_DIR + "/"):
            name = name[len(PIPES_DIR) + 1 :]
        if not name or "/" in name or name in (".", ".."):
            raise BuildError(f"RUN: invalid /dev/pipes file name {name!r}")
        out.append((name, bytes(content), int(mode) & 0o7777))
    return out


def check_network(network: str) -> str:
    if network not in NETWORK_MODES:
        raise BuildError(f"RUN --network={network}: unknown network mode")
    return network
