"""`brickyard plan`: what a build would do, without pulling or pushing anything.

Parses the Dockerfile and opens the context exactly as a build would, then reports the
stages (which ones the target needs, in build order), every instruction after ARG/ENV
expansion, and the context files each COPY/ADD would read (after .dockerignore and
--exclude). Base images are never fetched, so ENV inherited from a base image is unknown
here: expansion sees only what the Dockerfile itself declares.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from engine.context import (
    ContextRequest,
    IgnoreMatcher,
    dockerignore_path,
    load_dockerignore,
    match_sources,
    matcher_from_patterns,
    open_context,
    resolve_dockerfile_path,
    walk_context,
)
from engine.context.sources import is_git_url
from engine.dockerfile import Instruction, build_stage_graph, parse_dockerfile
from engine.errors import BuildError, ContextError
from engine.options import BuildOptions

_HEREDOC_SOURCE = re.compile(r"\d*<<-?[^<]+\Z")
_TEXT_FILE_LIMIT = 20  # files listed per COPY source in text output


@dataclass
class SourcePlan:
    pattern: str
    files: list[str] = field(default_factory=list)
    kind: str = "context"  # context | heredoc | url | stage | image
    error: str = ""


@dataclass
class InstructionPlan:
    line: int
    keyword: str
    text: str
    sources: list[SourcePlan] = field(default_factory=list)
    copy_from: str = ""


@dataclass
class StagePlan:
    index: int
    name: str | None
    base: str
    base_stage: int | None
    platform: str | None
    needed: bool
    depends_on: list[int]
    instructions: list[InstructionPlan] = field(default_factory=list)


@dataclass
class Plan:
    dockerfile: str
    context: str
    dockerignore: str | None
    ignore_patterns: int
    context_files: int
    platform: str
    target: int
    build_order: list[int]
    unused_build_args: list[str]
    stages: list[StagePlan]

    def errors(self) -> list[str]:
        return [
            f"line {ins.line}: {src.error}"
            for st in self.stages
            if st.needed
            for ins in st.instructions
            for src in ins.sources
            if src.error
        ]

    def to_json(self) -> dict[str, Any]:
        def ins_json(ins: InstructionPlan) -> dict[str, Any]:
            out: dict[str, Any] = {"line": ins.line, "keyword": ins.keyword, "text": ins.text}
            if ins.copy_from:
                out["from"] = ins.copy_from
            if ins.keyword in ("COPY", "ADD"):
                out["sources"] = [
                    {k: v for k, v in vars(s).items() if k != "error" or v} for s in ins.sources
                ]
            return out

        return {
            "dockerfile": self.dockerfile,
            "context": self.context,
            "dockerignore": self.dockerignore,
            "context_files": self.context_files,
            "platform": self.platform,
            "target": self.target,
            "build_order": self.build_order,
            "unused_build_args": self.unused_build_args,
            "stages": [
                {
                    "index": st.index,
                    "name": st.name,
                    "base": st.base,
                    "base_stage": st.base_stage,
                    "platform": st.platform,
                    "needed": st.needed,
                    "depends_on": st.depends_on,
                    "instructions": [ins_json(i) for i in st.instructions],
                }
                for st in self.stages
            ],
        }


def instruction_text(ins: Instruction) -> str:
    """An expanded instruction written back as one Dockerfile line."""
    flags = [f"--{k}={v}" if v not in ("true", "") else f"--{k}" for k, v in ins.flag_values]
    if ins.keyword in ("ENV", "LABEL") and not ins.json_form:
        body = " ".join(f"{k}={_quote(v)}" for k, v in ins.pairs())
    elif ins.keyword == "ONBUILD":
        body = ins.expression or " ".join(ins.args)
    elif ins.json_form:
        body = json.dumps(list(ins.args))
    else:
        body = " ".join(ins.args)
    return " ".join([ins.keyword, *flags, body]).rstrip()


def _quote(value: str) -> str:
    if value and not re.search(r"[\s\"'\\$]", value):
        return value
    return json.dumps(value)


def _context_files(context_dir: Path, rel: str, matcher: IgnoreMatcher) -> list[str]:
    path = context_dir if rel == "." else context_dir / rel
    if path.is_dir() and not path.is_symlink():
        return [e.rel for e in walk_context(context_dir, matcher, start=rel) if not e.is_dir]
    return [rel]


def _below(rel: str, base: str) -> str:
    """Path of a file relative to the copied source ("" base: the whole context)."""
    if not base:
        return rel
    return rel[len(base) :] if rel.startswith(base) else Path(rel).name


def _plan_sources(ins: Instruction, context_dir: Path, matcher: IgnoreMatcher) -> list[SourcePlan]:
    excludes = ins.flag_all("exclude")
    extra = matcher_from_patterns(excludes) if excludes else None
    plans: list[SourcePlan] = []
    for src in ins.args[:-1]:
        if ins.heredocs and _HEREDOC_SOURCE.match(src):
            plans.append(SourcePlan(src, kind="heredoc"))
            continue
        if ins.keyword == "ADD" and (src.startswith(("http://", "https://")) or is_git_url(src)):
            plans.append(SourcePlan(src, kind="url"))
            continue
        plan = SourcePlan(src)
        try:
            for path in match_sources(context_dir, [src], matcher):
                rel = path.relative_to(context_dir).as_posix() or "."
                files = _context_files(context_dir, rel, matcher)
                if extra is not None:  # BuildKit matches --exclude below the copied source
                    base = "" if rel == "." else rel + "/"
                    files = [f for f in files if not extra.excluded(_below(f, base))]
                plan.files += files
        except (BuildError, ContextError) as err:
            plan.error = str(err)
        plans.append(plan)
    return plans


def make_plan(
    options: BuildOptions,
    env: Mapping[str, str],
    *,
    stdin: IO[bytes] | None = None,
    workdir: Path,
    cwd: Path | None = None,
) -> Plan:
    """Build the Plan. `workdir` receives remote contexts (tar, git, https)."""
    request = ContextRequest(workdir=workdir / "context", git=options.git, stdin=stdin, env=env)
    context_dir = open_context(options.context, request, options.context_sub_path or None)
    dockerfile = resolve_dockerfile_path(
        options.dockerfile, context_dir, cwd, download_dir=workdir / "dockerfile"
    )
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ContextError(f"cannot read Dockerfile {dockerfile}: {err}") from None
    df = parse_dockerfile(text, filename=options.dockerfile)
    graph = build_stage_graph(
        df,
        options.build_args_dict(),
        target=options.target or None,
        skip_unused_stages=options.skip_unused_stages,
        platform=options.custom_platform or None,
    )
    matcher = load_dockerignore(context_dir, dockerfile)
    ignore_file = dockerignore_path(context_dir, dockerfile)
    order = [s.index for s in graph.needed_stages()]
    stage_scopes: dict[int, Any] = {}
    stages: list[StagePlan] = []
    for stage in graph.stages:
        # FROM <stage> starts from that stage's finished scope (its ENV and ARG values),
        # as the build does (engine/build/sources.stage_scope).
        parent = stage_scopes.get(stage.base_stage) if stage.base_stage is not None else None
        base_env = dict(parent.env) if parent is not None else {}
        scope = graph.global_scope.stage_scope(base_env, parent=parent)
        sp = StagePlan(
            index=stage.index,
            name=stage.name,
            base=stage.base,
            base_stage=stage.base_stage,
            platform=stage.platform,
            needed=stage.index in order,
            depends_on=list(stage.depends_on),
        )
        for ins in stage.instructions:
            expanded = scope.expand_instruction(ins)
            scope.apply(expanded)
            ip = InstructionPlan(expanded.line, expanded.keyword, instruction_text(expanded))
            if expanded.keyword in ("COPY", "ADD"):
                copy_from = expanded.flag("from")
                if copy_from:
                    ip.copy_from = copy_from
                    kind = "stage" if graph.stage(copy_from) is not None else "image"
                    ip.sources = [SourcePlan(s, kind=kind) for s in expanded.args[:-1]]
                else:
                    ip.sources = _plan_sources(expanded, context_dir, matcher)
            sp.instructions.append(ip)
        stage_scopes[stage.index] = scope
        stages.append(sp)
    context_files = sum(1 for e in walk_context(context_dir, matcher) if not e.is_dir)
    return Plan(
        dockerfile=str(dockerfile),
        context=options.context,
        dockerignore=str(ignore_file) if ignore_file else None,
        ignore_patterns=len(matcher.patterns),
        context_files=context_files,
        platform=options.custom_platform,
        target=graph.target.index,
        build_order=order,
        unused_build_args=graph.unused_build_args(),
        stages=stages,
    )


def render_text(plan: Plan) -> str:
    lines = [
        f"Dockerfile: {plan.dockerfile}",
        f"Context: {plan.context} ({plan.context_files} files after .dockerignore)",
    ]
    if plan.dockerignore:
        lines.append(f".dockerignore: {plan.dockerignore} ({plan.ignore_patterns} patterns)")
    target = plan.stages[plan.target]
    lines.append(f"Platform: {plan.platform}")
    lines.append("Note: base images are not fetched; expansion sees only the Dockerfile's ARG/ENV")
    lines.append(f"Target: {_stage_label(target)}")
    lines.append(
        "Build order: " + ", ".join(_stage_label(plan.stages[i]) for i in plan.build_order)
    )
    if plan.unused_build_args:
        lines.append("Unused build args: " + ", ".join(plan.unused_build_args))
    for st in plan.stages:
        lines.append("")
        state = "built" if st.needed else "skipped"
        base = st.base if st.base_stage is None else f"{st.base} (stage {st.base_stage})"
        plat = f" --platform={st.platform}" if st.platform else ""
        lines.append(f"{_stage_label(st)}: FROM{plat} {base}  [{state}]")
        for ins in st.instructions:
            lines.append(f"  {ins.line:>4}  {ins.text}")
            for src in ins.sources:
                lines.extend(_source_lines(src))
    return "\n".join(lines) + "\n"


def _stage_label(st: StagePlan) -> str:
    return f'stage {st.index} "{st.name}"' if st.name else f"stage {st.index}"


def _source_lines(src: SourcePlan) -> list[str]:
    pad = " " * 8
    if src.error:
        return [f"{pad}{src.pattern}: ERROR {src.error}"]
    if src.kind != "context":
        return [f"{pad}{src.pattern}: ({src.kind})"]
    shown = src.files[:_TEXT_FILE_LIMIT]
    out = [f"{pad}{src.pattern}: {len(src.files)} file(s)"]
    out += [f"{pad}  {f}" for f in shown]
    if len(src.files) > len(shown):
        out.append(f"{pad}  ... {len(src.files) - len(shown)} more")
    return out


def run_plan(
    options: BuildOptions,
    env: Mapping[str, str],
    *,
    output: str = "text",
    stdin: IO[bytes] | None = None,
    out: IO[str] | None = None,
) -> int:
    """Print the plan; BuildError (exit 7) after printing when a needed COPY/ADD would fail."""
    stream = out or sys.stdout
    with tempfile.TemporaryDirectory(prefix="brickyard-plan-") as tmp:
        plan = make_plan(options, env, stdin=stdin, workdir=Path(tmp))
    if output == "json":
        stream.write(json.dumps(plan.to_json(), indent=2) + "\n")
    else:
        stream.write(render_text(plan))
    problems = plan.errors()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BuildError(f"plan: {problems[0]}{more}")
    return 0


__all__ = ["Plan", "make_plan", "render_text", "run_plan"]
