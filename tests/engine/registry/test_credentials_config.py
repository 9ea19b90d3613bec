from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.errors import AuthError, UsageError
from engine.httpclient import no_proxy_matches, proxy_url
from engine.registry.config import Mirror, RegistryConfig, is_local_host
from engine.registry.credentials import Keychain, docker_config_path
from engine.registry.transport import retry_after_seconds


def write_config(dir_: Path, data: dict) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / "config.json").write_text(json.dumps(data))
    return dir_


def test_auths_forms_and_docker_hub_key(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "d",
        {
            "auths": {
                "https://index.docker.io/v1/": {
                    "auth": base64.b64encode(b"hubuser:hub:pw").decode()
                },
                "ghcr.io": {"username": "gh", "password": "ghpw"},
                "https://quay.io/v1/": {"identitytoken": "idtok"},
                "reg.example:5000": {"registrytoken": "regtok"},
            }
        },
    )
    kc = Keychain({"DOCKER_CONFIG": str(cfg)})
    hub = kc.resolve("docker.io")
    assert hub is not None and (hub.username, hub.password) == ("hubuser", "hub:pw")
    assert kc.resolve("index.docker.io") == hub
    gh = kc.resolve("ghcr.io")
    assert gh is not None and (gh.username, gh.password) == ("gh", "ghpw")
    quay = kc.resolve("quay.io")
    assert quay is not None and quay.identity_token == "idtok"
    reg = kc.resolve("reg.example:5000")
    assert reg is not None and reg.registry_token == "regtok"
    assert kc.resolve("other.example") is None


def test_docker_config_location_rules(tmp_path: Path) -> None:
    assert docker_config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    f = tmp_path / "config.json"
    f.write_text("{}")
    assert docker_config_path({"DOCKER_CONFIG": str(f)}) == f
    assert docker_config_path({"HOME": "/home/x"}) == Path("/home/x/.docker/config.json")


