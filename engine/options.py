"""Every flag of the `executor` and `brickyard build` commands, declared once.

`OPTIONS` is the single table. From it come: the command-line parser (Go/pflag style, because
kaniko users write `--cache=false`, `-fDockerfile`, `--flag value`), `--help`, `docs/flags.md`
(`render_flags_markdown`), the frozen `BuildOptions` and the tests.

Precedence, as in kaniko: command line, then the environment variables kaniko reads
(KANIKO_DIR, KANIKO_NO_PUSH, KANIKO_REGISTRY_MIRROR, KANIKO_REGISTRY_MAP, DOCKER_CONFIG),
then the table's default.

An option marked `implemented=False` is accepted by the parser but, when the user sets it to a
non-default value, `parse_build_options` raises `NotImplementedFlag` naming it. Whoever
implements a flag flips its marker in the table (one-line edit).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import platform as _platform
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from engine.dockerfile.flags import go_duration_seconds
from engine.errors import NotImplementedFlag, UsageError

log = logging.getLogger(__name__)

Kind = Literal["bool", "str", "int", "duration", "choice", "list", "map", "multimap", "git"]
Warn = Callable[[str], None]

DEFAULT_KANIKO_DIR = "/kaniko"
DEFAULT_REGISTRY = "index.docker.io"  # kaniko maps every --registry-mirror to this key

GROUPS = (
    "Build input / context",
    "Snapshotting / layers",
    "Caching",
    "Output / push",
    "Registry access",
    "Runtime / misc",
    "From kaniko forks",
    "brickyard",
)


@dataclass(frozen=True)
class Option:
    """One flag. `name` is the long form without dashes; the field is its snake_case."""

    name: str
    kind: Kind
    default: Any
    help: str
    group: str
    short: str | None = None
    env: str | None = None  # environment variable read when the flag is not given
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # deprecated spellings: accepted with a warning
    hidden: bool = False  # accepted, left out of --help (kaniko hides these too)
    implemented: bool = False
    brickyard: bool = False  # our addition, not a kaniko flag
    metavar: str = ""

    @property
    def field_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def takes_value(self) -> bool:
        return self.kind != "bool"

    def default_text(self) -> str:
        if self.kind == "duration":
            return format_duration(self.default)
        if self.kind == "bool":
            return "true" if self.default else "false"
        if self.kind in ("list", "map", "multimap"):
            return ""
        if self.kind == "git":
            return "branch=,single-branch=false,recurse-submodules=false"
        return str(self.default)


def _o(name: str, kind: Kind, default: Any, help: str, group: str, **kw: Any) -> Option:
    return Option(name=name, kind=kind, default=default, help=help, group=group, **kw)


_IN, _SNAP, _CACHE, _OUT, _REG, _MISC, _FORK, _BY = GROUPS

# fmt: off
OPTIONS: tuple[Option, ...] = (
    # --- Build input / context
    _o("dockerfile", "str", "Dockerfile", "Path to the Dockerfile to be built (absolute, relative to the current directory, or to the context).", _IN, short="f", implemented=True),  # noqa: E501
    _o("context", "str", "/workspace/", "Build context: a directory, dir://, tar://FILE, tar://stdin, git:// or https:// URL.", _IN, short="c", implemented=True),  # noqa: E501
    _o("context-sub-path", "str", "", "Sub path within the given context.", _IN, implemented=True),
    _o("bucket", "str", "", "GCS bucket holding the context tarball (legacy): becomes --context gs://BUCKET (a value with :// is the context as is). brickyard reads no gs:// context, so such a build stops naming the scheme.", _IN, short="b", hidden=True, implemented=True),  # noqa: E501
    _o("git", "git", None, "Options when the context is a git repository: branch=NAME, single-branch=BOOL, recurse-submodules=BOOL, insecure-skip-tls=BOOL. Repeatable.", _IN, implemented=True, metavar="KEY=VALUE"),  # noqa: E501
    _o("build-arg", "list", (), "ARG value at build time, KEY=VALUE (KEY alone takes the value from the environment). Repeatable.", _IN, implemented=True, metavar="KEY=VALUE"),  # noqa: E501
    _o("target", "str", "", "Build stage to stop at (name or index).", _IN, implemented=True),
    _o("skip-unused-stages", "bool", False, "Build only the stages the target depends on.", _IN, implemented=True),  # noqa: E501
    _o("custom-platform", "str", "", "Target platform os/arch[/variant] (default: this host's platform).", _IN, aliases=("customPlatform",), implemented=True),  # noqa: E501
    _o("ignore-path", "list", (), "Path to leave out of snapshots. Repeatable.", _IN, implemented=True),  # noqa: E501
    _o("ignore-var-run", "bool", True, "Ignore /var/run when snapshotting; set false to keep it in the image.", _IN, aliases=("whitelist-var-run",), implemented=True),  # noqa: E501
    # --- Snapshotting / layers
    _o("snapshot-mode", "choice", "full", "Accepted for compatibility; every value snapshots the same way. brickyard compares one lstat per path (type and mode, owner, size, mtime, ctime, inode, symlink target; no content read): more than redo (mode, mtime, size, owner) and time (mtime), and what full's content hash finds, since a content, capability, mode or owner change moves ctime (to the filesystem's timestamp resolution). Left out of a RUN layer: a directory whose only change is its timestamps, with nothing changed below it.", _SNAP, choices=("full", "redo", "time"), aliases=("snapshotMode",), implemented=True),  # noqa: E501
    _o("single-snapshot", "bool", False, "Take one snapshot of the filesystem at the end of the build.", _SNAP, implemented=True),  # noqa: E501
    _o("use-new-run", "bool", False, "Accepted for compatibility; changes nothing. Every RUN is already snapshotted the way kaniko's new run works: a stat walk after the step compared with the one before it (the fields listed under --snapshot-mode), deleted paths included, no content hashed.", _SNAP, implemented=True),  # noqa: E501
    _o("reproducible", "bool", False, "Strip timestamps out of the image so identical inputs give identical digests.", _SNAP, implemented=True),  # noqa: E501
    _o("force-build-metadata", "bool", False, "Add a layer even for metadata-only commands.", _SNAP, implemented=True),  # noqa: E501
    _o("compression", "choice", "gzip", "Layer compression: gzip or zstd (zstd only for OCI-format images; docker-format ones get gzip, as in kaniko).", _SNAP, choices=("gzip", "zstd"), implemented=True),  # noqa: E501
    _o("compression-level", "int", -1, "Compression level; used only when > 0.", _SNAP, implemented=True),  # noqa: E501
    _o("label", "list", (), "Image label KEY=VALUE. Repeatable.", _SNAP, metavar="KEY=VALUE", implemented=True),  # noqa: E501
    # --- Caching
    _o("cache", "bool", False, "Use the layer cache when building.", _CACHE, implemented=True),
    _o("cache-repo", "str", "", "Repository for cached layers (default <destination>/cache); oci:/path writes an OCI layout.", _CACHE, implemented=True),  # noqa: E501
    _o("cache-dir", "str", "/cache", "Local directory of base-image tarballs (filled by `brickyard warm`).", _CACHE, implemented=True),  # noqa: E501
    _o("cache-ttl", "duration", timedelta(hours=336), "Cached layers older than this are ignored (Go duration, e.g. 6h).", _CACHE, implemented=True),  # noqa: E501
    _o("cache-copy-layers", "bool", False, "Also cache layers produced by COPY.", _CACHE, implemented=True),  # noqa: E501
    _o("cache-run-layers", "bool", True, "Cache layers produced by RUN.", _CACHE, implemented=True),
    _o("compressed-caching", "bool", True, "Accepted for compatibility; changes nothing: a cached layer is the built layer, streamed through a file and never held in memory, so there is no memory to trade (docs/cache.md).", _CACHE, implemented=True),  # noqa: E501
    _o("no-push-cache", "bool", False, "Do not push cache layers.", _CACHE, implemented=True),
    # --- Output / push
    _o("destination", "list", (), "Image reference to push to. Repeatable.", _OUT, short="d", metavar="IMAGE", implemented=True),  # noqa: E501
    _o("no-push", "bool", False, "Do not push the image.", _OUT, env="KANIKO_NO_PUSH", implemented=True),  # noqa: E501
    _o("tar-path", "str", "", "Save the image as a `docker save` tarball at this path.", _OUT, aliases=("tarPath",), implemented=True),  # noqa: E501
    _o("oci-layout-path", "str", "", "Save the image as an OCI image layout directory.", _OUT, implemented=True),  # noqa: E501
    _o("digest-file", "str", "", "Write the image digest to this file.", _OUT, implemented=True),
    _o("image-name-with-digest-file", "str", "", "Write name@digest for each destination to this file.", _OUT, implemented=True),  # noqa: E501
    _o("image-name-tag-with-digest-file", "str", "", "Write name:tag@digest for each destination to this file.", _OUT, implemented=True),  # noqa: E501
    _o("push-retry", "int", 0, "Retries for the push.", _OUT, implemented=True),
    _o("push-ignore-immutable-tag-errors", "bool", False, "Treat registry 'tag is immutable' errors as success.", _OUT, implemented=True),  # noqa: E501
    _o("skip-push-permission-check", "bool", False, "Skip the up-front push permission probe.", _OUT, implemented=True),  # noqa: E501
    # --- Registry access
    _o("insecure", "bool", False, "Push over plain HTTP.", _REG, implemented=True),
    _o("skip-tls-verify", "bool", False, "Push without verifying TLS.", _REG, implemented=True),
    _o("insecure-pull", "bool", False, "Pull over plain HTTP.", _REG, implemented=True),
    _o("skip-tls-verify-pull", "bool", False, "Pull without verifying TLS.", _REG, implemented=True),  # noqa: E501
    _o("insecure-registry", "list", (), "Registry to use over plain HTTP (push and pull). Repeatable.", _REG, metavar="HOST", implemented=True),  # noqa: E501
    _o("skip-tls-verify-registry", "list", (), "Registry for which TLS is not verified. Repeatable.", _REG, metavar="HOST", implemented=True),  # noqa: E501
    _o("registry-certificate", "map", {}, "CA certificate for a registry: my.registry=/path/cert. Repeatable.", _REG, metavar="HOST=PATH", implemented=True),  # noqa: E501
    _o("registry-client-cert", "map", {}, "mTLS client certificate: my.registry=/path/cert,/path/key. Repeatable.", _REG, metavar="HOST=CERT,KEY", implemented=True),  # noqa: E501
    _o("registry-mirror", "list", (), "Pull-through mirror for docker.io; repeatable and ;-separated.", _REG, env="KANIKO_REGISTRY_MIRROR", metavar="HOST", implemented=True),  # noqa: E501
    _o("registry-map", "multimap", {}, "Remap registries to mirrors: orig=new;other=new2. Repeatable.", _REG, env="KANIKO_REGISTRY_MAP", metavar="ORIG=NEW;...", implemented=True),  # noqa: E501
    _o("skip-default-registry-fallback", "bool", False, "Fail instead of falling back to the original registry when no mirror has the image.", _REG, implemented=True),  # noqa: E501
    _o("image-download-retry", "int", 0, "Retries for downloading a base image.", _REG, implemented=True),  # noqa: E501
    _o("image-fs-extract-retry", "int", 0, "Retries for extracting the base image filesystem.", _REG, implemented=True),  # noqa: E501
    _o("azure-container-registry-config", "str", "", "Path to an Azure container registry config file.", _REG, hidden=True),  # noqa: E501
    # --- Runtime / misc
    _o("kaniko-dir", "str", DEFAULT_KANIKO_DIR, "Working directory; takes precedence over KANIKO_DIR. As in kaniko, a non-default one re-points DOCKER_CONFIG at <kaniko-dir>/.docker; where no config.json is there, credentials come from $DOCKER_CONFIG, /kaniko/.docker or ~/.docker.", _MISC, env="KANIKO_DIR", implemented=True),  # noqa: E501
    _o("cleanup", "bool", False, "Delete the built filesystem at the end (else the stage filesystems stay under --kaniko-dir; a temporary or rootless workspace always goes).", _MISC, implemented=True),  # noqa: E501
    _o("force", "bool", False, "Allow --isolation inplace outside a container. chroot and rootless run anywhere, so kaniko's refusal to start outside a container applies to inplace only.", _MISC, implemented=True),  # noqa: E501
    _o("verbosity", "choice", "info", "Log level: trace, debug, info, warn, error, fatal, panic.", _MISC, short="v", choices=("trace", "debug", "info", "warn", "warning", "error", "fatal", "panic"), implemented=True),  # noqa: E501
    _o("log-format", "choice", "color", "Log format: text, color, json.", _MISC, choices=("text", "color", "json"), implemented=True),  # noqa: E501
    _o("log-timestamp", "bool", False, "Timestamps in log output.", _MISC, implemented=True),
    # --- flags the maintained forks added (chainguard-dev, osscontainertools)
    _o("annotation", "list", (), "Manifest annotation KEY=VALUE. Repeatable.", _FORK, metavar="KEY=VALUE", implemented=True),  # noqa: E501
    _o("secret", "list", (), "Build secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR. Repeatable.", _FORK, metavar="id=ID,src=PATH", implemented=True),  # noqa: E501
    _o("credential-helpers", "list", (), "Credential helpers to use (env, google, ecr, acr, gitlab; default all). Repeatable.", _FORK, metavar="NAME"),  # noqa: E501
    _o("image-format", "choice", "", "Manifest format of the built image: docker or oci (default: follow the base image).", _FORK, choices=("docker", "oci"), implemented=True),  # noqa: E501
    _o("dryrun", "bool", False, "Resolve and check everything, build nothing (see also `brickyard plan`).", _FORK, implemented=True),  # noqa: E501
    _o("materialize", "bool", False, "Always extract the filesystem, even when every layer is cached.", _FORK, implemented=True),  # noqa: E501
    _o("pre-cleanup", "bool", False, "Before building, remove the filesystems earlier builds left in --kaniko-dir (kept without --cleanup).", _FORK, implemented=True),  # noqa: E501
    _o("preserve-context", "bool", False, "Accepted for compatibility; changes nothing: each stage builds in a directory of its own, no stage cleanup touches the build context, and it stays as it was until the build ends.", _FORK, implemented=True),  # noqa: E501
    # --- brickyard additions
    _o("isolation", "choice", "", "How RUN executes: chroot or rootless (default: chroot as root, else rootless). inplace (the container's own /) runs only in an executor image that enables it; none does yet, so a RUN under inplace stops the build.", _BY, choices=("chroot", "rootless", "inplace"), env="BRICKYARD_ISOLATION", brickyard=True, implemented=True),  # noqa: E501
    _o("report-file", "str", "", "Write a JSON build report (digest, tags, steps) to this path.", _BY, brickyard=True, implemented=True),  # noqa: E501
)
# fmt: on

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class GitOptions:
    """`--git key=value` settings for a git build context."""

    branch: str = ""
    single_branch: bool = False
    recurse_submodules: bool = False
    insecure_skip_tls: bool = False


@dataclass(frozen=True)
class BuildOptions:
    """Parsed flags. One field per option (snake_case of the long name)."""

    dockerfile: str = "Dockerfile"
    context: str = "/workspace/"
    context_sub_path: str = ""
    bucket: str = ""
    git: GitOptions = field(default_factory=GitOptions)
    build_arg: tuple[str, ...] = ()  # KEY=VALUE, KEY alone already resolved from env
    target: str = ""
    skip_unused_stages: bool = False
    custom_platform: str = ""  # resolved to the host platform by parse_build_options
    ignore_path: tuple[str, ...] = ()
    ignore_var_run: bool = True
    snapshot_mode: str = "full"
    single_snapshot: bool = False
    use_new_run: bool = False
    reproducible: bool = False
    force_build_metadata: bool = False
    compression: str = "gzip"
    compression_level: int = -1
    label: tuple[str, ...] = ()
    cache: bool = False
    cache_repo: str = ""
    cache_dir: str = "/cache"
    cache_ttl: timedelta = timedelta(hours=336)
    cache_copy_layers: bool = False
    cache_run_layers: bool = True
    compressed_caching: bool = True
    no_push_cache: bool = False
    destination: tuple[str, ...] = ()
    no_push: bool = False
    tar_path: str = ""
    oci_layout_path: str = ""
    digest_file: str = ""
    image_name_with_digest_file: str = ""
    image_name_tag_with_digest_file: str = ""
    push_retry: int = 0
    push_ignore_immutable_tag_errors: bool = False
    skip_push_permission_check: bool = False
    insecure: bool = False
    skip_tls_verify: bool = False
    insecure_pull: bool = False
    skip_tls_verify_pull: bool = False
    insecure_registry: tuple[str, ...] = ()
    skip_tls_verify_registry: tuple[str, ...] = ()
    registry_certificate: dict[str, str] = field(default_factory=dict)
    registry_client_cert: dict[str, str] = field(default_factory=dict)
    registry_mirror: tuple[str, ...] = ()  # flags first, then KANIKO_REGISTRY_MIRROR
    # orig -> mirrors in order; flags then KANIKO_REGISTRY_MAP. Mirrors are NOT folded in here:
    # kaniko treats each --registry-mirror as "index.docker.io=<mirror>": effective_registry_map
    registry_map: dict[str, tuple[str, ...]] = field(default_factory=dict)
    skip_default_registry_fallback: bool = False
    image_download_retry: int = 0
    image_fs_extract_retry: int = 0
    azure_container_registry_config: str = ""
    kaniko_dir: str = DEFAULT_KANIKO_DIR
    cleanup: bool = False
    force: bool = False
    verbosity: str = "info"
    log_format: str = "color"
    log_timestamp: bool = False
    isolation: str = "rootless"  # resolved: chroot when euid 0, else rootless
    annotation: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()
    credential_helpers: tuple[str, ...] = ()
    image_format: str = ""
    dryrun: bool = False
    materialize: bool = False
    pre_cleanup: bool = False
    preserve_context: bool = False
    report_file: str = ""
    # Not flags: derived from the environment. "" means "registry client's default lookup".
    docker_config: str = ""
    # Long names of options given explicitly (argv or env), for adapters and reports.
    given: frozenset[str] = frozenset()

    def effective_registry_map(self) -> dict[str, tuple[str, ...]]:
        """registry_map with kaniko's rule applied: each mirror maps index.docker.io."""
        merged = {k: tuple(v) for k, v in self.registry_map.items()}
        if self.registry_mirror:
            merged[DEFAULT_REGISTRY] = merged.get(DEFAULT_REGISTRY, ()) + self.registry_mirror
        return merged

    def build_args_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.build_arg:
            key, _, value = item.partition("=")
            out[key] = value
        return out


