from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.cache.registry_cache import (
    LayoutBackend,
    RegistryBackend,
    StepCache,
    open_step_cache,
)
from engine.errors import CacheError
from engine.image.model import Descriptor
from engine.registry.client import RegistryClient
from engine.registry.config import RegistryConfig
from engine.registry.reference import Reference
from tests.engine.cache.helpers import make_layer
from tests.engine.cache.proxy import CountingProxy, counting_proxy
from tests.support.images import skopeo_inspect
from tests.support.registry import RunningRegistry

pytestmark = pytest.mark.integration

KEY = "12" * 32


@pytest.fixture
def proxy(registry: RunningRegistry) -> Iterator[CountingProxy]:
    with counting_proxy(registry.host) as p:
        yield p


@pytest.fixture
def client(proxy: CountingProxy) -> Iterator[RegistryClient]:
    config = RegistryConfig(insecure_registries=frozenset({proxy.host}))
    with RegistryClient(config) as c:
        yield c


def repo(proxy: CountingProxy) -> str:
    return f"{proxy.host}/cache-test-{uuid.uuid4().hex[:8]}"


def test_store_pushes_an_image_tagged_with_the_key_and_lookup_is_one_get(
    tmp_path: Path, client: RegistryClient, proxy: CountingProxy
) -> None:
    name = repo(proxy) + "/cache"
    layer = make_layer(tmp_path / "l.tgz", {"app/bin": b"x" * 1000}, whiteouts=("etc/old",))
    cache = StepCache(RegistryBackend(client, name))
    cache.store(KEY, layer, history={"created_by": "RUN build"}, config_delta={})
    assert cache.flush() == 0
    info = skopeo_inspect(f"{name}:{KEY}")
    assert info["Layers"] == [layer.digest]

    proxy.clear()
    hit = StepCache(RegistryBackend(client, name)).lookup(KEY)
    assert hit is not None
    assert hit.layer is not None and hit.layer.digest == layer.digest
    assert hit.diff_id == layer.diff_id
    assert hit.history == {"created_by": "RUN build"}
    assert hit.repository == name
    assert hit.mount_source == Reference.parse(name)
    # One manifest GET; no config or layer blob downloaded.
    gets = [p for m, p in proxy.requests if m == "GET" and p != "/v2/"]
    assert len(gets) == 1 and "/manifests/" in gets[0]
    assert proxy.blob_gets() == []


def test_miss_is_none_and_counts(
    tmp_path: Path, client: RegistryClient, proxy: CountingProxy
) -> None:
    cache = StepCache(RegistryBackend(client, repo(proxy) + "/cache"))
    assert cache.lookup(KEY) is None
    assert cache.stats["misses"] == 1


def test_store_mounts_the_blob_the_build_pushes_to_the_destination_meanwhile(
    tmp_path: Path, client: RegistryClient, proxy: CountingProxy
) -> None:
    dest = repo(proxy)
    layer = make_layer(tmp_path / "l.tgz", {"big": b"y" * 50_000})
    desc = Descriptor(layer.media_type, layer.digest, layer.size)
    cache = StepCache(RegistryBackend(client, dest + "/cache"))
    # The step stores its cache entry before the build's upload to the destination is done;
    # the entry waits for flush() so the blob is mounted rather than uploaded twice.
    proxy.clear()
    cache.store(KEY, layer, history={}, mount_from=dest)
    client.push_blob(Reference.parse(dest), desc, layer.path)
    # the build starts the waiting entries once its uploads are done; flush waits for them
    cache.start_deferred()
    assert cache.flush() == 0
    mounts = [p for m, p in proxy.requests if m == "POST" and "mount=" in p]
    assert len(mounts) == 1
    assert cache.stats["stored"] == 1
    # The layer bytes went up once, to the destination; the cache repository got only the
    # tiny config (sent at store time, not waiting for the mount).
    uploads = [p for m, p in proxy.requests if m in ("PUT", "PATCH") and "/blobs/uploads/" in p]
    assert len([p for p in uploads if "/cache/blobs/" in p]) == 1
    assert len(uploads) == 2
    assert cache.lookup(KEY) is not None


