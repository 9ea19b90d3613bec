"""From adapter inputs to one executor call: argv + env, then run it and collect the result.

Adapters never reach into the engine: they compute kaniko-compatible flags and call
`engine.cli.executor_main(argv, env)`, which writes the JSON report named by --report-file.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stderr
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from adapters.auth import AuthPlan, docker_config, plan_auth, write_docker_config
from adapters.ci import RefContext
from adapters.inputs import BuildInputs
from adapters.logsections import LogSections, env_secrets, redact, section
from adapters.network import certificate_flags, proxy_build_args, proxy_env
from adapters.report import BuildReport, load_report, redact_report
from adapters.tags import Metadata, compute_metadata, parse_flavor, parse_tag_rules
from engine.errors import AdapterError

Runner = Callable[[list[str], Mapping[str, str]], int]
_ERROR_LINE = re.compile(r"^(?:error: )?(?P<file>[^:\n ]+):(?P<line>\d+): (?P<msg>.*)$", re.M)


@dataclass(frozen=True)
class BuildPlan:
    argv: list[str]
    env: dict[str, str]
    metadata: Metadata
    destinations: tuple[str, ...]
    auth: AuthPlan
    report_file: Path
    digest_file: Path
    push: bool


@dataclass(frozen=True)
class BuildOutcome:
    exit_code: int
    report: BuildReport
    digest: str
    plan: BuildPlan
    error: str = ""
    error_file: str = ""
    error_line: int | None = None
    stderr_tail: list[str] = field(default_factory=list)


def _registry_of(ref: str) -> str:
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return first
    return ""


def qualify_cache_repo(cache_repo: str, destinations: Sequence[str]) -> str:
    """A cache repo without a registry goes to the destination's registry, not docker.io.

    (aevea/action-kaniko#25: `cache-repo: user/app-cache` pushed to Docker Hub and got 401.)
    """
    if not cache_repo or _registry_of(cache_repo) or cache_repo.startswith("oci:"):
        return cache_repo
    registry = next((_registry_of(d) for d in destinations if _registry_of(d)), "")
    return f"{registry}/{cache_repo}" if registry else cache_repo


def _has_build_arg(args: Sequence[str], key: str) -> bool:
    return any(a.split("=", 1)[0] == key for a in args)


def plan_build(
    ctx: RefContext,
    inputs: BuildInputs,
    env: Mapping[str, str],
    *,
    workdir: Path,
    executor_args: Sequence[str] = (),
    auth: AuthPlan | None = None,
) -> BuildPlan:
    context = inputs.text("context") or ctx.workspace or "."
    is_url = "://" in context
    dockerfile = inputs.text("file") or (
        "Dockerfile" if is_url else f"{context.rstrip('/')}/Dockerfile"
    )
    images = inputs.items("images") or list(ctx.default_images)
    rules = inputs.items("tag-rules")
    metadata = compute_metadata(
        ctx,
        images,
        parse_tag_rules(rules) if rules else None,
        parse_flavor(inputs.items("flavor")),
        extra_labels=inputs.items("labels"),
    )
    destinations = tuple(inputs.items("tags")) or metadata.tags
    push = inputs.flag("push")
    if push and not destinations:
        raise AdapterError(
            "no image to push: set the images or tags input (no registry image is known here)"
        )
    argv = ["--context", context, "--dockerfile", dockerfile]
    for dest in destinations if push else ():
        argv += ["--destination", dest]
    if not push:
        argv.append("--no-push")
    build_args = inputs.items("build-args")
    for arg in build_args:
        argv += ["--build-arg", arg]
    for arg in proxy_build_args(env):
        if not _has_build_arg(build_args, arg.split("=", 1)[0]):
            argv += ["--build-arg", arg]
    for key, value in metadata.labels.items():
        argv += ["--label", f"{key}={value}"]
    if inputs.text("target"):
        argv += ["--target", inputs.text("target")]
    platforms = inputs.items("platforms")
    if len(platforms) > 1:
        raise AdapterError(f"platforms: one platform per build, got {len(platforms)}")
    if platforms:
        argv += ["--custom-platform", platforms[0]]
    if inputs.flag("cache"):
        argv.append("--cache=true")
        cache_repo = qualify_cache_repo(inputs.text("cache-repo"), destinations)
        if cache_repo:
            argv += ["--cache-repo", cache_repo]
        if inputs.text("cache-ttl"):
            argv += ["--cache-ttl", inputs.text("cache-ttl")]
    if inputs.text("cache-dir"):
        argv += ["--cache-dir", inputs.text("cache-dir")]
    for mirror in inputs.items("registry-mirror"):
        argv += ["--registry-mirror", mirror]
    for registry in inputs.items("insecure-registries"):
        argv += ["--insecure-registry", registry]
    if inputs.text("verbosity") not in ("", "info"):
        argv += ["--verbosity", inputs.text("verbosity")]
    if inputs.flag("reproducible"):
        argv.append("--reproducible")
    auth = auth or plan_auth(ctx.ci, env, github_token=inputs.text("github-token"))
    # The CA file covers the CI's own hosts, the destinations and every registry logged in to.
    ca_hosts = [_registry_of(d) for d in destinations]
    ca_hosts += sorted(docker_config(auth).get("auths", {}))
    argv += certificate_flags(env, [h.removeprefix("https://").rstrip("/") for h in ca_hosts])
    report_file = Path(inputs.text("report-file") or workdir / "report.json")
    digest_file = workdir / "digest"
    argv += ["--digest-file", str(digest_file), "--report-file", str(report_file)]
    argv += inputs.items("extra-args") + list(executor_args)

    run_env = dict(env)
    run_env.update(proxy_env(env))
    return BuildPlan(
        argv=argv,
        env=run_env,
        metadata=metadata,
        destinations=destinations,
        auth=auth,
        report_file=report_file,
        digest_file=digest_file,
        push=push,
    )


def run_executor(argv: list[str], env: Mapping[str, str]) -> int:
    """The engine's executor entry point (imported late: the adapters load without it)."""
    try:
        from engine.cli import executor_main
    except ImportError as exc:
        raise AdapterError(f"the build engine is not installed: {exc}") from None
    return executor_main(argv, env)


class _Tee(io.TextIOBase):
    """Pass text through to `out` while keeping it, to find the engine's `error:` line.
    Secrets are masked on the way (the engine should print none; a RUN step may)."""

    def __init__(self, out: TextIO, secrets: Sequence[str] = ()):
        self.out = out
        self.secrets = tuple(secrets)
        # Only the tail matters (the error line comes last); a long build log is not kept.
        self.kept: deque[str] = deque(maxlen=2000)

    def write(self, text: str) -> int:
        shown = redact(text, self.secrets)
        self.out.write(shown)
        self.kept.append(shown)
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def execute(
    plan: BuildPlan,
    log: LogSections,
    out: TextIO,
    *,
    runner: Runner = run_executor,
    docker_config_dir: Path | None = None,
) -> BuildOutcome:
    secrets = list(dict.fromkeys([*plan.auth.secrets, *env_secrets(plan.env)]))
    for secret in secrets:
        log.mask(secret)
    with section(log, "brickyard_auth", "Registry credentials"):
        config_dir = write_docker_config(docker_config(plan.auth), docker_config_dir)
        registries = sorted(docker_config(plan.auth).get("auths", {}))
        out.write(f"docker config {config_dir}/config.json: {', '.join(registries) or 'none'}\n")
        for problem in plan.auth.problems:
            out.write(f"warning: {problem}\n")
    env = dict(plan.env)
    env["DOCKER_CONFIG"] = str(config_dir)
    try:
        title = "Build " + ", ".join(plan.destinations or ("image",))
        with section(log, "brickyard_build", title):
            out.write("executor " + redact(" ".join(_quote(a) for a in plan.argv), secrets) + "\n")
            out.flush()
            tee = _Tee(sys.stderr, secrets)
            with redirect_stderr(tee):
                code = runner(list(plan.argv), env)
    finally:
        if docker_config_dir is None:  # ours: the credentials do not outlive the build
            shutil.rmtree(config_dir, ignore_errors=True)
    report = redact_report(load_report(plan.report_file), secrets)
    digest = report.digest
    if not digest and plan.digest_file.is_file():
        digest = plan.digest_file.read_text(encoding="utf-8").strip()
    captured = "".join(tee.kept)
    error, efile, eline = "", "", None
    if code != 0:
        lines = [ln for ln in captured.splitlines() if ln.startswith("error: ")]
        error = lines[-1].removeprefix("error: ") if lines else report.error
        error = error or f"executor exited with {code}"
        # exit code 3 is DockerfileError: "Dockerfile:12: message" names file and line.
        if code == 3 and (m := _ERROR_LINE.match(error)):
            efile, eline = m["file"], int(m["line"])
    return BuildOutcome(
        exit_code=code,
        report=report,
        digest=digest,
        plan=plan,
        error=redact(error, secrets),
        error_file=efile,
        error_line=eline,
        stderr_tail=captured.splitlines()[-20:],
    )


def plan_and_execute(
    ctx: RefContext,
    inputs: BuildInputs,
    env: Mapping[str, str],
    *,
    executor_args: Sequence[str],
    log: LogSections,
    out: TextIO,
    runner: Runner = run_executor,
    temp_root: str | None = None,
) -> BuildOutcome:
    """Plan the executor call in a fresh work dir (under `temp_root`, else the system's) and run
    it: the step every CI's `build` command shares."""
    workdir = Path(tempfile.mkdtemp(prefix="brickyard-", dir=temp_root))
    plan = plan_build(ctx, inputs, env, workdir=workdir, executor_args=executor_args)
    return execute(plan, log, out, runner=runner)


def write_failure(out: TextIO, outcome: BuildOutcome) -> None:
    """A failed build as plain log lines: the error, then a hint per credential problem."""
    out.write(f"error: build failed: {outcome.error}\n")
    for problem in outcome.plan.auth.problems:
        out.write(f"hint: {problem}\n")


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"
