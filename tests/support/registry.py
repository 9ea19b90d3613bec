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
from typing import Any

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
    client_ca: Path | None,
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
        if client_ca:
            lines += ["    clientcas:", f"      - {client_ca}"]
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
    client_ca: Path | None = None,
    client_cert: tuple[Path, Path] | None = None,
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
                client_ca=client_ca,
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
        if _wait_ready(reg, timeout, client_cert):
            return reg
        reg.stop()
        last_error = reg.log()[-2000:]
    raise RuntimeError(f"docker-registry did not start: {last_error}")


def _wait_ready(
    reg: RunningRegistry, timeout: float, client_cert: tuple[Path, Path] | None = None
) -> bool:
    deadline = time.monotonic() + timeout
    verify: bool | str = str(reg.ca_cert) if reg.ca_cert else False
    while time.monotonic() < deadline:
        if reg.process.poll() is not None:
            return False
        with contextlib.suppress(requests.RequestException):
            cert = (str(client_cert[0]), str(client_cert[1])) if client_cert else None
            r = requests.get(f"{reg.url}/v2/", timeout=2, verify=verify, cert=cert)
            if r.status_code in (200, 401):
                return True
        time.sleep(0.05)
    return False


# ---- TLS material (self-signed CA, server certificate for 127.0.0.1) ----


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls(dest: Path, *, common_name: str = "brickyard test CA") -> TlsFiles:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    dest.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def issued_by_ca(key: ec.EllipticCurvePrivateKey, name: str) -> x509.CertificateBuilder:
        """A certificate for `key` named `name`, from the CA, valid from 5 minutes ago for 2 days
        (extensions and signing left to the caller)."""
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
        )

    ca = (
        issued_by_ca(ca_key, common_name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        issued_by_ca(key, "127.0.0.1")
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        issued_by_ca(client_key, "brickyard client")
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        dest / "ca.pem",
        dest / "server.pem",
        dest / "server.key",
        dest / "client.pem",
        dest / "client.key",
    )

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(pem_key(key))
    files.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    files.client_key.write_bytes(pem_key(client_key))
    return files


# ---- a small JWT token issuer for the registry's `auth: token` mode ----

ACL = dict[str, set[str]]  # repository name (or "*") -> allowed actions


class TokenIssuer:
    """Docker token server: GET /token?service=..&scope=.. with optional Basic auth.

    users: name -> (password, acl); anonymous requests get `anonymous_acl`. Tokens are ES256
    JWTs whose x5c header carries a self-signed certificate that the registry trusts through
    `rootcertbundle`. `requests_seen` counts token requests (to test caching)."""

    SERVICE = "brickyard-test-registry"
    ISSUER = "brickyard-test-issuer"

    def __init__(
        self,
        workdir: Path,
        users: dict[str, tuple[str, ACL]],
        *,
        anonymous_acl: ACL | None = None,
        field_name: str = "token",
    ) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        workdir.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.anonymous_acl = anonymous_acl or {}
        self.field_name = field_name
        self.requests_seen = 0
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "brickyard token signer")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.root_bundle = workdir / "token-root.pem"
        self.root_bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._server: Any = None
        self.port = 0

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def auth_config(self) -> TokenAuthConfig:
        return TokenAuthConfig(self.realm, self.SERVICE, self.ISSUER, self.root_bundle)

    def _jwt(self, subject: str, access: list[dict[str, Any]]) -> str:
        import base64
        import json
        import secrets

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        now = int(time.time())
        claims = {
            "iss": self.ISSUER,
            "sub": subject,
            "aud": self.SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _grant(self, acl: ACL, scopes: list[str]) -> list[dict[str, Any]]:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) != 3:
                continue
            kind, name, actions = parts
            allowed = acl.get(name, set()) | acl.get("*", set())
            granted = sorted(a for a in actions.split(",") if a in allowed)
            access.append({"type": kind, "name": name, "actions": granted})
        return access

    def handle(self, query: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        import base64
        from urllib.parse import parse_qs

        self.requests_seen += 1
        params = parse_qs(query)
        scopes = [s for value in params.get("scope", []) for s in value.split(" ") if s]
        if authorization:
            if not authorization.startswith("Basic "):
                return 401, {"details": "basic auth expected"}
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            entry = self.users.get(user)
            if entry is None or entry[0] != password:
                return 401, {"details": "invalid credentials"}
            subject, acl = user, entry[1]
        else:
            subject, acl = "", self.anonymous_acl
        token = self._jwt(subject, self._grant(acl, scopes))
        return 200, {self.field_name: token, "expires_in": 300}

    def start(self) -> TokenIssuer:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                _path, _, query = self.path.partition("?")
                status, body = issuer.handle(query, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
