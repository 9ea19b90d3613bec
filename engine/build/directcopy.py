"""A COPY that misses while the stage's filesystem is still unextracted (cached steps before
it), written into a scratch directory instead of the extracted rootfs.

The cached rebuild of a typical CI job changes one file a late COPY uses: every earlier step
hits, and extracting the base image and the cached layers only to add a few files to them
costs more than the whole rest of the rebuild. The layer a COPY writes depends on the lower
layers only at the destination: whether its ancestors are directories (and their mode and
owner, which the layer repeats) or symlinks (which redirect the copy), and whether the COPY
overwrites something that exists. Those are read from the lower layers' tar headers (the
blobs are downloaded, nothing is written), and the COPY runs into a scratch directory holding
exactly the existing ancestor directories. The resulting layer is built by the same code as
ever (copy_instruction, Snapshotter.diff_paths, write_layer).

The rule, conservative by design (otherwise the rootfs is extracted as before):
- plain `COPY` from the build context or heredocs: no --from, no --chown (names need the
  image's /etc/passwd), no ADD;
- no later instruction of the stage needs the filesystem (RUN, ADD, WORKDIR): otherwise it
  is extracted right after anyway and reading the headers first would be wasted;
- every ancestor of the destination is, after all lower layers, either absent or a real
  directory entry without xattrs (not a symlink, not a file, not only implied by deeper
  entries), and no lower entry was written through a symlinked directory;
- nothing the COPY writes exists in the lower layers (it only adds new paths).
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.image.layers import OPAQUE_WHITEOUT, WHITEOUT_PREFIX

NEEDS_FILESYSTEM = frozenset({"RUN", "ADD", "WORKDIR"})


@dataclass(frozen=True)
class LowerEntry:
    kind: str  # "dir", "symlink" or "other"
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    xattrs: bool


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/") if name not in (".", "./") else ""


def _entry(info: tarfile.TarInfo) -> LowerEntry:
    kind = "dir" if info.isdir() else "symlink" if info.issym() else "other"
    xattrs = any(k.startswith("SCHILY.xattr.") for k in info.pax_headers)
    mtime_ns = round(float(info.mtime) * 1_000_000_000)  # as extraction sets it
    return LowerEntry(kind, info.mode & 0o7777, info.uid, info.gid, mtime_ns, xattrs)


class LowerView:
    """What the lower layers leave at a destination's ancestors and below it."""

    def __init__(self, dest: str) -> None:
        self.dest = dest
        parts = dest.split("/") if dest else []
        self.ancestors = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        self.watch = {*self.ancestors, *([dest] if dest else [])}
        self.entries: dict[str, LowerEntry] = {}
        self.symlinks: set[str] = set()
        self.implied: set[str] = set()
        # every path seen as a directory or a parent: only those can have entries below
        self._parents: set[str] = set()
        self.unsafe = ""

    def _tracked(self, rel: str) -> bool:
        return rel in self.watch or not self.dest or rel.startswith(self.dest + "/")

    def _remove(self, rel: str, keep: frozenset[str] | set[str] = frozenset()) -> None:
        """Forget rel and everything below it, except the paths in `keep`."""
        if rel and rel not in self._parents:  # nothing below it: the common case, O(1)
            if rel not in keep:
                self.entries.pop(rel, None)
                self.symlinks.discard(rel)
            return
        prefix = rel + "/" if rel else ""
        for path in [p for p in self.entries if p == rel or p.startswith(prefix)]:
            if path not in keep:
                del self.entries[path]
        for path in [p for p in self.symlinks if p == rel or p.startswith(prefix)]:
            if path not in keep:
                self.symlinks.discard(path)

    def add_blob(self, blob: Path, media_type: str) -> None:
        """Read one lower layer's headers (data skipped); a tar the lean reader cannot be
        sure of makes the COPY take the general path."""
        import zstandard

        from engine.image.layers import open_layer_stream
        from engine.image.tarheaders import UnsupportedTar, scan_headers

        try:
            with open_layer_stream(blob, media_type) as stream:
                self.add_layer(scan_headers(stream))
        except (UnsupportedTar, OSError, EOFError, zstandard.ZstdError) as e:
            self.unsafe = f"a lower layer needs the general tar reader ({e})"

    def add_layer(self, infos: Iterable[tarfile.TarInfo]) -> None:
        kept: list[tuple[str, tarfile.TarInfo]] = []
        whiteouts: list[str] = []
        opaque: list[str] = []
        for info in infos:
            rel = _clean(info.name)
            parent, _, base = rel.rpartition("/")
            if base == OPAQUE_WHITEOUT:
                opaque.append(parent)
            elif base.startswith(WHITEOUT_PREFIX):
                victim = base[len(WHITEOUT_PREFIX) :]
                whiteouts.append(f"{parent}/{victim}" if parent else victim)
            elif rel:
                kept.append((rel, info))
        # A layer's whiteouts and opaque markers act on the layers below it only.
        written: set[str] = set()
        for rel, _ in kept:
            while rel and rel not in written:
                written.add(rel)
                rel = rel.rpartition("/")[0]
        for victim in whiteouts:
            self._remove(victim)
        for d in opaque:
            self._remove(d, keep=written | {d})
        for rel, info in kept:
            if info.isdir():
                self._parents.add(rel)
            parent = rel.rpartition("/")[0]
            while parent:
                self._parents.add(parent)
                if parent in self.symlinks:
                    self.unsafe = f"{rel} is written through the symlink {parent}"
                    return
                if parent in self.watch and parent not in self.entries:
                    self.implied.add(parent)
                parent = parent.rpartition("/")[0]
            entry = _entry(info)
            if entry.kind != "dir":
                self._remove(rel)  # a file or link over a directory replaces it
            if entry.kind == "symlink":
                self.symlinks.add(rel)
            if self._tracked(rel):
                self.entries[rel] = entry

    def verdict(self) -> str:
        """Empty when a COPY to dest can be written without the rootfs; else why not."""
        if self.unsafe:
            return self.unsafe
        for path in [*self.ancestors, *([self.dest] if self.dest else [])]:
            entry = self.entries.get(path)
            if entry is None:
                if path in self.implied:
                    return f"{path} exists only implicitly in the lower layers"
                continue
            if entry.kind == "symlink" or (entry.kind == "other" and path != self.dest):
                return f"{path} is not a directory in the lower layers"
            if entry.xattrs:
                return f"{path} has extended attributes in the lower layers"
        return ""

    def existing_dirs(self) -> list[tuple[str, LowerEntry]]:
        """The ancestors (and dest) that exist as directories, parents first."""
        out = []
        for path in [*self.ancestors, *([self.dest] if self.dest else [])]:
            entry = self.entries.get(path)
            if entry is not None and entry.kind == "dir":
                out.append((path, entry))
        return out

    def overlaps(self, written: Iterable[str]) -> str:
        """Why the COPY's output is not purely new paths under dest ("" when it is)."""
        precreated = {p for p, _ in self.existing_dirs()}
        for raw in written:
            rel = raw.strip("/")
            if not rel or rel in precreated or rel in self.ancestors:
                continue
            if rel in self.entries:
                return f"{rel} exists in the lower layers"
            if not self._tracked(rel):
                return f"{rel} is outside the destination"
        return ""


def make_scratch(root: Path, view: LowerView) -> None:
    """An empty rootfs holding the destination's existing ancestors as they are below."""
    made: list[tuple[Path, LowerEntry]] = []
    for rel, entry in view.existing_dirs():
        host = root / rel
        host.mkdir(mode=0o700)
        os.lchown(host, entry.uid, entry.gid)
        os.chmod(host, entry.mode)
        made.append((host, entry))
    for host, entry in reversed(made):  # children first: a mkdir touches its parent
        os.utime(host, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)


def remove_scratch(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
