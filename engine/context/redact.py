"""Credentials out of text we show: URLs lose their user:password (or token) and the
values of their query (presigned URLs carry signatures there), and known secrets become
`***`. Git's and servers' messages quote the URL they were given, so whole lines pass
through `redact_text` before they reach an error."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_QUERY_VALUE = re.compile(r"=[^&;]*")
MASK = "***"


def redact_url(url: str, *, keep_fragment: bool = True, drop_userinfo: bool = False) -> str:
    """url with user info replaced by *** (or dropped) and query values masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # a malformed port or bracket: show no netloc at all
        return f"{url.partition('://')[0]}://{MASK}"
    if "@" in parts.netloc:
        host = f"[{host}]" if ":" in host else host
        shown_host = host + (f":{port}" if port else "")
        parts = parts._replace(netloc=shown_host if drop_userinfo else f"{MASK}@{shown_host}")
    if parts.query:
        parts = parts._replace(query=_QUERY_VALUE.sub("=" + MASK, parts.query))
    if not keep_fragment:
        parts = parts._replace(fragment="")
    return urlunsplit(parts)


def redact_text(text: str, secrets: Iterable[str] = (), *, drop_userinfo: bool = False) -> str:
    """text with every URL redacted and every non-empty secret masked."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL.sub(lambda m: redact_url(m.group(0), drop_userinfo=drop_userinfo), text)
