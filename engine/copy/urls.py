"""URLs as ADD's messages may show them."""

from __future__ import annotations

from engine.context.redact import redact_text


def without_credentials(text: str) -> str:
    """text (a URL, or git's stderr quoting one) with every URL's user:password (or token)
    dropped from its netloc and its query values masked (presigned URLs carry signatures
    there); scp-style git remotes and text without URLs unchanged."""
    return redact_text(text, drop_userinfo=True)
