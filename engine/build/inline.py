"""Files a single RUN step is given and nothing keeps: BuildKit's /dev/pipes scripts.

BuildKit runs a `RUN <<EOF` heredoc that starts with `#!` as a file it mounts read-only at
/dev/pipes/EOF. Every run backend gives the step a /dev of its own (a private tmpfs, or
nodes made for the step), so the file cannot be placed there from outside: it is written
to INLINE_DIR in the rootfs instead, the step's argv names it there, and it is removed
when the step ends. INLINE_DIR is on the snapshotter's ignore list, so it never reaches a
layer; history and logs keep BuildKit's /dev/pipes path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.errors import BuildError

INLINE_DIR = "/.brickyard-pipes"


@contextlib.contextmanager
def provided_files(rootfs: Path, files: Sequence[Any], argv: Sequence[str]) -> Iterator[list[str]]:
    """Write `files` (InlineFile: path, content, mode) under INLINE_DIR for the duration of
    the block; yields argv with each file's path replaced by where it really is."""
    if not files:
        yield list(argv)
        return
    top = rootfs / INLINE_DIR.lstrip("/")
    try:
        os.mkdir(top, 0o755)  # never through a symlink: mkdir fails on anything there
    except FileExistsError:
        raise BuildError(
            f"RUN: the image already has {INLINE_DIR}; cannot provide scripts"
        ) from None
    moved: dict[str, str] = {}
    try:
        os.chmod(top, 0o755)
        for f in files:
            name = os.path.basename(str(f.path))
            fd = os.open(top / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(str(f.content))
            os.chmod(top / name, int(f.mode))
            moved[str(f.path)] = f"{INLINE_DIR}/{name}"
        yield [moved.get(a, a) for a in argv]
    finally:
        _remove(top)


def _remove(path: Path) -> None:
    """Remove what we made, whatever the step turned it into (never following links)."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
