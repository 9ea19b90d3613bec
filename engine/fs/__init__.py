"""Rootfs handling: safe paths, layer extraction, the stat-index snapshotter.

resolve_in_root(rootfs, path, *, follow_last=True, strict=False) -> Path
extract_layer(blob, media_type, rootfs) -> ExtractStats
Snapshotter(rootfs, ignore).reset() / .diff() -> Diff / .diff_paths(paths) -> Diff
"""

from __future__ import annotations

from engine.fs.extract import ExtractStats, extract_layer
from engine.fs.safe import (
    clean_relative,
    ensure_dirs,
    open_for_read,
    open_for_write,
    resolve_in_root,
)
from engine.fs.snapshot import Diff, Snapshotter, StatEntry, StatIndex, scan

__all__ = [
    "Diff",
    "ExtractStats",
    "Snapshotter",
    "StatEntry",
    "StatIndex",
    "clean_relative",
    "ensure_dirs",
    "extract_layer",
    "open_for_read",
    "open_for_write",
    "resolve_in_root",
    "scan",
]
