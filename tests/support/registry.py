"""Real CNCF distribution registries (Debian `docker-registry`) for tests.

`start_registry(workdir)` writes a config, starts `docker-registry serve CONFIG` on
127.0.0.1 with a free port, waits until `/v2/` answers and returns a `RunningRegistry`
whose `.stop()` ends that one process by PID. Variants: plain HTTP, TLS (certificate and key
paths), htpasswd users, token auth (realm/service/issuer/root cert bundle) and pull-through
proxy (`proxy_url`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TokenAuthConfig:
    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@dataclass
class RunningRegistry:
    host: str  # "127.0.0.1:PORT"
    scheme: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    ca_cert: Path | None = None
    users: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    import bcrypt

    lines = [
        f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()}"
        for user, pw in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _config_yaml(
    *,
    port: int,
    storage: Path,
    tls: tuple[Path, Path] | None,
    htpasswd: Path | None,
    token: TokenAuthConfig | None,
    proxy_url: str | None,
) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: brickyard-test-secret",
    ]
    if tls:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    if htpasswd:
        lines += ["auth:", "  htpasswd:", "    realm: brickyard-test", f"    path: {htpasswd}"]
    elif token:
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token.realm}",
            f"    service: {token.service}",
            f"    issuer: {token.issuer}",
            f"    rootcertbundle: {token.rootcertbundle}",
        ]
    if proxy_url:
        lines += ["proxy:", f"  remoteurl: {proxy_url}"]
    return "\n".join(lines) + "\n"


def start_registry(
    workdir: Path,
    *,
    tls: tuple[Path, Path] | None = None,
    ca_cert: Path | None = None,
    users: dict[str, str] | None = None,
    token: TokenAuthConfig | None = None,
    proxy_url: str | None = None,
    timeout: float = 20.0,
) -> RunningRegistry:
    """Start one registry; raises RuntimeError with its log if it does not answer."""
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    htpasswd = write_htpasswd(workdir / "htpasswd", users) if users else None
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(
            _config_yaml(
                port=port,
                storage=storage,
                tls=tls,
                htpasswd=htpasswd,
                token=token,
                proxy_url=proxy_url,
            )
        )
        log_path = workdir / "registry.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        # Proxies from the environment must not capture 127.0.0.1 (pull-through upstream).
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        reg = RunningRegistry(
            host=f"127.0.0.1:{port}",
            scheme="https" if tls else "http",
            root=workdir,
            process=proc,
            log_path=log_path,
            ca_cert=ca_cert,
            users=dict(users or {}),
        )
        if _wait_ready(reg, timeout):
            return reg
        reg.stop()
        last_error = reg.log()[-2000:]
    raise RuntimeError(f"docker-registry did not start: {last_error}")


def _wait_ready(reg: RunningRegistry, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    verify: bool | str = str(reg.ca_cert) if reg.ca_cert else False
    while time.monotonic() < deadline:
        if reg.process.poll() is not None:
            return False
        with contextlib.suppress(requests.RequestException):
            r = requests.get(f"{reg.url}/v2/", timeout=2, verify=verify)
            if r.status_code in (200, 401):
                return True
        time.sleep(0.05)
    return False
