"""Image tags and OCI labels, by docker/metadata-action's rules, for every CI.

A rule is `type=...,attr=...` (or a bare value, meaning `type=raw,value=...`). Rules run in
priority order; the first value produced is the version (`main`), the others are partial
tags; `latest` follows `flavor: latest=auto|true|false`, decided by the first rule that
produced a value (auto: true for git tags, valid non-pre-release semver and match rules).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from adapters.ci import RefContext
from engine.errors import AdapterError

MAX_TAG_LENGTH = 128

# Default priorities of docker/metadata-action (README "priority attribute").
PRIORITIES = {
    "schedule": 1000,
    "semver": 900,
    "match": 800,
    "edge": 700,
    "ref": 600,
    "raw": 200,
    "sha": 100,
}
DEFAULT_RULES = (
    "type=schedule",
    "type=ref,event=branch",
    "type=ref,event=tag",
    "type=ref,event=pr",
)

# SemVer 2.0.0 with node-semver's tolerance for a leading "v" or "=".
_SEMVER = re.compile(
    r"^[=v]?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_EXPR = re.compile(r"\{\{\s*(?P<name>[a-z_]+)(?P<args>(?:\s+[^}]+)?)\s*\}\}")
_INVALID_TAG_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")
# moment.js tokens used in date patterns -> strftime.
_MOMENT = (
    ("YYYY", "%Y"),
    ("YY", "%y"),
    ("MM", "%m"),
    ("DD", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSS", "%f"),
)


@dataclass(frozen=True)
class TagRule:
    type: str
    attrs: dict[str, str] = field(default_factory=dict)
    priority: int = 0


@dataclass(frozen=True)
class Flavor:
    latest: str = "auto"
    prefix: str = ""
    prefix_latest: bool = False
    suffix: str = ""
    suffix_latest: bool = False


@dataclass(frozen=True)
class Metadata:
    version: str
    tags: tuple[str, ...]
    labels: dict[str, str]

    @property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.rsplit(":", 1)[-1] for t in self.tags))


def split_list(value: str | Iterable[str], *, csv: bool = True) -> list[str]:
    """build-push-action's List/CSV inputs: newline-delimited, or comma-delimited on one line."""
    lines = value.splitlines() if isinstance(value, str) else list(value)
    out: list[str] = []
    for line in lines:
        parts = line.split(",") if csv and isinstance(value, str) else [line]
        out.extend(p.strip() for p in parts if p.strip() and not p.strip().startswith("#"))
    return out


