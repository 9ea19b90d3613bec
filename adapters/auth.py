"""Registry credentials from CI variables, written to a private docker `config.json` (0600).

The file is built as data ({"auths": {registry: {"auth": base64(user:pass)}}}) from:
an existing docker config (a mounted Jenkins secret, docker/login-action's ~/.docker, GitLab's
DOCKER_AUTH_CONFIG), the CI's own registry login, GitLab's dependency proxy, and an extra
login given as BRICKYARD_REGISTRY[_USER|_PASSWORD]. Secrets never appear in messages.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.ci import CI
from engine.errors import AdapterError


@dataclass(frozen=True)
class RegistryLogin:
    registry: str
    username: str
    password: str = field(repr=False)
    source: str = ""  # which variables it came from, for messages


@dataclass(frozen=True)
class AuthPlan:
    logins: tuple[RegistryLogin, ...]
    base_config: dict[str, Any]
    problems: tuple[str, ...] = ()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Passwords, the base64 auth config.json gets for each login (a log echoing the
        config or an Authorization header must not show it), and the existing config's."""
        from adapters.logsections import docker_config_secrets

        found: list[str] = []
        for login in self.logins:
            if login.password:
                found.append(login.password)
                raw = f"{login.username}:{login.password}".encode()
                found.append(base64.b64encode(raw).decode())
        found += docker_config_secrets(self.base_config)
        return tuple(dict.fromkeys(s for s in found if s))


def strip_port(server: str) -> str:
    """`gitlab.example.com:443` -> `gitlab.example.com` (gitlab-org/gitlab#420924).

    Image references through the dependency proxy carry no port, so a config.json key with
    the port never matches them and pulls go out unauthenticated.
    """
    host = server.strip()
    if host.startswith("["):  # [::1]:443
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _protected_hint(env: Mapping[str, str], names: Sequence[str]) -> str:
    ref = env.get("CI_COMMIT_REF_NAME", "this ref")
    joined = " and ".join(names)
    return (
        f"{joined} empty on unprotected ref {ref}: protected CI/CD variables reach only "
        "protected branches and tags; protect the ref or unprotect the variable"
    )


def _extra_login(env: Mapping[str, str], ci: CI, problems: list[str]) -> list[RegistryLogin]:
    registry = env.get("BRICKYARD_REGISTRY", "").strip()
    if not registry:
        return []
    user = env.get("BRICKYARD_REGISTRY_USER", "")
    password = env.get("BRICKYARD_REGISTRY_PASSWORD", "")
    if user and password:
        return [RegistryLogin(registry, user, password, "BRICKYARD_REGISTRY_USER/_PASSWORD")]
    empty = [
        n
        for n, v in (("BRICKYARD_REGISTRY_USER", user), ("BRICKYARD_REGISTRY_PASSWORD", password))
        if not v
    ]
    if ci is CI.GITLAB and env.get("CI_COMMIT_REF_PROTECTED") == "false":
        problems.append(_protected_hint(env, empty))
    else:
        problems.append(f"{' and '.join(empty)} empty: no login for {registry}")
    return []


def gitlab_logins(env: Mapping[str, str], problems: list[str]) -> list[RegistryLogin]:
    logins: list[RegistryLogin] = []
    registry = env.get("CI_REGISTRY", "")
    user, password = env.get("CI_REGISTRY_USER", ""), env.get("CI_REGISTRY_PASSWORD", "")
    if registry and user and password:
        logins.append(RegistryLogin(registry, user, password, "CI_REGISTRY_USER/_PASSWORD"))
    elif registry:
        problems.append(
            f"CI_REGISTRY_USER/CI_REGISTRY_PASSWORD empty: no login for {registry} "
            "(is the container registry enabled for this project?)"
        )
    proxy = env.get("CI_DEPENDENCY_PROXY_SERVER", "")
    p_user = env.get("CI_DEPENDENCY_PROXY_USER", "")
    p_password = env.get("CI_DEPENDENCY_PROXY_PASSWORD", "")
    if proxy and p_user and p_password:
        # Keyed without the port (what `FROM gitlab.example.com/group/dependency_proxy/...`
        # looks up), and also with it for references built from the *_IMAGE_PREFIX variables,
        # which do carry the port.
        for host in dict.fromkeys((strip_port(proxy), proxy.strip())):
            logins.append(RegistryLogin(host, p_user, p_password, "CI_DEPENDENCY_PROXY_USER"))
    return logins


