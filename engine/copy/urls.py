"""URLs as ADD's messages may show them."""

from __future__ import annotations

import urllib.parse


def without_credentials(url: str) -> str:
    """The URL without user:password (or token) in its netloc; text that is not a URL
    (scp-style git remotes, git's stderr) unchanged."""
    if "://" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts)