def make_helper(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_cred_helpers_and_store_via_helper_protocol(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    # The helper echoes the server URL it was asked for, proving the stdin protocol.
    make_helper(
        bin_dir,
        "pass",
        'read url; printf \'{"ServerURL":"%s","Username":"u-%s","Secret":"s"}\' "$url" "$url"\n',
    )
    make_helper(
        bin_dir,
        "store",
        'read url; if [ "$url" = "https://index.docker.io/v1/" ]; then '
        'echo \'{"Username":"<token>","Secret":"idt"}\'; '
        'else echo "credentials not found in native keychain"; exit 1; fi\n',
    )
    cfg = write_config(
        tmp_path / "d",
        {
            "credHelpers": {"ghcr.io": "pass"},
            "credsStore": "store",
            "auths": {"fallback.example": {"username": "f", "password": "p"}},
        },
    )
    env = {"DOCKER_CONFIG": str(cfg), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    kc = Keychain(env)
    gh = kc.resolve("ghcr.io")
    assert gh is not None and gh.username == "u-ghcr.io" and gh.password == "s"
    hub = kc.resolve("docker.io")
    assert hub is not None and hub.identity_token == "idt" and not hub.username
    fb = kc.resolve("fallback.example")  # store says "not found": auths are used
    assert fb is not None and fb.username == "f"


def test_missing_or_failing_helper_is_an_auth_error(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    make_helper(bin_dir, "broken", "echo boom >&2; exit 3\n")
    cfg = write_config(
        tmp_path / "d", {"credHelpers": {"a.example": "broken", "b.example": "absent"}}
    )
    kc = Keychain({"DOCKER_CONFIG": str(cfg), "PATH": str(bin_dir)})
    with pytest.raises(AuthError, match=r"docker-credential-broken failed for a\.example"):
        kc.resolve("a.example")
    with pytest.raises(AuthError, match="docker-credential-absent not found"):
        kc.resolve("b.example")


def test_ci_registry_builtin_helper(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "CI_REGISTRY": "registry.gitlab.example:5050",
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": "job-token",
    }
    kc = Keychain(env)
    cred = kc.resolve("registry.gitlab.example:5050")
    assert cred is not None and cred.password == "job-token" and cred.source == "CI_REGISTRY"
    assert kc.resolve("docker.io") is None


def test_malformed_config_errors_do_not_leak(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "d",
        {"auths": {"x.example": {"auth": base64.b64encode(b"nocolon-secret").decode()}}},
    )
    with pytest.raises(AuthError) as err:
        Keychain({"DOCKER_CONFIG": str(cfg)}).resolve("x.example")
    assert "secret" not in str(err.value) and "x.example" in str(err.value)


def test_registry_config_from_options_duck_typed() -> None:
    opts = SimpleNamespace(
        insecure=True,
        insecure_pull=False,
        insecure_registry=("plain.example",),
        skip_tls_verify=False,
        skip_tls_verify_pull=True,
        skip_tls_verify_registry=("self.example",),
        registry_certificate={"ca.example": "/ca.pem"},
        registry_client_cert={"mtls.example": "/c.pem,/k.pem"},
        registry_mirror=("mirror.gcr.io", "harbor.example/proxy;second.example"),
        registry_map={"ghcr.io": ("ghcr-mirror.example", "http://plain-mirror.example")},
        skip_default_registry_fallback=True,
        image_download_retry=3,
        push_retry=2,
        push_ignore_immutable_tag_errors=True,
        skip_push_permission_check=True,
    )
    cfg = RegistryConfig.from_options(opts, {"HTTPS_PROXY": "http://proxy:3128"})
    assert cfg.insecure("any.example", "push") and not cfg.insecure("any.example", "pull")
    assert cfg.insecure("plain.example", "pull")
    assert cfg.insecure("plain-mirror.example", "pull")  # written with http://
    assert (
        cfg.skip_tls("x", "pull")
        and not cfg.skip_tls("x", "push")
        and cfg.skip_tls("self.example", "push")
    )
    assert cfg.client_certs["mtls.example"] == ("/c.pem", "/k.pem")
    assert [m.host for m in cfg.mirrors_for("index.docker.io")] == [
        "mirror.gcr.io",
        "harbor.example",
        "second.example",
    ]
    assert cfg.mirrors_for("docker.io")[1] == Mirror("harbor.example", "proxy")
    assert [m.host for m in cfg.mirrors_for("ghcr.io")] == [
        "ghcr-mirror.example",
        "plain-mirror.example",
    ]
    assert (cfg.download_retries, cfg.push_retries) == (3, 2)
    assert (
        cfg.skip_default_fallback and cfg.push_ignore_immutable and cfg.skip_push_permission_check
    )
    with pytest.raises(UsageError, match=r"mtls\.example"):
        RegistryConfig.from_options(
            SimpleNamespace(registry_client_cert={"mtls.example": "/only"}), {}
        )
    assert RegistryConfig.from_options(object(), {}).push_retries == 0  # all defaults


def test_local_hosts_and_proxies() -> None:
    assert (
        is_local_host("127.0.0.1:5000") and is_local_host("localhost") and is_local_host("10.1.2.3")
    )
    assert not is_local_host("ghcr.io") and not is_local_host("8.8.8.8:443")
    env = {
        "HTTPS_PROXY": "http://proxy:3128",
        "NO_PROXY": "internal.example,.corp,10.0.0.0/8,reg:5000",
    }
    assert proxy_url("https://ghcr.io/v2/", env) == "http://proxy:3128"
    assert proxy_url("http://ghcr.io/v2/", env) is None
    for host in ("internal.example", "a.internal.example", "x.corp", "10.2.3.4", "reg:5000"):
        assert no_proxy_matches(host, env["NO_PROXY"]), host
    assert not no_proxy_matches("reg:6000", env["NO_PROXY"])
    assert no_proxy_matches("anything", "*")


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_registry_config_from_real_build_options() -> None:
    from engine.options import parse_build_options

    opts = parse_build_options(
        [
            "--no-push",
            "--registry-mirror",
            "m.example",
            "--registry-map",
            "ghcr.io=ghcr-mirror.example;quay.io=quay-mirror.example",
            "--insecure-registry",
            "plain.example",
            "--registry-client-cert",
            "h.example=/c.pem,/k.pem",
            "--push-retry",
            "2",
        ],
        {"KANIKO_REGISTRY_MIRROR": "env-mirror.example"},
    )
    cfg = RegistryConfig.from_options(opts, {})
    assert [m.host for m in cfg.mirrors_for("docker.io")] == ["m.example", "env-mirror.example"]
    assert [m.host for m in cfg.mirrors_for("quay.io")] == ["quay-mirror.example"]
    assert cfg.insecure("plain.example", "pull")
    assert cfg.client_certs == {"h.example": ("/c.pem", "/k.pem")}
    assert cfg.push_retries == 2


def test_reprs_never_show_secrets() -> None:
    from engine.registry.auth import HttpRequest

    cfg = RegistryConfig(env={"CI_REGISTRY_PASSWORD": "top-secret-pw"})
    assert "top-secret-pw" not in repr(cfg)
    req = HttpRequest(
        "GET",
        "https://r/v2/",
        headers={"Authorization": "Bearer top-secret-tok"},
        form={"refresh_token": "top-secret-ref"},
    )
    assert "top-secret" not in repr(req)


def test_moved_kaniko_dir_holds_the_docker_config(tmp_path: Path) -> None:
    """kaniko re-points DOCKER_CONFIG at <kaniko-dir>/.docker when --kaniko-dir moves; where
    no config.json is there, the usual locations still count."""
    from engine.options import parse_build_options

    kaniko = tmp_path / "k"
    (kaniko / ".docker").mkdir(parents=True)
    auth = base64.b64encode(b"moved:moved-pw").decode()
    (kaniko / ".docker/config.json").write_text(
        json.dumps({"auths": {"r.example": {"auth": auth}}})
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    auth = base64.b64encode(b"env:env-pw").decode()
    (elsewhere / "config.json").write_text(json.dumps({"auths": {"r.example": {"auth": auth}}}))
    env = {"DOCKER_CONFIG": str(elsewhere)}
    opts = parse_build_options(["--no-push", f"--kaniko-dir={kaniko}"], env, euid=0)
    cred = Keychain(RegistryConfig.from_options(opts, env).env).resolve("r.example")
    assert cred is not None and cred.username == "moved"
    (kaniko / ".docker/config.json").unlink()
    opts = parse_build_options(["--no-push", f"--kaniko-dir={kaniko}"], env, euid=0)
    cred = Keychain(RegistryConfig.from_options(opts, env).env).resolve("r.example")
    assert cred is not None and cred.username == "env"
