"""BuildKit-faithful Dockerfile frontend (placeholder docstring, filled in below)."""

from __future__ import annotations

from engine.dockerfile.model import Directive, Dockerfile, Heredoc, Instruction
from engine.dockerfile.parser import parse_dockerfile
from engine.dockerfile.shell import expand, expand_words

__all__ = [
    "Directive",
    "Dockerfile",
    "Heredoc",
    "Instruction",
    "expand",
    "expand_words",
    "parse_dockerfile",
]
