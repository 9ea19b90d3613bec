"""jenkins adapter."""

from __future__ import annotations

from collections.abc import Callable, Mapping

SUBCOMMANDS: dict[str, Callable[[list[str], Mapping[str, str]], int]] = {}
