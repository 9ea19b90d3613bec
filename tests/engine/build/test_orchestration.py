from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.build import adapt, cachestep, sources
from engine.build.config import StageConfig
from engine.dockerfile import parse_dockerfile
from engine.fs.snapshot import Snapshotter


def _snap(root: Path) -> Snapshotter:
    s = Snapshotter(root, ["/proc", "/etc/resolv.conf"])
    s.reset()
    return s


def test_timestamp_only_directory_change_is_not_a_layer(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root\n")
    snap = _snap(tmp_path)
    # what RUN's plumbing does: a file made and removed in /etc (ignored path)
    (tmp_path / "etc" / "resolv.conf").write_text("nameserver 1.1.1.1\n")
    (tmp_path / "etc" / "resolv.conf").unlink()
    assert adapt.full_diff(snap) == ([], [], [])


def test_real_changes_keep_their_parent_directories(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "old").write_text("x")
    (tmp_path / "c").mkdir()
    snap = _snap(tmp_path)
    (tmp_path / "a" / "b" / "new").write_text("y")
    (tmp_path / "c" / "tmp").write_text("t")
    (tmp_path / "c" / "tmp").unlink()
    changed, deleted, opaque = adapt.full_diff(snap)
    assert changed == ["a", "a/b", "a/b/new"]
    assert (deleted, opaque) == ([], [])


def test_mode_change_of_a_directory_is_kept(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    snap = _snap(tmp_path)
    os.chmod(tmp_path / "d", 0o700)
    assert adapt.full_diff(snap)[0] == ["d"]


def test_deletion_keeps_parent_and_becomes_whiteout(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    snap = _snap(tmp_path)
    (tmp_path / "d" / "f").unlink()
    changed, deleted, _ = adapt.full_diff(snap)
    assert deleted == ["d/f"] and changed == ["d"]


def _instructions(text: str) -> list[object]:
    return list(parse_dockerfile(text).instructions)


def test_expanded_text_carries_flags_json_and_heredocs() -> None:
    copy, run, heredoc = _instructions(
        'COPY --chown=app a b /dst/\nRUN ["echo", "hi"]\nRUN <<EOF\necho x\nEOF\n'
    )
    assert cachestep.expanded_text(copy) == "COPY --chown=app a b /dst/"
    assert cachestep.expanded_text(run) == 'RUN ["echo", "hi"]'
    assert cachestep.expanded_text(heredoc) == "RUN <<EOF <<EOF\necho x\n"


def test_run_command_shell_exec_and_heredocs() -> None:
    shell_form, exec_form, heredoc, two, script = _instructions(
        'RUN make all\nRUN ["/bin/true", "x"]\nRUN <<EOF\necho $HOME\nEOF\n'
        "RUN cat <<A && cat <<B\na\nA\nb\nB\n"
        "RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"
    )
    shell = ["/bin/sh", "-c"]
    assert adapt.run_command(shell_form, shell).argv == ("/bin/sh", "-c", "make all")
    assert adapt.run_command(exec_form, shell).argv == ("/bin/true", "x")
    assert adapt.run_command(heredoc, shell).argv == ("/bin/sh", "-c", "echo $HOME\n")
    assert adapt.run_command(two, shell).argv == ("/bin/sh", "-c", "cat <<A && cat <<B\na\nA\nb\nB")
    cmd = adapt.run_command(script, shell)
    assert cmd.argv == ("/bin/sh", "-c", "/dev/pipes/EOF")
    assert [(f.path, f.content) for f in cmd.files] == [
        ("/dev/pipes/EOF", "#!/usr/bin/env python3\nprint(1)\n")
    ]


def test_run_files_are_what_the_backends_put_in_dev_pipes() -> None:
    from engine.dockerfile.commands import InlineFile, RunCommand

    cmd = RunCommand(("/bin/sh", "-c", "/dev/pipes/EOF"), (InlineFile("/dev/pipes/EOF", "é\n"),))
    assert adapt.run_files(cmd) == [("/dev/pipes/EOF", "é\n".encode(), 0o755)]


@dataclass
class FakeStage:
    index: int
    base_stage: int | None = None
    depends_on: tuple[int, ...] = ()
    instructions: list[object] = field(default_factory=list)


def test_last_uses_and_base_chain() -> None:
    order = [
        FakeStage(0),
        FakeStage(1, base_stage=0, depends_on=(0,)),
        FakeStage(2),
        FakeStage(3, base_stage=2, depends_on=(2, 0)),
    ]
    assert sources.last_uses(order) == {0: 3, 1: 1, 2: 3, 3: 3}
    assert sources.base_chain(order) == {3, 2}


def test_onbuild_expression_is_stored_unexpanded() -> None:
    (ins,) = _instructions("ONBUILD RUN echo $HOME\n")
    cfg = StageConfig.scratch()
    assert cfg.apply_onbuild(adapt.onbuild_expression(ins)) == "ONBUILD RUN echo $HOME"


def test_run_env_has_default_path_when_the_image_env_has_none() -> None:
    from engine.dockerfile import build_stage_graph

    graph = build_stage_graph(parse_dockerfile("FROM scratch\n"), {})
    scope = graph.global_scope.stage_scope({"A": "1"})
    env = adapt.run_env(scope, StageConfig.scratch())
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["A"] == "1"


def test_unsupported_run_flags_in_onbuild_triggers_are_refused_at_the_from_line() -> None:
    from engine.dockerfile import build_stage_graph
    from engine.errors import BuildError

    text = "FROM scratch AS a\nONBUILD RUN --mount=type=ssh true\nFROM a\n"
    graph = build_stage_graph(parse_dockerfile(text, filename="df"), {})
    with pytest.raises(adapt.UnsupportedInstruction) as err:
        sources.check_supported(graph.needed_stages(), "df")
    assert str(err.value) == (
        "df:3: RUN --mount=type=ssh is not supported (no SSH agent forwarding)"
    )
    assert isinstance(err.value, BuildError) and err.value.exit_code == 7
    ok = build_stage_graph(parse_dockerfile("FROM scratch\nRUN --network=host true\n"), {})
    sources.check_supported(ok.needed_stages(), "df")
