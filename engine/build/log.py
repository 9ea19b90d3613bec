"""The build log in kaniko's style: `INFO[0003] Running: [/bin/sh -c make]`.

Formats (`--log-format`): `color` (kaniko's default; the level name in ANSI colour), `text`
(same line without colour), `json` (one object per line: level, msg, time). `--verbosity`
takes logrus' level names; `--log-timestamp` prints the wall clock instead of elapsed seconds.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO, cast

LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "warning": 3, "error": 4, "fatal": 5}
LEVELS["panic"] = 6
_COLORS = {"trace": 37, "debug": 37, "info": 36, "warn": 33, "error": 31, "fatal": 31}
_TAGS = {"trace": "TRAC", "debug": "DEBU", "info": "INFO", "warn": "WARN", "error": "ERRO"}


class BuildLog:
    """Writes leveled lines to `out`; `output()` passes a RUN step's own output through."""

    def __init__(
        self,
        out: TextIO,
        *,
        level: str = "info",
        fmt: str = "color",
        timestamps: bool = False,
    ) -> None:
        self.out = out
        self.threshold = LEVELS.get(level.lower(), LEVELS["info"])
        self.fmt = fmt if fmt in ("color", "text", "json") else "color"
        self.timestamps = timestamps
        self.started = time.monotonic()

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def log(self, level: str, msg: str) -> None:
        if not self.enabled(level):
            return
        if self.fmt == "json":
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            line = json.dumps({"level": level, "msg": msg, "time": now})
        else:
            tag = _TAGS.get(level, level.upper()[:4])
            if self.fmt == "color":
                tag = f"\x1b[{_COLORS.get(level, 37)}m{tag}\x1b[0m"
            if self.timestamps:
                stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            else:
                stamp = f"{int(time.monotonic() - self.started):04d}"
            line = f"{tag}[{stamp}] {msg}"
        self.out.write(line + "\n")
        self.out.flush()

    def trace(self, msg: str) -> None:
        self.log("trace", msg)

    def debug(self, msg: str) -> None:
        self.log("debug", msg)

    def info(self, msg: str) -> None:
        self.log("info", msg)

    def warn(self, msg: str) -> None:
        self.log("warn", msg)

    def error(self, msg: str) -> None:
        self.log("error", msg)

    def step_output(self) -> TextIO:
        """Where a RUN step's own output goes: the log stream as is (kaniko streams it
        unchanged), or, with --log-format json, one JSON record per line."""
        if self.fmt == "json":
            return cast(TextIO, _JsonLines(self))
        return self.out


class _JsonLines(io.TextIOBase):
    """A text stream turning each written line into a `{"level":"info","msg":...}` record."""

    def __init__(self, log: BuildLog) -> None:
        super().__init__()
        self._log = log
        self._buf = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buf += text
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._log.log("info", line)
        return len(text)

    def flush(self) -> None:
        if self._buf:
            self._log.log("info", self._buf)
            self._buf = ""


class _ToBuildLog(logging.Handler):
    def __init__(self, log: BuildLog) -> None:
        super().__init__()
        self.build_log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except (TypeError, ValueError):
            self.handleError(record)
            return
        no = record.levelno
        level = (
            "error"
            if no >= logging.ERROR
            else "warn"
            if no >= logging.WARNING
            else "info"
            if no >= logging.INFO
            else "debug"
        )
        self.build_log.log(level, msg)


# engine modules log as `engine.<module>`; the cache and the warmer as `brickyard.<part>`
LIBRARY_LOGGERS = ("engine", "brickyard")


@contextmanager
def engine_logging(log: BuildLog) -> Iterator[None]:
    """Route the library loggers (modules log through Python logging: a cache entry expired,
    a download retried, a request sent) into `log`, at its verbosity and in its format, for
    the duration of the block. Without it only their warnings reached stderr, as bare lines,
    and `-v debug` showed none of their debug records."""
    handler = _ToBuildLog(log)
    level = (
        logging.DEBUG
        if log.enabled("debug")
        else logging.INFO
        if log.enabled("info")
        else logging.WARNING
    )
    saved = []
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(level)
        logger.propagate = False
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, old_level, old_propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            logger.propagate = old_propagate
