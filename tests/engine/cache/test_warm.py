from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import subprocess
from pathlib import Path

import pytest

from engine.cache.layout import LayoutStore
from engine.cache.warm import dockerfile_base_images, local_base_image, warm, warm_image
from engine.errors import CacheError
from engine.image.model import Platform
from engine.options import WarmerOptions
from engine.registry.client import RegistryClient
from engine.registry.config import RegistryConfig
from engine.registry.reference import Reference
from tests.support.images import push_multiplatform_index
from tests.support.registry import RunningRegistry

pytestmark = pytest.mark.integration

AMD64 = Platform("linux", "amd64")


def client_for(registry: RunningRegistry) -> RegistryClient:
    return RegistryClient(RegistryConfig(insecure_registries=frozenset({registry.host})))


def options(cache_dir: Path, registry: RunningRegistry, **kw: object) -> WarmerOptions:
    base: dict[str, object] = {
        "cache_dir": str(cache_dir),
        "insecure_registry": (registry.host,),
        "custom_platform": "linux/amd64",
    }
    base.update(kw)
    return WarmerOptions(**base)  # type: ignore[arg-type]


def test_warmed_image_is_found_locally_with_every_blob(
    tmp_path: Path, registry: RunningRegistry, busybox_image: str
) -> None:
    cache = tmp_path / "cache"
    assert warm(options(cache, registry, image=(busybox_image,)), {}) == 0
    found = local_base_image(cache, busybox_image, platform="linux/amd64")
    assert found is not None
    assert json.loads(found.config_bytes)["architecture"] == "amd64"
    for layer in found.layers:
        data = found.blob_path(layer).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer.digest
    by_digest = local_base_image(cache, busybox_image, digest=found.manifest_digest)
    assert by_digest is not None and by_digest.manifest_digest == found.manifest_digest
    pinned = Reference.parse(busybox_image).with_digest(found.manifest_digest)
    assert local_base_image(cache, pinned, platform=AMD64) is not None
    # The cache dir is a plain OCI layout other tools read.
    subprocess.run(
        ["skopeo", "inspect", f"oci:{cache}:{found.manifest_digest}"],
        check=True,
        capture_output=True,
    )


def test_not_warmed_other_platform_expired_or_no_dir_is_none(
    tmp_path: Path, registry: RunningRegistry, busybox_image: str
) -> None:
    cache = tmp_path / "cache"
    assert local_base_image(cache, busybox_image) is None
    warm(options(cache, registry, image=(busybox_image,)), {})
    assert local_base_image(cache, busybox_image, platform="linux/arm64") is None
    assert local_base_image(cache, f"{registry.host}/base/other:1", platform=AMD64) is None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert local_base_image(cache, busybox_image, platform=AMD64, now=later) is not None
    assert (
        local_base_image(cache, busybox_image, platform=AMD64, ttl=dt.timedelta(hours=1), now=later)
        is None
    )
    # A different digest served now (the tag moved): the warmed copy is not used.
    assert local_base_image(cache, busybox_image, digest="sha256:" + "0" * 64) is None


def test_already_cached_is_skipped_unless_forced(
    tmp_path: Path, registry: RunningRegistry, busybox_image: str
) -> None:
    cache = tmp_path / "cache"
    ref = Reference.parse(busybox_image)
    ttl = dt.timedelta(hours=1)
    with client_for(registry) as c:
        assert warm_image(c, cache, ref, platform=AMD64, ttl=ttl) == "cached"
        assert warm_image(c, cache, ref, platform=AMD64, ttl=ttl) == "already cached"
        assert warm_image(c, cache, ref, platform=AMD64, ttl=ttl, force=True) == "cached"
        # Expired entries are fetched again.
        old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
        warm_image(c, cache, ref, platform=AMD64, ttl=ttl, force=True, now=old)
        assert warm_image(c, cache, ref, platform=AMD64, ttl=ttl) == "cached"


def test_platform_is_picked_from_an_index(tmp_path: Path, registry: RunningRegistry) -> None:
    pushed = push_multiplatform_index(
        registry.host, "warm/multi", "v1", ["linux/amd64", "linux/arm64"]
    )
    cache = tmp_path / "cache"
    warm(options(cache, registry, image=(pushed.ref,), custom_platform="linux/arm64"), {})
    found = local_base_image(cache, pushed.ref, platform="linux/arm64")
    assert found is not None and found.manifest_digest == pushed.manifests["linux/arm64"]
    assert local_base_image(cache, pushed.ref, platform="linux/amd64") is None
    by_index = local_base_image(cache, pushed.ref, platform="linux/arm64", digest=pushed.digest)
    assert by_index is not None and by_index.manifest_digest == pushed.manifests["linux/arm64"]


