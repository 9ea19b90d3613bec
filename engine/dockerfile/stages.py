"""Stages, their dependencies, `--target` and the order they must be built in."""

from __future__ import annotations

import platform as host_platform
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.dockerfile.commands import parse_trigger
from engine.dockerfile.model import Dockerfile, Instruction
from engine.dockerfile.scope import GlobalScope
from engine.errors import DockerfileError

SCRATCH = "scratch"
_INT = re.compile(r"[+-]?\d+\Z")
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "386",
    "i686": "386",
}


@dataclass(frozen=True)
class PlatformSpec:
    """`os/arch[/variant]` normalised the way containerd does for the common cases."""

    os: str
    arch: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> PlatformSpec:
        parts = text.strip().lower().split("/")
        if len(parts) == 1 or len(parts) > 3 or not all(parts):
            raise ValueError(f"invalid platform: {text!r}")
        os_name, arch = parts[0], _ARCH_ALIASES.get(parts[1], parts[1])
        variant = parts[2] if len(parts) == 3 else ""
        if parts[1] == "armel" and not variant:
            variant = "v6"
        if variant.isdigit():
            variant = "v" + variant
        if arch == "arm64" and variant in ("v8", "v8.0"):
            variant = ""
        if arch == "arm" and not variant:
            variant = "v7"
        return cls(os_name, arch, variant)

    @classmethod
    def host(cls) -> PlatformSpec:
        machine = host_platform.machine().lower() or "amd64"
        if machine.startswith("armv7"):
            return cls("linux", "arm", "v7")
        if machine.startswith("armv6"):
            return cls("linux", "arm", "v6")
        return cls("linux", _ARCH_ALIASES.get(machine, machine))

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.arch, self.variant) if p)


def platform_args(target: PlatformSpec, build: PlatformSpec) -> dict[str, str]:
    """The automatic platform ARGs BuildKit defines in the global scope."""
    return {
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.arch,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.arch,
        "TARGETVARIANT": target.variant,
    }


@dataclass
class Stage:
    index: int
    name: str | None  # lower case, as BuildKit matches names
    base: str  # base image reference or earlier stage name, after ARG expansion
    base_stage: int | None  # index of the stage `base` names, if any
    platform: str | None  # expanded FROM --platform
    from_instruction: Instruction
    instructions: list[Instruction] = field(default_factory=list)
    depends_on: tuple[int, ...] = ()  # stages this one needs (FROM, COPY --from, mounts)
    external_images: tuple[str, ...] = ()  # images named by COPY --from / RUN --mount from=
    # ONBUILD triggers of the base stage; BuildKit runs them before `instructions`
    # (triggers from a base image's config are the build engine's: see parse_trigger).
    triggers: list[Instruction] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name if self.name else f"stage-{self.index}"

    @property
    def is_scratch(self) -> bool:
        return self.base_stage is None and self.base.lower() == SCRATCH


@dataclass
class StageGraph:
    stages: list[Stage]
    target: Stage
    global_scope: GlobalScope
    meta_instructions: list[Instruction]  # the ARGs before the first FROM
    skip_unused_stages: bool = False
    warnings: list[str] = field(default_factory=list)  # e.g. duplicate stage names

    def needed_stages(self) -> list[Stage]:
        """Stages to build, each after the stages it depends on (`.target` is the output).

        With skip_unused_stages only what the target needs; otherwise (kaniko's default)
        every stage up to the target plus whatever those depend on.
        """
        roots = (
            [self.target.index] if self.skip_unused_stages else list(range(self.target.index + 1))
        )
        order: list[int] = []
        seen: set[int] = set()

        def visit(i: int) -> None:
            if i in seen:
                return
            seen.add(i)
            for dep in self.stages[i].depends_on:
                visit(dep)
            order.append(i)

        for root in roots:
            visit(root)
        return [self.stages[i] for i in order]

    def stage(self, ref: str) -> Stage | None:
        """A stage by name (case-insensitive) or index, as COPY --from resolves it."""
        return _lookup(self.stages, ref, allow_index=True)

    def unused_build_args(self) -> list[str]:
        """Build args that no ARG in the global scope or a needed stage declares."""
        declared = set(self.global_scope.declared_global)
        for stage in self.needed_stages():
            for ins in stage.instructions:
                if ins.keyword == "ARG":
                    declared.update(a.partition("=")[0] for a in ins.args)
        gs = self.global_scope
        return [k for k in gs.unused_build_args() if k not in declared]


def _lookup(stages: list[Stage], ref: str, *, allow_index: bool) -> Stage | None:
    """COPY --from / RUN --mount from= / --target: names match case-insensitively and
    the last stage of a duplicated name wins, as in BuildKit's name table."""
    lowered = ref.lower()
    for st in reversed(stages):
        if st.name is not None and st.name == lowered:
            return st
    if allow_index and _INT.match(ref):
        index = int(ref)
        if 0 <= index < len(stages):
            return stages[index]
    return None


def _mount_from(spec: str) -> str | None:
    for part in spec.split(","):
        key, _, value = part.partition("=")
        if key.strip().lower() == "from":
            return value.strip().strip('"')
    return None


