"""Instruction flags (`--from=`, `--mount=`, ...) validated like BuildKit's BFlags."""

from __future__ import annotations

import difflib
import re
from typing import Literal

FlagKind = Literal["bool", "string", "strings"]

FLAG_SPECS: dict[str, dict[str, FlagKind]] = {
    "FROM": {"platform": "string"},
    "RUN": {"mount": "strings", "network": "string", "security": "string"},
    "COPY": {
        "from": "string",
        "chown": "string",
        "chmod": "string",
        "link": "bool",
        "parents": "bool",
        "exclude": "strings",
    },
    "ADD": {
        "chown": "string",
        "chmod": "string",
        "link": "bool",
        "keep-git-dir": "bool",
        "checksum": "string",
        "exclude": "strings",
        "unpack": "bool",
    },
    "HEALTHCHECK": {
        "interval": "string",
        "timeout": "string",
        "start-period": "string",
        "start-interval": "string",
        "retries": "string",
    },
}


class FlagError(ValueError):
    pass


def parse_flags(keyword: str, raw: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Check `raw` flags against `keyword`'s spec; returns (name, value) in order.

    Boolean flags give "true"/"false"; a repeated non-list flag is an error.
    """
    spec = FLAG_SPECS.get(keyword, {})
    used: set[str] = set()
    out: list[tuple[str, str]] = []
    for arg in raw:
        if not arg.startswith("--"):
            raise FlagError(f"arg should start with -- : {arg}")
        if arg == "--":
            break
        body = arg[2:]
        name, eq, value = body.partition("=")
        kind = spec.get(name)
        if kind is None:
            hint = difflib.get_close_matches(name, list(spec), n=1)
            extra = f" (did you mean --{hint[0]}?)" if hint else ""
            raise FlagError(f"unknown flag: --{name}{extra}")
        if name in used and kind != "strings":
            raise FlagError(f"duplicate flag specified: {name}")
        used.add(name)
        if kind == "bool":
            if eq and value == "":
                raise FlagError(f"missing a value on flag: {name}")
            lower = value.lower()
            if lower == "":
                value = "true"
            elif lower in ("true", "false"):
                value = lower
            else:
                raise FlagError(f"expecting boolean value for flag {name}, not: {value}")
        elif not eq:
            raise FlagError(f"missing a value on flag: {name}")
        out.append((name, value))
    return tuple(out)


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration_seconds(text: str) -> float:
    """Go's time.ParseDuration ("1m30s", "500ms", "-2m", "0") in seconds; ValueError with Go's
    message otherwise. Shared by HEALTHCHECK options and the CLI's duration flags."""
    body = text
    sign = 1.0
    if body[:1] in ("+", "-"):  # one sign at most, as in Go
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    pos = 0
    total = 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total