# ---------------------------------------------------------------- value parsing

_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_go_bool(text: str, what: str) -> bool:
    """strconv.ParseBool: the exact spellings Go accepts."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise UsageError(f"invalid boolean {text!r} for {what} (use true or false)")


def parse_go_duration(text: str, what: str) -> timedelta:
    """time.ParseDuration: "336h", "1h30m", "1.5s", "-2m", "0"."""
    try:
        return timedelta(seconds=go_duration_seconds(text))
    except ValueError:
        raise UsageError(f"invalid duration {text!r} for {what} (e.g. 336h, 1h30m, 90s)") from None


def format_duration(value: timedelta) -> str:
    """Go's Duration.String() for whole seconds: 336h0m0s."""
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total == 0:
        return "0s"
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{sign}{h}h{m}m{s}s"
    if m:
        return f"{sign}{m}m{s}s"
    return f"{sign}{s}s"


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text, 0)  # Go ParseInt(s, 0, 64): 0x.., 0o.., underscores
    except ValueError:
        raise UsageError(f"invalid integer {text!r} for {what}") from None


def _split_kv(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise UsageError(f"invalid value {text!r} for {what}: expected key=value")
    return key, value


_GIT_KEYS = ("branch", "single-branch", "recurse-submodules", "insecure-skip-tls")


def _apply_git(current: GitOptions, text: str) -> GitOptions:
    parts = text.split(",")
    if len(parts) > 1 and all(p.partition("=")[0] in _GIT_KEYS and "=" in p for p in parts):
        # "branch=main,single-branch=true", the form kaniko prints as the flag's default
        for part in parts:
            current = _apply_git(current, part)
        return current
    key, value = _split_kv(text, "--git")
    if key not in _GIT_KEYS:
        hint = _closest(key, _GIT_KEYS)
        raise UsageError(
            f"unknown --git key {key!r}" + (f" (did you mean {hint}?)" if hint else "")
        )
    if key == "branch":
        return dataclasses.replace(current, branch=value)
    flag = parse_go_bool(value, f"--git {key}")
    if key == "single-branch":
        return dataclasses.replace(current, single_branch=flag)
    if key == "recurse-submodules":
        return dataclasses.replace(current, recurse_submodules=flag)
    return dataclasses.replace(current, insecure_skip_tls=flag)


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    return found[0] if found else None


# ---------------------------------------------------------------- the parser


@dataclass
class ParsedArgs:
    """Raw result of the command-line pass, before env vars and validation."""

    values: dict[str, Any]  # option name -> parsed value (only those given)
    given: list[str]  # option names in the order they were first given
    positionals: list[str]


class FlagParser:
    """pflag-compatible parser driven by a table of Options.

    Accepts: --name=value, --name value, -s value, -svalue, -s=value; booleans as --name,
    --name=true/false (any Go spelling; `--name false` is NOT a boolean value, as in pflag);
    deprecated aliases (warn); `--` ends flags.
    """

    def __init__(self, table: Sequence[Option]) -> None:
        self.table = tuple(table)
        self.long: dict[str, tuple[Option, bool]] = {}
        self.short: dict[str, Option] = {}
        for opt in self.table:
            self.long[opt.name] = (opt, False)
            for alias in opt.aliases:
                self.long[alias] = (opt, True)
            if opt.short:
                self.short[opt.short] = opt

    def valid_flags(self) -> list[str]:
        names = [f"--{o.name}" for o in self.table if not o.hidden]
        return names + [f"-{s}" for s in self.short]

    def unknown(self, flag: str) -> UsageError:
        base = flag.split("=", 1)[0]
        hint = _closest(base, [*self.valid_flags(), "--help"])
        more = f" (did you mean {hint}?)" if hint else ""
        return UsageError(f"unknown flag: {base}{more}")

    def parse(self, argv: Sequence[str], warn: Warn) -> ParsedArgs:
        values: dict[str, Any] = {}
        given: list[str] = []
        positionals: list[str] = []
        args = list(argv)
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                positionals.extend(args[i:])
                break
            if arg.startswith("--") and len(arg) > 2:
                name, eq, inline = arg[2:].partition("=")
                if name not in self.long:
                    raise self.unknown(arg)
                opt, deprecated = self.long[name]
                if deprecated:
                    warn(f"flag --{name} is deprecated, use --{opt.name}")
                label = f"--{name}"
            elif arg.startswith("-") and len(arg) > 1:
                single = arg[1:].split("=", 1)[0]
                if len(single) > 1 and single in self.long:
                    # pflag would read "-cache" as -c "ache"; say what was meant instead
                    raise UsageError(f"unknown flag: -{single} (did you mean --{single}?)")
                s = arg[1]
                if s not in self.short:
                    raise self.unknown(arg if len(arg) == 2 else arg[:2])
                opt = self.short[s]
                rest = arg[2:]
                eq = "=" if rest else ""
                inline = rest[1:] if rest.startswith("=") else rest
                label = f"-{s}"
            else:
                positionals.append(arg)
                continue
            if opt.kind == "bool":
                raw = inline if eq else "true"
            elif eq:
                raw = inline
            elif i < len(args):
                raw = args[i]  # pflag takes the next word as the value, even "-x"
                i += 1
            else:
                raise UsageError(f"flag needs an argument: {label}")
            values[opt.name] = self._convert(opt, raw, label, values.get(opt.name))
            if opt.name not in given:
                given.append(opt.name)
        return ParsedArgs(values, given, positionals)

    @staticmethod
    def _convert(opt: Option, raw: str, label: str, current: Any) -> Any:
        return convert_value(opt, raw, label, current)


def convert_value(opt: Option, raw: str, label: str, current: Any) -> Any:
    """Turn one occurrence of a flag into its value, accumulating repeatable kinds."""
    if opt.kind == "bool":
        return parse_go_bool(raw, label)
    if opt.kind == "str":
        return raw
    if opt.kind == "int":
        return _parse_int(raw, label)
    if opt.kind == "duration":
        return parse_go_duration(raw, label)
    if opt.kind == "choice":
        if raw not in opt.choices:
            hint = _closest(raw, opt.choices)
            more = f" (did you mean {hint}?)" if hint else ""
            raise UsageError(
                f"invalid value {raw!r} for {label}: choose one of {', '.join(opt.choices)}{more}"
            )
        return raw
    if opt.kind == "list":
        items = tuple(current or ())
        if opt.name == "registry-mirror":  # kaniko docs: "mirror1;mirror2"
            return items + tuple(p for p in raw.split(";") if p)
        return (*items, raw)
    if opt.kind == "map":
        mapping = dict(current or {})
        key, value = _split_kv(raw, label)
        mapping[key] = value
        return mapping
    if opt.kind == "multimap":
        multi: dict[str, tuple[str, ...]] = dict(current or {})
        if raw == "":
            return multi
        for pair in raw.split(";"):
            key, value = _split_kv(pair, label)
            multi[key] = (*multi.get(key, ()), value)
        return multi
    if opt.kind == "git":
        return _apply_git(current or GitOptions(), raw)
    raise AssertionError(f"unhandled kind {opt.kind}")


def _env_value(opt: Option, text: str, current: Any) -> Any:
    """Apply an option's env var (kaniko semantics per variable)."""
    if opt.kind == "bool":
        return parse_go_bool(text, f"environment variable {opt.env}")
    return convert_value(opt, text, f"environment variable {opt.env}", current)


# ---------------------------------------------------------------- BuildOptions


def host_platform() -> str:
    """containerd platforms.DefaultSpec(), normalized: linux/amd64, linux/arm64, linux/arm/v7."""
    machine = _platform.machine().lower()
    arch, variant = {
        "x86_64": ("amd64", ""),
        "amd64": ("amd64", ""),
        "aarch64": ("arm64", ""),
        "arm64": ("arm64", ""),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i386": ("386", ""),
        "i686": ("386", ""),
        "ppc64le": ("ppc64le", ""),
        "s390x": ("s390x", ""),
        "riscv64": ("riscv64", ""),
    }.get(machine, (machine, ""))
    return f"linux/{arch}/{variant}" if variant else f"linux/{arch}"


_PLATFORM_PART = re.compile(r"^[A-Za-z0-9_.-]+$")


def validate_platform(text: str) -> str:
    """v1.ParsePlatform: os[/arch[/variant]] with an optional :osversion on the os."""
    parts = text.split("/")
    os_part = parts[0].split(":", 1)[0]
    if (
        len(parts) > 3
        or not os_part
        or not all(_PLATFORM_PART.match(p) for p in parts[1:] or ["x"])
    ):
        raise UsageError(
            f"invalid platform {text!r} for --custom-platform (want os/arch[/variant])"
        )
    return text


def parse_build_options(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    warn: Warn | None = None,
    euid: int | None = None,
    check_implemented: bool = True,
    validate: bool = True,
    extra: Sequence[Option] = (),
    extra_values: dict[str, Any] | None = None,
) -> BuildOptions:
    """Parse executor/`brickyard build` flags plus kaniko's env vars into BuildOptions.

    Raises UsageError (unknown/malformed flag, invalid combination) and NotImplementedFlag.
    `check_implemented=False` and `validate=False` serve `brickyard plan`, which never pushes.
    `extra` options (a subcommand's own flags) are parsed alongside; their values (or
    defaults) land in `extra_values` by option name.
    """
    say: Warn = warn or log.warning
    parsed = FlagParser((*OPTIONS, *extra)).parse(argv, say)
    if extra_values is not None:
        for opt in extra:
            extra_values[opt.name] = parsed.values.pop(opt.name, opt.default)
    if parsed.positionals:
        word = parsed.positionals[0]
        hint = " (booleans take --flag=false)" if word in _GO_FALSE | _GO_TRUE else ""
        raise UsageError(f"unexpected argument: {word!r}{hint}")
    values = parsed.values
    given = list(parsed.given)

    # Environment, in kaniko's order (validateFlags): mirror, no-push, map; then KANIKO_DIR.
    for name in ("registry-mirror", "no-push", "registry-map"):
        opt = BY_NAME[name]
        assert opt.env
        if opt.env in env:  # kaniko: a set KANIKO_NO_PUSH overrides the flag, lists append
            values[name] = _env_value(opt, env[opt.env], values.get(name))
            if name not in given:
                given.append(name)
    flag_dir = values.get("kaniko-dir", DEFAULT_KANIKO_DIR)
    kaniko_dir = flag_dir if flag_dir != DEFAULT_KANIKO_DIR else env.get("KANIKO_DIR", flag_dir)
    values["kaniko-dir"] = kaniko_dir or DEFAULT_KANIKO_DIR
    iso_env = BY_NAME["isolation"].env
    if "isolation" not in values and iso_env and env.get(iso_env):
        values["isolation"] = convert_value(BY_NAME["isolation"], env[iso_env], iso_env, None)
        given.append("isolation")

    kwargs: dict[str, Any] = {}
    for opt in OPTIONS:
        value = values.get(opt.name, opt.default)
        if opt.kind == "git" and value is None:
            value = GitOptions()
        if opt.kind in ("map", "multimap"):
            value = dict(value)
        kwargs[opt.field_name] = value

    # Derived values, as kaniko computes them before building.
    if not kwargs["custom_platform"]:
        kwargs["custom_platform"] = host_platform()
    validate_platform(kwargs["custom_platform"])
    if kwargs["bucket"]:
        bucket = kwargs["bucket"]
        kwargs["context"] = bucket if "://" in bucket else f"gs://{bucket}"
    kwargs["build_arg"] = tuple(_resolve_build_arg(a, env) for a in kwargs["build_arg"])
    if not kwargs["isolation"]:
        uid = os.geteuid() if euid is None else euid
        kwargs["isolation"] = "chroot" if uid == 0 else "rootless"
    if kwargs["verbosity"] == "warning":
        kwargs["verbosity"] = "warn"
    if env.get("DOCKER_CONFIG"):
        kwargs["docker_config"] = env["DOCKER_CONFIG"]
    if kaniko_dir != DEFAULT_KANIKO_DIR:
        # kaniko re-points DOCKER_CONFIG at <kaniko-dir>/.docker when the dir moves
        kwargs["docker_config"] = os.path.join(kaniko_dir, ".docker")
    kwargs["given"] = frozenset(given)
    opts = BuildOptions(**kwargs)

    if validate:
        validate_build_options(opts)
    if check_implemented:
        check_implemented_flags(opts)
    return opts


def _resolve_build_arg(arg: str, env: Mapping[str, str]) -> str:
    # kaniko resolveEnvironmentBuildArgs: "KEY" alone becomes KEY=<env value or empty>
    return arg if "=" in arg else f"{arg}={env.get(arg, '')}"


def validate_build_options(opts: BuildOptions) -> None:
    """kaniko's PersistentPreRunE rules, same meaning, same wording where it has any."""
    if not opts.context:
        raise UsageError(
            "please specify a path to the build context with the --context flag "
            "or a bucket with the --bucket flag"
        )
    if not opts.no_push and not opts.destination:
        raise UsageError("you must provide --destination, or use --no-push")
    if opts.cache and opts.no_push and not opts.cache_repo:
        raise UsageError(
            "cache flags invalid: if using cache with --no-push, "
            "specify cache repo with --cache-repo"
        )
    if not opts.destination and opts.image_name_with_digest_file:
        raise UsageError("you must provide --destination if setting --image-name-with-digest-file")
    if not opts.destination and opts.image_name_tag_with_digest_file:
        raise UsageError(
            "you must provide --destination if setting --image-name-tag-with-digest-file"
        )
    for name, mapping in (("--registry-client-cert", opts.registry_client_cert),):
        for host, value in mapping.items():
            if len(value.split(",")) != 2:
                raise UsageError(f"invalid value for {name} {host}: expected CERT,KEY")


def check_implemented_flags(opts: BuildOptions) -> None:
    """Raise NotImplementedFlag for the first option set (to a non-default) that we lack."""
    for opt in OPTIONS:
        if opt.implemented or opt.name not in opts.given:
            continue
        value = getattr(opts, opt.field_name)
        default = GitOptions() if opt.kind == "git" else opt.default
        differs = bool(value) if opt.kind in ("map", "multimap", "list") else value != default
        if differs:
            raise NotImplementedFlag(f"--{opt.name} is accepted but not implemented yet")


# ---------------------------------------------------------------- warmer (`brickyard warm`)


# Flip when engine.cache.warm.warm(options: WarmerOptions, env) lands.
WARMER_IMPLEMENTED = True


def _warmer_table() -> tuple[Option, ...]:
    # kaniko's warmer binary: its own short forms (-c is --cache-dir, -f --force, -d dockerfile)
    r = dataclasses.replace
    shared = [
        *("insecure-pull", "skip-tls-verify-pull", "insecure-registry"),
        *("skip-tls-verify-registry", "registry-certificate", "registry-client-cert"),
        *("registry-map", "registry-mirror", "skip-default-registry-fallback", "build-arg"),
        *("verbosity", "log-format", "log-timestamp", "cache-ttl"),
    ]
    table = [
        _o("image", "list", (), "Image to cache. Repeatable.", _CACHE, short="i", metavar="IMAGE"),
        r(BY_NAME["cache-dir"], short="c"),
        _o("force", "bool", False, "Overwrite images already in the cache.", _MISC, short="f"),
        BY_NAME["custom-platform"],
        _o(
            "dockerfile",
            "str",
            "",
            "Warm the base image of every stage of this Dockerfile.",
            _IN,
            short="d",
        ),
    ]
    table += [BY_NAME[n] for n in shared]
    return tuple(r(o, implemented=WARMER_IMPLEMENTED) for o in table)


WARMER_OPTIONS: tuple[Option, ...] = _warmer_table()


@dataclass(frozen=True)
class WarmerOptions:
    image: tuple[str, ...] = ()
    cache_dir: str = "/cache"
    force: bool = False
    custom_platform: str = ""
    dockerfile: str = ""
    insecure_pull: bool = False
    skip_tls_verify_pull: bool = False
    insecure_registry: tuple[str, ...] = ()
    skip_tls_verify_registry: tuple[str, ...] = ()
    registry_certificate: dict[str, str] = field(default_factory=dict)
    registry_client_cert: dict[str, str] = field(default_factory=dict)
    registry_map: dict[str, tuple[str, ...]] = field(default_factory=dict)
    registry_mirror: tuple[str, ...] = ()
    skip_default_registry_fallback: bool = False
    build_arg: tuple[str, ...] = ()
    verbosity: str = "info"
    log_format: str = "color"
    log_timestamp: bool = False
    cache_ttl: timedelta = timedelta(hours=336)
    given: frozenset[str] = frozenset()


def parse_warmer_options(
    argv: Sequence[str], env: Mapping[str, str], *, warn: Warn | None = None
) -> WarmerOptions:
    """kaniko warmer flags. Until the cache lands every flag is NotImplementedFlag."""
    parsed = FlagParser(WARMER_OPTIONS).parse(argv, warn or log.warning)
    if parsed.positionals:
        raise UsageError(f"unexpected argument: {parsed.positionals[0]!r}")
    kwargs = {o.field_name: parsed.values.get(o.name, o.default) for o in WARMER_OPTIONS}
    kwargs["build_arg"] = tuple(_resolve_build_arg(a, env) for a in kwargs["build_arg"])
    kwargs["custom_platform"] = validate_platform(kwargs["custom_platform"] or host_platform())
    for key in ("registry_certificate", "registry_client_cert", "registry_map"):
        kwargs[key] = dict(kwargs[key])
    opts = WarmerOptions(**kwargs, given=frozenset(parsed.given))
    if not opts.image and not opts.dockerfile:
        raise UsageError("you must select at least one image to cache (--image or --dockerfile)")
    for opt in WARMER_OPTIONS:
        if not opt.implemented and opt.name in parsed.given:
            raise NotImplementedFlag(f"brickyard warm --{opt.name} is not implemented yet")
    return opts


# ---------------------------------------------------------------- help and docs


def _usage_name(opt: Option) -> str:
    head = f"-{opt.short}, --{opt.name}" if opt.short else f"    --{opt.name}"
    if opt.takes_value:
        meta = opt.metavar or (
            "|".join(opt.choices)
            if opt.kind == "choice"
            else {"int": "N", "duration": "DURATION"}.get(
                opt.kind, opt.name.upper().replace("-", "_")
            )
        )
        head += f" {meta}"
    return head


def render_help(prog: str, table: Sequence[Option] = OPTIONS, summary: str = "") -> str:
    """--help text from the table, grouped like kaniko's flag reference."""
    lines = [f"Usage: {prog} [flags]", ""]
    if summary:
        lines += [summary, ""]
    for group in GROUPS:
        members = [o for o in table if o.group == group and not o.hidden]
        if not members:
            continue
        lines.append(f"{group}:")
        for opt in members:
            text = opt.help
            default = opt.default_text()
            if default and default != "false":  # pflag omits false boolean defaults
                text += f" (default {default})"
            if opt.env:
                text += f" [env {opt.env}]"
            lines.append(f"  {_usage_name(opt):<46} {text}")
        lines.append("")
    lines.append("  -h, --help                                     Show this help and exit.")
    return "\n".join(lines) + "\n"


def render_flags_markdown(table: Sequence[Option] = OPTIONS) -> str:
    """docs/flags.md, generated. `python -m engine.options docs/flags.md` rewrites it."""
    out = [
        "# Flags",
        "",
        "<!-- Generated from engine/options.py by `python -m engine.options docs/flags.md`;"
        " do not edit by hand. -->",
        "",
        "`executor` and `brickyard build` take the same flags (kaniko's, plus brickyard's own).",
        "Booleans follow Go: `--cache`, `--cache=true`, `--cache=false`. Repeatable flags may be",
        "given many times. Deprecated spellings are accepted with a warning. A flag marked",
        "*not yet* is accepted, but setting it stops the build with exit code 10.",
        "",
    ]
    for group in GROUPS:
        members = [o for o in table if o.group == group]
        if not members:
            continue
        out += [f"## {group}", "", "| Flag | Type | Default | Env | Implemented | Meaning |"]
        out.append("|---|---|---|---|---|---|")
        for opt in members:
            flag = f"`--{opt.name}`" + (f", `-{opt.short}`" if opt.short else "")
            if opt.aliases:
                flag += "<br>deprecated: " + ", ".join(f"`--{a}`" for a in opt.aliases)
            kind = "|".join(opt.choices) if opt.kind == "choice" else opt.kind
            if opt.kind == "list":
                kind = "repeatable"
            default = opt.default_text()
            if opt.name == "isolation":
                default = "chroot as root, else rootless"
            if opt.name == "custom-platform":
                default = "host platform"
            notes = []
            if opt.hidden:
                notes.append("hidden")
            if opt.brickyard:
                notes.append("brickyard")
            help_text = opt.help.replace("|", "\\|")
            if notes:
                help_text += f" _({', '.join(notes)})_"
            cells = [
                flag,
                kind.replace("|", "\\|"),
                f"`{default}`" if default else "",
                f"`{opt.env}`" if opt.env else "",
                "yes" if opt.implemented else "not yet",
                help_text,
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out += [
        "## Environment",
        "",
        "| Variable | Effect |",
        "|---|---|",
        "| `KANIKO_DIR` | working directory unless `--kaniko-dir` is given |",
        "| `KANIKO_NO_PUSH` | Go boolean; when set it overrides `--no-push` (as in kaniko) |",
        "| `KANIKO_REGISTRY_MIRROR` | appended to `--registry-mirror` (`;`-separated) |",
        "| `KANIKO_REGISTRY_MAP` | appended to `--registry-map` (`orig=new;...`) |",
        "| `DOCKER_CONFIG` | directory of `config.json` for registry credentials |",
        "| `BRICKYARD_ISOLATION` | default for `--isolation` |",
        "",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    target = args[0] if args else "docs/flags.md"
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(render_flags_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
