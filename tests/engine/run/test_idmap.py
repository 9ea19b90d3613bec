from __future__ import annotations

import os
from pathlib import Path

from engine.run.idmap import rootless_container_ids, subid_map


def test_subid_map_uses_the_callers_first_range(tmp_path: Path) -> None:
    (tmp_path / "subuid").write_text("other:100000:65536\n0:200000:0\n0:300000:1000\n")
    (tmp_path / "subgid").write_text("root:400000:500\n")
    m = subid_map(0, 0, etc=tmp_path)
    assert m is not None
    assert m.uid_args == ("0", "0", "1", "1", "300000", "1000")
    assert m.gid_args == ("0", "0", "1", "1", "400000", "500")
    assert os.path.basename(m.newuidmap) == "newuidmap"


def test_no_range_means_single_mapping(tmp_path: Path) -> None:
    (tmp_path / "subuid").write_text("other:100000:65536\n")
    (tmp_path / "subgid").write_text("")
    assert subid_map(0, 0, etc=tmp_path) is None
    assert subid_map(0, 0, etc=tmp_path / "missing") is None


def test_container_ids_translate_what_a_rootless_step_wrote(tmp_path: Path) -> None:
    (tmp_path / "subuid").write_text("1000:300000:65536\n")
    (tmp_path / "subgid").write_text("1000:400000:65536\n")
    ids = rootless_container_ids(1000, 1000, etc=tmp_path)
    assert (ids.uid(1000), ids.gid(1000)) == (0, 0)
    assert (ids.uid(300000 + 999), ids.gid(400000 + 49)) == (1000, 50)
    assert ids.uid(5) == 65534  # not mapped inside: nobody
    single = rootless_container_ids(1000, 1000, etc=tmp_path / "none")
    assert (single.uid(1000), single.uid(300999)) == (0, 65534)
