"""ADD <url>: streamed download, optional --checksum, Docker's name, mode and mtime rules."""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import tempfile
import urllib.parse
from collections.abc import Mapping
from typing import Any

from engine.copy.tree import TreeWriter
from engine.copy.urls import without_credentials
from engine.errors import BuildError
from engine.httpclient import HttpClient, HttpError, get_as_configured

_CHUNK = 1 << 20
URL_FILE_MODE = 0o600  # Docker gives downloaded files 0600
CHECKSUM_ALGOS = {"sha256": 64, "sha384": 96, "sha512": 128}


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def url_filename(url: str) -> str:
    """The last path component of the URL, as BuildKit names ADD's file in a directory
    ("__unnamed__" when the path has none)."""
    base = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    return base if base not in ("", ".", "..") else "__unnamed__"


def parse_checksum(checksum: str) -> tuple[str, str]:
    algo, sep, hexdigest = checksum.partition(":")
    want = CHECKSUM_ALGOS.get(algo)
    if not sep or want is None or len(hexdigest) != want:
        raise BuildError(f"ADD --checksum: invalid digest {checksum!r} (want sha256:<hex>)")
    try:
        int(hexdigest, 16)
    except ValueError:
        raise BuildError(f"ADD --checksum: invalid digest {checksum!r}") from None
    return algo, hexdigest.lower()


def _mtime_ns(headers: Any) -> int | None:
    value = headers.get("Last-Modified")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return int(when.timestamp()) * 1_000_000_000


def download(
    url: str,
    dest_host: str,
    writer: TreeWriter,
    *,
    checksum: str | None,
    uid: int,
    gid: int,
    mode: int | None,
    session: HttpClient | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Fetch url into host path dest_host through a temporary file beside it, renamed into
    place when complete and verified: a failed download leaves nothing behind.
    Trust (REQUESTS_CA_BUNDLE...) and proxies come from `env`; without one, from the process
    environment, as they did when requests read it."""
    expected = parse_checksum(checksum) if checksum else None
    hasher = hashlib.new(expected[0] if expected else "sha256")
    shown = without_credentials(url)
    try:
        resp = get_as_configured(url, env, timeout=(30, 300), client=session)
    except HttpError as e:
        raise BuildError(f"ADD {shown}: {e.reason}") from None
    with resp:
        if resp.status_code >= 400:
            raise BuildError(f"ADD {shown}: HTTP {resp.status_code}")
        fd, tmp = tempfile.mkstemp(prefix=".brickyard-add-", dir=os.path.dirname(dest_host))
        try:
            with os.fdopen(fd, "wb") as f:
                try:
                    for chunk in resp.iter_content(_CHUNK):
                        hasher.update(chunk)
                        f.write(chunk)
                except HttpError as e:
                    raise BuildError(f"ADD {shown}: download failed: {e.reason}") from None
            if expected and hasher.hexdigest() != expected[1]:
                raise BuildError(
                    f"ADD {shown}: checksum mismatch: want {expected[0]}:{expected[1]}, "
                    f"got {expected[0]}:{hasher.hexdigest()}"
                )
            writer._chown(tmp, uid, gid)
            os.chmod(tmp, URL_FILE_MODE if mode is None else mode)
            mtime = _mtime_ns(resp.headers)
            if mtime is not None:
                os.utime(tmp, ns=(mtime, mtime))
            writer._prepare_slot(dest_host, want_dir=False)
            os.rename(tmp, dest_host)
            writer.record(dest_host)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
