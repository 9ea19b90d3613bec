"""The JSON build report (`--report-file`) that the CI adapters read.

Schema (version 1):
{
  "version": 1,
  "digest": "sha256:...",               # manifest digest of the built image
  "image_id": "sha256:...",             # config digest (docker's image id)
  "image_refs": ["host/repo:tag", ...],  # destinations pushed (empty with --no-push)
  "tags": [...same as image_refs...],    # the name adapters/report.py reads
  "image_refs_with_digest": ["host/repo:tag@sha256:...", ...],
  "media_type": "...manifest media type...",
  "duration_s": 12.3,
  "error": null | "step 3/7: RUN make: exit status 2",   # set when the build failed
  "total_layer_bytes": 1234,             # compressed bytes of the layers this build made
  "cache": {"hits": 0, "misses": 7},
  "stages": [{"index": 0, "name": "build", "base": "busybox", "duration_s": 1.2}],
  "steps": [{"stage": 0, "step": 3, "of": 7, "instruction": "RUN make",
             "duration_s": 0.5, "cache_hit": false, "layer_size": 123 | null,
             "layer": {"digest": "sha256:..", "diff_id": "sha256:..", "size": 123,
                       "media_type": "..."} | null}]
}
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import OutputError


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc


@dataclass
class LayerReport:
    digest: str
    diff_id: str
    size: int
    media_type: str


@dataclass
class StepReport:
    stage: int
    step: int
    of: int
    instruction: str
    duration_s: float = 0.0
    cache_hit: bool = False
    layer: LayerReport | None = None


@dataclass
class StageReport:
    index: int
    name: str
    base: str
    duration_s: float = 0.0


@dataclass
class BuildReport:
    digest: str = ""
    image_id: str = ""
    image_refs: list[str] = field(default_factory=list)
    image_refs_with_digest: list[str] = field(default_factory=list)
    media_type: str = ""
    duration_s: float = 0.0
    error: str = ""
    stages: list[StageReport] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        hits = sum(1 for s in self.steps if s.cache_hit)
        return {
            "version": 1,
            "digest": self.digest,
            "image_id": self.image_id,
            "image_refs": list(self.image_refs),
            "tags": list(self.image_refs),
            "image_refs_with_digest": list(self.image_refs_with_digest),
            "media_type": self.media_type,
            "duration_s": round(self.duration_s, 3),
            "error": self.error or None,
            "total_layer_bytes": sum(s.layer.size for s in self.steps if s.layer),
            "cache": {"hits": hits, "misses": len(self.steps) - hits},
            "stages": [asdict(s) for s in self.stages],
            "steps": [
                {**asdict(s), "layer_size": s.layer.size if s.layer else None} for s in self.steps
            ],
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        write_atomic(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