def github_logins(env: Mapping[str, str], token: str) -> list[RegistryLogin]:
    """ghcr.io with the workflow token (actor as user name, as docker/login-action does)."""
    if not token:
        return []
    actor = env.get("GITHUB_ACTOR") or env.get("GITHUB_REPOSITORY_OWNER") or "github-actions"
    return [RegistryLogin("ghcr.io", actor, token, "github-token")]


def _load_json(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AdapterError(
            f"{what} is not valid JSON (line {getattr(exc, 'lineno', '?')})"
        ) from None
    if not isinstance(data, dict):
        raise AdapterError(f"{what} is not a JSON object")
    return data


def existing_docker_config(env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The docker config the job already has, and where it came from ("" if none).

    Order: DOCKER_AUTH_CONFIG (GitLab's documented variable holding the JSON), the file named
    by BRICKYARD_DOCKER_CONFIG (a mounted secret), $DOCKER_CONFIG/config.json,
    /kaniko/.docker/config.json (kaniko's mount point), $HOME/.docker/config.json.
    """
    if env.get("DOCKER_AUTH_CONFIG", "").strip():
        return _load_json(env["DOCKER_AUTH_CONFIG"], "DOCKER_AUTH_CONFIG"), "DOCKER_AUTH_CONFIG"
    candidates: list[Path] = []
    if env.get("BRICKYARD_DOCKER_CONFIG"):
        given = Path(env["BRICKYARD_DOCKER_CONFIG"])
        candidates.append(given / "config.json" if given.is_dir() else given)
        if not candidates[-1].is_file():
            raise AdapterError(f"BRICKYARD_DOCKER_CONFIG: {given} has no config.json")
    if env.get("DOCKER_CONFIG"):
        candidates.append(Path(env["DOCKER_CONFIG"]) / "config.json")
    candidates.append(Path("/kaniko/.docker/config.json"))
    if env.get("HOME"):
        candidates.append(Path(env["HOME"]) / ".docker" / "config.json")
    for path in candidates:
        if path.is_file():
            return _load_json(path.read_text(encoding="utf-8"), str(path)), str(path)
    return {}, ""


def plan_auth(
    ci: CI, env: Mapping[str, str], *, github_token: str = "", base: dict[str, Any] | None = None
) -> AuthPlan:
    problems: list[str] = []
    if base is None:
        base, _ = existing_docker_config(env)
    logins: list[RegistryLogin] = []
    if ci is CI.GITLAB:
        logins += gitlab_logins(env, problems)
    elif ci is CI.GITHUB:
        logins += github_logins(env, github_token)
    logins += _extra_login(env, ci, problems)
    return AuthPlan(tuple(logins), base, tuple(problems))


def docker_config(plan: AuthPlan) -> dict[str, Any]:
    config = json.loads(json.dumps(plan.base_config))  # deep copy of plain JSON data
    auths = config.setdefault("auths", {})
    for login in plan.logins:
        token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
        auths[login.registry] = {"auth": token}
    return config


def write_docker_config(config: Mapping[str, Any], directory: Path | None = None) -> Path:
    """Write config.json readable by the owner only; returns the directory (DOCKER_CONFIG)."""
    target = directory or Path(tempfile.mkdtemp(prefix="brickyard-docker-"))
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".config.", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(config, fh, indent=2)
        os.replace(tmp, target / "config.json")
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise AdapterError(f"cannot write docker config in {target}: {exc.strerror}") from None
    return target
