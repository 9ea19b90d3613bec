"""The build's pooled session: one TLS context per trust setting, verification unchanged."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from engine.build.httpsession import SharedTLSAdapter, pooled_session
from tests.support.registry import RunningRegistry, TlsFiles, make_tls, start_registry


@pytest.fixture(scope="module")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningRegistry, TlsFiles]]:
    work = tmp_path_factory.mktemp("session-tls")
    tls = make_tls(work / "tls")
    reg = start_registry(work / "reg", tls=(tls.server_cert, tls.server_key), ca_cert=tls.ca_cert)
    try:
        yield reg, tls
    finally:
        reg.stop()


def _key_attrs(adapter: SharedTLSAdapter, verify: object) -> dict[str, object]:
    req = requests.Request("GET", "https://127.0.0.1:1/v2/").prepare()
    return dict(adapter.build_connection_pool_key_attributes(req, verify)[1])


def test_one_context_per_trust_setting(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    adapter = SharedTLSAdapter()
    insecure = _key_attrs(adapter, False)
    assert insecure["ssl_context"] is _key_attrs(adapter, False)["ssl_context"]
    ctx = insecure["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and not ctx.check_hostname
    bundle = _key_attrs(adapter, str(tls.ca_cert))
    assert "ca_certs" not in bundle  # loaded once into the shared context
    ctx = bundle["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.check_hostname
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert bundle["ssl_context"] is _key_attrs(adapter, str(tls.ca_cert))["ssl_context"]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_still_happens(tls_registry: tuple[RunningRegistry, TlsFiles]) -> None:
    reg, tls = tls_registry
    url = f"https://{reg.host}/v2/"
    with pooled_session() as s:
        assert s.get(url, verify=str(tls.ca_cert), timeout=10).status_code == 200
        assert s.get(url, verify=False, timeout=10).status_code == 200
        other = make_tls(Path(str(tls.ca_cert)).parent.parent / "other", common_name="other CA")
        with pytest.raises(requests.exceptions.SSLError):
            s.get(url, verify=str(other.ca_cert), timeout=10)
        # connections are pooled: many requests, one connection per trust setting
        for _ in range(5):
            s.get(url, verify=str(tls.ca_cert), timeout=10)
        pools = [p for p in s.get_adapter(url).poolmanager.pools._container.values()]
        assert all(p.num_connections <= 1 for p in pools)
