from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

import pytest

import engine.build
from engine import cli, errors
from engine.options import OPTIONS, BuildOptions


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> list[BuildOptions]:
    calls: list[BuildOptions] = []

    def build(options: BuildOptions, env: Mapping[str, str], **kw: Any) -> object:
        calls.append(options)
        return object()

    monkeypatch.setattr(engine.build, "build", build, raising=False)
    return calls


def test_executor_runs_the_build_with_parsed_options(fake_build: list[BuildOptions]) -> None:
    code = cli.executor_main(["--no-push", "-c", "/src", "--build-arg", "A"], {"A": "1"})
    assert code == 0
    assert fake_build[0].context == "/src"
    assert fake_build[0].build_arg == ("A=1",)


def test_brickyard_build_takes_the_same_flags(fake_build: list[BuildOptions]) -> None:
    assert cli.brickyard_main(["build", "--no-push", "--target=app"], {}) == 0
    assert fake_build[0].target == "app"


def test_unknown_flag_exits_2_with_one_line_and_suggestion(
    fake_build: list[BuildOptions], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.executor_main(["--destinaton", "r/a"], {}) == 2
    err = capsys.readouterr().err
    assert err == "error: unknown flag: --destinaton (did you mean --destination?)\n"
    assert fake_build == []


def test_validation_failure_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.executor_main([], {}) == 2
    assert capsys.readouterr().err == "error: you must provide --destination, or use --no-push\n"


def test_kaniko_no_push_env_satisfies_the_destination_rule(
    fake_build: list[BuildOptions],
) -> None:
    assert cli.executor_main([], {"KANIKO_NO_PUSH": "true"}) == 0
    assert fake_build[0].no_push is True


def test_flag_not_implemented_exits_10_naming_it(
    fake_build: list[BuildOptions],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import engine.options as options_module

    table = tuple(
        dataclasses.replace(opt, implemented=False) if opt.name == "cleanup" else opt
        for opt in OPTIONS
    )
    monkeypatch.setattr(options_module, "OPTIONS", table)
    assert cli.executor_main(["--no-push", "--cleanup"], {}) == 10
    assert capsys.readouterr().err == "error: --cleanup is accepted but not implemented yet\n"
    assert fake_build == []


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.BuildError("RUN failed with exit status 3"), 7),
        (errors.RegistryError("127.0.0.1:5000: 500"), 5),
        (errors.DockerfileError("unknown instruction: COPPY", line=3), 3),
        (errors.ContextError("context dir:///nope does not exist"), 4),
        (errors.OutputError("cannot write digest file"), 9),
    ],
)
def test_build_errors_map_to_their_exit_code_and_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: errors.BrickyardError,
    code: int,
) -> None:
    def build(options: BuildOptions, env: Mapping[str, str], **kw: Any) -> object:
        raise exc

    monkeypatch.setattr(engine.build, "build", build, raising=False)
    assert cli.executor_main(["--no-push"], {}) == code
    err = capsys.readouterr().err
    assert err == f"error: {exc}\n"


def test_multi_line_error_message_is_folded_to_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def build(options: BuildOptions, env: Mapping[str, str], **kw: Any) -> object:
        raise errors.BuildError("first\nsecond")

    monkeypatch.setattr(engine.build, "build", build, raising=False)
    assert cli.executor_main(["--no-push"], {}) == 7
    assert capsys.readouterr().err == "error: first second\n"


def test_missing_build_engine_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delattr(engine.build, "build", raising=False)
    assert cli.executor_main(["--no-push"], {}) == 1
    assert "build engine is not available" in capsys.readouterr().err


def test_deprecated_flag_warns_on_stderr(
    fake_build: list[BuildOptions], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.executor_main(["--no-push", "--customPlatform=linux/arm64"], {}) == 0
    assert "warning: flag --customPlatform is deprecated, use --custom-platform" in (
        capsys.readouterr().err
    )
    assert fake_build[0].custom_platform == "linux/arm64"


def test_inplace_isolation_outside_a_container_needs_force(
    fake_build: list[BuildOptions],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "_in_container", lambda env: False)
    chosen = {"opts": BuildOptions(no_push=True, isolation="inplace")}
    monkeypatch.setattr(cli, "parse_build_options", lambda *a, **k: chosen["opts"])
    assert cli.executor_main([], {}) == 2
    assert "--isolation inplace should only be run inside of a container" in (
        capsys.readouterr().err
    )
    assert fake_build == []
    chosen["opts"] = BuildOptions(no_push=True, isolation="inplace", force=True)
    assert cli.executor_main([], {}) == 0
    assert len(fake_build) == 1


def test_executor_help_lists_every_visible_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.executor_main(["--help"], {}) == 0
    out = capsys.readouterr().out
    for opt in OPTIONS:
        if not opt.hidden:
            assert f"--{opt.name}" in out


def test_version_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.executor_main(["version"], {}) == 0
    assert cli.brickyard_main(["version"], {}) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("executor version ")
    assert out[1].startswith("brickyard version ")


def test_unknown_subcommand_suggests_closest(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.brickyard_main(["bulid"], {}) == 2
    assert capsys.readouterr().err == "error: unknown command: bulid (did you mean build?)\n"


def test_no_subcommand_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.brickyard_main([], {}) == 2
    assert "Usage: brickyard <command>" in capsys.readouterr().err


def test_adapter_subcommands_are_dispatched_with_argv_and_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[list[str], Mapping[str, str]]] = []

    def gitlab(argv: list[str], env: Mapping[str, str]) -> int:
        seen.append((argv, env))
        raise errors.AdapterError("CI_REGISTRY_IMAGE is not set")

    fake = types.ModuleType("adapters.cli")
    fake.COMMANDS = {"gitlab": gitlab}  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "adapters.cli", fake)
    assert cli.brickyard_main(["gitlab", "build", "--x"], {"CI": "true"}) == 11
    assert seen == [(["build", "--x"], {"CI": "true"})]


def test_warm_without_images_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.brickyard_main(["warm"], {}) == 2
    assert "at least one image" in capsys.readouterr().err


def test_warm_help_lists_the_warmer_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.brickyard_main(["warm", "--help"], {}) == 0
    out = capsys.readouterr().out
    assert "-i, --image" in out and "-c, --cache-dir" in out and "-d, --dockerfile" in out
