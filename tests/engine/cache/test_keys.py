from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.cache.keys import (
    base_key,
    hash_file,
    hash_sources,
    stage_source_digest,
    step_key,
)
from engine.errors import ContextError

BASE = "sha256:" + "a" * 64


@dataclass
class Step:
    text: str
    run_env: dict[str, str] | None = None
    copies: list[str] = field(default_factory=list)


def chain(base: str, steps: list[Step], context: Path) -> list[str]:
    """Keys of a step sequence, as the build orchestration computes them."""
    keys = []
    parent = base_key(base)
    for s in steps:
        sources = None
        if s.copies:
            sources = hash_sources(context, [context / c for c in s.copies])
        parent = step_key(parent, s.text, run_env=s.run_env, sources=sources)
        keys.append(parent)
    return keys


def changed(before: list[str], after: list[str]) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.py").write_text("print('a')\n")
    (tmp_path / "src/b.py").write_text("print('b')\n")
    (tmp_path / "app.conf").write_text("port=80\n")
    return tmp_path


def small_app(version: str) -> list[Step]:
    # WORKDIR, COPY src, RUN before ARG, ARG, RUN seeing it, COPY app.conf, RUN
    env = {"PATH": "/bin"}
    with_arg = {**env, "VERSION": version}
    return [
        Step("WORKDIR /app"),
        Step("COPY src/ /app/src/", copies=["src"]),
        Step("RUN ls /app", run_env=env),
        Step("ARG VERSION"),
        Step("RUN echo build", run_env=with_arg),
        Step("COPY app.conf /etc/app.conf", copies=["app.conf"]),
        Step("RUN cat /etc/app.conf", run_env=with_arg),
    ]


def test_keys_are_stable_hex_tags(context: Path) -> None:
    a = chain(BASE, small_app("1"), context)
    b = chain(BASE, small_app("1"), context)
    assert a == b
    assert len(set(a)) == len(a)
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in a)


def test_build_arg_change_invalidates_only_the_runs_that_see_it_and_later(context: Path) -> None:
    before = chain(BASE, small_app("1"), context)
    after = chain(BASE, small_app("2"), context)
    assert changed(before, after) == [4, 5, 6]


def test_context_file_change_invalidates_only_the_copy_using_it_and_later(context: Path) -> None:
    before = chain(BASE, small_app("1"), context)
    (context / "app.conf").write_text("port=8080\n")
    after = chain(BASE, small_app("1"), context)
    assert changed(before, after) == [5, 6]


def test_file_in_copied_directory_change_invalidates_from_that_copy(context: Path) -> None:
    before = chain(BASE, small_app("1"), context)
    (context / "src/b.py").write_text("print('B')\n")
    assert changed(before, chain(BASE, small_app("1"), context)) == [1, 2, 3, 4, 5, 6]


def test_unrelated_context_file_changes_nothing(context: Path) -> None:
    before = chain(BASE, small_app("1"), context)
    (context / "README.md").write_text("docs\n")
    assert changed(before, chain(BASE, small_app("1"), context)) == []


def test_base_digest_change_invalidates_every_step(context: Path) -> None:
    before = chain(BASE, small_app("1"), context)
    after = chain("sha256:" + "b" * 64, small_app("1"), context)
    assert changed(before, after) == list(range(7))


def test_mtime_does_not_change_the_key_but_mode_and_owner_do(context: Path) -> None:
    f = context / "app.conf"
    first = hash_sources(context, [f])
    os.utime(f, (1, 1))
    assert hash_sources(context, [f]) == first
    os.chmod(f, 0o600)
    assert hash_sources(context, [f]) != first
    assert hash_sources(context, [f], owner="1000:1000") != hash_sources(context, [f])


def test_symlink_target_is_hashed_not_followed(context: Path) -> None:
    link = context / "link"
    link.symlink_to("src/a.py")
    first = hash_file(link, "link")
    link.unlink()
    link.symlink_to("src/b.py")
    assert hash_file(link, "link") != first


def test_new_or_removed_file_in_directory_changes_hash(context: Path) -> None:
    first = hash_sources(context, [context / "src"])
    (context / "src/c.py").write_text("")
    second = hash_sources(context, [context / "src"])
    assert second != first
    (context / "src/c.py").unlink()
    assert hash_sources(context, [context / "src"]) == first


def test_dockerignored_files_do_not_change_hash(context: Path) -> None:
    def ignored(rel: str) -> bool:
        # Docker semantics: a directory's exclusion covers everything below it.
        return rel.endswith(".pyc") or rel == "src/build" or rel.startswith("src/build/")

    first = hash_sources(context, [context / "src"], excluded=ignored)
    (context / "src/a.pyc").write_bytes(b"\0" * 10)
    (context / "src/build").mkdir()
    (context / "src/build/out.o").write_bytes(b"x")
    assert hash_sources(context, [context / "src"], excluded=ignored) == first
    assert hash_sources(context, [context / "src"]) != first


def test_renamed_file_with_same_content_changes_hash(context: Path) -> None:
    first = hash_sources(context, [context / "src"])
    (context / "src/a.py").rename(context / "src/z.py")
    assert hash_sources(context, [context / "src"]) != first


