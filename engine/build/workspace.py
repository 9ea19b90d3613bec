"""Where a build keeps its files: blobs, layers and one rootfs per stage.

Under `--kaniko-dir` when it is writable (kaniko's model; the executor image sets it), else in
a fresh temporary directory. Never the machine's `/`.

What is left at the end follows kaniko, which leaves its built filesystem unless `--cleanup`:
- under `--kaniko-dir` (the executor image in a CI pod that is thrown away afterwards) the
  stage filesystems stay in `<workspace>/stages` unless `--cleanup` is given; the build logs
  where they are. Removing 100,000 files is seconds of disk-bound work nobody needs there.
- a private temporary workspace (no writable kaniko dir) is always removed whole;
- a rootless build always removes it whole: its files belong to subordinate ids, which the
  user can delete only inside the build's user namespace, before that ends.
Everything else in the workspace (base layer blobs, built layers, the build context,
`--secret` values written to files, RUN --mount scratch copies) is always removed: no secret
or credential is ever left behind, and only the filesystems a user may want to inspect stay.

Removing a big rootfs is disk-bound (`rm -rf` is no faster than shutil.rmtree). When the
stage filesystems go, they start going in the background as soon as the image is assembled
(`release_stages`), while the push, the outputs and the cache entries are still being
written, and `cleanup` waits for them (a removal left running would only slow the next job).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from engine.errors import BuildError

WORKSPACE_PREFIX = "brickyard-build-"
LOCK_FILE = ".lock"  # flock()ed by the build that owns the workspace


class Workspace:
    def __init__(self, root: Path, *, owned: bool, keep_stages: bool = False) -> None:
        self.root = root
        self.owned = owned
        # leave the stage filesystems at the end (see the module docstring for when)
        self.keep_stages = keep_stages
        self.blobs = root / "blobs"
        self.layers = root / "layers"
        self.stages = root / "stages"
        for d in (self.blobs, self.layers, self.stages):
            d.mkdir(parents=True, exist_ok=True)
        self._layer_seq = 0
        self._remover: threading.Thread | None = None
        self._lock_fd: int | None = None

    @classmethod
    def create(cls, kaniko_dir: str, *, keep_stages: bool = False) -> Workspace:
        """A fresh workspace under kaniko_dir when it is a writable directory, else in the
        temporary directory. `keep_stages` (no --cleanup, not rootless) takes effect only
        under kaniko_dir: a private temporary workspace is always removed whole.

        The workspace is made under a hidden name, locked (`LOCK_FILE`, held while the
        build runs) and only then renamed into place, so `remove_stale` never sees a live
        workspace without its lock."""
        base: str | None = None
        if kaniko_dir and os.path.isdir(kaniko_dir) and os.access(kaniko_dir, os.W_OK):
            base = kaniko_dir
        staging = Path(tempfile.mkdtemp(prefix=".brickyard-new-", dir=base))
        fd = os.open(staging / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with contextlib.suppress(OSError):  # no flock on this file system: see remove_stale
            fcntl.flock(fd, fcntl.LOCK_EX)
        root = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX, dir=base))
        os.replace(staging, root)  # an empty directory is replaced atomically
        ws = cls(root, owned=True, keep_stages=keep_stages and base is not None)
        ws._lock_fd = fd
        return ws

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
        assembled only blobs and layer files are read. Nothing happens when they stay."""
        if (
            not self.owned
            or self.keep_stages
            or self._remover is not None
            or not self.stages.exists()
        ):
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

    def cleanup(self) -> Path | None:
        """Remove the workspace; returns the stage filesystems' directory when they were
        left in place (keep_stages and something is in it), else None."""
        if self._remover is not None:
            self._remover.join()
            self._remover = None
        if not self.owned:
            return None
        try:
            if self.keep_stages and self.stages.is_dir() and any(self.stages.iterdir()):
                # everything but the stage filesystems: blobs, layers, context, secrets,
                # scratch, the lock (what is left is a leftover for --pre-cleanup)
                for entry in list(self.root.iterdir()):
                    if entry.name != self.stages.name:
                        remove_tree(entry)
                return self.stages
            remove_tree(self.root)
            return None
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def remove_stale(kaniko_dir: str) -> list[Path]:
    """--pre-cleanup: remove the workspaces earlier builds left under kaniko_dir (their stage
    filesystems, kept without --cleanup). A workspace whose lock a running build holds is
    left alone. Returns what was removed (a workspace this user cannot delete stays)."""
    removed: list[Path] = []
    try:
        candidates = sorted(Path(kaniko_dir).glob(WORKSPACE_PREFIX + "*"))
    except OSError:
        return removed
    for path in candidates:
        if path.is_symlink() or not path.is_dir():
            continue
        lock = path / LOCK_FILE
        fd = None
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a build is running in it (or locks cannot tell: keep it)
            remove_tree(path)
            if not os.path.lexists(path):
                removed.append(path)
        finally:
            if fd is not None:
                os.close(fd)
    return removed


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
