"""brickyard's build engine: Dockerfile + context in, OCI image out, no daemon."""

from __future__ import annotations

__version__ = "0.1.0"
