"""Where a build keeps its files: blobs, layers and one rootfs per stage.

Under `--kaniko-dir` when it is writable (kaniko's model; the executor image sets it), else in
a fresh temporary directory. Never the machine's `/`. Removed at the end of the build.

Removing a big rootfs is disk-bound (100,000 files: seconds on a slow disk, and `rm -rf` is
no faster than shutil.rmtree). So the stage filesystems start going in the background as soon
as the image is assembled (`release_stages`), while the push, the outputs and the cache
entries are still being written, and `cleanup` waits for them. It does wait: the machine is
left clean (and a rootless build must remove its subordinate-owned files inside its user
namespace, before that ends), and a removal left running would only slow the next job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from engine.errors import BuildError


class Workspace:
    def __init__(self, root: Path, *, owned: bool) -> None:
        self.root = root
        self.owned = owned
        self.blobs = root / "blobs"
        self.layers = root / "layers"
        self.stages = root / "stages"
        for d in (self.blobs, self.layers, self.stages):
            d.mkdir(parents=True, exist_ok=True)
        self._layer_seq = 0
        self._remover: threading.Thread | None = None

    @classmethod
    def create(cls, kaniko_dir: str) -> Workspace:
        base: str | None = None
        if kaniko_dir and os.path.isdir(kaniko_dir) and os.access(kaniko_dir, os.W_OK):
            base = kaniko_dir
        root = Path(tempfile.mkdtemp(prefix="brickyard-build-", dir=base))
        return cls(root, owned=True)

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.replace(":", "-")

    def new_layer_path(self) -> Path:
        self._layer_seq += 1
        return self.layers / f"layer-{self._layer_seq:04d}"

    def new_rootfs(self, stage_index: int) -> Path:
        path = self.stages / f"stage-{stage_index}" / "rootfs"
        if path.exists():
            remove_tree(path)
        path.mkdir(parents=True)
        os.chmod(path, 0o755)
        return path

    def release_stages(self) -> None:
        """Start removing every stage filesystem in the background: after the image is
        assembled only blobs and layer files are read."""
        if not self.owned or self._remover is not None or not self.stages.exists():
            return
        trash = self.root / "stages-removing"
        try:
            os.replace(self.stages, trash)
        except OSError:
            return
        self._remover = threading.Thread(
            target=_remove_fast, args=(trash,), name="workspace-remove", daemon=True
        )
        self._remover.start()

    def cleanup(self) -> None:
        if self._remover is not None:
            self._remover.join()
            self._remover = None
        if self.owned:
            remove_tree(self.root)


def _remove_fast(path: Path) -> None:
    """`rm -rf` (a child process: the build's threads keep the GIL to themselves), then
    remove_tree for whatever it could not (directories the build made unwritable)."""
    with contextlib.suppress(OSError):  # no rm (a distroless image): remove_tree does it all
        subprocess.run(["rm", "-rf", "--", str(path)], capture_output=True, check=False)
    if os.path.lexists(path):
        remove_tree(path)


def copy_tree(src: Path, dest: Path) -> None:
    """Copy a rootfs keeping owners, modes, times, links, xattrs (cp -a)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        remove_tree(dest)
    proc = subprocess.run(
        ["cp", "-a", "--reflink=auto", "--", str(src), str(dest)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BuildError(f"cannot copy stage filesystem {src}: {proc.stderr.strip()}")


def remove_tree(path: Path) -> None:
    """Remove a rootfs even where the build made directories unwritable."""

    def onerror(func: object, p: str, exc: object) -> None:
        try:
            parent = os.path.dirname(p)
            os.chmod(parent, 0o755)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o755)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=onerror)