def test_large_file_is_hashed_by_content(context: Path) -> None:
    big = context / "big.bin"
    with open(big, "wb") as f:
        f.truncate(5 * 1024 * 1024)
    first = hash_file(big, "big.bin")
    with open(big, "r+b") as f:
        f.seek(4 * 1024 * 1024)
        f.write(b"x")
    assert hash_file(big, "big.bin") != first


def test_missing_source_is_a_context_error(context: Path) -> None:
    with pytest.raises(ContextError, match="nope"):
        hash_sources(context, [context / "nope"])


def test_source_outside_context_is_refused(
    context: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("other") / "f"
    other.write_text("x")
    with pytest.raises(ContextError, match="outside the build context"):
        hash_sources(context, [other])


def test_run_env_only_counts_for_run_and_is_order_independent() -> None:
    p = base_key(BASE)
    assert step_key(p, "RUN x", run_env={"A": "1", "B": "2"}) == step_key(
        p, "RUN x", run_env={"B": "2", "A": "1"}
    )
    assert step_key(p, "RUN x", run_env={}) != step_key(p, "RUN x")
    # Field boundaries are unambiguous: text and env never blur into each other.
    assert step_key(p, "RUN x A=1", run_env={}) != step_key(p, "RUN x", run_env={"A": "1"})


def test_copy_from_stage_keys_follow_the_stage_key() -> None:
    a = stage_source_digest("1" * 64, ["/out/app"])
    assert a == stage_source_digest("1" * 64, ["/out/app"])
    assert a != stage_source_digest("2" * 64, ["/out/app"])
    assert a != stage_source_digest("1" * 64, ["/out/lib"])


def test_scratch_and_platform_give_distinct_base_keys() -> None:
    assert base_key(None) != base_key(BASE)
    assert base_key(BASE, "linux/amd64") != base_key(BASE, "linux/arm64")


def test_files_reincluded_under_an_ignored_directory_count(context: Path) -> None:
    from engine.context import matcher_from_patterns

    build = context / "src/build"
    build.mkdir()
    (build / "keep.txt").write_text("kept\n")
    (build / "out.o").write_bytes(b"obj")
    matcher = matcher_from_patterns(["src/build", "!src/build/keep.txt"])

    def digest() -> str:
        return hash_sources(context, [context / "src"], excluded=matcher.excluded)

    first = digest()
    (build / "out.o").write_bytes(b"other obj")
    assert digest() == first
    (build / "keep.txt").write_text("changed\n")
    assert digest() != first


def test_ignored_directory_tree_is_not_read_when_nothing_is_reincluded(
    context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.cache import keys
    from engine.context import matcher_from_patterns

    deps = context / "src/node_modules"
    (deps / "pkg").mkdir(parents=True)
    (deps / "pkg/lib.js").write_text("x")
    scanned: list[str] = []
    real_scandir = os.scandir

    def recording(path: str | os.PathLike[str]) -> object:
        scanned.append(Path(path).relative_to(context).as_posix())
        return real_scandir(path)

    monkeypatch.setattr(keys.os, "scandir", recording)
    matcher = matcher_from_patterns(["src/node_modules"])
    hash_sources(context, [context / "src"], excluded=matcher.excluded)
    assert scanned == ["src"]
    scanned.clear()
    hash_sources(context, [context / "src"], excluded=lambda rel: rel.startswith("src/node_"))
    assert "src/node_modules" in scanned  # no can_skip_dir: walked, to be safe


def test_a_symlinked_source_is_hashed_by_what_it_points_at(context: Path) -> None:
    (context / "current").symlink_to("src")
    (context / "conf.link").symlink_to("app.conf")
    first = hash_sources(context, [context / "current", context / "conf.link"])
    (context / "src/a.py").write_text("print('changed')\n")
    second = hash_sources(context, [context / "current", context / "conf.link"])
    assert second != first
    (context / "app.conf").write_text("port=1\n")
    assert hash_sources(context, [context / "current", context / "conf.link"]) != second


def _pinned_tree(root: Path) -> Path:
    ctx = root / "ctx"
    (ctx / "src/pkg/deep").mkdir(parents=True)
    (ctx / "src/a.txt").write_text("alpha\n")
    (ctx / "src/pkg/b.py").write_text("print('b')\n")
    (ctx / "src/pkg/deep/c.bin").write_bytes(bytes(range(256)) * 20)
    (ctx / "src/pkg/skip.tmp").write_text("ignored\n")
    (ctx / "src/link").symlink_to("pkg/b.py")
    for p in ctx.rglob("*"):
        if not p.is_symlink():
            p.chmod(0o755 if p.is_dir() else 0o644)
    (ctx / "src/pkg/b.py").chmod(0o755)
    return ctx


def test_source_digests_are_pinned(tmp_path: Path) -> None:
    # Keys live on in registries: a change to how sources are hashed must be deliberate
    # (bump KEY_VERSION), never a side effect of a faster walk.
    ctx = _pinned_tree(tmp_path)
    assert hash_sources(ctx, [ctx / "src"]) == (
        "a10f6c28670f447b7a8f3eb0b546b8ef0fb5fafa7d3bdb477ca2a0413c8654ef"
    )
    assert hash_sources(
        ctx, [ctx / "src"], owner="1:1", excluded=lambda rel: rel.endswith(".tmp")
    ) == ("e3c5f39d2398461f90cff1ac3dc7c066bc10a88a04994b68bfc0a82fe28d9a4b")
