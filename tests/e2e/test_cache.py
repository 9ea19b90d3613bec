"""--cache: a rebuild reuses RUN (and, on request, COPY) layers from the cache repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import E2E, entry

pytestmark = pytest.mark.integration

DOCKERFILE = (
    "FROM {base}\nARG V=1\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n"
    "COPY f /f\nRUN cat /f /stamp > /g\nENV DONE=yes\n"
)


def _cache_args(e2e: E2E, tmp_path: Path, report: str, *extra: str) -> list[str]:
    """One cache repository per test (its tmp_path), one report per build."""
    return [
        "--cache",
        "--cache-repo",
        f"{e2e.registry}/e2e/cache-{tmp_path.name.lower()}",
        "--report-file",
        str(tmp_path / f"{report}.json"),
        *extra,
    ]


def _hits(tmp_path: Path, name: str) -> list[bool]:
    report = json.loads((tmp_path / f"{name}.json").read_text())
    return [s["cache_hit"] for s in report["steps"]]


def test_rebuild_uses_cached_run_layers_without_extracting(e2e: E2E, tmp_path: Path) -> None:
    files = {"f": "one\n"}
    first = e2e.build("cached", DOCKERFILE, files, args=_cache_args(e2e, tmp_path, "a")).ok()
    stamp = entry(first.rootfs, "/stamp").content
    assert _hits(tmp_path, "a") == [False, False, False, False, False]

    second = e2e.build("cached", DOCKERFILE, files, args=_cache_args(e2e, tmp_path, "b")).ok()
    assert _hits(tmp_path, "b") == [False, True, False, True, False]
    assert "Using caching version of cmd: RUN cat /proc/sys/kernel/random/uuid" in second.log
    # COPY (not cached by default) needs the files, so the rootfs is unpacked once
    assert second.log.count("Unpacking rootfs") == 1
    assert entry(second.rootfs, "/stamp").content == stamp
    assert entry(second.rootfs, "/g").content == "one\n" + stamp
    assert second.manifest["layers"] == first.manifest["layers"]


def test_fully_cached_build_extracts_nothing(e2e: E2E, tmp_path: Path) -> None:
    files = {"f": "two\n"}
    args = ("--cache-copy-layers",)
    e2e.build("fullcache", DOCKERFILE, files, args=_cache_args(e2e, tmp_path, "c", *args)).ok()
    again = e2e.build(
        "fullcache", DOCKERFILE, files, args=_cache_args(e2e, tmp_path, "d", *args)
    ).ok()
    assert _hits(tmp_path, "d") == [False, True, True, True, False]
    assert "Unpacking rootfs" not in again.log
    assert "Extracting" not in again.log
    assert entry(again.rootfs, "/g").content.startswith("two\n")


def test_changed_source_misses_from_that_step_on(e2e: E2E, tmp_path: Path) -> None:
    args = ("--cache-copy-layers",)
    e2e.build(
        "cachemiss", DOCKERFILE, {"f": "old\n"}, args=_cache_args(e2e, tmp_path, "e", *args)
    ).ok()
    changed = e2e.build(
        "cachemiss", DOCKERFILE, {"f": "new\n"}, args=_cache_args(e2e, tmp_path, "f", *args)
    ).ok()
    assert _hits(tmp_path, "f") == [False, True, False, False, False]
    assert entry(changed.rootfs, "/g").content.startswith("new\n")


def test_build_arg_change_misses_run(e2e: E2E, tmp_path: Path) -> None:
    files = {"f": "x\n"}
    e2e.build("cachearg", DOCKERFILE, files, args=_cache_args(e2e, tmp_path, "g")).ok()
    e2e.build(
        "cachearg", DOCKERFILE, files, args=[*_cache_args(e2e, tmp_path, "h"), "--build-arg", "V=2"]
    ).ok()
    assert _hits(tmp_path, "h")[1] is False


def test_oci_layout_cache_with_no_push(e2e: E2E, tmp_path: Path) -> None:
    files = {"f": "layout\n"}
    args = ["--no-push", "--cache", "--cache-repo", f"oci:{tmp_path / 'cache'}"]
    report = ["--report-file", str(tmp_path / "r.json")]
    e2e.build("ocicache", DOCKERFILE, files, args=args, push=False).ok()
    e2e.build("ocicache", DOCKERFILE, files, args=[*args, *report], push=False).ok()
    steps = json.loads((tmp_path / "r.json").read_text())["steps"]
    assert [s["cache_hit"] for s in steps] == [False, True, False, True, False]
    assert (tmp_path / "cache" / "index.json").exists()


def test_cache_dir_base_image_is_used_without_pulling(e2e: E2E, tmp_path: Path) -> None:
    import datetime as dt

    from engine.cache.warm import warm_image
    from engine.image.model import Platform
    from engine.registry import Reference, RegistryClient, RegistryConfig

    cache_dir = tmp_path / "warm"
    client = RegistryClient(RegistryConfig(insecure_pull=True, insecure_push=True))
    platform = Platform.parse("linux/amd64")
    status = warm_image(
        client, cache_dir, Reference.parse(e2e.base), platform=platform, ttl=dt.timedelta(hours=1)
    )
    assert status == "cached"
    b = e2e.build(
        "warmbase",
        "FROM {base}\nRUN echo warm > /w\n",
        args=["--cache-dir", str(cache_dir), "--custom-platform", "linux/amd64"],
    ).ok()
    assert f"Found {e2e.base} in local cache" in b.log
    assert "Retrieving image manifest" not in b.log
    assert entry(b.rootfs, "/w").content == "warm\n"


def test_force_build_metadata_gives_metadata_a_layer(e2e: E2E) -> None:
    b = e2e.build(
        "forcemeta", "FROM {base}\nENV A=1\nLABEL x=y\n", args=["--force-build-metadata"]
    ).ok()
    assert len(b.manifest["layers"]) == 3
    assert [bool(h.get("empty_layer")) for h in b.config["history"][-2:]] == [False, False]


def test_cached_stage_is_unpacked_for_copy_from(e2e: E2E, tmp_path: Path) -> None:
    dockerfile = (
        "FROM {base} AS build\nRUN cat /proc/sys/kernel/random/uuid > /artifact\n"
        "FROM {base}\nCOPY --from=build /artifact /artifact\nRUN cat /artifact > /seen\n"
    )
    first = e2e.build("cachestage", dockerfile, args=_cache_args(e2e, tmp_path, "i")).ok()
    artifact = entry(first.rootfs, "/artifact").content
    second = e2e.build("cachestage", dockerfile, args=_cache_args(e2e, tmp_path, "j")).ok()
    assert _hits(tmp_path, "j") == [True, False, True]
    # the build stage was never run again: its cached layer came from the cache repository
    assert entry(second.rootfs, "/artifact").content == artifact
    assert entry(second.rootfs, "/seen").content == artifact


def test_library_log_records_join_the_build_log(e2e: E2E, tmp_path: Path) -> None:
    """The cache, registry and HTTP modules log through Python logging: during a build their
    records appear in the build log, in its format and at its verbosity."""
    files = {"f": "one\n"}
    e2e.build("logged", DOCKERFILE, files, args=_cache_args(e2e, tmp_path, "a")).ok()
    expired = e2e.build(
        "logged", DOCKERFILE, files, args=_cache_args(e2e, tmp_path, "b", "--cache-ttl=1ns")
    ).ok()
    assert _hits(tmp_path, "b") == [False, False, False, False, False]
    lines = [ln for ln in expired.log.splitlines() if "expired (created" in ln]
    assert lines and all(ln.startswith("INFO[") for ln in lines), expired.log[-2000:]
    assert "GET http" not in expired.log  # request records are debug
    debug = e2e.build(
        "logged", DOCKERFILE, files, args=_cache_args(e2e, tmp_path, "c", "-v", "debug")
    ).ok()
    assert any(ln.startswith("DEBU[") and "/v2/" in ln for ln in debug.log.splitlines())
