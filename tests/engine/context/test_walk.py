from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.context import walk as walk_mod
from engine.context.dockerignore import IgnoreMatcher, read_ignore_lines
from engine.context.walk import hash_files, included_files, match_sources, walk_context
from engine.errors import BuildError, ContextError


def make_tree(root: Path, files: list[str]) -> None:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


def matcher(text: str) -> IgnoreMatcher:
    return IgnoreMatcher.from_lines(read_ignore_lines(text))


TREE = [
    "Dockerfile",
    "README.md",
    "docs/a.md",
    "docs/keep.md",
    "node_modules/x/index.js",
    "node_modules/keep.txt",
    "src/app.py",
    "src/app.pyc",
    "src/pkg/mod.py",
    "keep.txt",
]


def test_walk_keeps_order_and_applies_exceptions(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    m = matcher("node_modules\n!node_modules/keep.txt\n**/*.pyc\ndocs\n!docs/keep.md\n")
    assert included_files(tmp_path, m) == [
        "Dockerfile",
        "README.md",
        "docs/keep.md",
        "keep.txt",
        "node_modules/keep.txt",
        "src/app.py",
        "src/pkg/mod.py",
    ]


def test_excluded_dir_is_pruned_without_exceptions_reaching_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, TREE)
    listed: list[str] = []
    real_scandir = os.scandir

    def counting(path: str | os.PathLike[str]) -> object:
        listed.append(Path(path).relative_to(tmp_path).as_posix())
        return real_scandir(path)

    monkeypatch.setattr(walk_mod.os, "scandir", counting)
    # Docker's rule: "!**/keep.txt" does not start with node_modules/, so the dir is skipped
    files = included_files(tmp_path, matcher("node_modules\n!**/keep.txt\n"))
    assert "keep.txt" in files
    assert "node_modules/keep.txt" not in files
    assert not any(p.startswith("node_modules") for p in listed)


def test_walk_from_a_subdirectory(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    rels = [e.rel for e in walk_context(tmp_path, matcher("src/*.pyc"), start="src")]
    assert rels == ["src/app.py", "src/pkg", "src/pkg/mod.py"]


def test_match_sources_literal_wildcard_and_dot(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    m = matcher("*.md\n")
    found = match_sources(tmp_path, ["src/app.py", "src/*.py", "/keep.txt"], m)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["src/app.py", "keep.txt"]
    assert match_sources(tmp_path, ["."], m) == [tmp_path]
    found = match_sources(tmp_path, ["*.md", "*.txt"], m)  # README.md is ignored
    assert [p.name for p in found] == ["keep.txt"]
    found = match_sources(tmp_path, ["src/*"], m)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "src/app.py",
        "src/app.pyc",
        "src/pkg",
    ]


def test_match_sources_missing_or_ignored_literal_is_a_build_error(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    with pytest.raises(BuildError, match=r"COPY source nope\.txt: not found"):
        match_sources(tmp_path, ["nope.txt"], matcher(""))
    with pytest.raises(BuildError, match=r"excluded by \.dockerignore"):
        match_sources(tmp_path, ["README.md"], matcher("*.md"))
    with pytest.raises(BuildError, match="no source files were specified"):
        match_sources(tmp_path, ["*.none"], matcher(""))


def test_match_sources_refuses_paths_outside_the_context(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="outside the build context"):
        match_sources(tmp_path, ["../etc/passwd"], matcher(""))


def test_hash_files_changes_with_content_mode_and_ignored_files_do_not_count(
    tmp_path: Path,
) -> None:
    make_tree(tmp_path, TREE)
    m = matcher("src/*.pyc\n")
    src = [tmp_path / "src"]
    first = hash_files(tmp_path, src, m)
    assert hash_files(tmp_path, src, m) == first
    (tmp_path / "src" / "app.pyc").write_text("changed, but ignored")
    assert hash_files(tmp_path, src, m) == first
    (tmp_path / "src" / "pkg" / "mod.py").write_text("changed")
    second = hash_files(tmp_path, src, m)
    assert second != first
    os.chmod(tmp_path / "src" / "pkg" / "mod.py", 0o755)
    assert hash_files(tmp_path, src, m) != second
