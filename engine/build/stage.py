"""One stage of a build: base rootfs, then each instruction -> config change and/or layer."""

from __future__ import annotations

import contextlib
import os
import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.build import adapt, cachestep
from engine.build.assemble import LayerRef, convert_layer
from engine.build.config import (
    HISTORY_COMMENT,
    StageConfig,
    copy_created_by,
    run_created_by,
)
from engine.build.log import BuildLog
from engine.build.report import LayerReport, StepReport
from engine.build.workspace import Workspace
from engine.errors import BrickyardError, BuildError, DockerfileError
from engine.image.layers import LayerBlob, layer_media_type, write_layer
from engine.image.model import DOCKER_MANIFEST, Descriptor

_RUN_COPY = ("RUN", "COPY", "ADD")
# steps that touch the filesystem (metadata-only steps do no work worth gating)
_FILESYSTEM_STEPS = frozenset({"RUN", "COPY", "ADD", "WORKDIR"})


def _base_stage(stage: Any) -> int:
    value = getattr(stage, "base_stage", None)
    return -1 if value is None else int(value)


@dataclass
class StageResult:
    """What later stages and the image assembly need from a finished stage."""

    index: int
    name: str
    rootfs: Path | None
    config: StageConfig
    layers: list[LayerRef]
    manifest_type: str
    key: str | None = None  # cache chain key after the last instruction
    runner: StageRunner | None = None
    base_index: int = -1  # the earlier stage this one is built FROM, if any
    scope: Any = None  # the finished ARG/ENV scope: a stage built FROM this one starts there

    def materialize(self) -> Path:
        """The stage's filesystem with every layer applied (extracting lazily)."""
        if self.runner is not None:
            self.runner.apply_pending()
        if self.rootfs is None:
            raise BuildError(f"stage {self.index}: filesystem already released")
        return self.rootfs


@dataclass
class Steps:
    """Global step numbering across the stages being built ("step 3/7")."""

    total: int
    done: int = 0

    def next(self) -> int:
        self.done += 1
        return self.done


@dataclass
class StageEnv:
    """Everything a stage needs from the build: settings, services, earlier stages."""

    options: Any  # engine.options.BuildOptions
    log: BuildLog
    workspace: Workspace
    context_dir: Path
    isolation: Any  # engine.run Isolation
    created: str  # history/config timestamp
    steps: Steps
    report_steps: list[StepReport]
    stage_results: dict[int, StageResult]
    stage_names: Mapping[str, int]
    copy_files: Callable[..., list[str]]  # adapt.copy_files bound to the build
    extra_ignore: Sequence[str] = ()
    on_layer: Callable[[LayerRef], None] | None = None  # e.g. start pushing it now
    cache: Any = None  # engine.cache.StepCache, None without --cache
    cache_mount_from: str | None = None  # destination repo the cache can mount blobs from
    matcher: Any = None  # .dockerignore of the context
    ensure_local: Callable[[LayerRef], Path] | None = None  # fetch a layer blob if needed
    image_digest: Callable[[str], str] | None = None  # manifest digest of an image reference
    dockerfile_name: str = "Dockerfile"  # how errors name the Dockerfile
    mount_sources: Any = None  # engine.run.mountspec.MountSources, for RUN --mount
    before_work: Callable[[], object] | None = None  # called before a step does work


