from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import subprocess
from pathlib import Path

import pytest

from engine.cache.layout import LayoutStore
from engine.cache.registry_cache import (
    LayoutBackend,
    StepCache,
    cache_repo_for,
    default_cache_repo,
)
from engine.errors import CacheError, DigestMismatch
from engine.image.model import Descriptor
from tests.engine.cache.helpers import make_layer

KEY = "ab" * 32
OTHER = "cd" * 32


class Clock:
    def __init__(self) -> None:
        self.value = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.value


def test_store_then_lookup_returns_the_layer_as_built(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "l.tgz", {"app/a": b"1"}, whiteouts=("etc/gone",))
    cache = StepCache(LayoutBackend(tmp_path / "cache"))
    assert cache.lookup(KEY) is None
    cache.store(KEY, layer, history={"created_by": "RUN rm /etc/gone"}, config_delta={"a": 1})
    assert cache.flush() == 0
    hit = cache.lookup(KEY)
    assert hit is not None
    assert hit.layer == Descriptor(layer.media_type, layer.digest, layer.size)
    assert hit.diff_id == layer.diff_id
    assert hit.history == {"created_by": "RUN rm /etc/gone"}
    assert hit.config_delta == {"a": 1}
    assert hit.repository is None
    out = tmp_path / "fetched"
    cache.fetch_layer(hit, out)
    # Bytes identical: whiteouts in the cached layer survive reuse.
    assert out.read_bytes() == layer.path.read_bytes()
    assert cache.stats == {"hits": 1, "misses": 1, "stored": 1, "store_failed": 0}
    cache.close()


def test_cache_entry_is_a_valid_image_for_skopeo_and_umoci(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "l.tgz", {"hello": b"world"})
    cache = StepCache(LayoutBackend(tmp_path / "cache"))
    cache.store(KEY, layer, history={"created_by": "RUN x"})
    cache.close()
    out = subprocess.run(
        ["skopeo", "inspect", f"oci:{tmp_path / 'cache'}:{KEY}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["Layers"] == [layer.digest]
    subprocess.run(
        ["umoci", "stat", "--image", f"{tmp_path / 'cache'}:{KEY}"],
        capture_output=True,
        check=True,
    )


def test_empty_step_is_cached_without_a_layer(tmp_path: Path) -> None:
    cache = StepCache(LayoutBackend(tmp_path / "cache"))
    cache.store(KEY, None, history={"created_by": "RUN true"})
    cache.close()
    hit = StepCache(LayoutBackend(tmp_path / "cache")).lookup(KEY)
    assert hit is not None and hit.layer is None and hit.diff_id is None
    with pytest.raises(CacheError):
        StepCache(LayoutBackend(tmp_path / "cache")).fetch_layer(hit, tmp_path / "x")


def test_entries_older_than_ttl_are_misses(tmp_path: Path) -> None:
    clock = Clock()
    layer = make_layer(tmp_path / "l.tgz", {"a": b"1"})
    cache = StepCache(LayoutBackend(tmp_path / "c"), ttl=dt.timedelta(hours=1), now=clock)
    cache.store(KEY, layer, history={})
    cache.flush()
    clock.value += dt.timedelta(minutes=59)
    assert cache.lookup(KEY) is not None
    clock.value += dt.timedelta(minutes=2)
    assert cache.lookup(KEY) is None
    cache.close()


def test_no_push_cache_reads_but_never_writes(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "l.tgz", {"a": b"1"})
    writer = StepCache(LayoutBackend(tmp_path / "c"))
    writer.store(KEY, layer, history={})
    writer.close()
    reader = StepCache(LayoutBackend(tmp_path / "c"), push=False)
    reader.store(OTHER, layer, history={})
    reader.close()
    assert reader.lookup(KEY) is not None
    assert reader.lookup(OTHER) is None
    assert LayoutStore(tmp_path / "c").tags() == [KEY]


def test_run_and_copy_layer_flags_choose_what_is_cached(tmp_path: Path) -> None:
    default = StepCache(LayoutBackend(tmp_path))
    assert default.caches("RUN") and not default.caches("COPY") and not default.caches("add")
    assert not default.caches("ENV") and default.caches("WORKDIR") and default.caches("workdir")
    flipped = StepCache(LayoutBackend(tmp_path), run_layers=False, copy_layers=True)
    assert not flipped.caches("run") and flipped.caches("COPY") and flipped.caches("ADD")
    default.close()
    flipped.close()


def test_lookup_many_answers_every_key(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "l.tgz", {"a": b"1"})
    cache = StepCache(LayoutBackend(tmp_path / "c"))
    cache.store(KEY, layer, history={})
    cache.flush()
    found = cache.lookup_many([KEY, OTHER, KEY])
    assert set(found) == {KEY, OTHER}
    assert found[KEY] is not None and found[OTHER] is None
    cache.close()


def test_corrupt_entry_is_a_miss_not_a_failure(tmp_path: Path) -> None:
    layer = make_layer(tmp_path / "l.tgz", {"a": b"1"})
    cache = StepCache(LayoutBackend(tmp_path / "c"))
    cache.store(KEY, layer, history={})
    cache.flush()
    store = LayoutStore(tmp_path / "c")
    manifest = store.resolve(KEY)
    assert manifest is not None
    store.blob_path(manifest.digest).write_bytes(b"{not json")
    assert cache.lookup(KEY) is None
    cache.close()


def test_blob_with_wrong_digest_is_refused(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    with pytest.raises(DigestMismatch):
        store.put_bytes(b"abc", "sha256:" + "0" * 64)
    assert not (tmp_path / "blobs/sha256").exists() or not any(
        (tmp_path / "blobs/sha256").iterdir()
    )


def _tag_many(root: str, worker: int) -> None:
    store = LayoutStore(Path(root))
    for i in range(20):
        data = f"{worker}-{i}".encode()
        digest = store.put_bytes(data)
        store.tag(f"w{worker}-{i}", Descriptor("application/octet-stream", digest, len(data)))


def test_concurrent_writers_lose_no_tag(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_tag_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    tags = LayoutStore(tmp_path).tags()
    assert sorted(tags) == sorted(f"w{w}-{i}" for w in range(4) for i in range(20))


def test_default_cache_repo_follows_kaniko() -> None:
    assert default_cache_repo("reg:5000/team/app:1.0") == "reg:5000/team/app/cache"
    assert default_cache_repo("reg:5000/app@sha256:" + "a" * 64) == "reg:5000/app/cache"
    assert default_cache_repo("reg:5000/app") == "reg:5000/app/cache"
    assert cache_repo_for("", ["r/a:1", "r/b:2"]) == "r/a/cache"
    assert cache_repo_for("oci:/x", ["r/a:1"]) == "oci:/x"
    with pytest.raises(CacheError, match="--cache-repo"):
        cache_repo_for("", [])
