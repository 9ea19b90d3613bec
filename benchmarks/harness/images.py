"""The benchmark's registry and base images, all local.

A TLS docker-registry on 127.0.0.1 (self-signed: Charliecloud's ch-image only speaks HTTPS;
every builder is told not to verify it), busybox made offline from Debian's busybox-static
(tests/support/images.py), and a Debian bookworm minbase made with debootstrap from the
mirror apt uses (cached under the work dir, since it needs the network once).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.images import make_busybox_layout, pack_rootfs_image, skopeo_copy
from tests.support.registry import RunningRegistry, start_registry

DEBIAN_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class BenchImages:
    registry: RunningRegistry
    busybox: str  # host:port/base/busybox:latest
    debian: str | None  # host:port/base/debian:bookworm-minbase, None if debootstrap failed
    debian_problem: str = ""


def _run(argv: list[str], **kw: object) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr.strip()[-2000:]}")


def self_signed(workdir: Path) -> tuple[Path, Path]:
    cert, key = workdir / "registry.crt", workdir / "registry.key"
    if not cert.exists():
        _run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ]
        )
    return cert, key


def mirror_from_apt_sources() -> str:
    """The Debian mirror apt uses here (deb822 or one-line sources), else deb.debian.org."""
    for path in sorted(Path("/etc/apt").glob("sources.list*")) + sorted(
        Path("/etc/apt/sources.list.d").glob("*")
    ):
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            uri = ""
            if (line.startswith("URIs:") or words[:1] == ["deb"]) and len(words) > 1:
                uri = words[1]
            if "debian" in uri and "security" not in uri:
                return uri
    return DEBIAN_MIRROR


def debian_minbase_rootfs(cache: Path) -> Path:
    """debootstrap --variant=minbase bookworm, once; later runs reuse it."""
    done = cache / "debian-minbase.done"
    root = cache / "debian-minbase"
    if done.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    _run(["debootstrap", "--variant=minbase", "bookworm", str(root), mirror_from_apt_sources()])
    # Drop apt lists and caches: smaller base, nothing a build relies on.
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (root / sub).glob("*"):
            if p.is_file():
                p.unlink()
    done.write_text("ok\n")
    return root


def push_rootfs_image(rootfs: Path, ref: str, tmp: Path) -> None:
    """Pack a rootfs directory into a one-layer OCI image (umoci) and push it (skopeo)."""

    def copy_rootfs(bundle_rootfs: Path) -> None:
        shutil.rmtree(bundle_rootfs)
        _run(["cp", "-a", str(rootfs), str(bundle_rootfs)])

    image = pack_rootfs_image(tmp / "layout", "latest", copy_rootfs, cmd="bash", bundle_parent=tmp)
    skopeo_copy(f"oci:{image}", f"docker://{ref}")


def setup(workdir: Path, *, want_debian: bool) -> BenchImages:
    cert, key = self_signed(workdir)
    registry = start_registry(workdir / "registry", tls=(cert, key), ca_cert=cert)
    busybox = f"{registry.host}/base/busybox:latest"
    with tempfile.TemporaryDirectory(prefix="bench-busybox-", dir=workdir) as tmp:
        layout = make_busybox_layout(Path(tmp) / "layout")
        skopeo_copy(f"oci:{layout}:latest", f"docker://{busybox}")
    debian, problem = None, ""
    if want_debian:
        try:
            rootfs = debian_minbase_rootfs(workdir / "cache")
            debian = f"{registry.host}/base/debian:bookworm-minbase"
            with tempfile.TemporaryDirectory(prefix="bench-debian-", dir=workdir) as tmp:
                push_rootfs_image(rootfs, debian, Path(tmp))
        except RuntimeError as exc:
            debian, problem = None, str(exc).splitlines()[0][:300]
    return BenchImages(registry, busybox, debian, problem)
