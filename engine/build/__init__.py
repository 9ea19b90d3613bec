"""Build orchestration: stages in order -> image -> outputs (see docs/architecture.md)."""

from __future__ import annotations
