from __future__ import annotations

import pytest

from engine.dockerfile.flags import go_duration_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m30s", 90.0), ("500ms", 0.5), ("-2m", -120.0), ("+1h", 3600.0), ("0", 0.0), (".5s", 0.5)],
)
def test_go_duration_seconds_reads_go_durations(text: str, seconds: float) -> None:
    assert go_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "-", "5", "--5s", "+-5s", "1d", "5 s"])
def test_go_duration_seconds_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        go_duration_seconds(text)
