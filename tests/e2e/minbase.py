"""A Debian minbase base image for end-to-end builds: `debootstrap --variant=minbase`, packed
as an OCI image by umoci (independent of brickyard) and pushed with skopeo.

debootstrap takes about a minute, so its result is kept between test runs in
`MINBASE_CACHE` (a finished tree has a marker file; a half-made one is redone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.images import pack_rootfs_image, skopeo_copy

SUITE = "bookworm"
MIRROR = os.environ.get("BRICKYARD_DEBIAN_MIRROR", "http://deb.debian.org/debian")
MINBASE_CACHE = Path(os.environ.get("BRICKYARD_TEST_CACHE", "/var/tmp/brickyard-test-cache"))
_MARKER = ".brickyard-complete"


def _run(argv: list[str], timeout: float = 600) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{argv[0]} failed: {' | '.join(tail)}")


def minbase_rootfs() -> Path:
    """The debootstrapped tree (made once, then reused)."""
    root = MINBASE_CACHE / f"minbase-{SUITE}"
    if (root / _MARKER).exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    _run(["debootstrap", "--variant=minbase", SUITE, str(root), MIRROR], timeout=900)
    (root / _MARKER).touch()
    return root


def push_minbase_image(registry_host: str, repo: str = "base/minbase", tag: str = SUITE) -> str:
    """Pack the tree as a one-layer OCI image and push it; returns "host/repo:tag"."""
    tree = minbase_rootfs()
    ref = f"{registry_host}/{repo}:{tag}"
    with tempfile.TemporaryDirectory(prefix="minbase-") as tmp:

        def copy_tree(rootfs: Path) -> None:
            excludes = ["--exclude", f"/{_MARKER}", "--exclude", "/var/cache/apt/archives/*.deb"]
            _run(["rsync", "-aHAX", *excludes, f"{tree}/", f"{rootfs}/"])

        image = pack_rootfs_image(
            Path(tmp) / "layout", tag, copy_tree, cmd="bash", bundle_parent=Path(tmp)
        )
        skopeo_copy(f"oci:{image}", f"docker://{ref}")
    return ref
