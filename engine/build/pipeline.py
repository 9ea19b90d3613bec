"""The build from start to finish: context and Dockerfile in, image artifacts and outputs out."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

from engine.build import adapt, sources
from engine.build.assemble import (
    ImageArtifacts,
    LayerRef,
    assemble,
    manifest_type_for_base,
    write_digest_files,
)
from engine.build.config import StageConfig
from engine.build.log import BuildLog
from engine.build.report import BuildReport, StageReport
from engine.build.stage import StageEnv, StageResult, StageRunner, Steps
from engine.build.upload import Uploader
from engine.build.workspace import Workspace, copy_tree, remove_tree
from engine.errors import BuildError, DockerfileError
from engine.image.model import DOCKER_MANIFEST, OCI_MANIFEST, Descriptor, Platform


@dataclass
class BaseImage:
    config_json: dict[str, Any]
    layers: list[LayerRef]
    manifest_type: str
    digest: str  # platform-specific manifest digest: the cache chain starts from it


class Pipeline:
    def __init__(
        self,
        options: Any,
        env: Mapping[str, str],
        log: BuildLog,
        workspace: Workspace,
        report: BuildReport,
        created: str,
        stdin: IO[bytes] | None,
        out: TextIO,
    ) -> None:
        self.options = options
        self.env = env
        self.log = log
        self.workspace = workspace
        self.report = report
        self.created = created
        self.stdin = stdin
        self.out = out
        self._client: Any = None
        self.uploader: Uploader | None = None
        self.chain: set[int] = set()  # stages whose layers end up in the final image
        self.cache: Any = None  # engine.cache.StepCache with --cache
        self._blob_locks: dict[str, threading.Lock] = {}
        self._resolved: dict[str, BaseImage] = {}
        self._locks_guard = threading.Lock()
        self.platform = Platform.parse(options.custom_platform or "linux/amd64")

    # -- services -------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            from engine.registry import RegistryClient, RegistryConfig

            self._client = RegistryClient(RegistryConfig.from_options(self.options, self.env))
        return self._client

    # -- the build ------------------------------------------------------------------------

    def check_push_permissions(self) -> None:
        """kaniko probes every destination before building, unless told not to."""
        from engine.registry import Reference

        opts = self.options
        if opts.no_push or opts.skip_push_permission_check:
            return
        for dest in opts.destination:
            self.client.check_push_permission(Reference.parse(dest))

    def dry_run(self) -> None:
        """--dryrun: everything a build checks before running a step, then stop: the
        Dockerfile parses, stages resolve, base images exist, destinations accept pushes."""
        self.check_push_permissions()
        context_dir = sources.open_build_context(self.options, self.workspace, self.stdin)
        dockerfile_text, dockerfile_name = sources.read_dockerfile(self.options, context_dir)
        graph = sources.stage_graph(self.options, dockerfile_text, dockerfile_name)
        sources.check_supported(sources.build_order(graph), dockerfile_name)
        for stage in sources.build_order(graph):
            base = sources.base_text(stage)
            if sources.base_stage_index(stage) >= 0 or base.lower() == "scratch":
                continue
            image = self.resolve_base(base)
            self.log.info(f"Base image {base}: {image.digest}, {len(image.layers)} layers")
        self.log.info("Dry run: nothing built, nothing pushed")

    def _mount_sources(
        self, context_dir: Path, matcher: Any, results: dict[int, StageResult], names: Any
    ) -> Any:
        """Where RUN --mount finds its sources: context, stages and images (as COPY
        --from), the cache mount directory, --secret files."""
        from engine.run import mountspec

        copier = sources.CopyService(self, context_dir, matcher, results, names)
        root = self.workspace.root
        return mountspec.MountSources(
            context_dir=context_dir,
            root_of=lambda ref: copier.source_root(ref)[0],
            cache_root=mountspec.cache_root_for(self.options.kaniko_dir, root),
            scratch=root / "run-scratch",
            excluded=mountspec.context_filter(matcher),
            secrets=mountspec.load_secrets(self.options.secret, self.env, root / "secrets"),
        )

    def _start_push_check(self) -> Callable[[], object]:
        """check_push_permissions in a thread while the context is read, the base image
        resolves and the cache lookups start (its round trips overlap theirs); the returned
        wait, called before any step does work, re-raises its failure, which the build then
        reports first, as if the probe had run first."""
        opts = self.options
        if opts.no_push or opts.skip_push_permission_check or not opts.destination:
            return lambda: None
        _ = self.client  # made here: the probe thread must not race the build to make it
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-check")
        future = pool.submit(self.check_push_permissions)
        pool.shutdown(wait=False)
        return future.result

    def build_image(self) -> ImageArtifacts:
        wait_push_check = self._start_push_check()
        try:
            return self._build_stages(wait_push_check)
        except BaseException:
            wait_push_check()  # a refused destination is the error to report
            raise

    def _build_stages(self, wait_push_check: Callable[[], object]) -> ImageArtifacts:
        context_dir = sources.open_build_context(self.options, self.workspace, self.stdin)
        dockerfile_text, dockerfile_name = sources.read_dockerfile(self.options, context_dir)
        graph = sources.stage_graph(self.options, dockerfile_text, dockerfile_name)
        order = sources.build_order(graph)
        if not order:
            raise DockerfileError("no stage to build", file=dockerfile_name)
        sources.check_supported(order, dockerfile_name)
        self.log.info(f"Built cross stage deps: {sources.cross_stage_deps(order)}")

        last_use = sources.last_uses(order)
        results: dict[int, StageResult] = {}
        names = sources.stage_names(graph)
        steps = Steps(total=sum(1 + len(adapt.stage_instructions(s)) for s in order))
        isolation = sources.isolation_for(self.options)
        matcher = sources.dockerignore(context_dir, dockerfile_name)
        final_index = adapt.stage_index(order[-1])
        self.chain = sources.base_chain(order)
        if not self.options.no_push and self.options.destination:
            from engine.registry import Reference

            refs = [Reference.parse(d) for d in self.options.destination]
            self.uploader = Uploader(self.client, refs, self.ensure_local)
        self.cache = self._open_cache()
        extra_ignore = sources.snapshot_ignores(self.options, self.workspace)
        mount_sources = self._mount_sources(context_dir, matcher, results, names)

        for position, stage in enumerate(order):
            stage_started = time.monotonic()
            idx = adapt.stage_index(stage)
            base_text = sources.base_text(stage)
            self.log.info(
                f"Building stage '{base_text}' [idx: '{idx}', base-idx: "
                f"'{sources.base_stage_index(stage)}']"
            )
            step = steps.next()  # FROM counts as a step, as in docker's "Step 1/7 : FROM"
            name = adapt.stage_name(stage)
            from_text = f"FROM {base_text}" + (f" AS {name}" if name else "")
            self.log.info(f"Step {step}/{steps.total}: {from_text}")
            rootfs, config, layers, manifest_type, fill, parent_key = self._base_for(
                stage, results, last_use, position, order
            )
            base_idx = sources.base_stage_index(stage)
            parent_scope = results[base_idx].scope if base_idx >= 0 else None
            scope = sources.stage_scope(graph, config, parent_scope)
            triggers = sources.stage_triggers(stage, config, dockerfile_name)
            if triggers:
                self.log.info(f"Executing {len(triggers)} build triggers")
                steps.total += len(triggers)
            stage_env = StageEnv(
                options=self.options,
                log=self.log,
                workspace=self.workspace,
                context_dir=context_dir,
                isolation=isolation,
                created=self.created,
                steps=steps,
                report_steps=self.report.steps,
                stage_results=results,
                stage_names=names,
                copy_files=sources.CopyService(self, context_dir, matcher, results, names).copy,
                extra_ignore=extra_ignore,
                on_layer=self._layer_ready if idx in self.chain else None,
                cache=self.cache,
                cache_mount_from=self._cache_mount_from(),
                matcher=matcher,
                ensure_local=self.ensure_local,
                image_digest=lambda image: self.resolve_base(image).digest,
                dockerfile_name=dockerfile_name,
                mount_sources=mount_sources,
                before_work=wait_push_check,
            )
            runner = StageRunner(
                stage_env,
                stage=stage,
                scope=scope,
                rootfs=rootfs,
                config=config,
                layers=layers,
                manifest_type=self._flavour(manifest_type),
                fill=fill,
                parent_key=parent_key,
            )
            results[idx] = runner.run(triggers)
            self.report.stages.append(
                StageReport(
                    idx,
                    adapt.stage_name(stage),
                    base_text,
                    round(time.monotonic() - stage_started, 3),
                )
            )
            self._release_unneeded(results, last_use, position, final_index)

        wait_push_check()  # a fully cached build ran no step: nothing pushes before it
        unused = graph.global_scope.unused_build_args()
        if unused:
            self.log.warn(f"One or more build-args {unused} were not consumed")
        final = results[final_index]
        cfg = final.config
        for label in self.options.label:
            key, _, value = label.partition("=")
            cfg.apply_labels([(key, value)])
        annotations = dict(a.partition("=")[::2] for a in self.options.annotation)
        return assemble(
            cfg,
            final.layers,
            manifest_media_type=self._flavour(final.manifest_type),
            created=self.created,
            annotations=annotations,
        )

    @staticmethod
    def _release_unneeded(
        results: dict[int, StageResult], last_use: dict[int, int], position: int, final: int
    ) -> None:
        """Free the filesystems no later stage needs (kaniko keeps them as tarballs).
        A stage built FROM one being freed, and still needed, has its lazy filesystem
        filled first, or it could never be made later."""
        for done_idx, until in last_use.items():
            res = results.get(done_idx)
            if until > position or done_idx == final or res is None or res.rootfs is None:
                continue
            for child in results.values():
                still_needed = last_use.get(child.index, -1) > position
                if child.base_index == done_idx and still_needed and child.rootfs is not None:
                    child.materialize()
            if res.rootfs is not None:  # materializing a child may have moved it away
                remove_tree(res.rootfs.parent)
                res.rootfs = None

    def _flavour(self, from_base: str) -> str:
        """--image-format wins; else kaniko's rule (the base image's manifest type)."""
        fmt = self.options.image_format
        if fmt == "docker":
            return DOCKER_MANIFEST
        if fmt == "oci":
            return OCI_MANIFEST
        return from_base

    def _base_for(
        self,
        stage: Any,
        results: dict[int, StageResult],
        last_use: dict[int, int],
        position: int,
        order: list[Any],
    ) -> tuple[Path, StageConfig, list[LayerRef], str, Callable[[Path], None] | None, str | None]:
        """rootfs dir, config, layers, manifest flavour, how to fill the rootfs (run only
        when a step needs files) and the cache chain's first key."""
        from engine.cache import base_key

        idx = adapt.stage_index(stage)
        rootfs = self.workspace.new_rootfs(idx)
        base_stage = sources.base_stage_index(stage)
        if base_stage >= 0:
            prev = results.get(base_stage)
            if prev is None:
                raise BuildError(f"stage {idx}: base stage {base_stage} was not built")
            final = adapt.stage_index(order[-1])
            movable = last_use.get(base_stage, -1) <= position and base_stage != final

            def fill_from_stage(path: Path) -> None:
                src = prev.materialize()
                remove_tree(path)
                if movable:
                    os.replace(src, path)  # nobody else needs it: move, don't copy
                    prev.rootfs = None
                else:
                    copy_tree(src, path)

            config_json = prev.config.to_json([x.diff_id for x in prev.layers], self.created)
            return (
                rootfs,
                StageConfig.from_base(config_json),
                list(prev.layers),
                prev.manifest_type,
                fill_from_stage,
                prev.key,
            )
        base = sources.base_text(stage)
        platform = str(self.platform)
        if base.lower() == "scratch":
            cfg = StageConfig.scratch(
                self.platform.os, self.platform.architecture, self.platform.variant or ""
            )
            return rootfs, cfg, [], DOCKER_MANIFEST, None, base_key(None, platform)
        image = self.resolve_base(base)
        if idx in self.chain:
            for layer in image.layers:
                self._layer_ready(layer)
        layers = image.layers

        def fill_from_image(path: Path) -> None:
            self.extract_layers(layers, path)

        return (
            rootfs,
            StageConfig.from_base(image.config_json),
            list(layers),
            manifest_type_for_base(image.manifest_type),
            fill_from_image if layers else None,
            base_key(image.digest, platform),
        )

    def resolve_base(self, image: str) -> BaseImage:
        """Manifest and config of a registry image; its layers are fetched only when used."""
        from engine.registry import Reference

        if image in self._resolved:
            return self._resolved[image]
        ref = Reference.parse(image)
        warm = self._warmed(ref)
        if warm is not None:
            self._resolved[image] = warm
            return warm
        self.log.info(f"Retrieving image manifest {image}")
        resolved = self.client.resolve_image(ref, self.platform)
        config_json = json.loads(resolved.config_bytes)
        diff_ids = list((config_json.get("rootfs") or {}).get("diff_ids") or [])
        descs = list(resolved.layers)
        if len(diff_ids) != len(descs):
            raise BuildError(f"{image}: config lists {len(diff_ids)} layers, manifest {len(descs)}")
        source = resolved.source
        client = self.client
        layers = []
        for desc, diff_id in zip(descs, diff_ids, strict=True):

            def fetch(dest: Path, desc: Descriptor = desc) -> None:
                client.fetch_blob(source, desc, dest)

            layers.append(LayerRef(desc, diff_id, None, source.name, "", fetch))
        base = BaseImage(
            config_json, layers, str(resolved.manifest.media_type), resolved.manifest_digest
        )
        self._resolved[image] = base  # one manifest GET per image and build
        return base

    def _warmed(self, ref: Any) -> BaseImage | None:
        """A base image `brickyard warm` put in --cache-dir: used without any download."""
        from engine.cache.warm import local_base_image

        if not self.options.cache_dir:
            return None
        warm = local_base_image(
            self.options.cache_dir, ref, platform=self.platform, ttl=self.options.cache_ttl
        )
        if warm is None:
            return None
        self.log.info(f"Found {ref} in local cache {self.options.cache_dir}")
        config_json = json.loads(warm.config_bytes)
        diff_ids = list((config_json.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(warm.layers):
            return None
        layers = [
            LayerRef(desc, diff_id, warm.blob_path(desc), ref.name)
            for desc, diff_id in zip(warm.layers, diff_ids, strict=True)
        ]
        return BaseImage(config_json, layers, warm.manifest.media_type, warm.manifest_digest)

    def ensure_local(self, layer: LayerRef) -> Path:
        """The layer's blob as a local file, downloaded once per digest."""
        if layer.path is not None and layer.path.exists():
            return layer.path
        dest = self.workspace.blob_path(layer.descriptor.digest)
        with self._locks_guard:
            lock = self._blob_locks.setdefault(layer.descriptor.digest, threading.Lock())
        with lock:
            if not dest.exists():
                if layer.fetch is None:
                    raise BuildError(f"layer {layer.descriptor.digest} cannot be downloaded")
                layer.fetch(dest)
        return dest

    def extract_layers(self, layers: list[LayerRef], rootfs: Path) -> None:
        from engine.fs.extract import extract_layer

        with ThreadPoolExecutor(max_workers=4) as pool:
            paths = list(pool.map(self.ensure_local, layers))
        self.log.info(f"Extracting {len(layers)} layers")
        attempts = max(0, int(self.options.image_fs_extract_retry)) + 1
        for attempt in range(attempts):
            try:
                for layer, path in zip(layers, paths, strict=True):
                    extract_layer(path, layer.descriptor.media_type, rootfs)
                return
            except OSError as exc:  # I/O trouble; hostile layers (ImageError) never retry
                if attempt + 1 >= attempts:
                    raise BuildError(f"extracting the base image failed: {exc}") from exc
                self.log.warn(f"extracting the base image failed ({exc}), retrying")
                remove_tree(rootfs)
                rootfs.mkdir(mode=0o755)

    def pull_into(self, image: str, rootfs: Path) -> BaseImage:
        """Resolve `image` and extract it into `rootfs` (COPY --from=<image>)."""
        base = self.resolve_base(image)
        self.extract_layers(base.layers, rootfs)
        return base

    # -- outputs --------------------------------------------------------------------------

    def publish(self, art: ImageArtifacts) -> list[str]:
        from engine.registry import Reference

        opts = self.options
        destinations = [Reference.parse(d) for d in opts.destination]
        if opts.tar_path:
            sources.write_tarball(opts.tar_path, art, destinations, self.ensure_local)
            self.log.info(f"Wrote image tarball {opts.tar_path}")
        if opts.oci_layout_path:
            sources.write_oci_layout(opts.oci_layout_path, art, destinations, self.ensure_local)
            self.log.info(f"Wrote OCI layout {opts.oci_layout_path}")
        pushed: list[str] = []
        if not opts.no_push:
            if self.uploader is None:
                self.uploader = Uploader(self.client, destinations, self.ensure_local)
            started = time.monotonic()
            # the config goes up with the last layers, not after them
            config_path = self.workspace.blob_path(art.config_descriptor.digest)
            config_path.write_bytes(art.config)
            self.uploader.submit(LayerRef(art.config_descriptor, "", config_path))
            self.uploader.finish(art.layers)  # most were pushed while later steps built
            if self.cache is not None:  # new cache entries mount the blobs now in place,
                self.cache.start_deferred()  # while the config and manifest are pushed
            self.log.debug(f"Layers in place after {time.monotonic() - started:.2f}s of waiting")
            for ref in destinations:
                self.log.info(f"Pushing image to {ref}")
                digest = self._push(ref, art)
                self.log.info(f"Pushed {ref.name}@{digest}")
                pushed.append(str(ref))
        else:
            self.log.info("Skipping push to container registry due to --no-push flag")
        named = [(ref.name, str(ref)) for ref in destinations]
        write_digest_files(
            digest=art.digest,
            digest_file=opts.digest_file,
            name_with_digest_file=opts.image_name_with_digest_file,
            name_tag_with_digest_file=opts.image_name_tag_with_digest_file,
            destinations=named,
        )
        self.report.image_refs = pushed
        self.report.image_refs_with_digest = [f"{r}@{art.digest}" for r in pushed]
        return pushed

    def _layer_ready(self, layer: LayerRef) -> None:
        if self.uploader is not None:
            self.uploader.submit(layer)

    def _open_cache(self) -> Any:
        from engine.cache.registry_cache import open_step_cache

        cache = open_step_cache(self.options, self.client, platform=self.platform)
        if cache is not None:
            self.log.info(f"Using layer cache {cache.backend.location}")
        return cache

    def _cache_mount_from(self) -> str | None:
        if self.options.no_push or not self.options.destination:
            return None
        from engine.registry import Reference

        return str(Reference.parse(self.options.destination[0]).name)

    def close(self) -> None:
        if self.uploader is not None:
            self.uploader.close()
        if self.cache is not None:
            self.cache.close()
            stats = self.cache.stats
            self.log.info(
                f"Layer cache: {stats['hits']} hits, {stats['misses']} misses, "
                f"{stats['stored']} stored"
            )

    def _push(self, ref: Any, art: ImageArtifacts) -> str:
        """Layers and config are already there (Uploader.finish): the manifest."""
        return str(self.client.put_manifest(ref, art.manifest, art.manifest_media_type))
