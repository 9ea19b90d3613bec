"""Base images for tests, made offline and pushed to a local registry.

- `make_busybox_layout(dest)`: an OCI image layout (tag `latest`) whose single layer is the
  busybox rootfs from tests/support/busybox.py, built with umoci (unpack, fill, repack) and
  config Env PATH, Cmd ["sh"].
- `push_busybox_image(registry_host, repo, tag) -> "host/repo:tag"` via `skopeo copy`.
- `push_multiplatform_index(registry_host, repo, tag, platforms)`: an OCI index with one tiny
  image per platform, pushed with plain HTTP calls (independent of brickyard's client).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.busybox import make_busybox_rootfs

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} {argv[1]} failed: {proc.stderr.strip()}")
    return proc.stdout


def pack_rootfs_image(
    layout: Path,
    tag: str,
    fill_rootfs: Callable[[Path], object],
    *,
    cmd: str,
    arch: str = "amd64",
    bundle_parent: Path | None = None,
) -> str:
    """Make `layout:tag` a one-layer OCI image with umoci (init, new, unpack, fill, repack) and
    config Env PATH, Cmd [cmd], linux/arch; returns "layout:tag".

    `fill_rootfs(rootfs)` puts the files in the unpacked bundle's (empty) rootfs directory; the
    bundle is made in a temporary directory under `bundle_parent` (default: the system's)."""
    image = f"{layout}:{tag}"
    _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", image])
    with tempfile.TemporaryDirectory(prefix="umoci-bundle-", dir=bundle_parent) as tmp:
        bundle = Path(tmp) / "bundle"
        _run(["umoci", "unpack", "--image", image, str(bundle)])
        fill_rootfs(bundle / "rootfs")
        _run(["umoci", "repack", "--image", image, str(bundle)])
    _run(
        [
            "umoci",
            "config",
            "--image",
            image,
            "--config.env",
            f"PATH={DEFAULT_PATH}",
            "--config.cmd",
            cmd,
            "--os",
            "linux",
            "--architecture",
            arch,
        ]
    )
    return image


def make_busybox_layout(dest: Path, *, arch: str = "amd64", tag: str = "latest") -> Path:
    """Write an OCI layout at dest holding the busybox image under `tag`."""
    pack_rootfs_image(dest, tag, make_busybox_rootfs, cmd="sh", arch=arch)
    _run(["umoci", "gc", "--layout", str(dest)])
    return dest


def skopeo_copy(src: str, dest: str, *, extra: list[str] | None = None) -> None:
    argv = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"]
    _run([*argv, *(extra or []), src, dest])


def skopeo_inspect(ref: str, *, raw: bool = False, extra: list[str] | None = None) -> dict:
    argv = ["skopeo", "inspect", "--tls-verify=false", *(extra or [])]
    if raw:
        argv.append("--raw")
    return json.loads(_run([*argv, f"docker://{ref}"]))


def push_busybox_image(registry_host: str, repo: str, tag: str) -> str:
    """Build the busybox image offline and push it; returns "host/repo:tag"."""
    ref = f"{registry_host}/{repo}:{tag}"
    with tempfile.TemporaryDirectory(prefix="busybox-layout-") as tmp:
        layout = make_busybox_layout(Path(tmp) / "layout")
        skopeo_copy(f"oci:{layout}:latest", f"docker://{ref}")
    return ref


# ---- multi-platform indexes, pushed with raw distribution API calls ----


@dataclass(frozen=True)
class PushedIndex:
    ref: str  # host/repo:tag
    digest: str  # digest of the index
    manifests: dict[str, str]  # "os/arch[/variant]" -> manifest digest


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tiny_layer(text: str) -> tuple[bytes, str]:
    """gzip tar holding /platform with text; returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = text.encode()
        info = tarfile.TarInfo("platform")
        info.size = len(data)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), _digest(tar_bytes)


def raw_push_blob(session: requests.Session, base: str, repo: str, blob: bytes) -> str:
    digest = _digest(blob)
    r = session.post(f"{base}/v2/{repo}/blobs/uploads/")
    r.raise_for_status()
    location = r.headers["Location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    r = session.put(f"{location}{sep}digest={digest}", data=blob)
    r.raise_for_status()
    return digest


def raw_put_manifest(
    session: requests.Session, base: str, repo: str, ref: str, body: bytes, media_type: str
) -> str:
    r = session.put(
        f"{base}/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type}
    )
    r.raise_for_status()
    return _digest(body)


def push_multiplatform_index(
    registry_host: str,
    repo: str,
    tag: str,
    platforms: list[str],
    *,
    scheme: str = "http",
    auth: tuple[str, str] | None = None,
    verify: bool | str = False,
    base_layer: tuple[bytes, str] | None = None,
) -> PushedIndex:
    """Push one tiny image per platform plus an OCI index over them under `tag`.

    Each image holds /platform ("os/arch[/variant]\n"). With `base_layer` (gzip blob,
    diff_id), e.g. from `busybox_base_layer()`, that layer comes first, so every platform's
    image is runnable here while /platform tells which entry was chosen."""
    base = f"{scheme}://{registry_host}"
    session = requests.Session()
    session.verify = verify
    session.trust_env = False
    if auth:
        session.auth = auth
    entries = []
    manifests: dict[str, str] = {}
    for spec in platforms:
        parts = spec.split("/")
        os_, arch = parts[0], parts[1]
        variant = parts[2] if len(parts) > 2 else None
        layer, diff_id = _tiny_layer(spec + "\n")
        layer_digest = raw_push_blob(session, base, repo, layer)
        layer_descs = [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": len(layer)}]
        diff_ids = [diff_id]
        if base_layer:
            base_digest = raw_push_blob(session, base, repo, base_layer[0])
            layer_descs.insert(
                0, {"mediaType": OCI_LAYER_GZIP, "digest": base_digest, "size": len(base_layer[0])}
            )
            diff_ids.insert(0, base_layer[1])
        config: dict = {
            "architecture": arch,
            "os": os_,
            "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"test image for {spec}"} for _ in diff_ids],
        }
        if variant:
            config["variant"] = variant
        config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        config_digest = raw_push_blob(session, base, repo, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": layer_descs,
        }
        body = json.dumps(manifest, separators=(",", ":")).encode()
        digest = raw_put_manifest(session, base, repo, _digest(body), body, OCI_MANIFEST)
        manifests[spec] = digest
        platform: dict = {"architecture": arch, "os": os_}
        if variant:
            platform["variant"] = variant
        entries.append(
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "platform": platform}
        )
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    index_body = json.dumps(index, separators=(",", ":")).encode()
    index_digest = raw_put_manifest(session, base, repo, tag, index_body, OCI_INDEX)
    return PushedIndex(f"{registry_host}/{repo}:{tag}", index_digest, manifests)


def busybox_base_layer(layout: Path | None = None) -> tuple[bytes, str]:
    """(gzip blob, diff_id) of the busybox rootfs layer, for push_multiplatform_index; read
    from `layout` (e.g. the busybox_layout fixture) or from a freshly built one."""
    if layout is None:
        with tempfile.TemporaryDirectory(prefix="busybox-layer-") as tmp:
            return busybox_base_layer(make_busybox_layout(Path(tmp) / "layout"))
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs/sha256" / manifest_digest).read_text())
    config_digest = manifest["config"]["digest"].split(":", 1)[1]
    config = json.loads((layout / "blobs/sha256" / config_digest).read_text())
    layer_digest = manifest["layers"][0]["digest"].split(":", 1)[1]
    blob = (layout / "blobs/sha256" / layer_digest).read_bytes()
    return blob, config["rootfs"]["diff_ids"][0]
