"""Where inputs come from: platform selection from an index, global ARGs in FROM, ADD from a
URL, COPY heredocs, unused stages, COPY --from an image."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.harness import E2E, Entry, entry, exists
from tests.support.images import push_multiplatform_index

pytestmark = pytest.mark.integration

PAYLOAD = b"downloaded payload\n"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.send_header("Last-Modified", "Tue, 01 Jan 2030 00:00:00 GMT")
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_platform_chosen_from_index(e2e: E2E) -> None:
    pushed = push_multiplatform_index(
        e2e.registry, "e2e/multiarch", "v1", ["linux/amd64", "linux/arm64/v8"]
    )
    b = e2e.build(
        "arm",
        f"FROM {pushed.ref}\nCOPY note /note\n",
        {"note": "n\n"},
        args=["--custom-platform", "linux/arm64/v8"],
    ).ok()
    assert b.config["architecture"] == "arm64"
    assert entry(b.rootfs, "/platform").content == "linux/arm64/v8\n"
    assert b.manifest["layers"][0]["digest"] == _first_layer(
        e2e, pushed.manifests["linux/arm64/v8"]
    )


def _first_layer(e2e: E2E, manifest_digest: str) -> str:
    import requests

    r = requests.get(
        f"http://{e2e.registry}/v2/e2e/multiarch/manifests/{manifest_digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    return str(r.json()["layers"][0]["digest"])


def test_global_arg_picks_the_base_image(e2e: E2E) -> None:
    b = e2e.build(
        "globalarg",
        "ARG BASE=nothing\nFROM ${BASE}\nARG BASE\nRUN echo $BASE > /base\n",
        args=["--build-arg", f"BASE={e2e.base}"],
    ).ok()
    assert entry(b.rootfs, "/base").content == f"{e2e.base}\n"


def test_add_url_with_checksum(e2e: E2E, http_url: str) -> None:
    digest = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
    b = e2e.build(
        "addurl",
        f"FROM {{base}}\nADD --checksum={digest} {http_url}/files/payload.txt /dl/\n",
    ).ok()
    f = entry(b.rootfs, "/dl/payload.txt")
    assert f == Entry("file", 0o600, 0, 0, PAYLOAD.decode())
    bad = e2e.build(
        "addurlbad", f"FROM {{base}}\nADD --checksum=sha256:{'0' * 64} {http_url}/x /x\n"
    )
    assert bad.rc == 7 and "checksum" in bad.log.lower()


def test_copy_heredoc_writes_files(e2e: E2E) -> None:
    b = e2e.build(
        "copyheredoc",
        "FROM {base}\nENV NAME=world\nCOPY <<EOF /etc/greeting\nhello $NAME\nEOF\n",
    ).ok()
    assert entry(b.rootfs, "/etc/greeting").content == "hello world\n"


def test_skip_unused_stages_never_runs_them(e2e: E2E) -> None:
    dockerfile = (
        "FROM {base} AS broken\nRUN exit 1\n"
        "FROM {base} AS good\nRUN echo good > /good\n"
        "FROM {base} AS other\nRUN echo other > /other\n"
    )
    b = e2e.build("skipunused", dockerfile, args=["--target", "good", "--skip-unused-stages"]).ok()
    assert entry(b.rootfs, "/good").content == "good\n"
    assert not exists(b.rootfs, "/other")
    without = e2e.build("skipunused2", dockerfile, args=["--target", "good"])
    assert without.rc == 7  # kaniko builds every stage up to the target by default


def test_copy_from_image_reference(e2e: E2E) -> None:
    b = e2e.build(
        "copyfromimage", f"FROM scratch\nCOPY --from={e2e.base} /bin/busybox /busybox\n"
    ).ok()
    assert entry(b.rootfs, "/busybox").mode == 0o755
