"""jinja2 templates shipped as package data (pod specs, CI snippets, actions)."""

from __future__ import annotations

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent
