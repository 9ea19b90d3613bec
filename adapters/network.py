"""Custom CA and proxy settings from the CI environment, as executor flags and env.

Proxies must reach both the engine (its requests honour http(s)_proxy from the env it is
given) and RUN steps (as build args, which Docker treats as predefined ARGs); kaniko#2252
shows that a proxy only in config.json is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from adapters.auth import strip_port

PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def proxy_env(env: Mapping[str, str]) -> dict[str, str]:
    """The proxy variables set in `env`, in both spellings (tools differ in which they read)."""
    out: dict[str, str] = {}
    for name in ("http_proxy", "https_proxy", "no_proxy"):
        value = env.get(name) or env.get(name.upper())
        if value:
            out[name] = value
            out[name.upper()] = value
    return out


def proxy_build_args(env: Mapping[str, str]) -> list[str]:
    """`KEY=VALUE` build args for the proxies (Docker's predefined proxy ARGs)."""
    return [f"{k}={v}" for k, v in proxy_env(env).items()]


def ca_registries(env: Mapping[str, str]) -> list[str]:
    """Registries the CI's own CA file should be trusted for (GitLab: registry, proxy, server)."""
    hosts: list[str] = []
    for name in ("CI_REGISTRY", "CI_DEPENDENCY_PROXY_SERVER", "CI_SERVER_HOST"):
        if env.get(name):
            host = env[name] if name == "CI_REGISTRY" else strip_port(env[name])
            if host not in hosts:
                hosts.append(host)
    return hosts


def certificate_flags(env: Mapping[str, str], extra_registries: Iterable[str] = ()) -> list[str]:
    """`--registry-certificate host=path` for CI_SERVER_TLS_CA_FILE or BRICKYARD_CA_FILE."""
    ca_file = env.get("BRICKYARD_CA_FILE") or env.get("CI_SERVER_TLS_CA_FILE", "")
    if not ca_file:
        return []
    hosts = ca_registries(env)
    hosts += [h for h in extra_registries if h and h not in hosts]
    return [f"--registry-certificate={host}={ca_file}" for host in hosts]
