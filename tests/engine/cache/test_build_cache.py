"""The cache seen through whole builds (executor_main against the real registry)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import E2E, entry, exists
from tests.engine.cache.proxy import CountingProxy, counting_proxy
from tests.support.registry import RunningRegistry

pytestmark = pytest.mark.integration

DELETING = """\
FROM {base}
RUN mkdir -p /data/keep /data/gone && echo a > /data/a && echo b > /data/b \\
 && echo x > /data/gone/x
RUN rm /data/a && rm -r /data/gone && rm /etc/group && rm /bin/vi
ARG LATE=1
RUN echo "late $LATE" > /late
"""


@pytest.fixture
def proxy(registry: RunningRegistry) -> Iterator[CountingProxy]:
    with counting_proxy(registry.host) as p:
        yield p


@pytest.fixture
def via_proxy(proxy: CountingProxy, busybox_image: str, tmp_path: Path) -> E2E:
    """Builds whose every registry request (base pull, cache, push) goes through the proxy."""
    base = proxy.host + "/" + busybox_image.split("/", 1)[1]
    return E2E(proxy.host, base, tmp_path)


def cache_args(e2e: E2E, name: str, report: Path, *extra: str) -> list[str]:
    return [
        "--cache",
        "--cache-repo",
        f"{e2e.registry}/cachetest/{name}/cache",
        "--report-file",
        str(report),
        *extra,
    ]


def hits(report: Path) -> list[bool]:
    return [bool(s["cache_hit"]) for s in json.loads(report.read_text())["steps"]]


def assert_deletions_kept(rootfs: Path) -> None:
    assert entry(rootfs, "/data/b").content == "b\n"
    assert exists(rootfs, "/data/keep")
    for gone in ("/data/a", "/data/gone", "/etc/group", "/bin/vi"):
        assert not exists(rootfs, gone), f"{gone} came back"
    assert exists(rootfs, "/bin/sh")


def test_deletions_in_a_cached_run_stay_deleted(via_proxy: E2E, tmp_path: Path) -> None:
    e2e = via_proxy
    first = e2e.build("del", DELETING, args=cache_args(e2e, "del", tmp_path / "1.json")).ok()
    assert_deletions_kept(first.rootfs)

    # Fully cached: the deleting RUN's layer (its whiteouts) is reused as it is.
    again = e2e.build("del", DELETING, args=cache_args(e2e, "del", tmp_path / "2.json")).ok()
    assert [hits(tmp_path / "2.json")[i] for i in (0, 1, 3)] == [True, True, True]
    assert again.manifest["layers"] == first.manifest["layers"]
    assert_deletions_kept(again.rootfs)

    # A miss after the cached deletions: the rootfs is rebuilt from the cached layers and
    # the new layer must not bring deleted files back.
    late = e2e.build(
        "del",
        DELETING,
        args=[*cache_args(e2e, "del", tmp_path / "3.json"), "--build-arg", "LATE=2"],
    ).ok()
    assert [hits(tmp_path / "3.json")[i] for i in (0, 1, 3)] == [True, True, False]
    assert late.manifest["layers"][:-1] == first.manifest["layers"][:-1]
    assert entry(late.rootfs, "/late").content == "late 2\n"
    assert_deletions_kept(late.rootfs)


SMALL = """\
FROM {base}
WORKDIR /app
COPY src/ /app/src/
WORKDIR src
RUN cat * > /app/all && rm b.txt
ENV MODE=prod
COPY conf /app/conf
"""


def test_fully_cached_rebuild_downloads_no_layer_blob(
    via_proxy: E2E, proxy: CountingProxy, tmp_path: Path
) -> None:
    e2e = via_proxy
    files = {"src/a.txt": "a\n", "src/b.txt": "b\n", "conf": "port=1\n"}
    extra = ("--cache-copy-layers",)
    first = e2e.build(
        "full", SMALL, files, args=cache_args(e2e, "full", tmp_path / "1.json", *extra)
    )
    first.ok()
    layer_digests = {layer["digest"] for layer in first.manifest["layers"]}
    proxy.clear()
    again = e2e.build(
        "full", SMALL, files, args=cache_args(e2e, "full", tmp_path / "2.json", *extra)
    ).ok()
    # WORKDIR is a cached step too: creating /app (a layer) and entering the existing
    # /app/src (no layer) need no filesystem on a rebuild.
    assert hits(tmp_path / "2.json") == [True, True, True, True, False, True]
    assert again.config["config"]["WorkingDir"] == "/app/src"
    downloaded = {p.rsplit("/", 1)[1] for p in proxy.blob_gets()}
    assert downloaded & layer_digests == set(), "a fully cached rebuild downloaded layers"
    assert "Unpacking rootfs" not in again.log
    assert again.manifest["layers"] == first.manifest["layers"]
    assert again.digest == first.digest or again.config["history"] == first.config["history"]
    # Reads manifests and pushes at most configs and manifests: no layer upload either.
    uploads = [p for m, p in proxy.requests if m in ("PUT", "PATCH") and "/blobs/" in p]
    assert len(uploads) <= 1


WARM_FORCE = """\
import datetime as dt, sys
from pathlib import Path
from engine.cache.warm import warm_image
from engine.image.model import Platform
from engine.registry import Reference, RegistryClient, RegistryConfig
cache, image, host = sys.argv[1:4]
with RegistryClient(RegistryConfig(insecure_registries=frozenset({host}))) as c:
    for _ in range(3):
        warm_image(c, Path(cache), Reference.parse(image), platform=Platform("linux", "amd64"),
                   ttl=dt.timedelta(hours=1), force=True)