def _parse_attrs(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    # Values may contain commas inside {{ ... }} expressions: split only outside them.
    depth, start, pieces = 0, 0, []
    for i, ch in enumerate(text):
        if text.startswith("{{", i):
            depth += 1
        elif text.startswith("}}", i) and depth:
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    for piece in pieces:
        key, sep, val = piece.partition("=")
        if not sep:
            raise AdapterError(f"tag rule {text!r}: attribute {piece!r} is not key=value")
        if key.strip() in attrs:
            raise AdapterError(f"tag rule {text!r}: {key.strip()} given twice (one rule per line)")
        attrs[key.strip()] = val.strip().strip("\"'")
    return attrs


def parse_tag_rule(text: str) -> TagRule:
    text = text.strip()
    if not text.startswith("type="):
        return TagRule("raw", {"value": text, "enable": "true"}, PRIORITIES["raw"])
    attrs = _parse_attrs(text)
    kind = attrs.pop("type")
    if kind not in PRIORITIES:
        raise AdapterError(f"tag rule {text!r}: unknown type {kind!r}")
    defaults: dict[str, str] = {"enable": "true"}
    if kind == "schedule":
        defaults["pattern"] = "nightly"
    elif kind in ("semver", "match"):
        if not attrs.get("pattern"):
            raise AdapterError(f"tag rule {text!r}: pattern attribute required")
        defaults.update(value="", group="0")
    elif kind == "edge":
        defaults["branch"] = ""
    elif kind == "ref":
        if attrs.get("event") not in ("branch", "tag", "pr"):
            raise AdapterError(f"tag rule {text!r}: event must be branch, tag or pr")
        if attrs["event"] == "pr" and "prefix" not in attrs:
            defaults["prefix"] = "pr-"
    elif kind == "raw":
        if "value" not in attrs:
            raise AdapterError(f"tag rule {text!r}: value attribute required")
    elif kind == "sha":
        defaults["format"] = "short"
        if "prefix" not in attrs:
            defaults["prefix"] = "sha-"
    merged = {**defaults, **attrs}
    priority = int(merged.pop("priority", PRIORITIES[kind]))
    return TagRule(kind, merged, priority)


def parse_tag_rules(lines: Iterable[str]) -> list[TagRule]:
    rules = [parse_tag_rule(line) for line in lines if line.strip()]
    # Stable sort: equal priorities keep the order the user wrote.
    return sorted(rules, key=lambda r: -r.priority)


def parse_flavor(lines: Iterable[str]) -> Flavor:
    values: dict[str, str] = {}
    for line in lines:
        for key, val in _parse_attrs(line).items():
            values[key] = val
    latest = values.get("latest", "auto")
    if latest not in ("auto", "true", "false"):
        raise AdapterError(f"flavor latest={latest!r}: expected auto, true or false")
    return Flavor(
        latest=latest,
        prefix=values.get("prefix", ""),
        prefix_latest=values.get("onlatest", "false") == "true" and "prefix" in values,
        suffix=values.get("suffix", ""),
        suffix_latest=values.get("onlatest", "false") == "true" and "suffix" in values,
    )


def sanitize_tag(tag: str) -> str:
    return _INVALID_TAG_CHARS.sub("-", tag)[:MAX_TAG_LENGTH]


def sanitize_image_name(name: str) -> str:
    return name.strip().lower()


def _format_date(when: datetime, fmt: str, tz: str) -> str:
    local = when.astimezone(ZoneInfo(tz))
    out = fmt
    for token, code in _MOMENT:
        out = out.replace(token, code)
    return local.strftime(out)


class _Expander:
    """Handlebars global expressions: {{branch}} {{tag}} {{sha}} {{base_ref}} {{date '..'}}."""

    def __init__(self, ctx: RefContext, now: datetime):
        self.ctx = ctx
        self.now = now

    def _date(self, args: str, when: datetime) -> str:
        fmt_m = re.search(r"['\"]([^'\"]*)['\"]", args)
        tz_m = re.search(r"tz=['\"]?([^'\"\s]+)", args)
        return _format_date(
            when, fmt_m.group(1) if fmt_m else "YYYYMMDD", tz_m.group(1) if tz_m else "UTC"
        )

    def _commit_date(self) -> datetime:
        raw = self.ctx.commit_date
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else self.now
        except ValueError:
            return self.now

    def __call__(self, text: str, values: dict[str, str] | None = None) -> str:
        def sub(m: re.Match[str]) -> str:
            name, args = m.group("name"), m.group("args") or ""
            if values is not None and name in values:
                return values[name]
            simple = {
                "branch": self.ctx.branch,
                "tag": self.ctx.tag,
                "sha": self.ctx.short_sha,
                "base_ref": self.ctx.base_ref,
                "is_default_branch": "true" if self._default_branch() else "false",
            }
            if name in simple:
                return simple[name]
            if name == "date":
                return self._date(args, self.now)
            if name == "commit_date":
                return self._date(args, self._commit_date())
            raise AdapterError(f"tag expression {m.group(0)!r}: unknown name {name!r}")

        return _EXPR.sub(sub, text)

    def _default_branch(self) -> bool:
        return self.ctx.is_default_branch or self.ctx.event == "schedule"


@dataclass
class _Version:
    main: str | None = None
    partial: list[str] = field(default_factory=list)
    latest: bool | None = None

    def add(self, value: str, latest: bool) -> None:
        if not value:
            return
        value = sanitize_tag(value)
        if self.main is None:
            self.main = value
        elif value != self.main and value not in self.partial:
            self.partial.append(value)
        if self.latest is None:
            self.latest = latest


def _is_raw_statement(pattern: str) -> bool:
    return re.fullmatch(r"\{\{\s*raw\s*\}\}", pattern) is not None


class _Meta:
    def __init__(self, ctx: RefContext, flavor: Flavor, now: datetime):
        self.ctx = ctx
        self.flavor = flavor
        self.expand = _Expander(ctx, now)

    def latest(self, auto: bool) -> bool:
        return auto if self.flavor.latest == "auto" else self.flavor.latest == "true"

    def value(self, val: str, rule: TagRule) -> str:
        if "prefix" in rule.attrs:
            val = self.expand(rule.attrs["prefix"]) + val
        elif self.flavor.prefix:
            val = self.expand(self.flavor.prefix) + val
        if "suffix" in rule.attrs:
            val = val + self.expand(rule.attrs["suffix"])
        elif self.flavor.suffix:
            val = val + self.expand(self.flavor.suffix)
        return val

    def apply(self, rule: TagRule, version: _Version) -> None:
        ctx, a = self.ctx, rule.attrs
        if rule.type == "schedule":
            if ctx.event == "schedule":
                version.add(self.value(self.expand(a["pattern"]), rule), self.latest(False))
        elif rule.type == "semver":
            self._semver(rule, version)
        elif rule.type == "match":
            self._match(rule, version)
        elif rule.type == "ref":
            event = a["event"]
            if event == "branch" and ctx.kind == "branch":
                version.add(self.value(ctx.name, rule), self.latest(False))
            elif event == "tag" and ctx.kind == "tag":
                version.add(self.value(ctx.name, rule), self.latest(True))
            elif event == "pr" and ctx.kind == "pr":
                # GitLab says merge request: its default prefix is mr- (ctx.pr_prefix).
                if "prefix" not in a or a["prefix"] == "pr-":
                    rule = TagRule(rule.type, {**a, "prefix": ctx.pr_prefix}, rule.priority)
                version.add(self.value(ctx.name, rule), self.latest(False))
        elif rule.type == "edge":
            branch = a.get("branch") or ctx.default_branch
            if ctx.kind == "branch" and ctx.name == branch:
                version.add(self.value("edge", rule), self.latest(False))
        elif rule.type == "raw":
            version.add(self.value(self.expand(a["value"]), rule), self.latest(False))
        elif rule.type == "sha" and ctx.sha:
            val = ctx.sha if a.get("format") == "long" else ctx.short_sha
            version.add(self.value(val, rule), self.latest(False))

    def _source(self, rule: TagRule) -> str | None:
        if rule.attrs.get("value"):
            return self.expand(rule.attrs["value"])
        if self.ctx.kind != "tag":
            return None
        return self.ctx.name

    def _semver(self, rule: TagRule, version: _Version) -> None:
        raw = self._source(rule)
        if raw is None:
            return
        raw = raw.replace("/", "-")
        m = _SEMVER.match(raw)
        if not m:
            return
        core = f"{m['major']}.{m['minor']}.{m['patch']}"
        values = {
            "raw": raw,
            "version": core + (f"-{m['prerelease']}" if m["prerelease"] else ""),
            "major": m["major"],
            "minor": m["minor"],
            "patch": m["patch"],
            "prerelease": m["prerelease"] or "",
        }
        pattern = rule.attrs["pattern"]
        if m["prerelease"]:
            # A pre-release never moves 1 / 1.2 / latest: only {{raw}} or {{version}} apply.
            text = self.expand(pattern if _is_raw_statement(pattern) else "{{version}}", values)
            version.add(self.value(text, rule), self.latest(False))
        else:
            version.add(self.value(self.expand(pattern, values), rule), self.latest(True))

    def _match(self, rule: TagRule, version: _Version) -> None:
        raw = self._source(rule)
        if raw is None:
            return
        pattern = rule.attrs["pattern"]
        if regex := re.fullmatch(r"/(.+)/(\w*)", pattern):
            pattern = regex.group(1)
        found = re.search(pattern, raw)
        group = int(rule.attrs.get("group", "0") or 0)
        if not found or group > (found.re.groups or 0) or found.group(group) is None:
            return
        version.add(self.value(found.group(group), rule), self.latest(True))


def compute_metadata(
    ctx: RefContext,
    images: Sequence[str],
    rules: Sequence[TagRule] | None = None,
    flavor: Flavor | None = None,
    *,
    now: datetime | None = None,
    extra_labels: Sequence[str] = (),
) -> Metadata:
    """Tags (full references, `image:tag`) and labels for `ctx`, as metadata-action computes."""
    now = now or datetime.now(UTC)
    flavor = flavor or Flavor()
    meta = _Meta(ctx, flavor, now)
    version = _Version()
    for rule in parse_tag_rules(DEFAULT_RULES) if rules is None else rules:
        enabled = meta.expand(rule.attrs.get("enable", "true"))
        if enabled not in ("true", "false"):
            raise AdapterError(f"tag rule {rule.type}: enable={enabled!r} is not true or false")
        if enabled == "true":
            meta.apply(rule, version)
    names = [sanitize_image_name(i) for i in images if i.strip()]
    tags: list[str] = []
    if version.main:
        values = [version.main, *version.partial]
        if version.latest:
            latest = (
                f"{flavor.prefix if flavor.prefix_latest else ''}latest"
                f"{flavor.suffix if flavor.suffix_latest else ''}"
            )
            values.append(sanitize_tag(latest))
        for name in names:
            tags.extend(f"{name}:{v}" for v in values)
    labels = oci_labels(ctx, version.main or "", now)
    for extra in extra_labels:
        key, sep, val = meta.expand(extra).partition("=")
        if sep:
            labels[key] = val
    return Metadata(
        version=version.main or "", tags=tuple(tags), labels=dict(sorted(labels.items()))
    )


def oci_labels(ctx: RefContext, version: str, now: datetime) -> dict[str, str]:
    """The org.opencontainers.image.* labels metadata-action generates (non-empty ones)."""
    labels = {
        "org.opencontainers.image.title": ctx.repo_name,
        "org.opencontainers.image.url": ctx.repo_url,
        "org.opencontainers.image.source": ctx.repo_url,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.created": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{now.astimezone(UTC).microsecond // 1000:03d}Z",
        "org.opencontainers.image.revision": ctx.sha,
    }
    return {k: v for k, v in labels.items() if v}
