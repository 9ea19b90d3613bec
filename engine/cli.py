"""Entry points: `executor` (kaniko-compatible) and `brickyard` (build, plan, version, warm, CI).

The only place that reads sys.argv / os.environ and the only place that turns a
BrickyardError into an exit code and a one-line `error: ...` on stderr. Exit codes per error
class are listed in engine/errors.py and README.md.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import BrickyardError, UsageError
from engine.options import (
    OPTIONS,
    WARMER_OPTIONS,
    Option,
    parse_build_options,
    parse_warmer_options,
    render_help,
)

BUILTIN_COMMANDS = ("build", "plan", "version", "warm", "help")

PLAN_OPTIONS: tuple[Option, ...] = (
    Option(
        name="output",
        kind="choice",
        default="text",
        help="Plan output format: text or json.",
        group="brickyard",
        short="o",
        choices=("text", "json"),
        implemented=True,
        brickyard=True,
    ),
)


def _warn(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split("\n")).strip()
    return text or type(err).__name__


def _guarded(action: Callable[[], int]) -> int:
    """Run `action`; the single place where errors become exit codes."""
    try:
        return action()
    except BrickyardError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _wants_help(argv: Sequence[str]) -> bool:
    for arg in argv:
        if arg == "--":
            return False
        if arg in ("-h", "--help", "--help=true"):
            return True
    return False


def _in_container(env: Mapping[str, str]) -> bool:
    """Rough equivalent of kaniko's proc.GetContainerRuntime check."""
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    if env.get("KUBERNETES_SERVICE_HOST") or env.get("container"):
        return True
    try:
        cgroup = Path("/proc/1/cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(word in cgroup for word in ("docker", "kubepods", "containerd", "libpod", "lxc"))


def _load_build() -> Callable[..., Any]:
    module = importlib.import_module("engine.build")
    build = getattr(module, "build", None)
    if build is None:
        raise BrickyardError("the build engine is not available in this version (engine.build)")
    return build


def _run_build(argv: Sequence[str], env: Mapping[str, str]) -> int:
    options = parse_build_options(argv, env, warn=_warn)
    if options.isolation == "inplace" and not options.force and not _in_container(env):
        raise UsageError(
            "--isolation inplace should only be run inside of a container, "
            "run with the --force flag if you are sure you want to continue"
        )
    build = _load_build()
    build(options, env, stdin=sys.stdin.buffer, out=sys.stderr)
    return 0


def _run_plan(argv: Sequence[str], env: Mapping[str, str]) -> int:
    extra: dict[str, Any] = {}
    options = parse_build_options(
        argv,
        env,
        warn=_warn,
        check_implemented=False,
        validate=False,
        extra=PLAN_OPTIONS,
        extra_values=extra,
    )
    from engine.plan import run_plan

    return run_plan(options, env, output=str(extra["output"]), stdin=sys.stdin.buffer)


def _run_warm(argv: Sequence[str], env: Mapping[str, str]) -> int:
    options = parse_warmer_options(argv, env, warn=_warn)
    try:
        module = importlib.import_module("engine.cache.warm")
    except ModuleNotFoundError as err:
        if err.name != "engine.cache.warm":
            raise
        raise BrickyardError("brickyard warm is not available in this version") from None
    warm: Callable[..., Any] | None = getattr(module, "warm", None)
    if warm is None:
        raise BrickyardError("brickyard warm is not available in this version")
    warm(options, env)  # engine.cache.warm.warm(options: WarmerOptions, env)
    return 0


def _version_line(prog: str) -> str:
    return f"{prog} version {__version__} (brickyard)"


def _argv_env(
    argv: Sequence[str] | None, env: Mapping[str, str] | None
) -> tuple[list[str], Mapping[str, str]]:
    return (list(sys.argv[1:] if argv is None else argv), os.environ if env is None else env)


EXECUTOR_SUMMARY = (
    "Build a container image from a Dockerfile and push it, without a daemon. "
    "kaniko-compatible.\nCommands: executor version"
)


def executor_main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """`executor`: kaniko's command line, same flags, defaults, validation and env vars."""
    args, environ = _argv_env(argv, env)
    if args[:1] == ["version"]:
        print(_version_line("executor"))
        return 0
    if args[:1] == ["help"] or _wants_help(args):
        sys.stdout.write(render_help("executor", summary=EXECUTOR_SUMMARY))
        return 0
    return _guarded(lambda: _run_build(args, environ))


def _adapter_commands() -> dict[str, Callable[[list[str], Mapping[str, str]], int]]:
    try:
        module = importlib.import_module("adapters.cli")
    except ModuleNotFoundError as err:
        if err.name in ("adapters.cli", "adapters"):
            return {}
        raise
    commands: dict[str, Callable[[list[str], Mapping[str, str]], int]] = dict(module.COMMANDS)
    return commands


def _brickyard_help() -> str:
    lines = [
        "Usage: brickyard <command> [flags]",
        "",
        "Commands:",
        "  build     build an image (same flags as `executor`; `brickyard build --help`)",
        "  plan      show stages, expanded instructions and context files; never pulls or pushes",
        "  warm      fill --cache-dir with base images (kaniko's warmer flags)",
        "  version   print the version",
    ]
    try:
        adapters = sorted(_adapter_commands())
    except ImportError:
        adapters = []
    for name in adapters:
        lines.append(f"  {name:<9} CI adapter (`brickyard {name} --help`)")
    return "\n".join(lines) + "\n"


def _dispatch(args: list[str], environ: Mapping[str, str]) -> int:
    command, rest = args[0], args[1:]
    if command == "build":
        if _wants_help(rest):
            sys.stdout.write(render_help("brickyard build"))
            return 0
        return _run_build(rest, environ)
    if command == "plan":
        if _wants_help(rest):
            sys.stdout.write(render_help("brickyard plan", table=(*OPTIONS, *PLAN_OPTIONS)))
            return 0
        return _run_plan(rest, environ)
    if command == "warm":
        if _wants_help(rest):
            sys.stdout.write(render_help("brickyard warm", table=WARMER_OPTIONS))
            return 0
        return _run_warm(rest, environ)
    if command == "version":
        print(_version_line("brickyard"))
        return 0
    adapters = _adapter_commands()
    if command in adapters:
        return adapters[command](rest, environ)
    known = [*BUILTIN_COMMANDS, *adapters]
    import difflib  # only for a mistyped command

    close = difflib.get_close_matches(command, known, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UsageError(f"unknown command: {command}{hint}")


def brickyard_main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """`brickyard <command> ...`."""
    args, environ = _argv_env(argv, env)
    if not args:
        sys.stderr.write(_brickyard_help())
        return UsageError.exit_code
    if args[0] in ("help", "-h", "--help"):
        sys.stdout.write(_brickyard_help())
        return 0
    if args[0] in ("--version", "-V"):
        print(_version_line("brickyard"))
        return 0
    return _guarded(lambda: _dispatch(args, environ))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(brickyard_main())
