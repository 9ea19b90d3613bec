"""Consecutive RUN snapshots: the second RUN's layer is diffed against the index the first
RUN's snapshot left (no re-walk in between) and holds exactly what the second RUN changed,
also on a tree big enough for the forked scan helper and layer builders."""

from __future__ import annotations

import io
import tarfile
from tarfile import TarInfo

import pytest
import requests

from tests.e2e.harness import E2E, Built, new_layers

pytestmark = pytest.mark.integration

DIRS, FILES = 40, 60  # 2,400 files in 40 directories: big enough to fork


def _layer_members(built: Built, layer: dict[str, object]) -> dict[str, tuple[TarInfo, bytes]]:
    """name -> (member, file content) of one pushed layer, read straight from the registry."""
    host, _, rest = built.ref.partition("/")
    repo = rest.rpartition(":")[0]
    r = requests.get(f"http://{host}/v2/{repo}/blobs/{layer['digest']}", timeout=30)
    r.raise_for_status()
    out: dict[str, tuple[TarInfo, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            out[m.name.rstrip("/")] = (m, f.read() if f is not None else b"")
    return out


def test_second_run_layer_holds_only_its_changes_to_files_the_first_made(e2e: E2E) -> None:
    dockerfile = (
        "FROM {base}\n"
        f"RUN for d in $(seq 1 {DIRS}); do mkdir -p /t/d$d; done && awk 'BEGIN {{ "
        f"for (d = 1; d <= {DIRS}; d++) for (f = 1; f <= {FILES}; f++) {{ "
        'p = "/t/d" d "/f" f; print "f" f > p; close(p) } }\' '
        "&& ln /t/d1/f1 /t/d1/link\n"
        # delete, rewrite, chmod (metadata only, through a hardlinked name), add, drop a dir
        "RUN rm /t/d2/f2 /t/d3/f1 && echo rewritten > /t/d4/f4 && chmod 600 /t/d1/link "
        "&& echo new > /t/d5/new && rm -rf /t/d6\n"
    )
    b = e2e.build("runsnapshots", dockerfile, args=["-v", "debug"]).ok()
    # the rootfs was indexed once (before the first RUN); the second RUN started from the
    # index the first RUN's snapshot committed
    assert b.log.count("Indexed ") == 1, b.log

    first, second = (_layer_members(b, layer) for layer in new_layers(b))
    assert len([n for n, (m, _) in first.items() if m.isfile()]) == DIRS * FILES
    assert first["t/d4/f4"][1] == b"f4\n"
    files = {n for n, (m, _) in second.items() if not m.isdir()}
    assert files == {
        "t/d2/.wh.f2",
        "t/d3/.wh.f1",
        "t/d4/f4",
        "t/d1/f1",
        "t/d1/link",
        "t/d5/new",
        "t/.wh.d6",
    }
    dirs = {n for n, (m, _) in second.items() if m.isdir()}
    assert dirs == {"t", "t/d1", "t/d2", "t/d3", "t/d4", "t/d5"}
    assert second["t/d4/f4"][1] == b"rewritten\n"
    assert second["t/d5/new"][1] == b"new\n"
    # the chmod reached both names: one carries the data (unchanged), the other links to it
    f1, link = second["t/d1/f1"][0], second["t/d1/link"][0]
    assert (f1.mode, link.mode) == (0o600, 0o600)
    assert f1.isfile() and link.islnk() and link.linkname == "t/d1/f1"
    assert second["t/d1/f1"][1] == b"f1\n"
