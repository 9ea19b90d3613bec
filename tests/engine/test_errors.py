from __future__ import annotations

import pytest

from engine import errors


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.BrickyardError, 1),
        (errors.UsageError, 2),
        (errors.DockerfileError, 3),
        (errors.ContextError, 4),
        (errors.RegistryError, 5),
        (errors.AuthError, 5),
        (errors.ImageError, 6),
        (errors.UnsafeLayer, 6),
        (errors.BuildError, 7),
        (errors.CacheError, 8),
        (errors.OutputError, 9),
        (errors.NotImplementedFlag, 10),
        (errors.AdapterError, 11),
    ],
)
def test_each_error_class_has_its_documented_exit_code(
    cls: type[errors.BrickyardError], code: int
) -> None:
    assert cls.exit_code == code


def test_dockerfile_error_names_file_and_line() -> None:
    err = errors.DockerfileError("unknown instruction: COPPY", file="Dockerfile", line=12)
    assert str(err) == "Dockerfile:12: unknown instruction: COPPY"
    assert err.line == 12
