from __future__ import annotations

import pytest

from engine.copy.urls import without_credentials


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@example.com:8443/a.tar?x=1", "https://example.com:8443/a.tar?x=1"),
        ("https://token@example.com/repo.git#main", "https://example.com/repo.git#main"),
        ("http://example.com/file", "http://example.com/file"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),  # scp-style: not a URL
        ("fatal: repository not found", "fatal: repository not found"),
    ],
)
def test_without_credentials_drops_user_and_password_only(url: str, shown: str) -> None:
    assert without_credentials(url) == shown
