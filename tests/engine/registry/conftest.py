"""Registries with auth for the registry tests: TLS + htpasswd, token auth, pull-through."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.registry import (
    RunningRegistry,
    TlsFiles,
    TokenIssuer,
    make_tls,
    start_registry,
)

TLS_USER = ("alice", "wonderland-pw")


@dataclass(frozen=True)
class TlsRegistry:
    registry: RunningRegistry
    tls: TlsFiles


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistry]:
    work = tmp_path_factory.mktemp("tls-registry")
    tls = make_tls(work / "tls")
    reg = start_registry(
        work / "reg",
        tls=(tls.server_cert, tls.server_key),
        ca_cert=tls.ca_cert,
        users=dict([TLS_USER]),
    )
    try:
        yield TlsRegistry(reg, tls)
    finally:
        reg.stop()


@dataclass(frozen=True)
class TokenRegistry:
    registry: RunningRegistry
    issuer: TokenIssuer


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    work = tmp_path_factory.mktemp("token-registry")
    issuer = TokenIssuer(
        work / "issuer",
        {
            "writer": ("writer-pw", {"*": {"pull", "push"}}),
            "reader": ("reader-pw", {"*": {"pull"}}),
        },
        anonymous_acl={"public/busybox": {"pull"}},
        field_name="access_token",
    ).start()
    try:
        reg = start_registry(work / "reg", token=issuer.auth_config())
        try:
            yield TokenRegistry(reg, issuer)
        finally:
            reg.stop()
    finally:
        issuer.stop()


@pytest.fixture(scope="session")
def mirror_registry(
    registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """A pull-through cache (`proxy.remoteurl`) in front of the plain `registry`."""
    reg = start_registry(tmp_path_factory.mktemp("mirror"), proxy_url=registry.url)
    try:
        yield reg
    finally:
        reg.stop()
