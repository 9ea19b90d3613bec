"""Build orchestration: stages in order -> image -> outputs.

    result = build(options, env, out=sys.stderr)
    result.digest, result.image_refs, result.report

Per stage: resolve the base (scratch, an earlier stage, or a registry image), fetch and
extract its layers into a fresh rootfs under the workspace (never `/`), then apply each
instruction: metadata into the config, RUN through the isolation backend followed by a
stat-index snapshot, COPY/ADD snapshotting only what they wrote. The last stage becomes
the image: base layers reused (cross-repository mount when on the same registry), new
layers pushed, a manifest in the base's flavour (kaniko's rule), then the output files.
At the end the workspace is removed, except the stage filesystems of a build under
`--kaniko-dir` without `--cleanup` (kaniko's rule; engine/build/workspace.py says when).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

from engine.build.assemble import ImageArtifacts
from engine.build.config import format_created
from engine.build.log import BuildLog, engine_logging
from engine.build.report import BuildReport
from engine.build.workspace import Workspace
from engine.errors import BrickyardError

__all__ = ["BuildResult", "build"]


@dataclass(frozen=True)
class BuildResult:
    digest: str
    image_refs: tuple[str, ...]
    report: BuildReport
    artifacts: ImageArtifacts | None = field(default=None, repr=False)


def build(
    options: Any,
    env: Mapping[str, str],
    *,
    stdin: IO[bytes] | None = None,
    out: TextIO = sys.stderr,
) -> BuildResult:
    """Build the image `options` describe; push and write the requested outputs."""
    from engine.run import userns_build

    if not options.dryrun and userns_build.wanted(options.isolation, os.geteuid()):
        # Rootless: the whole build runs in a user namespace mapping the caller's
        # subordinate ids, so extraction, COPY --chown and RUN's files get real owners.
        return userns_build.build_in_namespace(
            options, env, stdin=stdin, out=out, build=_build_here
        )
    return _build_here(options, env, stdin=stdin, out=out)


def _build_here(
    options: Any,
    env: Mapping[str, str],
    *,
    stdin: IO[bytes] | None = None,
    out: TextIO = sys.stderr,
) -> BuildResult:
    log = BuildLog(
        out, level=options.verbosity, fmt=options.log_format, timestamps=options.log_timestamp
    )
    with engine_logging(log):  # library modules' records join the build log
        return _build_logged(options, env, log, stdin=stdin, out=out)


def _build_logged(
    options: Any,
    env: Mapping[str, str],
    log: BuildLog,
    *,
    stdin: IO[bytes] | None,
    out: TextIO,
) -> BuildResult:
    from engine.build import pipeline

    started = time.monotonic()
    report = BuildReport()
    if options.pre_cleanup and options.kaniko_dir:
        from engine.build.workspace import remove_stale

        for path in remove_stale(options.kaniko_dir):
            log.info(f"Removed {path}, left by an earlier build (--pre-cleanup)")
    # kaniko leaves the built filesystem unless --cleanup; a rootless build's files belong
    # to subordinate ids only its user namespace can delete, so they always go
    workspace = Workspace.create(
        options.kaniko_dir,
        keep_stages=not options.cleanup and options.isolation != "rootless",
    )
    created = (
        format_created(None) if options.reproducible else format_created(dt.datetime.now(dt.UTC))
    )
    run = pipeline.Pipeline(options, env, log, workspace, report, created, stdin, out)
    try:
        if options.dryrun:
            run.dry_run()
            return BuildResult("", (), report)
        artifacts = run.build_image()
        workspace.release_stages()  # if they go: while the image is pushed (cleanup waits)
        refs = run.publish(artifacts)
        report.digest = artifacts.digest
        report.media_type = artifacts.manifest_media_type
        report.image_id = artifacts.config_descriptor.digest
        report.duration_s = time.monotonic() - started
        if options.report_file:
            report.write(options.report_file)
        bench = env.get("BENCHMARK_FILE", "")
        if bench and "://" not in bench:
            report.write(bench)  # kaniko's timing file; ours carries the per-step timings
        return BuildResult(artifacts.digest, tuple(refs), report, artifacts)
    except BrickyardError as exc:
        # The CLI prints the error; the report keeps it for the CI adapters.
        if options.report_file:
            report.error = str(exc)
            report.duration_s = time.monotonic() - started
            report.write(options.report_file)
        raise
    finally:
        run.close()
        kept = workspace.cleanup()  # blobs, layers, context, secrets: always removed
        if kept is not None:
            log.info(f"Left the built filesystem in {kept} (--cleanup removes it)")