def test_dockerfile_bases_skip_stages_and_scratch(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text(
        "ARG TAG=1.0\n"
        "FROM reg.example/base/build:${TAG} AS build\n"
        "RUN true\n"
        "FROM build AS test\n"
        "FROM scratch AS empty\n"
        "FROM reg.example/base/run:2\n"
        "COPY --from=build /a /a\n"
    )
    assert dockerfile_base_images(str(df), ["TAG=2.5"]) == [
        "reg.example/base/build:2.5",
        "reg.example/base/run:2",
    ]


def test_warm_from_dockerfile_and_failures_are_reported(
    tmp_path: Path, registry: RunningRegistry, busybox_image: str
) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("ARG BASE\nFROM ${BASE}\nRUN true\n")
    cache = tmp_path / "cache"
    opts = options(cache, registry, dockerfile=str(df), build_arg=(f"BASE={busybox_image}",))
    assert warm(opts, {}) == 0
    assert local_base_image(cache, busybox_image, platform=AMD64) is not None
    missing = f"{registry.host}/base/does-not-exist:1"
    with pytest.raises(CacheError, match="1 of 2"):
        warm(options(cache, registry, image=(busybox_image, missing)), {})


def _warm_and_read(cache: str, host: str, image: str) -> None:
    with RegistryClient(RegistryConfig(insecure_registries=frozenset({host}))) as c:
        for _ in range(3):
            warm_image(
                c,
                Path(cache),
                Reference.parse(image),
                platform=AMD64,
                ttl=dt.timedelta(hours=1),
                force=True,
            )
            found = local_base_image(cache, image, platform=AMD64)
            assert found is not None
            for layer in found.layers:
                assert found.blob_path(layer).stat().st_size == layer.size


def test_parallel_warmers_and_readers_share_one_cache_dir(
    tmp_path: Path, registry: RunningRegistry, busybox_image: str
) -> None:
    other = push_multiplatform_index(registry.host, "warm/par", "v1", ["linux/amd64"]).ref
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_warm_and_read, args=(str(tmp_path), registry.host, image))
        for image in (busybox_image, other, busybox_image, other)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    tags = LayoutStore(tmp_path).tags()
    assert len(tags) == len(set(tags))
    assert local_base_image(tmp_path, busybox_image, platform=AMD64) is not None
    assert local_base_image(tmp_path, other, platform=AMD64) is not None
    leftovers = [p.name for p in (tmp_path / "blobs/sha256").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_brickyard_warm_command_fills_the_cache_dir(
    tmp_path: Path, registry: RunningRegistry, busybox_image: str
) -> None:
    from engine.cli import brickyard_main

    cache = tmp_path / "cache"
    argv = ["warm", "-i", busybox_image, "-c", str(cache), "--insecure-registry", registry.host]
    argv += ["--custom-platform", "linux/amd64", "--cache-ttl", "2h"]
    assert brickyard_main(argv, {"HOME": str(tmp_path)}) == 0
    assert local_base_image(cache, busybox_image, platform=AMD64) is not None
    missing = f"{registry.host}/base/nothing-here:1"
    argv = ["warm", "-i", missing, "-c", str(cache), "--insecure-registry", registry.host]
    assert brickyard_main(argv, {"HOME": str(tmp_path)}) == CacheError.exit_code


def test_warm_logs_at_its_verbosity_and_format(
    tmp_path: Path,
    registry: RunningRegistry,
    busybox_image: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    opts = options(cache, registry, image=(busybox_image,), log_format="text")
    assert warm(opts, {}) == 0
    err = capsys.readouterr().err
    assert any(ln.startswith("INFO[") and "Cached" in ln for ln in err.splitlines()), err
    opts = options(cache, registry, image=(busybox_image,), log_format="json", verbosity="warn")
    assert warm(opts, {}) == 0
    assert capsys.readouterr().err == ""  # "Image already in cache" is info: not shown
    opts = options(cache, registry, image=(busybox_image,), log_format="json")
    assert warm(opts, {}) == 0
    (record,) = [json.loads(ln) for ln in capsys.readouterr().err.splitlines()]
    assert record["level"] == "info" and record["msg"].startswith("Image already in cache")
