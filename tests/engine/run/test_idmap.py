from __future__ import annotations

import os
from pathlib import Path

from engine.run.idmap import subid_map


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
