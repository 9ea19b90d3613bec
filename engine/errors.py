"""The error tree. Library code raises these; only the CLI turns them into exit codes.

    BrickyardError                 1  anything else that went wrong
    ├── UsageError                 2  unknown/malformed flag, invalid option combination
    │   └── NotImplementedFlag    10  flag accepted by kaniko but not implemented here yet
    ├── DockerfileError            3  Dockerfile syntax/semantics ("Dockerfile:12: ...")
    ├── ContextError               4  build context missing, unreadable, or escaping
    ├── RegistryError              5  registry/HTTP failures (names registry + status)
    │   ├── AuthError                 401/403, bad or missing credentials
    │   ├── ManifestUnknown           image or tag not found
    │   └── DigestMismatch            content did not match its digest
    ├── ImageError                 6  malformed image, manifest or layer
    │   └── UnsafeLayer               tar entry that would escape the rootfs
    ├── BuildError                 7  a build step failed (RUN exit status, COPY source)
    ├── CacheError                 8  layer cache unusable
    ├── OutputError                9  cannot write tarball, OCI layout, digest file
    └── AdapterError              11  CI adapter input/env problems

Messages are one line and must never contain secrets.
"""

from __future__ import annotations


class BrickyardError(Exception):
    """Base of every error brickyard raises on purpose."""

    exit_code = 1


class UsageError(BrickyardError):
    exit_code = 2


class NotImplementedFlag(UsageError):
    exit_code = 10


class DockerfileError(BrickyardError):
    exit_code = 3

    def __init__(self, message: str, *, file: str = "Dockerfile", line: int | None = None):
        self.file = file
        self.line = line
        self.detail = message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


class ContextError(BrickyardError):
    exit_code = 4


class RegistryError(BrickyardError):
    exit_code = 5


class AuthError(RegistryError):
    pass


class ManifestUnknown(RegistryError):
    pass


class DigestMismatch(RegistryError):
    pass


class ImageError(BrickyardError):
    exit_code = 6


class UnsafeLayer(ImageError):
    pass


class BuildError(BrickyardError):
    exit_code = 7


class CacheError(BrickyardError):
    exit_code = 8


class OutputError(BrickyardError):
    exit_code = 9


class AdapterError(BrickyardError):
    exit_code = 11
