from __future__ import annotations

from pathlib import Path

import pytest

from engine.build.assemble import LayerRef
from engine.build.upload import Uploader
from engine.image.model import Descriptor
from engine.registry import Reference

DIGEST = "sha256:" + "a" * 64


class FakeClient:
    """Records calls; `mountable` decides whether a cross-repository mount succeeds."""

    def __init__(self, *, mountable: bool, present: bool = False) -> None:
        self.mountable = mountable
        self.present = present
        self.calls: list[tuple[str, str, str | None]] = []

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        return self.present

    def push_blob(
        self, ref: Reference, desc: Descriptor, path: Path, mount_from: Reference | None = None
    ) -> str:
        src = mount_from.repository if mount_from else None
        if mount_from is not None and self.mountable:
            self.calls.append(("mounted", ref.repository, src))
            return "mounted"
        with open(path, "rb"):  # an upload reads the file: a missing one fails like the client
            pass
        self.calls.append(("uploaded", ref.repository, src))
        return "uploaded"


def _layer(source: str | None, path: Path | None, fetched: list[Path]) -> LayerRef:
    def fetch(dest: Path) -> None:
        dest.write_bytes(b"blob")
        fetched.append(dest)

    return LayerRef(Descriptor("m", DIGEST, 4), DIGEST, path, source, "", fetch)


def _ensure(tmp_path: Path) -> object:
    def ensure_local(layer: LayerRef) -> Path:
        if layer.path is not None:
            return layer.path
        dest = tmp_path / "blob"
        if not dest.exists():
            assert layer.fetch is not None
            layer.fetch(dest)
        return dest

    return ensure_local


def test_same_registry_base_layer_is_mounted_without_download(tmp_path: Path) -> None:
    client = FakeClient(mountable=True)
    fetched: list[Path] = []
    dest = Reference.parse("reg.example:5000/app/img:1")
    up = Uploader(client, [dest], _ensure(tmp_path))  # type: ignore[arg-type]
    up.finish([_layer("reg.example:5000/base/busybox", None, fetched)])
    up.close()
    assert client.calls == [("mounted", "app/img", "base/busybox")]
    assert fetched == []


def test_refused_mount_falls_back_to_download_and_upload(tmp_path: Path) -> None:
    client = FakeClient(mountable=False)
    fetched: list[Path] = []
    dest = Reference.parse("reg.example:5000/app/img:1")
    up = Uploader(client, [dest], _ensure(tmp_path))  # type: ignore[arg-type]
    up.finish([_layer("reg.example:5000/base/busybox", None, fetched)])
    up.close()
    assert client.calls == [("uploaded", "app/img", "base/busybox")]
    assert fetched == [tmp_path / "blob"]


def test_other_registry_layer_is_uploaded_once_per_destination(tmp_path: Path) -> None:
    client = FakeClient(mountable=True)
    blob = tmp_path / "local"
    blob.write_bytes(b"blob")
    dests = [Reference.parse("one.example/a:1"), Reference.parse("two.example/b:1")]
    up = Uploader(client, dests, _ensure(tmp_path))  # type: ignore[arg-type]
    layer = _layer("docker.io/library/busybox", blob, [])
    up.submit(layer)
    up.submit(layer)  # already queued: not pushed twice
    up.finish([layer])
    up.close()
    assert sorted(client.calls) == [("uploaded", "a", None), ("uploaded", "b", None)]


def test_failed_push_is_raised_by_finish(tmp_path: Path) -> None:
    class Broken(FakeClient):
        def push_blob(self, *args: object, **kwargs: object) -> str:
            raise OSError("disk gone")

    up = Uploader(Broken(mountable=False), [Reference.parse("r.example/a:1")], _ensure(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(OSError, match="disk gone"):
        up.finish([_layer(None, tmp_path, [])])
    up.close()
