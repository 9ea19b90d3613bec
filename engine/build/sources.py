"""Inputs of a build (context, Dockerfile, stage graph, isolation) and its file outputs,
each reached through the owning package's public API."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from engine.build import adapt
from engine.build.assemble import ImageArtifacts, LayerRef
from engine.build.config import StageConfig
from engine.build.workspace import Workspace
from engine.errors import BuildError, ContextError

# ---- context and Dockerfile ---------------------------------------------------------------


def open_build_context(options: Any, workspace: Workspace, stdin: IO[bytes] | None) -> Path:
    from engine.context import open_context

    return Path(
        open_context(
            options.context,
            _context_request(options, workspace, stdin),
            options.context_sub_path or None,
        )
    )


def _context_request(options: Any, workspace: Workspace, stdin: IO[bytes] | None) -> Any:
    from engine.context import ContextRequest

    return ContextRequest(
        workdir=workspace.root / "buildcontext",
        git=options.git,
        stdin=stdin,
        verify_tls=not options.skip_tls_verify_pull,
    )


def read_dockerfile(options: Any, context_dir: Path) -> tuple[str, str]:
    """kaniko's lookup: as given (absolute or cwd-relative), else relative to the context."""
    from engine.context import resolve_dockerfile_path

    path = resolve_dockerfile_path(options.dockerfile or "Dockerfile", context_dir)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ContextError(f"cannot read Dockerfile {path}: {exc}") from exc


def dockerignore(context_dir: Path, dockerfile_path: str) -> Any:
    from engine.context import load_dockerignore

    return load_dockerignore(context_dir, Path(dockerfile_path))


# ---- stages -------------------------------------------------------------------------------


def stage_graph(options: Any, text: str, filename: str) -> Any:
    from engine.dockerfile import build_stage_graph, parse_dockerfile

    df = parse_dockerfile(text, filename=filename)
    return build_stage_graph(
        df,
        options.build_args_dict(),
        target=options.target or None,
        skip_unused_stages=options.skip_unused_stages,
        platform=options.custom_platform or None,
    )


def build_order(graph: Any) -> list[Any]:
    """The stages to build, dependencies first (all up to the target unless
    --skip-unused-stages, as kaniko does)."""
    return list(graph.needed_stages())


def stage_names(graph: Any) -> dict[str, int]:
    return {str(s.name).lower(): int(s.index) for s in graph.stages if getattr(s, "name", None)}


def base_text(stage: Any) -> str:
    return str(stage.base)


def base_stage_index(stage: Any) -> int:
    value = getattr(stage, "base_stage", None)
    return -1 if value is None else int(value)


def cross_stage_deps(order: Sequence[Any]) -> dict[int, list[int]]:
    return {adapt.stage_index(s): sorted(set(getattr(s, "depends_on", ()) or ())) for s in order}


def last_uses(order: Sequence[Any]) -> dict[int, int]:
    """stage index -> position in `order` of the last stage that needs its filesystem."""
    out: dict[int, int] = {}
    for position, stage in enumerate(order):
        out.setdefault(adapt.stage_index(stage), position)
        deps = set(getattr(stage, "depends_on", ()) or ())
        if base_stage_index(stage) >= 0:
            deps.add(base_stage_index(stage))
        for dep in deps:
            out[int(dep)] = max(out.get(int(dep), position), position)
    return out


def base_chain(order: Sequence[Any]) -> set[int]:
    """The final stage and the stages it is built FROM, transitively: their layers are
    the image's layers."""
    by_index = {adapt.stage_index(s): s for s in order}
    chain: set[int] = set()
    idx = adapt.stage_index(order[-1])
    while idx >= 0 and idx not in chain:
        chain.add(idx)
        stage = by_index.get(idx)
        idx = base_stage_index(stage) if stage is not None else -1
    return chain


def check_supported(order: Sequence[Any], filename: str) -> None:
    """Refuse, before anything runs, what the stages ask for and brickyard cannot do yet
    (RUN --mount, --network=none, --security=insecure)."""
    for stage in order:
        for ins in [*(getattr(stage, "triggers", None) or []), *stage.instructions]:
            if adapt.keyword(ins) == "RUN":
                adapt.check_run_flags(ins, filename)


def stage_scope(graph: Any, config: StageConfig, parent_scope: Any = None) -> Any:
    """A stage's ARG/ENV scope. FROM <stage> starts from that stage's finished scope, so
    its ARG values carry over as in BuildKit."""
    return graph.global_scope.stage_scope(config.env_dict(), parent=parent_scope)