def test_fetch_layer_downloads_the_cached_bytes(
    tmp_path: Path, client: RegistryClient, proxy: CountingProxy
) -> None:
    name = repo(proxy) + "/cache"
    layer = make_layer(tmp_path / "l.tgz", {"f": b"content"}, whiteouts=("gone",))
    cache = StepCache(RegistryBackend(client, name))
    cache.store(KEY, layer, history={})
    cache.flush()
    hit = cache.lookup(KEY)
    assert hit is not None
    cache.fetch_layer(hit, tmp_path / "out.tgz")
    assert (tmp_path / "out.tgz").read_bytes() == layer.path.read_bytes()


def test_unreachable_cache_is_given_up_after_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = RegistryConfig(insecure_registries=frozenset({"127.0.0.1:9"}))
    calls: list[float] = []
    with RegistryClient(config, sleep=calls.append) as c:
        cache = StepCache(RegistryBackend(c, "127.0.0.1:9/nothing/cache"))
        assert cache.lookup(KEY) is None
        assert cache.unusable is not None
        retries = len(calls)
        assert cache.lookup("34" * 32) is None  # no second round of retries
        assert len(calls) == retries
        cache.store(KEY, make_layer(tmp_path / "l.tgz", {"a": b"1"}), history={})
        assert cache.flush() == 0
    assert caplog.text.count("unusable") == 1
    assert cache.stats["misses"] == 2 and cache.stats["stored"] == 0


def test_failed_store_is_a_warning_not_an_error(
    tmp_path: Path, client: RegistryClient, proxy: CountingProxy, caplog: pytest.LogCaptureFixture
) -> None:
    cache = StepCache(RegistryBackend(client, repo(proxy) + "/cache"))
    layer = make_layer(tmp_path / "l.tgz", {"a": b"1"})
    layer.path.unlink()  # the blob file vanished before the push
    cache.store(KEY, layer, history={})
    assert cache.flush() == 1
    assert "failed" in caplog.text
    assert cache.stats["store_failed"] == 1


def test_open_step_cache_follows_the_flags(tmp_path: Path, client: RegistryClient) -> None:
    opts = SimpleNamespace(
        cache=True,
        cache_repo="",
        destination=("127.0.0.1:5000/team/app:1",),
        cache_ttl=dt.timedelta(hours=6),
        no_push_cache=True,
        cache_run_layers=False,
        cache_copy_layers=True,
    )
    cache = open_step_cache(opts, client)
    assert cache is not None
    assert isinstance(cache.backend, RegistryBackend)
    assert cache.backend.location == "127.0.0.1:5000/team/app/cache"
    assert cache.ttl == dt.timedelta(hours=6) and not cache.push
    assert cache.caches("COPY") and not cache.caches("RUN")
    layout = open_step_cache(
        SimpleNamespace(cache=True, cache_repo=f"oci:{tmp_path}/c", destination=()), client
    )
    assert layout is not None and isinstance(layout.backend, LayoutBackend)
    assert open_step_cache(SimpleNamespace(cache=False), client) is None
    with pytest.raises(CacheError):
        RegistryBackend(client, "127.0.0.1:5000/app/cache:sometag")


def test_cache_config_records_diff_id_and_delta(
    tmp_path: Path, client: RegistryClient, proxy: CountingProxy
) -> None:
    name = repo(proxy) + "/cache"
    layer = make_layer(tmp_path / "l.tgz", {"a": b"1"})
    cache = StepCache(RegistryBackend(client, name))
    cache.store(KEY, layer, history={"created_by": "COPY a /a"}, config_delta={"WorkingDir": "/a"})
    cache.close()
    raw = skopeo_inspect(f"{name}:{KEY}", raw=True, extra=["--config"])
    assert raw["rootfs"]["diff_ids"] == [layer.diff_id]
    assert raw["brickyard.cache"]["config_delta"] == {"WorkingDir": "/a"}
    assert json.loads(json.dumps(raw["history"]))[0]["created_by"] == "COPY a /a"
