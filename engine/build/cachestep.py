"""Layer-cache keys of build steps (engine/cache's contract, seen from the build side).

A stage's chain starts at `base_key(base manifest digest | earlier stage's key | scratch)`;
each instruction extends it with its expanded text, the environment RUN sees, and for
COPY/ADD the content hash of what it copies. Only RUN (and COPY/ADD with
--cache-copy-layers) are looked up and stored; the others only take part in the chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.build import adapt


def expanded_text(ins: Any) -> str:
    """The instruction after variable expansion, as one line: what the key hashes."""
    parts = [adapt.keyword(ins)]
    parts += [f"--{k}={v}" for k, v in adapt.flags(ins).items()]
    args = adapt.args(ins)
    parts.append(json.dumps(args) if adapt.json_form(ins) else " ".join(args))
    for h in getattr(ins, "heredocs", None) or ():
        parts.append(f"<<{h.name}\n{h.content}")
    return " ".join(parts)


def sources_digest(
    ins: Any,
    *,
    context_dir: Path,
    matcher: Any,
    stage_keys: Mapping[str, str | None],
    image_digest: Callable[[str], str] | None = None,
) -> str | None:
    """What COPY/ADD copies, hashed: context files (after .dockerignore), or the source
    stage's key / the image's manifest digest plus the paths for --from. None if it cannot
    be known."""
    from engine.cache import hash_sources, stage_source_digest
    from engine.context import match_sources

    srcs = adapt.args(ins)[:-1]
    from_value = adapt.flags(ins).get("from", "")
    if from_value:
        if from_value.lower() in stage_keys:
            key = stage_keys[from_value.lower()]
        else:  # an image: its digest, so a moved tag is a miss
            key = image_digest(from_value) if image_digest else from_value
        return None if key is None else stage_source_digest(key, srcs)
    local = [s for s in srcs if not s.startswith(("http://", "https://", "git@"))]
    local = [s for s in local if not (s.startswith("<<") and getattr(ins, "heredocs", None))]
    if not local:
        return stage_source_digest("no-local-sources", srcs)
    matched = match_sources(context_dir, local, matcher)
    excluded = getattr(matcher, "excluded", None)
    return str(
        hash_sources(
            context_dir,
            matched,
            owner=adapt.flags(ins).get("chown", ""),
            excluded=excluded if callable(excluded) else None,
        )
    )


def run_mounts_digest(
    ins: Any,
    *,
    context_dir: Path,
    matcher: Any,
    stage_keys: Mapping[str, str | None],
    image_digest: Callable[[str], str] | None = None,
) -> str | None:
    """What a RUN's bind mounts show it, hashed like COPY sources (BuildKit keys a step by
    its mounts' content): "" without bind mounts; None if it cannot be known. Cache,
    tmpfs and secret mounts are never part of the key."""
    from engine.cache import hash_sources, stage_source_digest
    from engine.fs.safe import resolve_in_root

    parts: list[str] = []
    for spec in adapt.run_mounts(ins):
        if spec.kind != "bind":
            continue
        source = spec.source or "/"
        if spec.from_:
            if spec.from_.lower() in stage_keys:
                key = stage_keys[spec.from_.lower()]
            else:
                key = image_digest(spec.from_) if image_digest else spec.from_
            if key is None:
                return None
            parts.append(stage_source_digest(key, [source]))
            continue
        path = resolve_in_root(context_dir, source)
        if not path.exists():
            return None  # the step fails anyway, naming the source
        excluded = getattr(matcher, "excluded", None)
        can_skip = getattr(matcher, "can_skip_dir", None)
        parts.append(
            str(
                hash_sources(
                    context_dir,
                    [path],
                    excluded=excluded if callable(excluded) else None,
                    can_skip_dir=can_skip if callable(can_skip) else None,
                )
            )
        )
    return stage_source_digest("run-mounts", parts) if parts else ""
