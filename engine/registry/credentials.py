"""Where registry credentials come from, in kaniko's order:

1. Docker's config.json (`$DOCKER_CONFIG/config.json`; kaniko's `/kaniko/.docker`; `~/.docker`):
   `credHelpers[host]`, then `credsStore`, then `auths` (`auth` base64 or username/password,
   `identitytoken`, `registrytoken`; Docker Hub under `https://index.docker.io/v1/`).
2. GitLab's `CI_REGISTRY` / `CI_REGISTRY_USER` / `CI_REGISTRY_PASSWORD` for that one host.
3. Anonymous.

Credential helpers speak the docker-credential-* protocol: `docker-credential-NAME get`, the
server URL on stdin, JSON `{"ServerURL", "Username", "Secret"}` on stdout.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from engine.errors import AuthError
from engine.registry.reference import DOCKER_HUB, DOCKER_HUB_ALIASES, DOCKER_HUB_AUTH_KEY

KANIKO_DOCKER_CONFIG = Path("/kaniko/.docker")
IDENTITY_TOKEN_USER = "<token>"  # helpers return this user name for identity tokens


@dataclass(frozen=True)
class Credential:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)  # OAuth2 refresh token
    registry_token: str = field(default="", repr=False)  # bearer token used as is
    source: str = ""  # "config.json", "helper docker-credential-x", "CI_REGISTRY"

    @property
    def has_basic(self) -> bool:
        return bool(self.username and self.password)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every string that would give the credential away, the Basic header value too (a
        registry echoing our Authorization header must not get it into a message)."""
        basic = ""
        if self.username and self.password:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return tuple(
            s for s in (self.password, self.identity_token, self.registry_token, basic) if s
        )


# Runs a helper: (program, argument, stdin) -> (exit status, stdout, stderr).
HelperRunner = Callable[[str, str, str], tuple[int, str, str]]


def _run_helper(program: str, arg: str, stdin: str, env: Mapping[str, str]) -> tuple[int, str, str]:
    path = shutil.which(program, path=env.get("PATH", os.defpath))
    if path is None:
        raise AuthError(f"credential helper {program} not found on PATH")
    proc = subprocess.run(
        [path, arg], input=stdin, capture_output=True, text=True, env=dict(env), timeout=60
    )
    return proc.returncode, proc.stdout, proc.stderr


def docker_config_path(env: Mapping[str, str]) -> Path | None:
    """config.json location: $DOCKER_CONFIG (a dir, or the file itself), kaniko's
    /kaniko/.docker, then ~/.docker."""
    if env.get("DOCKER_CONFIG"):
        p = Path(env["DOCKER_CONFIG"])
        return p if p.name == "config.json" and not p.is_dir() else p / "config.json"
    kaniko = KANIKO_DOCKER_CONFIG / "config.json"
    if kaniko.is_file():
        return kaniko
    home = env.get("HOME")
    return Path(home) / ".docker" / "config.json" if home else None


def _host_of_key(key: str) -> str:
    """config.json keys may be "host", "https://host", "https://host/v1/"."""
    k = key.strip()
    if "://" in k:
        k = urlsplit(k).netloc
    k = k.split("/", 1)[0].lower()
    return DOCKER_HUB if k in DOCKER_HUB_ALIASES else k


def _server_url(registry: str) -> str:
    return DOCKER_HUB_AUTH_KEY if registry == DOCKER_HUB else registry


class Keychain:
    """Resolves a Credential per registry host; results are memoised."""

    def __init__(
        self, env: Mapping[str, str], *, helper_runner: HelperRunner | None = None
    ) -> None:
        self._env = dict(env)
        self._runner: HelperRunner = helper_runner or (
            lambda prog, arg, stdin: _run_helper(prog, arg, stdin, self._env)
        )
        self._config = self._load_config()
        self._memo: dict[str, Credential | None] = {}

    def _load_config(self) -> dict[str, object]:
        path = docker_config_path(self._env)
        if path is None or not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise AuthError(f"cannot read docker config {path}: {type(e).__name__}") from None
        if not isinstance(data, dict):
            raise AuthError(f"docker config {path} is not a JSON object")
        return data

    def resolve(self, registry: str) -> Credential | None:
        host = _host_of_key(registry)
        if host not in self._memo:
            self._memo[host] = self._lookup(host)
        return self._memo[host]

    def _lookup(self, host: str) -> Credential | None:
        helpers = self._config.get("credHelpers")
        if isinstance(helpers, dict):
            for key, helper in helpers.items():
                if _host_of_key(key) == host and helper:
                    return self._from_helper(str(helper), host)
        store = self._config.get("credsStore")
        if isinstance(store, str) and store:
            cred = self._from_helper(store, host)
            if cred:
                return cred
        auths = self._config.get("auths")
        if isinstance(auths, dict):
            for key, entry in auths.items():
                if _host_of_key(key) == host and isinstance(entry, dict):
                    cred = _from_auth_entry(entry, key)
                    if cred:
                        return cred
        ci = self._env.get("CI_REGISTRY", "")
        if ci and _host_of_key(ci) == host and self._env.get("CI_REGISTRY_USER"):
            return Credential(
                self._env["CI_REGISTRY_USER"],
                self._env.get("CI_REGISTRY_PASSWORD", ""),
                source="CI_REGISTRY",
            )
        return None

    def _from_helper(self, helper: str, host: str) -> Credential | None:
        program = f"docker-credential-{helper}"
        status, out, err = self._runner(program, "get", _server_url(host))
        if status != 0:
            if "credentials not found" in (out + err).lower():
                return None
            raise AuthError(f"credential helper {program} failed for {host} (exit {status})")
        try:
            data = json.loads(out)
            user, secret = str(data.get("Username", "")), str(data.get("Secret", ""))
        except (ValueError, AttributeError):
            raise AuthError(f"credential helper {program} returned malformed output") from None
        if not secret:
            return None
        if user == IDENTITY_TOKEN_USER:
            return Credential(identity_token=secret, source=program)
        return Credential(user, secret, source=program)


def _from_auth_entry(entry: Mapping[str, object], key: str) -> Credential | None:
    user = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=False).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError(f"docker config: malformed auth for {key}") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"docker config: malformed auth for {key}")
    identity = str(entry.get("identitytoken") or "")
    registry_token = str(entry.get("registrytoken") or "")
    if not (user or password or identity or registry_token):
        return None
    return Credential(user, password, identity, registry_token, source="config.json")
