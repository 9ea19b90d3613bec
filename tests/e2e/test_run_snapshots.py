"""Consecutive RUN snapshots: the second RUN's layer is diffed against the index the first
RUN's snapshot left (no re-walk in between) and holds exactly what the second RUN changed,
also on a tree big enough for the forked scan helper and layer builders."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
import requests

from tests.e2e.harness import E2E, Built, entry, exists, new_layers

pytestmark = pytest.mark.integration

DIRS, FILES = 40, 60  # 2,400 files in 40 directories: big enough to fork


def _layer_members(built: Built, layer: dict[str, object]) -> dict[str, tarfile.TarInfo]:
    host, _, rest = built.ref.partition("/")
    repo = rest.rpartition(":")[0]
    r = requests.get(f"http://{host}/v2/{repo}/blobs/{layer['digest']}", timeout=30)
    r.raise_for_status()
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def test_second_run_layer_holds_only_its_changes_to_files_the_first_made(e2e: E2E) -> None:
    dockerfile = (
        "FROM {base}\n"
        f"RUN for d in $(seq 1 {DIRS}); do mkdir -p /t/d$d; "
        f"for f in $(seq 1 {FILES}); do echo f$f > /t/d$d/f$f; done; done "
        "&& ln /t/d1/f1 /t/d1/link\n"
        # delete, rewrite, chmod (metadata only, through a hardlinked name), add, drop a dir
        "RUN rm /t/d2/f2 /t/d3/f1 && echo rewritten > /t/d4/f4 && chmod 600 /t/d1/link "
        "&& echo new > /t/d5/new && rm -rf /t/d6\n"
    )
    b = e2e.build("runsnapshots", dockerfile, args=["-v", "debug"]).ok()
    # the rootfs was indexed once (before the first RUN); the second RUN started from the
    # index the first RUN's snapshot committed
    assert b.log.count("Indexed ") == 1, b.log
    r = b.rootfs
    assert not exists(r, "/t/d2/f2") and not exists(r, "/t/d3/f1")
    assert entry(r, "/t/d4/f4").content == "rewritten\n"
    assert entry(r, "/t/d1/f1").mode == 0o600 and entry(r, "/t/d1/f1").content == "f1\n"
    assert os.stat(r / "t/d1/f1").st_ino == os.stat(r / "t/d1/link").st_ino
    assert entry(r, "/t/d5/new").content == "new\n"
    assert not exists(r, "/t/d6") and exists(r, "/t/d8/f1")
    assert entry(r, "/t/d7/f60").content == "f60\n"

    first, second = new_layers(b)
    assert len(_layer_members(b, first)) >= DIRS * FILES
    members = _layer_members(b, second)
    files = {n for n, m in members.items() if not m.isdir()}
    assert files == {
        "t/d2/.wh.f2",
        "t/d3/.wh.f1",
        "t/d4/f4",
        "t/d1/f1",
        "t/d1/link",
        "t/d5/new",
        "t/.wh.d6",
    }
    # one name of the hardlinked pair carries the data, the other links to it
    assert {members["t/d1/f1"].islnk(), members["t/d1/link"].islnk()} == {True, False}
    dirs = {n for n, m in members.items() if m.isdir()}
    assert dirs == {"t", "t/d1", "t/d2", "t/d3", "t/d4", "t/d5"}
