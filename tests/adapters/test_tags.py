from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.ci import CI, RefContext
from adapters.tags import (
    compute_metadata,
    parse_flavor,
    parse_tag_rules,
    sanitize_tag,
)
from engine.errors import AdapterError

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
SEMVER_RULES = [
    "type=semver,pattern={{version}}",
    "type=semver,pattern={{major}}.{{minor}}",
    "type=semver,pattern={{major}}",
]


def tags(
    ctx: RefContext, rules: list[str] | None = None, flavor: tuple[str, ...] = ()
) -> list[str]:
    meta = compute_metadata(
        ctx,
        ["Ghcr.io/Org/App"],
        parse_tag_rules(rules) if rules is not None else None,
        parse_flavor(flavor),
        now=NOW,
    )
    return list(meta.tags)


def gh(kind: str, name: str, **kw: object) -> RefContext:
    return RefContext(ci=CI.GITHUB, kind=kind, name=name, sha=SHA, **kw)  # type: ignore[arg-type]


def test_default_rules_branch_slash_becomes_dash_and_image_lowercased() -> None:
    assert tags(gh("branch", "feature/login")) == ["ghcr.io/org/app:feature-login"]


def test_default_rules_git_tag_adds_latest() -> None:
    assert tags(gh("tag", "v1.2.3")) == ["ghcr.io/org/app:v1.2.3", "ghcr.io/org/app:latest"]


def test_semver_patterns_give_version_minor_major_and_latest() -> None:
    assert tags(gh("tag", "v1.2.3"), SEMVER_RULES) == [
        "ghcr.io/org/app:1.2.3",
        "ghcr.io/org/app:1.2",
        "ghcr.io/org/app:1",
        "ghcr.io/org/app:latest",
    ]


def test_semver_prerelease_only_extends_version_and_never_latest() -> None:
    assert tags(gh("tag", "v2.0.0-rc.1"), SEMVER_RULES) == ["ghcr.io/org/app:2.0.0-rc.1"]


def test_semver_on_non_semver_tag_produces_nothing() -> None:
    assert tags(gh("tag", "release-x"), SEMVER_RULES) == []


def test_pull_request_prefix_is_pr_on_github_and_mr_on_gitlab() -> None:
    assert tags(gh("pr", "2")) == ["ghcr.io/org/app:pr-2"]
    mr = RefContext(ci=CI.GITLAB, kind="pr", name="5", sha=SHA, pr_prefix="mr-")
    assert tags(mr) == ["ghcr.io/org/app:mr-5"]


def test_sha_is_seven_chars_on_github_and_eight_on_gitlab() -> None:
    assert tags(gh("branch", "x"), ["type=sha"]) == ["ghcr.io/org/app:sha-860c190"]
    gl = RefContext(ci=CI.GITLAB, kind="branch", name="x", sha=SHA, short_sha_length=8)
    assert tags(gl, ["type=sha"]) == ["ghcr.io/org/app:sha-860c1904"]
    assert tags(gh("branch", "x"), ["type=sha,format=long"]) == [f"ghcr.io/org/app:sha-{SHA}"]


def test_edge_only_on_default_branch() -> None:
    rules = ["type=edge", "type=ref,event=branch"]
    on_main = gh("branch", "main", default_branch="main")
    assert tags(on_main, rules) == ["ghcr.io/org/app:edge", "ghcr.io/org/app:main"]
    assert tags(gh("branch", "dev", default_branch="main"), rules) == ["ghcr.io/org/app:dev"]


def test_raw_with_is_default_branch_enable_expression() -> None:
    rules = ["type=raw,value=latest,enable={{is_default_branch}}", "type=ref,event=branch"]
    # ref (priority 600) sorts before raw (200): the version is "main".
    assert tags(gh("branch", "main", default_branch="main"), rules) == [
        "ghcr.io/org/app:main",
        "ghcr.io/org/app:latest",
    ]
    assert tags(gh("branch", "dev", default_branch="main"), rules) == ["ghcr.io/org/app:dev"]


def test_bare_value_is_raw_and_flavor_latest_false_suppresses_latest() -> None:
    assert tags(gh("tag", "v1.0.0"), ["stable"]) == ["ghcr.io/org/app:stable"]
    assert tags(gh("tag", "v1.0.0"), None, ("latest=false",)) == ["ghcr.io/org/app:v1.0.0"]


def test_flavor_prefix_and_suffix_with_onlatest() -> None:
    got = tags(gh("tag", "v1.0.0"), None, ("suffix=-alpine,onlatest=true",))
    assert got == ["ghcr.io/org/app:v1.0.0-alpine", "ghcr.io/org/app:latest-alpine"]


def test_schedule_pattern_with_date_expression() -> None:
    nightly = gh("branch", "main", event="schedule")
    got = tags(nightly, ["type=schedule,pattern={{date 'YYYYMMDD'}}"])
    assert got == ["ghcr.io/org/app:20260304"]


def test_match_rule_extracts_group() -> None:
    got = tags(gh("tag", "app-v3.4"), [r"type=match,pattern=v(\d+\.\d+),group=1"])
    assert got == ["ghcr.io/org/app:3.4", "ghcr.io/org/app:latest"]


def test_invalid_characters_replaced_and_tag_capped_at_128() -> None:
    assert sanitize_tag("a b+c/d") == "a-b-c-d"
    long = tags(gh("branch", "x" * 300))
    assert len(long[0].split(":", 1)[1]) == 128


def test_labels_carry_source_revision_version_created_title_url() -> None:
    ctx = gh("tag", "v1.2.3", repo_name="App", repo_url="https://github.com/Org/App")
    labels = compute_metadata(ctx, ["x/y"], parse_tag_rules(SEMVER_RULES), now=NOW).labels
    assert labels == {
        "org.opencontainers.image.created": "2026-03-04T05:06:07.000Z",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.source": "https://github.com/Org/App",
        "org.opencontainers.image.title": "App",
        "org.opencontainers.image.url": "https://github.com/Org/App",
        "org.opencontainers.image.version": "1.2.3",
    }


def test_bad_rules_are_refused_with_the_rule_named() -> None:
    with pytest.raises(AdapterError, match="unknown type"):
        parse_tag_rules(["type=nope"])
    with pytest.raises(AdapterError, match="event must be"):
        parse_tag_rules(["type=ref,event=commit"])
    with pytest.raises(AdapterError, match="type given twice"):
        parse_tag_rules(["type=ref,event=branch,type=sha"])
    with pytest.raises(AdapterError, match="enable="):
        tags(gh("branch", "x"), ["type=raw,value=a,enable=maybe"])
