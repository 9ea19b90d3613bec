"""A fresh ext4 file system in a sparse loop file, one per builder run.

The machine's disk is erratic at creating many small files; a new, empty ext4 per run makes
every run start from the same state. Only the loop device and mount point created here are
ever detached or unmounted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def _run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


@contextlib.contextmanager
def fresh_ext4(workdir: Path, name: str, size_gib: int = 24) -> Iterator[Path]:
    """Mount a new ext4 at workdir/mnt-<name>; unmount, detach and delete it afterwards."""
    image = workdir / f"loop-{name}.img"
    mnt = workdir / f"mnt-{name}"
    image.unlink(missing_ok=True)
    with open(image, "wb") as f:
        f.truncate(size_gib << 30)  # sparse: costs nothing until written
    device = ""
    mounted = False
    try:
        device = _run(["losetup", "--find", "--show", str(image)])
        # Lazy init + noinit_itable: the sparse file already reads as zeros, and no
        # background zeroing thread competes with the measured build.
        _run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-E",
                "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
                device,
            ]
        )
        mnt.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-o", "noinit_itable,noatime", device, str(mnt)])
        mounted = True
        yield mnt
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], capture_output=True)
            if os.path.ismount(mnt):
                subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        if device:
            subprocess.run(["losetup", "-d", device], capture_output=True)
        with contextlib.suppress(OSError):
            mnt.rmdir()
        image.unlink(missing_ok=True)
