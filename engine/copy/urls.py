"""URLs as ADD's messages may show them."""

from __future__ import annotations

import re
import urllib.parse

from engine.context.redact import MASK, redact_url

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def without_credentials(text: str) -> str:
    """text (a URL, or git's stderr quoting one) with every URL's user:password (or token)
    dropped from its netloc and its query values masked (presigned URLs carry signatures
    there); scp-style git remotes and text without URLs unchanged."""
    return _URL.sub(lambda m: _one(m.group(0)), text)


def _one(url: str) -> str:
    shown = redact_url(url)
    if shown.startswith(f"{url.partition('://')[0]}://{MASK}@"):
        parts = urllib.parse.urlsplit(shown)
        shown = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.partition("@")[2]))
    return shown
