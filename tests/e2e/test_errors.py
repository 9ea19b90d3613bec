"""Bad input gets one clear line and the exit code of its error class; nothing is pushed."""

from __future__ import annotations

import pytest

from tests.e2e.harness import E2E
from tests.support.registry import free_port

pytestmark = pytest.mark.integration


def _error_line(log: str) -> str:
    lines = [line for line in log.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, log
    return lines[0]


def test_missing_copy_source_is_a_build_error(e2e: E2E) -> None:
    b = e2e.build("err-copy", "FROM {base}\nCOPY missing.txt /x\n")
    assert b.rc == 7
    line = _error_line(b.log)
    assert line.startswith("error: step 2/2: COPY missing.txt /x: ")
    assert "missing.txt" in line.split(": ", 3)[-1]


def test_dockerfile_syntax_error_names_the_line(e2e: E2E) -> None:
    b = e2e.build("err-syntax", "FROM {base}\nRUN true\nFOO bar\n")
    assert b.rc == 3
    assert "Dockerfile:3" in _error_line(b.log)


def test_unknown_base_image_is_a_registry_error(e2e: E2E) -> None:
    b = e2e.build("err-base", f"FROM {e2e.registry}/e2e/no-such-image:1\nRUN true\n")
    assert b.rc == 5
    assert "no-such-image" in _error_line(b.log)


def test_missing_context_is_a_context_error(e2e: E2E) -> None:
    b = e2e.build("err-ctx", "FROM {base}\n", args=["--context", str(e2e.work / "does-not-exist")])
    assert b.rc == 4
    assert "does-not-exist" in _error_line(b.log)


def test_run_as_unknown_user_fails_the_step(e2e: E2E) -> None:
    b = e2e.build("err-user", "FROM {base}\nUSER nosuchuser\nRUN true\n")
    assert b.rc == 7
    line = _error_line(b.log)
    assert line.startswith("error: step 3/3: RUN true: ") and "nosuchuser" in line


def test_refused_destination_fails_before_any_step_runs(e2e: E2E) -> None:
    # The push probe runs while the base resolves; its failure still comes before any step.
    dead = f"127.0.0.1:{free_port()}"
    b = e2e.build("err-push", "FROM {base}\nRUN echo ran\n", args=["-d", f"{dead}/e2e/x:1"])
    assert b.rc == 5
    line = _error_line(b.log)
    assert dead in line and "connection refused" in line
    assert "Running:" not in b.log
    # ...and it is the error reported even when the base image is missing as well.
    b = e2e.build(
        "err-push-base",
        f"FROM {e2e.registry}/e2e/no-such-image:1\nRUN true\n",
        args=["-d", f"{dead}/e2e/x:1"],
    )
    assert b.rc == 5 and dead in _error_line(b.log)


def test_refused_destination_fails_a_fully_cached_build_too(e2e: E2E) -> None:
    cache = ["--cache=true", "--cache-repo", f"{e2e.registry}/e2e/err-cached/cache"]
    dockerfile = "FROM {base}\nRUN echo cached > /f\n"
    e2e.build("err-cached", dockerfile, args=cache).ok()
    dead = f"127.0.0.1:{free_port()}"
    b = e2e.build("err-cached", dockerfile, args=[*cache, "-d", f"{dead}/e2e/x:1"])
    assert b.rc == 5 and dead in _error_line(b.log)
    assert "Using caching version of cmd" in b.log and "Pushed" not in b.log
