"""`brickyard <ci> <subcommand> ...`: the table engine.cli dispatches to.

COMMANDS maps a CI name to a callable(argv, env) -> exit code; each one dispatches its own
subcommands (pre-commit style: one subcommand per module, each returning an int).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from engine.errors import BrickyardError

Command = Callable[[list[str], Mapping[str, str]], int]


def _gitlab(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.gitlab import SUBCOMMANDS

    return _dispatch("gitlab", SUBCOMMANDS, argv, env)


def _jenkins(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.jenkins import SUBCOMMANDS

    return _dispatch("jenkins", SUBCOMMANDS, argv, env)


def _github(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.github import SUBCOMMANDS

    return _dispatch("github", SUBCOMMANDS, argv, env)


def _k8s(argv: list[str], env: Mapping[str, str]) -> int:
    from adapters.k8s import SUBCOMMANDS

    return _dispatch("k8s", SUBCOMMANDS, argv, env)


def _dispatch(
    ci: str, table: Mapping[str, Command], argv: list[str], env: Mapping[str, str]
) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in table:
        names = ", ".join(sorted(table))
        stream = sys.stdout if argv and argv[0] in ("-h", "--help") else sys.stderr
        print(f"usage: brickyard {ci} {{{names}}} [options]", file=stream)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"error: unknown {ci} subcommand {argv[0]!r}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    try:
        return table[argv[0]](argv[1:], env)
    except BrickyardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2


COMMANDS: dict[str, Command] = {
    "gitlab": _gitlab,
    "jenkins": _jenkins,
    "github": _github,
    "k8s": _k8s,
}