def stage_triggers(stage: Any, config: StageConfig, filename: str) -> list[Any]:
    """ONBUILD triggers to run first: a base stage's ONBUILD instructions (the graph parsed
    them), else those in the base image's config; either way reported at this stage's FROM
    line, as BuildKit does."""
    if base_stage_index(stage) >= 0:
        return list(getattr(stage, "triggers", None) or [])
    if not config.onbuild_triggers:
        return []
    from engine.dockerfile import parse_trigger

    at = int(getattr(stage.from_instruction, "line", 0) or 0)
    return [parse_trigger(t, filename=filename, line=at) for t in config.onbuild_triggers]


def isolation_for(options: Any) -> Any:
    from engine.run import select_isolation, userns_build

    if userns_build.inside_build_namespace():
        return userns_build.NamespaceRootIsolation()
    return select_isolation(options.isolation or None, os.geteuid())


def snapshot_ignores(options: Any, workspace: Workspace) -> list[str]:
    ignores = [p for p in options.ignore_path if p]
    if options.ignore_var_run:
        ignores.append("/var/run")
    return ignores


# ---- COPY / ADD ---------------------------------------------------------------------------


class CopyService:
    """Runs COPY/ADD for a stage runner: picks the source root (context, stage, image)."""

    def __init__(
        self,
        pipeline: Any,
        context_dir: Path,
        matcher: Any,
        results: dict[int, Any],
        names: dict[str, int],
    ) -> None:
        self.pipeline = pipeline
        self.context_dir = context_dir
        self.matcher = matcher
        self.results = results
        self.names = names

    def source_root(self, from_value: str) -> tuple[Path, Any]:
        if not from_value:
            return self.context_dir, self.matcher
        key = from_value.lower()
        idx: int | None = self.names.get(key)
        if idx is None and from_value.isdigit():
            idx = int(from_value)
        if idx is not None:
            res = self.results.get(idx)
            if res is None:
                raise BuildError(f"COPY --from={from_value}: stage not built before this one")
            return res.materialize(), None
        # An image reference: pull it into its own rootfs once.
        cache: dict[str, Path] = self.pipeline.__dict__.setdefault("_from_images", {})
        if from_value not in cache:
            root = self.pipeline.workspace.stages / f"image-{len(cache)}" / "rootfs"
            root.mkdir(parents=True)
            self.pipeline.pull_into(from_value, root)
            cache[from_value] = root
        return cache[from_value], None

    def copy(self, runner: Any, keyword: str, ins: Any) -> list[str]:
        from engine.copy import copy_instruction

        from_value = adapt.flags(ins).get("from", "")
        src_root, matcher = self.source_root(from_value)
        return list(
            copy_instruction(
                ins,
                rootfs=runner.rootfs,
                source_root=src_root,
                workdir=runner.config.workdir,
                ignore=matcher,
                scope=runner.scope,
                is_add=keyword == "ADD",
                from_context=not from_value,
            )
        )


# ---- file outputs -------------------------------------------------------------------------


def _image_blobs(
    art: ImageArtifacts, ref_names: Sequence[str], ensure_local: Callable[[LayerRef], Path]
) -> Any:
    from engine.image.layout import ImageBlobs

    layers = [(layer.descriptor, ensure_local(layer)) for layer in art.layers]
    return ImageBlobs(
        manifest=art.manifest,
        manifest_media_type=art.manifest_media_type,
        config=art.config,
        layers=layers,
        ref_names=tuple(ref_names),
    )


def write_tarball(
    path: str,
    art: ImageArtifacts,
    destinations: Sequence[Any],
    ensure_local: Callable[[LayerRef], Path],
) -> None:
    """`docker save` layout; RepoTags are the destinations, as kaniko writes them."""
    from engine.image.archive import write_docker_archive

    names = [str(d) for d in destinations]
    write_docker_archive(Path(path), [_image_blobs(art, names, ensure_local)])


def write_oci_layout(
    path: str,
    art: ImageArtifacts,
    destinations: Sequence[Any],
    ensure_local: Callable[[LayerRef], Path],
) -> None:
    """An OCI layout holding the image; each destination's tag becomes a ref name."""
    from engine.image.layout import write_oci_layout as _write

    tags = list(dict.fromkeys(d.tag_or_default for d in destinations))
    _write(Path(path), [_image_blobs(art, tags, ensure_local)])
