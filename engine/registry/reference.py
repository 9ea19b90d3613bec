"""Image references with Docker's normalisation (distribution/reference rules).

busybox                      -> docker.io/library/busybox:latest
index.docker.io/foo/bar      -> docker.io/foo/bar:latest
localhost:5000/app:1@sha256:.. registry, tag and digest kept
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from engine.errors import UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "registry-1.docker.io"  # where the /v2/ API of Docker Hub lives
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"  # its key in config.json and helpers
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"^(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_MAX_NAME = 255


class InvalidReference(UsageError):
    """An image reference that Docker would refuse."""


# user:password@ where a reference holds none: a URL (https://u:p@host) or a registry login
# pasted before the host (u:p@host/repo). Shown masked: a flag's value may be a credential.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?[^/@\s]*@(?=[^@]*[./][^@]*$)")


def _shown(text: str) -> str:
    if "://" in text or not _DIGEST_RE.match(text.rpartition("@")[2]):
        return _USERINFO.sub(r"\1***@", text, count=1)
    return text


def _invalid(text: str, why: str) -> InvalidReference:
    return InvalidReference(f"invalid image reference {_shown(text)!r}: {why}")


def normalize_registry(host: str) -> str:
    return DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host


@dataclass(frozen=True)
class Reference:
    registry: str  # "docker.io", "ghcr.io", "127.0.0.1:5000"
    repository: str  # "library/busybox"
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        raw = text.strip()
        if not raw:
            raise _invalid(text, "empty")
        if "://" in raw:
            raise _invalid(text, "a reference has no URL scheme")
        remainder, digest = raw, None
        if "@" in remainder:
            remainder, digest = remainder.split("@", 1)
            if not _DIGEST_RE.match(digest):
                raise _invalid(text, "malformed digest after '@'")
            if digest.startswith("sha256:") and not _SHA256_RE.match(digest):
                raise _invalid(text, "sha256 digest must be 64 lower-case hex characters")
        tag = None
        last = remainder.rsplit("/", 1)[-1]
        if ":" in last:
            remainder, tag = remainder.rsplit(":", 1)
            if not _TAG_RE.match(tag):
                raise _invalid(text, f"malformed tag {tag!r}")
        registry, path = _split_domain(remainder)
        if not _DOMAIN_RE.match(registry):
            raise _invalid(text, f"malformed registry {registry!r}")
        if not path:
            raise _invalid(text, "missing repository name")
        if path.lower() != path and _PATH_RE.match(path.lower()):
            raise _invalid(text, "repository name must be lowercase")
        if not _PATH_RE.match(path):
            raise _invalid(text, f"malformed repository name {path!r}")
        registry = normalize_registry(registry)
        if registry == DOCKER_HUB and "/" not in path:
            path = "library/" + path
        if len(registry) + 1 + len(path) > _MAX_NAME:
            raise _invalid(text, f"repository name longer than {_MAX_NAME} characters")
        return cls(registry, path, tag, digest)

    # ---- derived forms ----
    @property
    def name(self) -> str:
        """registry/repository, e.g. "docker.io/library/busybox"."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What goes after /manifests/: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def tag_or_default(self) -> str:
        return self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """Host serving /v2/ for this registry (Docker Hub's API is not at docker.io)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def familiar(self) -> str:
        """Short form a Docker user types: "busybox:latest", "foo/bar@sha256:..."."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository.removeprefix("library/")
        return name + self._suffix()

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        if not self.tag and not self.digest:
            return f"{self.name}:{DEFAULT_TAG}"
        return self.name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)

    def in_repository(self, registry: str, repository: str) -> Reference:
        return replace(self, registry=normalize_registry(registry), repository=repository)

    def scope(self, actions: str = "pull") -> str:
        return f"repository:{self.repository}:{actions}"


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's rule: the first component is a registry host if it contains "." or ":",
    is "localhost", or has upper-case letters; otherwise the image is on Docker Hub."""
    first, sep, rest = name.partition("/")
    if not sep:
        return DOCKER_HUB, name
    if "." in first or ":" in first or first == "localhost" or first.lower() != first:
        return first, rest
    return DOCKER_HUB, name
