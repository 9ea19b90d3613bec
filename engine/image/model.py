"""OCI and Docker v2 image formats: media types, descriptors, platforms, manifests,
indexes, image configs, and the canonical JSON they are serialised with.

Manifests we *read* keep their original bytes (their digest is over those bytes); manifests
and configs we *write* go through `canonical_json` so equal content gives equal digests.
"""

from __future__ import annotations

import hashlib
import json
import platform as _host
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ImageError

# ---- media types ----
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
# Sent as Accept on every manifest GET: registry 2.8.2 answers 404 for an OCI manifest
# unless the OCI type is listed.
MANIFEST_ACCEPT = ", ".join(
    [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED]
)

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")


def canonical_json(obj: Any) -> bytes:
    """JSON as Go's encoding/json writes a map: keys sorted, no spaces, UTF-8, and
    `<`, `>`, `&`, U+2028, U+2029 escaped. These characters only occur inside strings."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, esc)
    return text.encode("utf-8")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.match(text))


def check_digest(text: str) -> str:
    if not is_digest(text):
        raise ImageError(f"invalid digest {text!r}")
    return text


# ---- platforms ----
_ARCH_ALIASES = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse "os/arch[/variant]" (also "os/arch/variant:osversion" is not Docker syntax
        and is refused); architecture aliases are normalised (x86_64 -> amd64, ...)."""
        parts = text.strip().lower().split("/")
        if len(parts) < 2 or len(parts) > 3 or not all(parts):
            raise ImageError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None).normalized()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Platform:
        return cls(
            str(data.get("os", "")),
            str(data.get("architecture", "")),
            data.get("variant") or None,
            data.get("os.version") or None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out

    def normalized(self) -> Platform:
        arch, variant = self.architecture, self.variant
        if arch in _ARCH_ALIASES:
            arch, implied = _ARCH_ALIASES[arch]
            variant = variant or implied
        if arch == "arm64" and variant in ("8", "v8"):
            variant = None  # containerd: arm64 defaults to v8, "linux/arm64" == "linux/arm64/v8"
        elif arch == "arm":
            variant = {"5": "v5", "6": "v6", "7": "v7", "8": "v8"}.get(variant or "", variant)
            variant = variant or "v7"
        return Platform(self.os, arch, variant, self.os_version)

    def matches(self, candidate: Platform) -> bool:
        """Does `candidate` (from an index) satisfy this wanted platform?
        A wanted platform without variant accepts any variant of the architecture except
        that for arm the default variant v7 is assumed (containerd's rules)."""
        want, have = self.normalized(), candidate.normalized()
        if want.os != have.os or want.architecture != have.architecture:
            return False
        if want.variant == have.variant:
            return True
        return self.variant is None and want.architecture not in ("arm",)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host_platform() -> Platform:
    machine = _host.machine().lower() or "amd64"
    return Platform("linux", machine).normalized()


# ---- descriptors ----
@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] | None = None
    urls: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Descriptor:
        try:
            digest = check_digest(str(data["digest"]))
            size = int(data["size"])
            media_type = str(data.get("mediaType", ""))
        except (KeyError, TypeError, ValueError) as e:
            raise ImageError(f"malformed descriptor {dict(data)!r}: {e}") from None
        plat = data.get("platform")
        urls = data.get("urls")
        return cls(
            media_type,
            digest,
            size,
            Platform.from_dict(plat) if isinstance(plat, Mapping) else None,
            dict(data["annotations"]) if data.get("annotations") else None,
            tuple(urls) if urls else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        out["size"] = self.size
        if self.platform:
            out["platform"] = self.platform.to_dict()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.urls:
            out["urls"] = list(self.urls)
        return out


def descriptor_for(data: bytes, media_type: str) -> Descriptor:
    return Descriptor(media_type, sha256_digest(data), len(data))


# ---- manifests and indexes ----
@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] | None = None
    raw: bytes = b""

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] | None = None
    raw: bytes = b""

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    def select(self, want: Platform) -> Descriptor | None:
        """First entry whose platform matches `want`; exact variant wins over any-variant."""
        candidates = [d for d in self.manifests if d.platform and want.matches(d.platform)]
        exact = [
            d for d in candidates if d.platform and d.platform.normalized() == want.normalized()
        ]
        chosen = exact or candidates
        return chosen[0] if chosen else None


def _load_json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{what} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ImageError(f"{what} is not a JSON object")
    return data


def detect_media_type(raw: bytes, declared: str | None = None) -> str:
    """The media type of a manifest: the declared Content-Type if known, else the body's
    mediaType, else a guess from its shape (OCI allows omitting mediaType)."""
    declared = (declared or "").split(";")[0].strip()
    if declared in MANIFEST_TYPES | INDEX_TYPES | SCHEMA1_TYPES:
        return declared
    data = _load_json(raw, "manifest")
    if isinstance(data.get("mediaType"), str) and data["mediaType"]:
        return str(data["mediaType"])
    if data.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1
    if "manifests" in data:
        return OCI_INDEX
    if "config" in data and "layers" in data:
        return OCI_MANIFEST
    raise ImageError("manifest has no recognisable media type")