def build_stage_graph(
    df: Dockerfile,
    build_args: Mapping[str, str],
    target: str | None = None,
    skip_unused_stages: bool = False,
    platform: str | None = None,
    build_platform: str | None = None,
) -> StageGraph:
    """Split `df` into stages, resolve FROM/--from references, pick the target."""
    fname = df.filename

    def fail(message: str, line: int | None = None) -> DockerfileError:
        return DockerfileError(message, file=fname, line=line)

    try:
        build = PlatformSpec.parse(build_platform) if build_platform else PlatformSpec.host()
        tgt = PlatformSpec.parse(platform) if platform else build
    except ValueError as exc:
        raise fail(str(exc)) from None
    gs = GlobalScope(build_args, platform_args(tgt, build), escape=df.escape, filename=fname)

    meta: list[Instruction] = []
    stages: list[Stage] = []
    warnings: list[str] = []
    for ins in df.instructions:
        if ins.keyword == "FROM":
            stages.append(_new_stage(ins, len(stages), stages, gs, warnings))
        elif not stages:
            if ins.keyword != "ARG":
                raise fail("no build stage in current context", ins.line)
            meta.append(ins)
            gs.declare_global(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise fail("dockerfile contains no stages to build")

    for st in stages:
        if st.base_stage is not None:
            parent = stages[st.base_stage]
            st.triggers = [
                parse_trigger(ins.expression, filename=fname, line=st.from_instruction.line)
                for ins in parent.instructions
                if ins.keyword == "ONBUILD"
            ]
    for st in stages:
        _resolve_dependencies(st, stages, gs)
    _check_cycles(stages, fname)

    if target is None or target == "":
        chosen = stages[-1]
    else:
        found = _lookup(stages, target, allow_index=True)
        if found is None:
            raise fail(f'target stage "{target}" could not be found')
        chosen = found
    return StageGraph(stages, chosen, gs, meta, skip_unused_stages, warnings)


def _new_stage(
    ins: Instruction, index: int, earlier: list[Stage], gs: GlobalScope, warnings: list[str]
) -> Stage:
    base = gs.expand_from(ins.args[0], ins)
    if base == "":
        raise DockerfileError(
            f"base name ({ins.args[0]}) should not be blank", file=gs.filename, line=ins.line
        )
    name = ins.args[2].lower() if len(ins.args) == 3 else None
    if name is not None and any(s.name == name for s in earlier):
        warnings.append(f"{gs.filename}:{ins.line}: duplicate stage name {name!r}")
    raw_platform = ins.flag("platform")
    plat: str | None = None
    if raw_platform:
        plat = gs.expand_from(raw_platform, ins)
        if plat == "":
            raise DockerfileError(
                f"empty platform value from expression {raw_platform}",
                file=gs.filename,
                line=ins.line,
            )
        try:
            plat = str(PlatformSpec.parse(plat))
        except ValueError:
            raise DockerfileError(
                f"failed to parse platform {raw_platform}", file=gs.filename, line=ins.line
            ) from None
    # BuildKit looks the base up as written (no case folding) among earlier stages.
    parent = next((s for s in reversed(earlier) if s.name == base), None)
    return Stage(
        index=index,
        name=name,
        base=base,
        base_stage=parent.index if parent else None,
        platform=plat,
        from_instruction=ins,
    )


def _resolve_dependencies(st: Stage, stages: list[Stage], gs: GlobalScope) -> None:
    deps: list[int] = [st.base_stage] if st.base_stage is not None else []
    images: list[str] = []
    for ins in [*st.triggers, *st.instructions]:
        if ins.keyword == "COPY" and ins.flag("from"):
            ref = ins.flag("from") or ""
            if gs.expand_word(ref, {}, ins) != ref:
                raise DockerfileError(
                    "variable expansion is not supported for --from, define a new stage "
                    "with FROM using ARG from global scope as a workaround",
                    file=gs.filename,
                    line=ins.line,
                )
            if _INT.match(ref):
                index = int(ref)
                if not 0 <= index < len(stages):
                    raise DockerfileError(
                        f"invalid stage index {index}", file=gs.filename, line=ins.line
                    )
                deps.append(index)
                continue
            found = _lookup(stages, ref, allow_index=False)
            if found is not None:
                deps.append(found.index)
            else:
                images.append(ref)
        elif ins.keyword == "RUN":
            for spec in ins.flag_all("mount"):
                mount_ref = _mount_from(spec)
                if not mount_ref:
                    continue
                ref = mount_ref  # like COPY --from, resolved before any ARG is known
                found = _lookup(stages, ref, allow_index=False)
                if found is not None:
                    deps.append(found.index)
                else:
                    images.append(ref)
    st.depends_on = tuple(dict.fromkeys(deps))
    st.external_images = tuple(dict.fromkeys(images))


def _check_cycles(stages: list[Stage], filename: str) -> None:
    state: dict[int, int] = {}  # 1 visiting, 2 done

    def visit(i: int) -> None:
        state[i] = 1
        for dep in stages[i].depends_on:
            if state.get(dep) == 1:
                raise DockerfileError(
                    f"circular dependency detected on stage: {stages[dep].label}", file=filename
                )
            if dep not in state:
                visit(dep)
        state[i] = 2

    for st in stages:
        if st.index not in state:
            visit(st.index)
