"""End-to-end harness: build a Dockerfile with `executor` against the local registry, then
read the result back with independent tools (raw registry API, skopeo, umoci)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from engine.cli import executor_main

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass
class Built:
    rc: int
    log: str
    ref: str
    context: Path
    harness: E2E
    _manifest: dict[str, Any] | None = field(default=None, repr=False)
    _config: dict[str, Any] | None = field(default=None, repr=False)
    _rootfs: Path | None = field(default=None, repr=False)

    def ok(self) -> Built:
        assert self.rc == 0, f"build failed (rc {self.rc}):\n{self.log[-3000:]}"
        return self

    @property
    def manifest_response(self) -> requests.Response:
        host, _, rest = self.ref.partition("/")
        repo, _, tag = rest.rpartition(":")
        r = requests.get(
            f"http://{host}/v2/{repo}/manifests/{tag}",
            headers={"Accept": MANIFEST_ACCEPT},
            timeout=10,
        )
        r.raise_for_status()
        return r

    @property
    def digest(self) -> str:
        return str(self.manifest_response.headers["Docker-Content-Digest"])

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            self._manifest = self.manifest_response.json()
        return self._manifest

    @property
    def config(self) -> dict[str, Any]:
        if self._config is None:
            host, _, rest = self.ref.partition("/")
            repo = rest.rpartition(":")[0]
            digest = self.manifest["config"]["digest"]
            r = requests.get(f"http://{host}/v2/{repo}/blobs/{digest}", timeout=10)
            r.raise_for_status()
            self._config = r.json()
        return self._config

    @property
    def container(self) -> dict[str, Any]:
        conf: dict[str, Any] = self.config.get("config") or {}
        return conf

    @property
    def rootfs(self) -> Path:
        """The pushed image unpacked by skopeo + umoci (as root, so owners are kept)."""
        if self._rootfs is None:
            self._rootfs = self.harness.unpack(self.ref)
        return self._rootfs


class E2E:
    def __init__(self, registry_host: str, base: str, work: Path) -> None:
        self.registry = registry_host
        self.base = base
        self.work = work
        self.counter = 0

    def build(
        self,
        name: str,
        dockerfile: str,
        files: Mapping[str, str | bytes] | None = None,
        *,
        args: Sequence[str] = (),
        push: bool = True,
        context: Path | None = None,
    ) -> Built:
        """Write a context with `files` and the Dockerfile ({base} replaced), build it to
        <registry>/e2e/<name>:latest through executor_main and return the outcome."""
        self.counter += 1
        ctx = context or (self.work / f"{name}-{self.counter}")
        ctx.mkdir(parents=True, exist_ok=True)
        for rel, content in (files or {}).items():
            path = ctx / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        (ctx / "Dockerfile").write_text(dockerfile.replace("{base}", self.base))
        ref = f"{self.registry}/e2e/{name}:latest"
        argv = [
            "--context",
            str(ctx),
            "--dockerfile",
            str(ctx / "Dockerfile"),
            "--insecure",
            "--insecure-pull",
            "--log-format",
            "text",
            "--force",
            *(["--destination", ref] if push else []),
            *args,
        ]
        env = {
            "HOME": str(self.work),
            "DOCKER_CONFIG": str(self.work / "docker-config"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
            rc = executor_main(argv, env)
        return Built(rc, err.getvalue(), ref, ctx, self)

    def unpack(self, ref: str) -> Path:
        dest = Path(tempfile.mkdtemp(prefix="unpack-", dir=self.work))
        layout = dest / "layout"
        run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                f"docker://{ref}",
                f"oci:{layout}:img",
            ]
        )
        run(["umoci", "unpack", "--image", f"{layout}:img", str(dest / "bundle")])
        return dest / "bundle" / "rootfs"


def run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{argv[0]} failed: {proc.stderr.strip()}")
    return proc.stdout


# ---- filesystem expectations --------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    kind: str  # file, dir, symlink, fifo, char, block
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    content: str | None = None  # file content or link target


def entry(rootfs: Path, path: str) -> Entry:
    host = rootfs / path.lstrip("/")
    st = os.lstat(host)
    if stat.S_ISLNK(st.st_mode):
        return Entry("symlink", 0o777, st.st_uid, st.st_gid, os.readlink(host))
    kind = {
        stat.S_IFREG: "file",
        stat.S_IFDIR: "dir",
        stat.S_IFIFO: "fifo",
        stat.S_IFCHR: "char",
        stat.S_IFBLK: "block",
    }[stat.S_IFMT(st.st_mode)]
    content = host.read_text(errors="replace") if kind == "file" else None
    return Entry(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, content)


def exists(rootfs: Path, path: str) -> bool:
    return os.path.lexists(rootfs / path.lstrip("/"))


def listing(rootfs: Path, path: str) -> list[str]:
    return sorted(os.listdir(rootfs / path.lstrip("/")))


def new_layers(built: Built, base_layer_count: int = 1) -> list[dict[str, Any]]:
    return list(built.manifest["layers"][base_layer_count:])


def history_of(built: Built) -> list[dict[str, Any]]:
    return list(built.config.get("history") or [])


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