def parse_manifest(raw: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse an image manifest or index. Docker schema 1 is refused with a clear error."""
    mt = detect_media_type(raw, media_type)
    if mt in SCHEMA1_TYPES:
        raise ImageError(
            "image uses Docker schema 1 manifests, which are deprecated and unsupported; "
            "re-push it with a current client"
        )
    data = _load_json(raw, "manifest")
    annotations = data.get("annotations") or None
    if mt in INDEX_TYPES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise ImageError("index has no manifests list")
        return Index(mt, tuple(Descriptor.from_dict(e) for e in entries), annotations, raw)
    if mt in MANIFEST_TYPES:
        if not isinstance(data.get("config"), dict) or not isinstance(data.get("layers"), list):
            raise ImageError("manifest lacks config or layers")
        return Manifest(
            mt,
            Descriptor.from_dict(data["config"]),
            tuple(Descriptor.from_dict(e) for e in data["layers"]),
            annotations,
            raw,
        )
    raise ImageError(f"unsupported manifest media type {mt!r}")


def build_manifest(
    config: Descriptor,
    layers: Iterable[Descriptor],
    *,
    media_type: str = OCI_MANIFEST,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.to_dict(),
        "layers": [layer.to_dict() for layer in layers],
    }
    if annotations:
        body["annotations"] = dict(annotations)
    return canonical_json(body)


def build_index(
    manifests: Iterable[Descriptor],
    *,
    media_type: str = OCI_INDEX,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [m.to_dict() for m in manifests],
    }
    if annotations:
        body["annotations"] = dict(annotations)
    return canonical_json(body)


def config_media_type_for(manifest_media_type: str) -> str:
    return DOCKER_CONFIG if manifest_media_type == DOCKER_MANIFEST else OCI_CONFIG


def layer_media_type_for(manifest_media_type: str, compression: str = "gzip") -> str:
    docker = manifest_media_type == DOCKER_MANIFEST
    if compression == "zstd":
        return DOCKER_LAYER_ZSTD if docker else OCI_LAYER_ZSTD
    if compression in ("", "none"):
        return OCI_LAYER
    return DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP


# ---- image config ----
@dataclass
class ImageConfig:
    """An image config (OCI `application/vnd.oci.image.config.v1+json`, same shape as Docker's).
    Keeps unknown fields; `to_bytes()` is canonical."""

    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, platform: Platform, *, created: str | None = None) -> ImageConfig:
        data: dict[str, Any] = {
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }
        if platform.variant:
            data["variant"] = platform.variant
        if created:
            data["created"] = created
        return cls(data)

    @classmethod
    def from_bytes(cls, raw: bytes) -> ImageConfig:
        data = _load_json(raw, "image config")
        data.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        data["rootfs"].setdefault("diff_ids", [])
        data["rootfs"]["diff_ids"] = data["rootfs"]["diff_ids"] or []
        data["history"] = data.get("history") or []
        data["config"] = data.get("config") or {}
        return cls(data)

    def to_bytes(self) -> bytes:
        return canonical_json(self.data)

    def copy(self) -> ImageConfig:
        return ImageConfig(json.loads(json.dumps(self.data)))

    @property
    def platform(self) -> Platform:
        return Platform(
            str(self.data.get("os", "")),
            str(self.data.get("architecture", "")),
            self.data.get("variant") or None,
            self.data.get("os.version") or None,
        )

    @property
    def container_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = self.data.setdefault("config", {})
        return cfg

    @property
    def diff_ids(self) -> list[str]:
        ids: list[str] = self.data["rootfs"]["diff_ids"]
        return ids

    @property
    def history(self) -> list[dict[str, Any]]:
        hist: list[dict[str, Any]] = self.data["history"]
        return hist

    @property
    def env(self) -> list[str]:
        return list(self.container_config.get("Env") or [])

    def add_layer(
        self, diff_id: str, *, created_by: str, created: str | None = None, comment: str = ""
    ) -> None:
        self.diff_ids.append(check_digest(diff_id))
        self.history.append(_history(created_by, created, comment, empty=False))

    def add_empty_history(
        self, *, created_by: str, created: str | None = None, comment: str = ""
    ) -> None:
        self.history.append(_history(created_by, created, comment, empty=True))

    def check(self) -> None:
        """History entries that are not empty_layer must match diff_ids one to one."""
        real = [h for h in self.history if not h.get("empty_layer")]
        if self.history and len(real) != len(self.diff_ids):
            raise ImageError(
                f"image config has {len(self.diff_ids)} layers but {len(real)} "
                "non-empty history entries"
            )


def _history(created_by: str, created: str | None, comment: str, *, empty: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"created_by": created_by}
    if created:
        entry["created"] = created
    if comment:
        entry["comment"] = comment
    if empty:
        entry["empty_layer"] = True
    return entry
