from __future__ import annotations

import io
import json
from pathlib import Path

from adapters.ci import CI
from adapters.logsections import GitLabSections, redact, section, sections_for
from adapters.report import load_report, render_markdown

REPORT = {
    "digest": "sha256:" + "a" * 64,
    "tags": ["reg.example.com/app:1.0"],
    "duration_s": 3.25,
    "steps": [
        {"stage": "0", "instruction": "FROM busybox", "duration_s": 0.5, "cache_hit": None},
        {
            "stage": "0",
            "instruction": "RUN echo a | tee /x",
            "duration_s": 1.5,
            "cache_hit": True,
            "layer_size": 2048,
        },
        {
            "stage": "0",
            "instruction": "COPY . /app",
            "duration_s": 1.0,
            "cache_hit": False,
            "layer_size": 3 * 1024 * 1024,
        },
    ],
}


def test_gitlab_section_lines_follow_runner_syntax() -> None:
    out = io.StringIO()
    log = GitLabSections(out, clock=lambda: 1700000000.0)
    with section(log, "brickyard build", "Build app"):
        out.write("work\n")
    assert out.getvalue() == (
        "\x1b[0Ksection_start:1700000000:brickyard_build[collapsed=true]\r\x1b[0KBuild app\n"
        "work\n"
        "\x1b[0Ksection_end:1700000000:brickyard_build\r\x1b[0K\n"
    )


def test_github_groups_and_masks_each_line_of_a_secret() -> None:
    out = io.StringIO()
    log = sections_for(CI.GITHUB, out)
    log.mask("line1\nline2")
    with section(log, "x", "Auth"):
        pass
    assert out.getvalue() == "::add-mask::line1\n::add-mask::line2\n::group::Auth\n::endgroup::\n"


def test_jenkins_sections_are_plain_and_masking_emits_nothing() -> None:
    out = io.StringIO()
    log = sections_for(CI.JENKINS, out)
    log.mask("s3cret")
    with section(log, "x", "Build"):
        pass
    assert out.getvalue() == "--- Build\n"


def test_redact_replaces_longest_secrets_first() -> None:
    assert redact("u:abcdef and abc", ["abc", "abcdef"]) == "u:*** and ***"


def test_markdown_report_has_digest_cache_ratio_sizes_and_escaped_pipes(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(REPORT))
    md = render_markdown(load_report(path))
    assert f"**Digest:** `sha256:{'a' * 64}`" in md
    assert "**Cache:** 1/3 steps cached, layers 3.0 MiB" in md
    assert "| 0 | `RUN echo a \\| tee /x` | 1.50 s | hit | 2.0 KiB |" in md
    assert "| 0 | `COPY . /app` | 1.00 s | miss | 3.0 MiB |" in md


def test_missing_report_renders_a_note_not_an_error(tmp_path: Path) -> None:
    assert "No build report" in render_markdown(load_report(tmp_path / "none.json"))
