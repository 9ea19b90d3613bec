"""The engine's JSON build report (`--report-file`) read and rendered as Markdown.

Expected shape (extra keys ignored, missing ones tolerated):
{"digest": "sha256:...", "image_id": "sha256:<config digest>", "tags": ["reg/img:tag"],
 "duration_s": 12.3, "error": null | "one line",
 "steps": [{"stage": 0, "instruction": "RUN make", "duration_s": 1.2, "cache_hit": false,
            "layer_size": 1234}]}
(engine/build/report.py writes it.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.errors import AdapterError


@dataclass(frozen=True)
class StepReport:
    stage: str
    instruction: str
    duration_s: float | None = None
    cache_hit: bool | None = None
    layer_size: int | None = None


@dataclass(frozen=True)
class BuildReport:
    digest: str = ""
    image_id: str = ""
    tags: tuple[str, ...] = ()
    duration_s: float | None = None
    steps: tuple[StepReport, ...] = field(default_factory=tuple)
    error: str = ""


def _first(d: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if d.get(key) is not None:
            return d[key]
    return None


def _step(raw: dict[str, Any]) -> StepReport:
    size = _first(raw, "layer_size", "size", "layer_bytes")
    duration = _first(raw, "duration_s", "duration", "seconds")
    hit = _first(raw, "cache_hit", "cached")
    return StepReport(
        stage=str(_first(raw, "stage", "stage_name", "stage_index") or ""),
        instruction=str(_first(raw, "instruction", "command", "text") or ""),
        duration_s=float(duration) if duration is not None else None,
        cache_hit=bool(hit) if hit is not None else None,
        layer_size=int(size) if size is not None else None,
    )


def parse_report(data: dict[str, Any]) -> BuildReport:
    steps = data.get("steps") or []
    duration = _first(data, "duration_s", "duration")
    return BuildReport(
        digest=str(data.get("digest") or ""),
        image_id=str(_first(data, "image_id", "config_digest", "imageid") or ""),
        tags=tuple(str(t) for t in (_first(data, "tags", "destinations") or ())),
        duration_s=float(duration) if duration is not None else None,
        steps=tuple(_step(s) for s in steps if isinstance(s, dict)),
        error=str(data.get("error") or ""),
    )


def redact_report(report: BuildReport, secrets: Iterable[str]) -> BuildReport:
    """The report with secrets masked where text could carry them (error, instructions):
    it becomes a step summary or a merge request note."""
    from adapters.logsections import redact

    keep = tuple(secrets)
    return replace(
        report,
        error=redact(report.error, keep),
        steps=tuple(replace(s, instruction=redact(s.instruction, keep)) for s in report.steps),
    )


def load_report(path: Path) -> BuildReport:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return BuildReport()
    except (OSError, ValueError) as exc:
        raise AdapterError(f"build report {path} unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise AdapterError(f"build report {path} is not a JSON object")
    return parse_report(data)


def human_size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _cell(text: str) -> str:
    text = " ".join(text.split())
    text = text if len(text) <= 80 else text[:77] + "..."
    return text.replace("|", "\\|").replace("`", "'")


def render_markdown(report: BuildReport, *, title: str = "brickyard build") -> str:
    lines = [f"### {title}", ""]
    if report.digest:
        lines.append(f"**Digest:** `{report.digest}`")
    if report.tags:
        lines.append("**Tags:** " + ", ".join(f"`{t}`" for t in report.tags))
    if report.error:
        error = " ".join(report.error.split()).replace("`", "'")
        lines.append(f"**Failed:** `{error}`")
    if report.duration_s is not None:
        lines.append(f"**Duration:** {report.duration_s:.1f} s")
    if report.steps:
        hits = sum(1 for s in report.steps if s.cache_hit)
        total_size = sum(s.layer_size or 0 for s in report.steps)
        lines.append(
            f"**Cache:** {hits}/{len(report.steps)} steps cached, layers {human_size(total_size)}"
        )
        lines += ["", "| stage | step | time | cache | layer |", "|---|---|---:|---|---:|"]
        for s in report.steps:
            took = f"{s.duration_s:.2f} s" if s.duration_s is not None else ""
            hit = {True: "hit", False: "miss", None: ""}[s.cache_hit]
            lines.append(
                f"| {_cell(s.stage)} | `{_cell(s.instruction)}` | {took} | {hit} "
                f"| {human_size(s.layer_size)} |"
            )
    if len(lines) == 2:
        lines.append("No build report was produced.")
    return "\n".join(lines) + "\n"
