"""The build's one requests Session: pooled connections and one TLS context per trust setting.

requests hands urllib3 a ready SSL context only for `verify=True`. With `verify=False`
(--skip-tls-verify) every new connection builds a context and loads the system CA store into
it (~50 ms of CPU here, although nothing is verified), and with a bundle path
(--registry-certificate, REQUESTS_CA_BUNDLE) every connection parses the bundle again. A build
opens a connection per upload and cache thread, so that cost repeats. This adapter builds each
context once and lets urllib3 reuse it; verification is unchanged (same CA files, same
hostname check).
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.ssl_ import create_urllib3_context

POOL_SIZE = 16  # upload threads + cache threads + the main thread, per host


class SharedTLSAdapter(HTTPAdapter):
    def __init__(self) -> None:
        super().__init__(pool_connections=4, pool_maxsize=POOL_SIZE)
        self._contexts: dict[tuple[Any, ...], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        params = super().build_connection_pool_key_attributes(request, verify, cert)
        host_params: dict[str, Any] = dict(params[0])
        pool_kwargs: dict[str, Any] = dict(params[1])
        if host_params.get("scheme") != "https" or "ssl_context" in pool_kwargs:
            return host_params, pool_kwargs
        ca_file = pool_kwargs.get("ca_certs")
        if "cert_file" in pool_kwargs or "ca_cert_dir" in pool_kwargs:
            return host_params, pool_kwargs  # rare: left to urllib3 as before
        if ca_file is not None and not os.path.isfile(ca_file):
            return host_params, pool_kwargs  # urllib3 reports it as before
        pool_kwargs.pop("ca_certs", None)
        key = (pool_kwargs.get("cert_reqs"), ca_file)
        with self._lock:
            context = self._contexts.get(key)
            if context is None:
                context = self._new_context(pool_kwargs.get("cert_reqs"), ca_file)
                self._contexts[key] = context
        pool_kwargs["ssl_context"] = context
        return host_params, pool_kwargs

    @staticmethod
    def _new_context(cert_reqs: Any, ca_file: str | None) -> ssl.SSLContext:
        if cert_reqs == "CERT_NONE":
            context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
            context.check_hostname = False
            return context
        context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs()
        return context


def pooled_session() -> requests.Session:
    session = requests.Session()
    adapter = SharedTLSAdapter()
    session.mount("https://", adapter)
    session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE))
    return session
