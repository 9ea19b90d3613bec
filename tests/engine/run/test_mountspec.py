"""RUN --mount values as BuildKit reads them, and what each becomes for a step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import BuildError, UsageError
from engine.run.mountspec import (
    MountSources,
    MountSpec,
    context_filter,
    load_secrets,
    parse_mount,
    step_mounts,
)


def test_defaults_follow_buildkit() -> None:
    assert parse_mount("target=/src") == MountSpec("bind", "/src", readonly=True)
    cache = parse_mount("type=cache,target=/root/.cache")
    assert (cache.id, cache.readonly, cache.sharing) == ("/root/.cache", False, "shared")
    assert parse_mount("type=secret,id=tok").target == "/run/secrets/tok"
    assert parse_mount("type=secret,target=/etc/key").id == "key"
    spec = parse_mount("type=bind,from=build,src=/out,dst=/o,rw")
    assert (spec.from_, spec.source, spec.target, spec.readonly) == ("build", "/out", "/o", False)
    spec = parse_mount("type=cache,target=/c,mode=0700,uid=1000,gid=50,sharing=locked,ro=true")
    assert (spec.mode, spec.uid, spec.gid, spec.sharing, spec.readonly) == (
        0o700,
        1000,
        50,
        "locked",
        True,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type=nfs,target=/x", "unknown mount type 'nfs'"),
        ("type=cache", "target is required"),
        ("target=/x,colour=red", "unknown option 'colour'"),
        ("type=cache,target=/x,sharing=sometimes", "unknown sharing mode 'sometimes'"),
        ("type=cache,target=/x,mode=rwx", "invalid mode 'rwx'"),
        ("target=/x,ro=maybe", "invalid value for ro"),
    ],
)
def test_bad_values_are_refused(text: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        parse_mount(text)


def sources(tmp_path: Path, **kw: object) -> MountSources:
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True, exist_ok=True)
    (ctx / "sub/keep.txt").write_text("k")
    (ctx / "sub/drop.log").write_text("d")
    stage = tmp_path / "stage"
    (stage / "out").mkdir(parents=True, exist_ok=True)
    (stage / "out/bin").write_text("b")
    args: dict = {
        "context_dir": ctx,
        "root_of": lambda ref: {"build": stage}[ref],
        "cache_root": tmp_path / "cache",
        "scratch": tmp_path / "scratch",
    }
    args.update(kw)
    return MountSources(**args)


def test_binds_resolve_in_their_root_and_rw_or_filtered_binds_are_copies(tmp_path: Path) -> None:
    src = sources(tmp_path)
    specs = [parse_mount("target=/c,source=sub"), parse_mount("from=build,source=out,target=/o")]
    with step_mounts(specs, src) as mounts:
        assert [(m.source, m.readonly) for m in mounts] == [
            (str(tmp_path / "ctx/sub"), True),
            (str(tmp_path / "stage/out"), True),
        ]
    filtered = sources(tmp_path, excluded=lambda rel, is_dir: rel.endswith(".log"))
    with step_mounts([parse_mount("target=/c,source=sub,rw")], filtered) as mounts:
        copy = Path(mounts[0].source)
        assert sorted(os.listdir(copy)) == ["keep.txt"]
        assert not mounts[0].readonly
    assert not copy.exists()  # thrown away after the step
    missing = step_mounts([parse_mount("target=/c,source=/nope")], src)
    with pytest.raises(BuildError, match="source /nope not found in the build context"), missing:
        pass
    # a source cannot climb out of its root
    with step_mounts([parse_mount("target=/c,source=../../..")], src) as mounts:
        assert mounts[0].source == str(tmp_path / "ctx")


def test_cache_is_keyed_by_id_persistent_and_made_with_mode(tmp_path: Path) -> None:
    src = sources(tmp_path)
    spec = parse_mount("type=cache,target=/c,id=pip,mode=0700,uid=1000")
    with step_mounts([spec], src) as mounts:
        first = Path(mounts[0].source)
        (first / "f").write_text("x")
    st = first.stat()
    assert (st.st_mode & 0o777, st.st_uid) == (0o700, 1000)
    with step_mounts([parse_mount("type=cache,target=/other,id=pip")], src) as mounts:
        assert Path(mounts[0].source) == first
    with step_mounts([parse_mount("type=cache,target=/d,from=build,source=out")], src) as m:
        assert (Path(m[0].source) / "bin").read_text() == "b"  # seeded from the stage


def test_relative_targets_are_taken_from_the_working_directory(tmp_path: Path) -> None:
    with step_mounts([parse_mount("type=tmpfs,target=tmp")], sources(tmp_path), cwd="/w") as m:
        assert m[0].target == "/w/tmp"


def test_secrets_from_files_and_env(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("t")
    got = load_secrets(
        ["id=a,src=" + str(tmp_path / "tok"), "id=b,env=B_VAR", "id=C"],
        {"B_VAR": "bee", "C": "see"},
        tmp_path / "secrets",
    )
    assert {k: v.read_text() for k, v in got.items()} == {"a": "t", "b": "bee", "C": "see"}
    assert got["b"].stat().st_mode & 0o777 == 0o600
    with pytest.raises(UsageError, match="--secret id=x: environment variable x is not set"):
        load_secrets(["id=x"], {}, tmp_path / "s")
    src = sources(tmp_path, secrets=got)
    with step_mounts([parse_mount("type=secret,id=b")], src) as mounts:
        mount = mounts[0]
        assert (mount.target, mount.readonly) == ("/run/secrets/b", True)
        assert os.stat(mount.source).st_mode & 0o777 == 0o400
    with step_mounts([parse_mount("type=secret,id=zz")], src) as mounts:
        assert mounts == []  # optional and missing: not mounted
    required = step_mounts([parse_mount("type=secret,id=zz,required")], src)
    with pytest.raises(BuildError, match="secret 'zz' was not given"), required:
        pass


def test_context_filter_skips_only_what_dockerignore_excludes() -> None:
    from engine.context.dockerignore import matcher_from_patterns

    assert context_filter(matcher_from_patterns([])) is None
    excluded = context_filter(matcher_from_patterns(["*.log", "build", "!build/keep"]))
    assert excluded is not None
    assert excluded("a.log", False) and not excluded("a.txt", False)
    assert not excluded("build", True)  # something below is re-included
    assert excluded("build/x", False) and not excluded("build/keep", False)


def test_one_cache_id_twice_in_a_step_is_the_same_dir_without_waiting_on_itself(
    tmp_path: Path,
) -> None:
    specs = [
        parse_mount("type=cache,id=x,target=/a,sharing=locked"),
        parse_mount("type=cache,id=x,target=/b,sharing=locked,ro"),
    ]
    with step_mounts(specs, sources(tmp_path)) as mounts:
        assert mounts[0].source == mounts[1].source
        assert [m.readonly for m in mounts] == [False, True]
