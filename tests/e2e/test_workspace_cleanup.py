"""What a build leaves behind: kaniko's rule (the built filesystem stays under --kaniko-dir
unless --cleanup), a private temporary workspace always goes, secrets never stay."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import pytest

from engine.cli import executor_main
from tests.e2e.harness import E2E

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-value-4711"
DOCKERFILE = (
    "FROM {base}\n"
    "RUN mkdir /made && echo built > /made/file\n"
    # an env secret is written to a file in the workspace; the step only checks it is there
    "RUN --mount=type=secret,id=token test -s /run/secrets/token && echo used > /made/secret\n"
)


def _build(e2e: E2E, tmp_path: Path, kaniko_dir: Path, *extra: str) -> str:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("{base}", e2e.base))
    argv = [
        *("--context", str(ctx), "--dockerfile", str(ctx / "Dockerfile")),
        *("--insecure", "--insecure-pull", "--log-format", "text", "--force"),
        *("--destination", f"{e2e.registry}/e2e/workspace:latest"),
        *("--kaniko-dir", str(kaniko_dir)),
        *("--secret", "id=token,env=TOKEN"),
        *extra,
    ]
    env = {
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TOKEN": SECRET,
    }
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
        rc = executor_main(argv, env)
    assert rc == 0, err.getvalue()[-3000:]
    return err.getvalue()


def _files_holding(root: Path, text: bytes) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    if text in f.read():
                        found.append(path)
    return found


def test_build_under_kaniko_dir_leaves_only_the_built_filesystem(e2e: E2E, tmp_path: Path) -> None:
    kaniko = tmp_path / "kaniko"
    kaniko.mkdir()
    log = _build(e2e, tmp_path, kaniko)
    (workspace,) = kaniko.iterdir()
    assert workspace.name.startswith("brickyard-build-")
    # blobs, layers, the context copy and the secret file are gone; the rootfs stays
    assert [p.name for p in workspace.iterdir()] == ["stages"]
    rootfs = workspace / "stages" / "stage-0" / "rootfs"
    assert (rootfs / "made" / "file").read_text() == "built\n"
    assert (rootfs / "made" / "secret").read_text() == "used\n"
    assert not (rootfs / "run" / "secrets").exists()
    assert _files_holding(kaniko, SECRET.encode()) == []
    assert f"Left the built filesystem in {workspace / 'stages'} (--cleanup removes it)" in log
    assert SECRET not in log


def test_cleanup_removes_the_built_filesystem_under_kaniko_dir(e2e: E2E, tmp_path: Path) -> None:
    kaniko = tmp_path / "kaniko"
    kaniko.mkdir()
    log = _build(e2e, tmp_path, kaniko, "--cleanup")
    assert os.listdir(kaniko) == []
    assert "Left the built filesystem" not in log


def test_private_temporary_workspace_is_always_removed(
    e2e: E2E, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    log = _build(e2e, tmp_path, tmp_path / "no-such-kaniko-dir")
    assert not (tmp_path / "no-such-kaniko-dir").exists()
    assert [p.name for p in tmp.iterdir() if p.name.startswith("brickyard-build-")] == []
    assert "Left the built filesystem" not in log


def test_pre_cleanup_removes_what_earlier_builds_left_but_not_a_running_build(
    e2e: E2E, tmp_path: Path
) -> None:
    from engine.build.workspace import Workspace

    kaniko = tmp_path / "kaniko"
    kaniko.mkdir()
    _build(e2e, tmp_path, kaniko)
    (left,) = kaniko.iterdir()
    running = Workspace.create(str(kaniko))  # another build, in progress: holds its lock
    try:
        (tmp_path / "ctx").rename(tmp_path / "ctx-first")
        log = _build(e2e, tmp_path, kaniko, "--pre-cleanup")
        assert f"Removed {left}, left by an earlier build (--pre-cleanup)" in log
        assert not left.exists() and running.root.is_dir()
        names = sorted(p.name for p in kaniko.iterdir())
        assert len(names) == 2 and running.root.name in names  # and this build's own stages
    finally:
        running.cleanup()
    assert len(list(kaniko.iterdir())) == 1
