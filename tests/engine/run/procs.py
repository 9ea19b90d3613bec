"""Finding a step's processes from the host, for tests."""

from __future__ import annotations

import os
from pathlib import Path


def pids_running(arg: bytes) -> list[int]:
    """Processes whose first argument is arg (distinctive sleep durations)."""
    pids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1] == arg:
            pids.append(int(entry))
    return pids