class StageRunner:
    def __init__(
        self,
        env: StageEnv,
        *,
        stage: Any,
        scope: Any,
        rootfs: Path,
        config: StageConfig,
        layers: list[LayerRef],
        manifest_type: str,
        fill: Callable[[Path], None] | None = None,
        parent_key: str | None = None,
    ) -> None:
        self.env = env
        # Work that makes the rootfs match `layers`, run only when a step needs files
        # (kaniko: "Unpacking rootfs as cmd ... requires it"); a fully cached or
        # metadata-only stage never extracts anything.
        self._pending: list[Callable[[Path], None]] = [fill] if fill else []
        self.key = parent_key
        use_cache = parent_key is not None and not env.options.single_snapshot
        self.cache: Any = env.cache if use_cache else None
        self.stage = stage
        self.scope = scope
        self.rootfs = rootfs
        self.config = config
        self.layers = layers
        self.manifest_type = manifest_type
        self.log = env.log
        self.options = env.options
        self.snapshotter = adapt.new_snapshotter(rootfs, env.extra_ignore)
        self.snapshotter_ready = False
        self._later: list[str] = []  # keywords of the stage's instructions after this one
        self._digests: dict[tuple[str, str], str | None] = {}  # (keyword, text) -> sources
        self._prefetched: dict[str, Any] = {}  # key -> Future of its cache lookup

    # -- snapshots ----------------------------------------------------------------------

    def apply_pending(self, why: str = "") -> bool:
        """Extract what the rootfs still lacks; True if anything was applied."""
        if not self._pending:
            return False
        if why:
            self.log.info(f"Unpacking rootfs as cmd {why} requires it.")
        started = time.monotonic()
        pending, self._pending = self._pending, []
        for op in pending:
            op(self.rootfs)
        self.log.debug(f"Unpacked rootfs in {time.monotonic() - started:.2f}s")
        return True

    def _ensure_index(self, why: str = "") -> None:
        """The rootfs is complete and indexed: the next diff is this step's change."""
        applied = self.apply_pending(why)
        if applied or not self.snapshotter_ready:
            started = time.monotonic()
            count = self.snapshotter.reset()
            self.snapshotter_ready = True
            self.log.debug(f"Indexed {count} paths in {time.monotonic() - started:.2f}s")

    def _layer_media_type(self) -> str:
        compression = self.options.compression
        docker = self.manifest_type == DOCKER_MANIFEST
        if compression == "zstd" and docker:
            compression = "gzip"  # kaniko: zstd only with OCI media types
        return layer_media_type(compression, docker=docker)

    def _write(
        self,
        paths: Sequence[str],
        deleted: Sequence[str],
        opaque: Sequence[str],
        root: Path | None = None,
    ) -> LayerBlob:
        mt = self._layer_media_type()
        compression = "zstd" if mt.endswith("zstd") else "gzip"
        level = self.options.compression_level if self.options.compression_level > 0 else None
        return write_layer(
            root or self.rootfs,
            paths,
            deleted,
            self.env.workspace.new_layer_path(),
            opaque=opaque,
            compression=compression,
            level=level,
            reproducible=self.options.reproducible,
            media_type=mt,
            # the snapshot's stat index, just refreshed by diff()/diff_paths(): no second
            # lstat per path, and big layers are built by parallel workers
            index=self.snapshotter.index if self.snapshotter_ready and root is None else None,
        )

    def snapshot_full(self) -> LayerBlob | None:
        self.log.info("Taking snapshot of full filesystem...")
        started = time.monotonic()
        changed, deleted, opaque = adapt.full_diff(self.snapshotter)
        if not changed and not deleted and not opaque:
            self.log.info("No files changed in this command, skipping snapshotting.")
            return None
        blob = self._write(changed, deleted, opaque)
        self._log_layer(blob, len(changed), len(deleted), started)
        return blob

    def snapshot_paths(self, paths: Sequence[str]) -> LayerBlob | None:
        self.log.info("Taking snapshot of files...")
        started = time.monotonic()
        changed = adapt.snapshot_paths(self.snapshotter, paths) if paths else []
        if not changed:
            return None
        blob = self._write(changed, (), ())
        self._log_layer(blob, len(changed), 0, started)
        return blob

    def _log_layer(self, blob: LayerBlob, changed: int, deleted: int, started: float) -> None:
        self.log.info(
            f"Layer {blob.digest[7:19]}: {changed} paths, {deleted} whiteouts, "
            f"{_human(blob.size)} in {time.monotonic() - started:.2f}s"
        )

    def add_layer(self, blob: LayerBlob, created_by: str) -> LayerRef:
        desc = Descriptor(blob.media_type, blob.digest, blob.size)
        ref = LayerRef(desc, blob.diff_id, blob.path, None, created_by)
        self.layers.append(ref)
        if self.env.on_layer is not None:
            self.env.on_layer(ref)
        return ref

    # -- the instructions ---------------------------------------------------------------

    def run(self, triggers: Sequence[Any]) -> StageResult:
        instructions = [*triggers, *adapt.stage_instructions(self.stage)]
        self._prefetch(instructions)
        for position, ins in enumerate(instructions):
            self._later = [adapt.keyword(x).upper() for x in instructions[position + 1 :]]
            self.execute(ins)
        if self.options.materialize:
            self.apply_pending("--materialize")
        if self.options.single_snapshot and self.snapshotter_ready:
            # (nothing touched the filesystem if no step ever indexed it)
            blob = self.snapshot_full()
            if blob is not None:
                self.add_layer(blob, "single snapshot")
                self.config.add_history(
                    "brickyard single snapshot", empty_layer=False, created=self.env.created
                )
        return StageResult(
            index=adapt.stage_index(self.stage),
            name=adapt.stage_name(self.stage),
            rootfs=self.rootfs,
            config=self.config,
            layers=self.layers,
            manifest_type=self.manifest_type,
            key=self.key,
            runner=self,
            base_index=_base_stage(self.stage),
            scope=self.scope,
        )

    def execute(self, ins: Any) -> None:
        step = self.env.steps.next()
        label = f"step {step}/{self.env.steps.total}"
        expanded = adapt.expand(self.scope, ins)
        text = adapt.instruction_text(expanded)
        keyword = adapt.keyword(expanded)
        self.log.info(f"Step {step}/{self.env.steps.total}: {text}")
        started = time.monotonic()
        report = StepReport(
            stage=adapt.stage_index(self.stage),
            step=step,
            of=self.env.steps.total,
            instruction=text,
        )
        key = self._step_key(keyword, expanded)
        cacheable = key is not None and self.cache is not None and self.cache.caches(keyword)
        if cacheable:
            pending = self._prefetched.pop(key, None) if key is not None else None
            hit = pending.result() if pending is not None else self.cache.lookup(key)
            if hit is not None:
                self.log.info(f"Using caching version of cmd: {text}")
                report.cache_hit = True
                self._apply_config_delta(hit.config_delta)
                report.layer = self._apply_hit(hit, text)
                report.duration_s = round(time.monotonic() - started, 3)
                self.env.report_steps.append(report)
                self.key = key
                return
        if self.env.before_work is not None and keyword in _FILESYSTEM_STEPS:
            self.env.before_work()  # e.g. the push-permission probe must have passed
        try:
            blob, created_by = self._dispatch(keyword, expanded, ins, label, text)
        except (DockerfileError, adapt.UnsupportedInstruction):
            raise
        except BuildError as exc:
            msg = str(exc)
            if not msg.startswith("step "):
                raise BuildError(f"{label}: {text}: {msg}") from exc
            raise
        if blob is None and self.options.force_build_metadata and keyword not in _RUN_COPY:
            blob = self._write([], [], [])  # kaniko: every command makes a layer
        if blob is not None:
            self.add_layer(blob, created_by)
            report.layer = LayerReport(blob.digest, blob.diff_id, blob.size, blob.media_type)
        if created_by:
            self.config.add_history(created_by, empty_layer=blob is None, created=self.env.created)
        if cacheable and key is not None:
            self.cache.store(
                key,
                blob,
                history={"created_by": created_by, "comment": HISTORY_COMMENT},
                config_delta=self._config_delta(keyword),
                mount_from=self.env.cache_mount_from,
            )
        self.key = key
        report.duration_s = round(time.monotonic() - started, 3)
        self.env.report_steps.append(report)

    # -- cache ----------------------------------------------------------------------------

    def _step_key(
        self, keyword: str, ins: Any, *, parent: str | None = None, scope: Any = None
    ) -> str | None:
        """The step's cache key on `parent` (default: the chain so far) with `scope`'s
        variables (default: the stage's); COPY/ADD/RUN source digests are computed once."""
        parent = parent or self.key
        if self.cache is None or parent is None:
            return None
        from engine.cache import step_key

        text = cachestep.expanded_text(ins)
        if (keyword, text) in self._digests:
            sources = self._digests[(keyword, text)]
        else:
            sources = self._sources_digest(keyword, ins)
            self._digests[(keyword, text)] = sources
        if sources is None and keyword in _RUN_COPY:
            return None
        run_env = adapt.run_env(scope or self.scope, self.config) if keyword == "RUN" else None
        return str(step_key(parent, text, run_env=run_env, sources=sources or None))

    def _sources_digest(self, keyword: str, ins: Any) -> str | None:
        """What a RUN's bind mounts or a COPY/ADD's sources hold, hashed ("" for a RUN
        without bind mounts); None when it cannot be known (the step is not cached)."""
        digest = {
            "RUN": cachestep.run_mounts_digest,
            "COPY": cachestep.sources_digest,
            "ADD": cachestep.sources_digest,
        }.get(keyword)
        if digest is None:
            return ""
        stage_keys = {
            **{
                name: self.env.stage_results[i].key
                for name, i in self.env.stage_names.items()
                if i in self.env.stage_results
            },
            **{str(i): r.key for i, r in self.env.stage_results.items()},
        }
        return digest(
            ins,
            context_dir=self.env.context_dir,
            matcher=self.env.matcher,
            stage_keys=stage_keys,
            image_digest=self.env.image_digest,
        )

    def _prefetch(self, instructions: Sequence[Any]) -> None:
        """Start the cache lookups of the stage's steps at once, in parallel: a step's key
        depends on the instructions before it, never on whether they hit, so the chain is
        computed up front (on a copy of the ARG/ENV scope); it stops at the first key that
        cannot be known without running a step. The steps then take their answers."""
        if self.cache is None or self.key is None:
            return
        import copy

        try:
            scope = copy.deepcopy(self.scope)
        except (TypeError, copy.Error, RecursionError):
            return
        parent = self.key
        for ins in instructions:
            try:
                expanded = adapt.expand(scope, ins)
                keyword = adapt.keyword(expanded)
                key = self._step_key(keyword, expanded, parent=parent, scope=scope)
                if keyword in ("ENV", "ARG"):
                    adapt.scope_apply(scope, expanded)
            except (BrickyardError, ValueError):
                return  # the step itself will report it
            if key is None:
                return
            if self.cache.caches(keyword) and key not in self._prefetched:
                self._prefetched[key] = self.cache.lookup_async(key)
            parent = key

    def _config_delta(self, keyword: str) -> dict[str, Any]:
        """The config fields a cached step sets (RUN/COPY/ADD change none)."""
        if keyword == "WORKDIR":
            return {"WorkingDir": self.config.workdir}
        return {}

    def _apply_config_delta(self, delta: Mapping[str, Any]) -> None:
        # Only WORKDIR's field is cached today; anything else in an entry is ignored.
        if isinstance(delta.get("WorkingDir"), str) and delta["WorkingDir"]:
            self.config.container["WorkingDir"] = delta["WorkingDir"]

    def _apply_hit(self, hit: Any, text: str) -> LayerReport | None:
        """Use a cached step as is: its layer (extracted only if a later step needs files),
        its history; nothing runs."""
        created_by = str(hit.history.get("created_by") or text)
        if hit.layer is None:
            self.config.add_history(created_by, empty_layer=True, created=self.env.created)
            return None
        desc = convert_layer(hit.layer, self.manifest_type == DOCKER_MANIFEST)
        cache = self.cache

        def fetch(dest: Path) -> None:
            cache.fetch_layer(hit, dest)

        ref = LayerRef(desc, str(hit.diff_id), None, hit.repository, created_by, fetch)
        self.layers.append(ref)
        if self.env.on_layer is not None:
            self.env.on_layer(ref)
        self.config.add_history(created_by, empty_layer=False, created=self.env.created)
        self._pending.append(self._extractor(ref))
        return LayerReport(desc.digest, str(hit.diff_id), desc.size, desc.media_type)

    def _extractor(self, ref: LayerRef) -> Callable[[Path], None]:
        ensure_local = self.env.ensure_local

        def extract(rootfs: Path) -> None:
            from engine.fs.extract import extract_layer

            if ensure_local is None:
                raise BuildError(f"layer {ref.descriptor.digest} is not available locally")
            extract_layer(ensure_local(ref), ref.descriptor.media_type, rootfs)

        return extract

    def _dispatch(
        self, keyword: str, ins: Any, raw: Any, label: str, text: str
    ) -> tuple[LayerBlob | None, str]:
        cfg = self.config
        if keyword == "RUN":
            return self._run(ins, label, text)
        if keyword in ("COPY", "ADD"):
            return self._copy(keyword, ins)
        if keyword == "WORKDIR":
            return self._workdir(adapt.single_arg(ins))
        if keyword == "ENV":
            pairs = adapt.pairs(ins)
            adapt.scope_apply(self.scope, ins)
            return None, cfg.apply_env(pairs)
        if keyword == "ARG":
            adapt.scope_apply(self.scope, ins)
            return None, StageConfig.describe_arg(adapt.arg_pairs(ins))
        if keyword == "LABEL":
            return None, cfg.apply_labels(adapt.pairs(ins))
        if keyword == "EXPOSE":
            return None, cfg.apply_expose(adapt.args(ins))
        if keyword == "VOLUME":
            return None, cfg.apply_volume(adapt.args(ins))
        if keyword == "USER":
            return None, cfg.apply_user(adapt.single_arg(ins))
        if keyword == "CMD":
            return None, cfg.apply_cmd(adapt.args(ins), adapt.json_form(ins))
        if keyword == "ENTRYPOINT":
            return None, cfg.apply_entrypoint(adapt.args(ins), adapt.json_form(ins))
        if keyword == "HEALTHCHECK":
            return None, cfg.apply_healthcheck(
                adapt.args(ins), adapt.json_form(ins), adapt.flags(ins)
            )
        if keyword == "STOPSIGNAL":
            return None, cfg.apply_stopsignal(adapt.single_arg(ins))
        if keyword == "SHELL":
            return None, cfg.apply_shell(adapt.args(ins), adapt.json_form(ins))
        if keyword == "ONBUILD":
            return None, cfg.apply_onbuild(adapt.onbuild_expression(raw))
        if keyword == "MAINTAINER":
            return None, cfg.apply_maintainer(" ".join(adapt.args(ins)))
        raise DockerfileError(f"unknown instruction: {keyword}", line=adapt.line(ins))

    def _run(self, ins: Any, label: str, text: str) -> tuple[LayerBlob | None, str]:
        adapt.check_run_flags(ins, self.env.dockerfile_name)  # base image triggers: seen here first
        command = adapt.run_command(ins, self.config.shell)
        argv = list(command.argv)
        run_env = adapt.run_env(self.scope, self.config)
        self._ensure_index(text)
        workdir = self.config.workdir
        self._ensure_workdir_exists(workdir)
        self.log.info(f"Running: {adapt.go_list(argv)}")
        code = self._run_isolated(ins, argv, adapt.run_files(command), run_env, workdir, label)
        if code != 0:
            raise BuildError(f"{label}: {text}: exit status {code}")
        created_by = run_created_by(argv, adapt.visible_build_args(self.scope, self.config))
        if self.options.single_snapshot:
            return None, created_by
        return self.snapshot_full(), created_by

    def _run_isolated(
        self,
        ins: Any,
        argv: list[str],
        files: list[tuple[str, bytes, int]],
        run_env: Mapping[str, str],
        workdir: str,
        label: str,
    ) -> int:
        """One RUN in the isolation backend with its /dev/pipes files, network mode and
        mounts (only what is asked for is passed: any Isolation can run a plain step)."""
        from engine.run import NotAvailableHere
        from engine.run.mountspec import step_mounts

        name = self.env.dockerfile_name
        specs = adapt.run_mounts(ins, name)
        extra: dict[str, Any] = {}
        if files:
            extra["files"] = files
        if adapt.run_network(ins) == "none":
            extra["network"] = "none"
        if specs and self.env.mount_sources is None:
            raise adapt.UnsupportedInstruction(f"{adapt.where(ins, name)}: RUN --mount: no sources")
        try:
            with contextlib.ExitStack() as stack:
                if specs:
                    sources = self.env.mount_sources
                    extra["mounts"] = stack.enter_context(step_mounts(specs, sources, cwd=workdir))
                return int(
                    self.env.isolation.run(
                        argv,
                        rootfs=self.rootfs,
                        env=run_env,
                        cwd=workdir,
                        user=self.config.user or None,
                        step_label=label,
                        out=self.log.step_output(),
                        **extra,
                    )
                )
        except NotAvailableHere as e:
            raise adapt.UnsupportedInstruction(f"{adapt.where(ins, name)}: {e}") from None

    def _copy(self, keyword: str, ins: Any) -> tuple[LayerBlob | None, str]:
        created_by = copy_created_by(
            keyword, adapt.copy_flags_for_history(ins), *adapt.copy_srcs_dest(ins)
        )
        if self._can_copy_direct(keyword, ins):
            direct = self._copy_direct(keyword, ins)
            if direct is not None:
                return direct, created_by
        self._ensure_index(adapt.instruction_text(ins))
        written = self.env.copy_files(self, keyword, ins)
        if self.options.single_snapshot:
            return None, created_by
        return self.snapshot_paths(written), created_by

    def _can_copy_direct(self, keyword: str, ins: Any) -> bool:
        """engine/build/directcopy.py's rule, the parts known without reading layers."""
        from engine.build.directcopy import NEEDS_FILESYSTEM

        flags = adapt.flags(ins)
        return (
            keyword == "COPY"
            and bool(self._pending)
            and not self.snapshotter_ready
            and not flags.get("from")
            and not flags.get("chown")
            and not self.options.single_snapshot
            and not self.options.materialize
            and self.env.ensure_local is not None
            and not NEEDS_FILESYSTEM.intersection(self._later)
        )

    def _copy_direct(self, keyword: str, ins: Any) -> LayerBlob | None:
        """The COPY's layer without extracting the rootfs, or None (then extract as usual)."""
        from concurrent.futures import ThreadPoolExecutor
        from types import SimpleNamespace

        from engine.build import directcopy

        started = time.monotonic()
        dest = posixpath.normpath(posixpath.join(self.config.workdir, adapt.copy_srcs_dest(ins)[1]))
        view = directcopy.LowerView(dest.strip("/"))
        ensure_local = self.env.ensure_local
        assert ensure_local is not None
        with ThreadPoolExecutor(max_workers=4) as pool:
            blobs = list(pool.map(ensure_local, self.layers))
        for ref, blob_path in zip(self.layers, blobs, strict=True):
            view.add_blob(blob_path, ref.descriptor.media_type)
            if view.unsafe:
                break
        why = view.verdict()
        if why:
            self.log.debug(f"COPY needs the rootfs: {why}")
            return None
        scratch = self.env.workspace.root / "copy-scratch" / f"{len(self.layers)}"
        directcopy.remove_scratch(scratch)
        scratch.mkdir(parents=True)
        try:
            directcopy.make_scratch(scratch, view)
            target = SimpleNamespace(rootfs=scratch, config=self.config, scope=self.scope)
            written = self.env.copy_files(target, keyword, ins)
            why = view.overlaps(written)
            if why:
                self.log.debug(f"COPY needs the rootfs: {why}")
                return None
            self.log.info("Writing the COPY layer without unpacking the rootfs")
            snap = adapt.new_snapshotter(scratch, self.env.extra_ignore)
            changed = adapt.snapshot_paths(snap, written) if written else []
            if not changed:
                return None
            blob = self._write(changed, (), (), root=scratch)
        finally:
            directcopy.remove_scratch(scratch)
        self._log_layer(blob, len(changed), 0, started)
        # a later step that needs files extracts this layer after the lower ones
        self._pending.append(self._extract_blob(blob))
        return blob

    @staticmethod
    def _extract_blob(blob: LayerBlob) -> Callable[[Path], None]:
        def extract(rootfs: Path) -> None:
            from engine.fs.extract import extract_layer

            extract_layer(blob.path, blob.media_type, rootfs)

        return extract

    def _ensure_workdir_exists(self, workdir: str) -> list[str]:
        """mkdir -p the working directory inside the rootfs; returns the created paths."""
        from engine.fs.safe import clean_relative, resolve_in_root

        rel = clean_relative(workdir)
        created: list[str] = []
        built = ""
        for part in rel.split("/") if rel else []:
            built = f"{built}/{part}" if built else part
            host = resolve_in_root(self.rootfs, built)
            if not host.exists():
                host.mkdir(mode=0o755)
                os.chmod(host, 0o755)
                created.append(built)
        if created and self.config.user:
            ids = adapt.resolve_user(self.config.user, self.rootfs)
            for path in created:
                os.lchown(resolve_in_root(self.rootfs, path), ids.uid, ids.gid)
        return created

    def _workdir(self, path: str) -> tuple[LayerBlob | None, str]:
        created_by = self.config.apply_workdir(path)
        self._ensure_index(f"WORKDIR {path}")
        created = self._ensure_workdir_exists(self.config.workdir)
        if not created or self.options.single_snapshot:
            return None, created_by
        return self.snapshot_paths(created), created_by


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
