"""engine.httpclient against real servers: docker-registry with its own CA, and small local
servers for keep-alive, bodies, redirects, proxies and failures."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.httpclient import (
    BLOCK,
    ConnectError,
    HttpClient,
    HttpError,
    HttpTimeout,
    TLSError,
    proxy_url,
    speaks_tls,
    ssl_context,
)
from tests.engine.httpd import Origin, origin_server, proxy_server, stale_server
from tests.support.registry import RunningRegistry, TlsFiles, make_tls, start_registry


@pytest.fixture(scope="module")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningRegistry, TlsFiles]]:
    work = tmp_path_factory.mktemp("httpclient-tls")
    tls = make_tls(work / "tls")
    reg = start_registry(work / "reg", tls=(tls.server_cert, tls.server_key))
    try:
        yield reg, tls
    finally:
        reg.stop()


@pytest.fixture
def origin() -> Iterator[Origin]:
    with origin_server() as o:
        yield o


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with HttpClient(timeout=(5.0, 10.0)) as c:
        yield c


# ---------------------------------------------------------------- TLS


def test_one_ssl_context_per_trust_setting(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    insecure = ssl_context(False)
    assert insecure is ssl_context(False)
    assert not insecure.check_hostname and insecure.verify_mode == ssl.CERT_NONE
    bundle = ssl_context(str(tls.ca_cert))
    assert bundle is ssl_context(str(tls.ca_cert)) and bundle is not insecure
    assert bundle.check_hostname and bundle.verify_mode == ssl.CERT_REQUIRED
    assert len(bundle.get_ca_certs()) == 1  # that CA file only, not the system store
    system = ssl_context(True)
    assert system is ssl_context(True) and system.verify_mode == ssl.CERT_REQUIRED
    mtls = ssl_context(str(tls.ca_cert), (str(tls.client_cert), str(tls.client_key)))
    assert mtls is not bundle
    with pytest.raises(TLSError, match="cannot load CA file"):
        ssl_context(str(tmp_path / "missing.pem"))


def test_verification_enforced_against_a_tls_registry(
    tls_registry: tuple[RunningRegistry, TlsFiles], client: HttpClient
) -> None:
    reg, tls = tls_registry
    url = f"https://{reg.host}/v2/"
    assert client.request("GET", url, verify=str(tls.ca_cert)).status_code == 200
    assert client.request("GET", url, verify=False).status_code == 200
    other = make_tls(Path(str(tls.ca_cert)).parent.parent / "other", common_name="other CA")
    with pytest.raises(TLSError) as err:
        client.request("GET", url, verify=str(other.ca_cert))
    assert err.value.reason.startswith("TLS certificate verify failed (")
    with pytest.raises(TLSError, match="certificate verify failed"):
        client.request("GET", url, verify=True)  # the system store does not know our CA
    # pooled: many requests, one connection per trust setting
    before = client.connections_opened
    for _ in range(5):
        resp = client.request("GET", url, verify=str(tls.ca_cert))
        assert resp.status_code == 200 and resp.json() == {}
    assert client.connections_opened == before


def test_https_to_a_plain_http_server_says_so(
    registry: RunningRegistry, client: HttpClient
) -> None:
    with pytest.raises(TLSError) as err:
        client.request("GET", f"https://{registry.host}/v2/", verify=False)
    assert err.value.reason == "TLS handshake failed (server speaks plain HTTP?)"


def test_speaks_tls_tells_plain_http_tls_and_unknown(
    registry: RunningRegistry, tls_registry: tuple[RunningRegistry, TlsFiles]
) -> None:
    from tests.support.registry import free_port

    assert speaks_tls("127.0.0.1", registry.port) is False
    assert speaks_tls("127.0.0.1", tls_registry[0].port) is True
    assert speaks_tls("127.0.0.1", free_port()) is None


# ---------------------------------------------------------------- keep-alive pool


def test_connections_are_reused_only_after_the_body_was_read(
    origin: Origin, client: HttpClient
) -> None:
    for _ in range(3):
        assert client.request("GET", f"{origin.url}/bytes/10").content == b"x" * 10
    assert origin.accepted == 1
    resp = client.request("GET", f"{origin.url}/bytes/300000", stream=True)
    assert len(resp.read(1000)) == 1000
    # the first connection is busy with an unread body: a second one is opened
    assert client.request("GET", f"{origin.url}/bytes/5").content == b"xxxxx"
    assert origin.accepted == 2
    resp.close()  # not read to the end: that connection is dropped, not pooled
    client.request("GET", f"{origin.url}/bytes/5")
    client.request("GET", f"{origin.url}/bytes/5")
    assert origin.accepted == 2
    streamed = client.request("GET", f"{origin.url}/bytes/300000", stream=True)
    assert sum(len(c) for c in streamed.iter_content(65536)) == 300000
    client.request("GET", f"{origin.url}/bytes/5")
    assert origin.accepted == 2
    assert len({s.peer_port for s in origin.seen}) == 2


def test_connection_close_and_head_responses(origin: Origin, client: HttpClient) -> None:
    assert client.request("GET", f"{origin.url}/close").content == b"bye"
    assert client.request("HEAD", f"{origin.url}/bytes/50").headers["content-length"] == "50"
    assert client.request("GET", f"{origin.url}/bytes/1").content == b"x"
    assert origin.accepted == 2  # the server closed the first; HEAD's connection was kept


def test_parallel_requests_share_a_bounded_pool(origin: Origin) -> None:
    client = HttpClient(pool_size=2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                assert client.request("GET", f"{origin.url}/bytes/1000").content == b"x" * 1000
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(origin.seen) == 60
    assert origin.accepted <= 60 and sum(len(v) for v in client._pools.values()) <= 2
    client.close()


def test_a_stale_kept_alive_connection_is_retried_once_on_a_fresh_one(
    client: HttpClient,
) -> None:
    with stale_server() as server:
        assert client.request("GET", f"{server.url}/a").content == b"ok"
        assert client.request("PUT", f"{server.url}/b", body=b"data").content == b"ok"
        assert server.accepted == 2 and server.answered == 2
        # a body that cannot be sent again is not retried
        with pytest.raises(ConnectError) as err:
            client.request("PUT", f"{server.url}/c", body=io.BytesIO(b"stream"))
        # closed, or reset when the server closes with the request body unread: either way
        # the request failed on the kept-alive connection and was not sent again
        assert err.value.reason in ("connection closed by the server", "connection reset")
        assert server.accepted == 2


# ---------------------------------------------------------------- bodies


class _Tracking(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, n: int | None = -1) -> bytes:
        self.reads.append(-1 if n is None else n)
        return super().read(n)


def test_bodies_bytes_files_and_iterables(
    origin: Origin, client: HttpClient, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    want = hashlib.sha256(data).hexdigest()
    got = client.request("PUT", f"{origin.url}/echo", body=data).json()
    assert got["sha256"] == want and got["headers"]["content-length"] == str(len(data))
    assert "accept-encoding" not in got["headers"]

    path = tmp_path / "blob"
    path.write_bytes(data)
    with path.open("rb") as f:
        f.seek(100)
        got = client.request("PUT", f"{origin.url}/echo", body=f).json()
    assert got["length"] == len(data) - 100
    assert got["headers"]["content-length"] == str(len(data) - 100)

    tracked = _Tracking(data)
    got = client.request("POST", f"{origin.url}/echo", body=tracked).json()
    assert got["sha256"] == want
    assert tracked.reads and all(0 < n <= BLOCK for n in tracked.reads)  # never read whole
    assert got["headers"]["transfer-encoding"] == "chunked"  # BytesIO: length unknown

    got = client.request("PATCH", f"{origin.url}/echo", body=iter([b"ab", b"", b"cd"])).json()
    assert got["headers"]["transfer-encoding"] == "chunked" and got["length"] == 4

    got = client.request("POST", f"{origin.url}/echo").json()
    assert got["headers"]["content-length"] == "0" and got["length"] == 0

    opened: list[io.BytesIO] = []

    def reopen() -> io.BytesIO:
        opened.append(io.BytesIO(b"again"))
        return opened[-1]

    got = client.request(
        "PUT", f"{origin.url}/echo", body=reopen, headers={"Content-Length": "5"}
    ).json()
    assert got["length"] == 5 and all(f.closed for f in opened)


def test_response_chunked_json_text_and_headers(origin: Origin, client: HttpClient) -> None:
    resp = client.request("GET", f"{origin.url}/chunked", stream=True)
    assert b"".join(resp.iter_content(4)) == b"alpha-beta-gamma"
    resp = client.request("GET", f"{origin.url}/chunked")
    assert resp.text == "alpha-beta-gamma" and resp.url == f"{origin.url}/chunked"
    resp = client.request("GET", f"{origin.url}/echo", headers={"X-Probe": "1"})
    assert resp.headers["CONTENT-TYPE"] == resp.headers.get("content-type") == "application/json"
    assert resp.json()["headers"]["x-probe"] == "1"
    assert client.request("GET", f"{origin.url}/status?code=500").status_code == 500
    loaded = client.request("GET", f"{origin.url}/bytes/10")
    assert loaded.read(3) == b"xxx" and loaded.read(-1) == b"x" * 7 and loaded.read(5) == b""
    assert loaded.content == b"x" * 10  # read() does not eat the loaded body
    assert origin.accepted == 1


def test_a_body_cut_short_raises(origin: Origin, client: HttpClient) -> None:
    resp = client.request("GET", f"{origin.url}/short", stream=True)
    with pytest.raises(ConnectError, match="body cut short"):
        while resp.read(7):
            pass
    with pytest.raises(ConnectError, match="body cut short"):
        client.request("GET", f"{origin.url}/short")


# ---------------------------------------------------------------- redirects


def test_redirects_keep_auth_on_the_same_origin_only(client: HttpClient) -> None:
    with origin_server() as a, origin_server() as b:
        secret = {"Authorization": "Bearer s3cret"}
        same = f"{a.url}/redirect?code=307&to=/echo"
        got = client.request("GET", same, headers=secret).json()
        assert got["headers"]["authorization"] == "Bearer s3cret"
        # localhost vs 127.0.0.1 on another port: a different origin (a storage host)
        other = f"{a.url}/redirect?code=302&to=http://localhost:{b.port}/echo"
        resp = client.request("GET", other, headers=secret)
        assert "authorization" not in resp.json()["headers"]
        assert resp.url == f"http://localhost:{b.port}/echo"
        assert [s.headers.get("Authorization") for s in b.seen] == [None]


def test_303_becomes_get_and_307_resends_the_body(origin: Origin, client: HttpClient) -> None:
    got = client.request("POST", f"{origin.url}/redirect?code=303&to=/echo", body=b"form=1").json()
    assert got["method"] == "GET" and got["length"] == 0
    got = client.request(
        "PUT", f"{origin.url}/redirect?code=307&to=/echo", body=lambda: io.BytesIO(b"payload")
    ).json()
    assert got["method"] == "PUT" and got["length"] == 7
    with pytest.raises(HttpError, match="cannot resend"):
        client.request("PUT", f"{origin.url}/redirect?code=308&to=/echo", body=io.BytesIO(b"x"))
    with pytest.raises(HttpError, match="more than 10 redirects"):
        client.request("GET", f"{origin.url}/loop")
    resp = client.request("GET", f"{origin.url}/loop", allow_redirects=False)
    assert resp.status_code == 302 and resp.headers["Location"] == "/loop"


def test_userinfo_in_the_url_becomes_basic_auth(origin: Origin, client: HttpClient) -> None:
    url = origin.url.replace("://", "://us%40er:p%3Ass@") + "/echo"
    got = client.request("GET", url).json()
    want = "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert got["headers"]["authorization"] == want
    assert origin.seen[-1].path == "/echo"


# ---------------------------------------------------------------- proxies


def test_plain_http_goes_through_the_proxy_in_absolute_form(
    origin: Origin, client: HttpClient
) -> None:
    want = "Basic " + base64.b64encode(b"pu:pp").decode()
    with proxy_server(want_auth=want) as proxy:
        proxied = proxy.url.replace("://", "://pu:pp@")
        got = client.request("GET", f"{origin.url}/echo?x=1", proxy=proxied).json()
        assert got["method"] == "GET"
        assert proxy.seen == [("GET", f"{origin.url}/echo?x=1", want)]
        assert "proxy-authorization" not in got["headers"]
        resp = client.request("GET", f"{origin.url}/echo", proxy=proxy.url)
        assert resp.status_code == 407


def test_https_goes_through_connect_and_still_verifies(
    tls_registry: tuple[RunningRegistry, TlsFiles], client: HttpClient
) -> None:
    reg, tls = tls_registry
    want = "Basic " + base64.b64encode(b"pu:pp").decode()
    with proxy_server(want_auth=want) as proxy:
        proxied = proxy.url.replace("://", "://pu:pp@")
        url = f"https://{reg.host}/v2/"
        assert client.request("GET", url, verify=str(tls.ca_cert), proxy=proxied).json() == {}
        assert client.request("GET", url, verify=str(tls.ca_cert), proxy=proxied).ok
        assert proxy.seen == [("CONNECT", reg.host, want)]  # one tunnel, kept alive
        with pytest.raises(ConnectError, match="proxy refused CONNECT \\(407"):
            client.request("GET", url, verify=str(tls.ca_cert), proxy=proxy.url)
        other = make_tls(Path(str(tls.ca_cert)).parent.parent / "other2", common_name="x")
        with pytest.raises(TLSError, match="certificate verify failed"):
            client.request("GET", url, verify=str(other.ca_cert), proxy=proxied)


def test_proxy_choice_from_env() -> None:
    env = {"HTTPS_PROXY": "http://p:3128", "http_proxy": "http://q:8080", "NO_PROXY": ".corp"}
    assert proxy_url("https://ghcr.io/v2/", env) == "http://p:3128"
    assert proxy_url("http://ghcr.io/v2/", env) == "http://q:8080"
    assert proxy_url("https://reg.corp/v2/", env) is None
    assert proxy_url("https://ghcr.io/v2/", {}) is None


# ---------------------------------------------------------------- failures


def test_failures_have_short_reasons(origin: Origin) -> None:
    from tests.support.registry import free_port

    client = HttpClient(timeout=(2.0, 0.3))
    with pytest.raises(ConnectError) as err:
        client.request("GET", f"http://127.0.0.1:{free_port()}/")
    assert err.value.reason == "connection refused"
    with pytest.raises(ConnectError) as err:
        client.request("GET", "http://no-such-host.invalid/")
    assert err.value.reason == "unknown host"
    with pytest.raises(HttpTimeout) as timeout:
        client.request("GET", f"{origin.url}/slow?s=1")
    assert timeout.value.reason == "timed out"
    with pytest.raises(HttpError, match="unsupported URL scheme ftp"):
        client.request("GET", "ftp://127.0.0.1/")
    assert json.loads(client.request("GET", f"{origin.url}/echo").content)["method"] == "GET"
