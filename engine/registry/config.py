"""Registry settings gathered from the build options and the environment.

`RegistryConfig.from_options(opts, env)` reads BuildOptions duck-typed (getattr with kaniko's
defaults), so any object with the snake_case flag names works.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.errors import UsageError
from engine.registry.reference import DOCKER_HUB, normalize_registry

Purpose = Literal["pull", "push"]


@dataclass(frozen=True)
class Mirror:
    """A mirror host and an optional repository prefix ("mirror.example/dockerhub")."""

    host: str
    prefix: str = ""
    scheme: str | None = None  # "http" when written as http://host

    @classmethod
    def parse(cls, text: str) -> Mirror:
        t = text.strip().rstrip("/")
        scheme = None
        if "://" in t:
            scheme, t = t.split("://", 1)
        host, _, prefix = t.partition("/")
        if "@" in host:
            # never echoed: the part before @ is a login; it belongs in the docker config
            shown = f"{scheme + '://' if scheme else ''}***@{host.rpartition('@')[2]}"
            raise UsageError(
                f"invalid registry mirror {shown!r}: credentials go in the docker config"
            )
        if scheme is not None and scheme not in ("http", "https"):
            raise UsageError(f"invalid registry mirror {text!r}: scheme must be http(s)")
        if not host:
            raise UsageError(f"invalid registry mirror {text!r}")
        return cls(normalize_registry(host), prefix.strip("/"), scheme)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # per idempotent request, including the first
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0


def _hostset(values: Sequence[str]) -> frozenset[str]:
    return frozenset(normalize_registry(v.strip()) for v in values if v.strip())


def is_local_host(host: str) -> bool:
    """localhost, loopback and RFC 1918 hosts: plain HTTP is tried after HTTPS (as ggcr)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private


@dataclass(frozen=True)
class RegistryConfig:
    insecure_push: bool = False
    insecure_pull: bool = False
    insecure_registries: frozenset[str] = frozenset()
    skip_tls_push: bool = False
    skip_tls_pull: bool = False
    skip_tls_registries: frozenset[str] = frozenset()
    certificates: Mapping[str, str] = field(default_factory=dict)  # host -> CA path
    client_certs: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    registry_map: Mapping[str, tuple[Mirror, ...]] = field(default_factory=dict)
    skip_default_fallback: bool = False
    download_retries: int = 0
    push_retries: int = 0
    push_ignore_immutable: bool = False
    skip_push_permission_check: bool = False
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    retry: RetryPolicy = RetryPolicy()

    @classmethod
    def from_options(cls, opts: Any, env: Mapping[str, str]) -> RegistryConfig:
        def get(name: str, default: Any) -> Any:
            value = getattr(opts, name, default)
            return default if value is None else value

        certs = {
            normalize_registry(h): str(p) for h, p in dict(get("registry_certificate", {})).items()
        }
        client: dict[str, tuple[str, str]] = {}
        for host, pair in dict(get("registry_client_cert", {})).items():
            parts = (
                [p.strip() for p in str(pair).split(",")] if isinstance(pair, str) else list(pair)
            )
            if len(parts) != 2 or not all(parts):
                raise UsageError(f"--registry-client-cert for {host}: expected CERT,KEY")
            client[normalize_registry(host)] = (parts[0], parts[1])
        mapping: dict[str, list[Mirror]] = {}
        raw_map = get("registry_map", {})
        for orig, targets in dict(raw_map).items():
            values = [targets] if isinstance(targets, str) else list(targets)
            for v in values:
                for m in str(v).split(";"):
                    if m.strip():
                        mapping.setdefault(normalize_registry(orig), []).append(Mirror.parse(m))
        # kaniko turns each --registry-mirror into "index.docker.io=<mirror>"
        for value in get("registry_mirror", ()):
            for m in str(value).split(";"):
                if m.strip():
                    mapping.setdefault(DOCKER_HUB, []).append(Mirror.parse(m))
        # a mirror written as http://host is spoken to over plain HTTP
        plain = {m.host for ms in mapping.values() for m in ms if m.scheme == "http"}
        # kaniko re-points DOCKER_CONFIG at <kaniko-dir>/.docker when --kaniko-dir moves
        # (options derive `docker_config`); used where a config.json is there, else the
        # usual $DOCKER_CONFIG, /kaniko/.docker, ~/.docker
        moved = str(get("docker_config", "") or "")
        if (
            moved
            and moved != env.get("DOCKER_CONFIG")
            and os.path.isfile(os.path.join(moved, "config.json"))
        ):
            env = {**env, "DOCKER_CONFIG": moved}
        return cls(
            insecure_push=bool(get("insecure", False)),
            insecure_pull=bool(get("insecure_pull", False)),
            insecure_registries=_hostset(get("insecure_registry", ())) | plain,
            skip_tls_push=bool(get("skip_tls_verify", False)),
            skip_tls_pull=bool(get("skip_tls_verify_pull", False)),
            skip_tls_registries=_hostset(get("skip_tls_verify_registry", ())),
            certificates=certs,
            client_certs=client,
            registry_map={k: tuple(v) for k, v in mapping.items()},
            skip_default_fallback=bool(get("skip_default_registry_fallback", False)),
            download_retries=int(get("image_download_retry", 0)),
            push_retries=int(get("push_retry", 0)),
            push_ignore_immutable=bool(get("push_ignore_immutable_tag_errors", False)),
            skip_push_permission_check=bool(get("skip_push_permission_check", False)),
            env=dict(env),
        )

    # ---- per-host decisions ----
    def insecure(self, host: str, purpose: Purpose) -> bool:
        """May this host be spoken to over plain HTTP?"""
        flag = self.insecure_push if purpose == "push" else self.insecure_pull
        return flag or normalize_registry(host) in self.insecure_registries

    def skip_tls(self, host: str, purpose: Purpose) -> bool:
        flag = self.skip_tls_push if purpose == "push" else self.skip_tls_pull
        return flag or normalize_registry(host) in self.skip_tls_registries

    def mirrors_for(self, registry: str) -> tuple[Mirror, ...]:
        return self.registry_map.get(normalize_registry(registry), ())