"""

EXECUTOR = "import sys; from engine.cli import executor_main; sys.exit(executor_main())"


def test_parallel_builds_share_one_cache_dir(
    via_proxy: E2E, proxy: CountingProxy, tmp_path: Path, registry: RunningRegistry
) -> None:
    import os
    import subprocess
    import sys

    from engine.cache.warm import warm
    from engine.options import WarmerOptions
    from tests.support.images import skopeo_inspect

    e2e = via_proxy
    cache = tmp_path / "cache"
    opts = WarmerOptions(
        image=(e2e.base,),
        cache_dir=str(cache),
        insecure_registry=(proxy.host,),
        custom_platform="linux/amd64",
    )
    assert warm(opts, {}) == 0
    base_layers = {
        d["digest"]
        for d in json.loads(
            subprocess.run(
                ["skopeo", "inspect", "--raw", f"oci:{cache}:{skopeo_tag(cache)}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["layers"]
    }
    proxy.clear()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
    }
    procs = []
    for i in range(3):
        ctx = tmp_path / f"ctx{i}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {e2e.base}\nRUN echo build {i} > /which\n")
        argv = [
            sys.executable,
            "-c",
            EXECUTOR,
            "--context",
            str(ctx),
            "--dockerfile",
            str(ctx / "Dockerfile"),
            "--destination",
            f"{proxy.host}/par/img{i}:latest",
            "--insecure",
            "--insecure-pull",
            "--force",
            "--cache-dir",
            str(cache),
            "--custom-platform",
            "linux/amd64",
            "--log-format",
            "text",
        ]
        procs.append(
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    warmer = subprocess.Popen(
        [sys.executable, "-c", WARM_FORCE, str(cache), e2e.base, proxy.host],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert warmer.wait(timeout=120) == 0, warmer.communicate()[0].decode()
    for i, (p, out) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, out[-2000:]
        assert "in local cache" in out
        info = skopeo_inspect(f"{registry.host}/par/img{i}:latest", raw=True)
        assert base_layers <= {d["digest"] for d in info["layers"]}
    # The builds took the base from the cache dir while the warmer kept rewriting its index
    # (forced re-warms keep blobs already present): nobody downloaded a base layer.
    base_gets = [p for p in proxy.blob_gets() if p.rsplit("/", 1)[1] in base_layers]
    assert base_gets == []
    assert not [n for n in os.listdir(cache / "blobs/sha256") if n.startswith(".")]


def skopeo_tag(cache: Path) -> str:
    index = json.loads((cache / "index.json").read_text())
    return str(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])


def test_no_push_cache_reads_the_cache_but_never_writes_it(
    via_proxy: E2E, proxy: CountingProxy, tmp_path: Path
) -> None:
    e2e = via_proxy
    dockerfile = "FROM {base}\nRUN echo one > /one\nRUN echo two > /two\n"
    e2e.build("npc", dockerfile, args=cache_args(e2e, "npc", tmp_path / "1.json")).ok()
    changed = dockerfile.replace("two", "three")
    proxy.clear()
    e2e.build(
        "npc", changed, args=cache_args(e2e, "npc", tmp_path / "2.json", "--no-push-cache")
    ).ok()
    assert hits(tmp_path / "2.json") == [True, False]
    writes = [p for m, p in proxy.requests if m in ("PUT", "POST") and "/cachetest/" in p]
    assert writes == []
    # Not stored, so a third build misses the changed step again.
    e2e.build("npc", changed, args=cache_args(e2e, "npc", tmp_path / "3.json")).ok()
    assert hits(tmp_path / "3.json") == [True, False]


def test_copy_missing_after_cached_steps_is_written_without_the_rootfs(
    via_proxy: E2E, tmp_path: Path
) -> None:
    e2e = via_proxy
    files = {"src/a.txt": "a\n", "src/b.txt": "b\n", "conf": "port=1\n"}
    extra = ("--cache-copy-layers", "--reproducible")
    e2e.build("dc", SMALL, files, args=cache_args(e2e, "dc", tmp_path / "1.json", *extra)).ok()
    changed = {**files, "conf": "port=2\n"}
    again = e2e.build(
        "dc", SMALL, changed, args=cache_args(e2e, "dc", tmp_path / "2.json", *extra)
    ).ok()
    assert hits(tmp_path / "2.json") == [True, True, True, True, False, False]
    assert "Unpacking rootfs" not in again.log
    assert "without unpacking the rootfs" in again.log
    # The same inputs built cold (the rootfs extracted, COPY into it) give the same image:
    # the layer written from the scratch directory is byte for byte the usual one.
    cold = e2e.build("dc", SMALL, changed, args=["--reproducible"]).ok()
    assert again.digest == cold.digest
    assert entry(again.rootfs, "/app/conf").content == "port=2\n"
    assert not exists(again.rootfs, "/app/src/b.txt")


THROUGH_LINK = """\
FROM {base}
RUN mkdir -p /data/old && ln -s /data /app && echo old > /data/conf
COPY conf /app/new/conf
COPY conf /app/conf
"""


def test_copy_through_a_cached_symlink_or_over_a_file_extracts_the_rootfs(
    via_proxy: E2E, tmp_path: Path
) -> None:
    e2e = via_proxy
    files = {"conf": "port=1\n"}
    extra = ("--cache-copy-layers",)
    e2e.build(
        "dl", THROUGH_LINK, files, args=cache_args(e2e, "dl", tmp_path / "1.json", *extra)
    ).ok()
    again = e2e.build(
        "dl",
        THROUGH_LINK,
        {"conf": "port=2\n"},
        args=cache_args(e2e, "dl", tmp_path / "2.json", *extra),
    ).ok()
    assert hits(tmp_path / "2.json") == [True, False, False]
    # /app is a symlink in the cached RUN layer: only the real rootfs knows where COPY lands
    assert "Unpacking rootfs" in again.log
    assert "without unpacking" not in again.log
    assert entry(again.rootfs, "/data/new/conf").content == "port=2\n"
    assert entry(again.rootfs, "/data/conf").content == "port=2\n"
    assert entry(again.rootfs, "/app").kind == "symlink"


def test_cache_lookups_of_a_stage_run_in_parallel_up_front(
    via_proxy: E2E, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from engine.cache.registry_cache import RegistryBackend

    e2e = via_proxy
    dockerfile = "FROM {base}\nWORKDIR /w\n" + "".join(
        f"RUN echo {i} > /w/{i}\nENV STEP={i}\n" for i in range(4)
    )
    e2e.build("par", dockerfile, args=cache_args(e2e, "par", tmp_path / "1.json")).ok()

    lock = threading.Lock()
    active, peak = [0], [0]
    original = RegistryBackend.get_manifest

    def slow_lookup(self: RegistryBackend, tag: str) -> bytes | None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        try:
            return original(self, tag)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(RegistryBackend, "get_manifest", slow_lookup)
    e2e.build("par", dockerfile, args=cache_args(e2e, "par", tmp_path / "2.json")).ok()
    assert [h for h in hits(tmp_path / "2.json") if h] == [True] * 5  # WORKDIR + 4 RUNs
    # the 5 keys (each on the one before) were looked up concurrently, not one by one
    assert peak[0] >= 4
