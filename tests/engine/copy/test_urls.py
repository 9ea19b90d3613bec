from __future__ import annotations

import pytest

from engine.copy.urls import without_credentials


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@example.com:8443/a.tar?x=1", "https://example.com:8443/a.tar?x=***"),
        ("https://token@example.com/repo.git#main", "https://example.com/repo.git#main"),
        ("http://example.com/file", "http://example.com/file"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),  # scp-style: not a URL
        ("fatal: repository not found", "fatal: repository not found"),
        (
            "fatal: unable to access 'https://u:pw@h/r.git?token=t/': error 403",
            "fatal: unable to access 'https://h/r.git?token=***': error 403",
        ),
        ("https://h/f?X-Amz-Signature=abc&a=1", "https://h/f?X-Amz-Signature=***&a=***"),
    ],
)
def test_without_credentials_drops_user_password_and_query_values(url: str, shown: str) -> None:
    assert without_credentials(url) == shown
