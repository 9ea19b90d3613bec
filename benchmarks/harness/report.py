"""Summaries and the results table written into benchmarks/README.md."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"

# Targets from issue 6: brickyard / buildah-overlay median wall-time ratio.
TARGETS = {
    "small-app": 0.56,
    "many-files": 0.32,
    "big-layer": 0.39,
    "multi-stage": 0.67,
    "package-install": 0.90,
    "cached-rebuild": 0.65,
}
RSS_LIMIT_MB = 200.0


@dataclass
class Series:
    case: str
    builder: str
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    layers: int | None = None  # layers the build added on top of the base image
    compressed_mb: float | None = None  # compressed size of those layers
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def table(series: dict[tuple[str, str], Series], cases: list[str], builders: list[str]) -> str:
    lines = [
        "| case | builder | median s | min–max s | peak RSS MB | layers added | compressed MB "
        "| brickyard ÷ this | target (÷ buildah) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        mine = series.get((case, "brickyard"))
        for b in builders:
            s = series.get((case, b))
            if s is None:
                continue
            if not s.seconds:
                why = s.note or ("failed: " + s.failures[0] if s.failures else "not run")
                lines.append(f"| {case} | {b} | {why} | | | | | | |")
                continue
            ratio = ""
            if mine and mine.median and not b.startswith("brickyard") and s.median:
                ratio = f"{mine.median / s.median:.2f}"
            target = ""
            if b == "buildah" and case in TARGETS and mine and mine.median and s.median:
                r = mine.median / s.median
                ok = r <= TARGETS[case]
                target = f"≤ {TARGETS[case]:.2f}: {'met' if ok else 'MISSED'}"
                nopush = series.get((case, "brickyard-nopush"))
                if nopush and nopush.median:
                    target += f" (no-push: {nopush.median / s.median:.2f})"
            rss = max(s.rss_mb)
            rss_txt = f"{rss:.0f}" + (
                " (over 200)" if b.startswith("brickyard") and rss > RSS_LIMIT_MB else ""
            )
            failed = f" ({len(s.failures)} failed)" if s.failures else ""
            lines.append(
                f"| {case} | {b}{failed} | {_fmt(s.median)} | {_fmt(min(s.seconds))}–"
                f"{_fmt(max(s.seconds))} | {rss_txt} | {'—' if s.layers is None else s.layers} "
                f"| {_fmt(s.compressed_mb, 2)} | {ratio} | {target} |"
            )
    return "\n".join(lines)


def write_readme(readme: Path, body: str) -> None:
    text = readme.read_text() if readme.exists() else ""
    block = f"{START}\n{body}\n{END}"
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)
