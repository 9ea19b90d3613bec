"""The image config as Docker writes it, and how each Dockerfile instruction changes it.

Pure: no filesystem, no parser types. The orchestrator turns an expanded instruction into
one of the `apply_*` calls below and records a history entry with `add_history`.

History follows BuildKit's wording ("ENV A=b", "RUN /bin/sh -c make", "COPY src /dst")
without BuildKit's " # buildkit" marker, and comment `HISTORY_COMMENT`; `empty_layer` is set
wherever no layer was made.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.dockerfile.commands import DEFAULT_PATH
from engine.errors import DockerfileError

DEFAULT_SHELL = ("/bin/sh", "-c")
HISTORY_COMMENT = "brickyard.dockerfile.v0"
EPOCH = "1970-01-01T00:00:00Z"

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """Parse a Go duration ("30s", "1m30s", "500ms") into nanoseconds, as Docker does."""
    s = text.strip()
    if s in ("0", ""):
        return 0
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise DockerfileError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * round(total)


def format_created(when: dt.datetime | None) -> str:
    """RFC 3339 in UTC with nanosecond-style fraction trimmed, or the epoch when None."""
    if when is None:
        return EPOCH
    when = when.astimezone(dt.UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


def expand_ports(specs: Iterable[str]) -> list[str]:
    """EXPOSE arguments -> "port/proto" keys: default tcp, lower-case protocol, ranges expanded."""
    keys: list[str] = []
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        port, _, proto = spec.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise DockerfileError(f"invalid proto: {proto}")
        if ":" in port:
            # Docker accepts ip:host:container specs but only exposes the container port.
            port = port.rsplit(":", 1)[1]
        lo, _, hi = port.partition("-")
        try:
            start, end = int(lo), int(hi or lo)
        except ValueError as exc:
            raise DockerfileError(f"invalid containerPort: {port}") from exc
        if not (0 <= start <= end <= 65535):
            raise DockerfileError(f"invalid port range: {port}")
        for p in range(start, end + 1):
            key = f"{p}/{proto}"
            if key not in keys:
                keys.append(key)
    return keys


@dataclass
class StageConfig:
    """The mutable image config of one stage: the base's config plus what the stage applied.

    `data` is the whole config JSON object ("architecture", "os", "config", "history", ...);
    `rootfs.diff_ids` is set by `to_json`. `cmd_set` tracks whether this stage set CMD, because
    an ENTRYPOINT resets only an inherited CMD.
    """

    data: dict[str, Any]
    cmd_set: bool = False
    onbuild_triggers: list[str] = field(default_factory=list)

    @classmethod
    def scratch(
        cls, os_name: str = "linux", architecture: str = "amd64", variant: str = ""
    ) -> StageConfig:
        data: dict[str, Any] = {
            "architecture": architecture,
            "os": os_name,
            "config": {"Env": [f"PATH={DEFAULT_PATH}"]},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }
        if variant:
            data["variant"] = variant
        return cls(data)

    @classmethod
    def from_base(cls, base: Mapping[str, Any]) -> StageConfig:
        """Start a stage from a base image's config. Its ONBUILD triggers move out of the
        config into `onbuild_triggers` (the caller runs them first), as Docker does."""
        data = copy.deepcopy(dict(base))
        data.setdefault("config", {})
        data["config"] = data["config"] or {}
        if data["config"].get("Env") is None:
            # kaniko (initConfig): a base whose config has no Env at all, scratch included,
            # gets the default PATH; an Env without PATH stays as it is (BuildKit would add
            # one). RUN gets a PATH either way (engine.run.step_env).
            data["config"]["Env"] = [f"PATH={DEFAULT_PATH}"]
        data.setdefault("history", [])
        data["history"] = data["history"] or []
        data.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        for key in ("container", "container_config", "docker_version"):
            data.pop(key, None)
        triggers = list(data["config"].pop("OnBuild", None) or [])
        return cls(data, onbuild_triggers=triggers)

    # -- accessors used by the orchestrator -------------------------------------------------

    @property
    def container(self) -> dict[str, Any]:
        conf: dict[str, Any] = self.data["config"]
        return conf

    @property
    def env(self) -> list[str]:
        return list(self.container.get("Env") or [])

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    @property
    def shell(self) -> list[str]:
        return list(self.container.get("Shell") or DEFAULT_SHELL)

    @property
    def user(self) -> str:
        return str(self.container.get("User") or "")

    @property
    def workdir(self) -> str:
        return str(self.container.get("WorkingDir") or "/")

    @property
    def history(self) -> list[dict[str, Any]]:
        hist: list[dict[str, Any]] = self.data["history"]
        return hist

    # -- instructions -----------------------------------------------------------------------

    def apply_env(self, pairs: Sequence[tuple[str, str]]) -> str:
        env = self.env
        for key, value in pairs:
            item = f"{key}={value}"
            for i, existing in enumerate(env):
                if existing.partition("=")[0] == key:
                    env[i] = item
                    break
            else:
                env.append(item)
        self.container["Env"] = env
        return "ENV " + " ".join(f"{k}={v}" for k, v in pairs)

    @staticmethod
    def describe_arg(pairs: Sequence[tuple[str, str | None]]) -> str:
        """ARG never enters the config; only its history entry."""
        return "ARG " + " ".join(k if v is None else f"{k}={v}" for k, v in pairs)

    def apply_labels(self, pairs: Sequence[tuple[str, str]]) -> str:
        labels = dict(self.container.get("Labels") or {})
        for key, value in pairs:
            labels[key] = value
        self.container["Labels"] = labels
        return "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)

    def apply_expose(self, specs: Sequence[str]) -> str:
        ports = dict(self.container.get("ExposedPorts") or {})
        keys = expand_ports(specs)
        for key in keys:
            ports[key] = {}
        self.container["ExposedPorts"] = ports
        return "EXPOSE " + " ".join(keys)

    def apply_volume(self, paths: Sequence[str]) -> str:
        volumes = dict(self.container.get("Volumes") or {})
        for p in paths:
            if not p.strip():
                raise DockerfileError("VOLUME specified can not be an empty string")
            volumes[p] = {}
        self.container["Volumes"] = volumes
        return "VOLUME " + json.dumps(list(paths))

    def apply_user(self, user: str) -> str:
        self.container["User"] = user
        return f"USER {user}"

    def resolve_workdir(self, path: str) -> str:
        """Where WORKDIR `path` leads from the current working directory."""
        if not path:
            raise DockerfileError("WORKDIR requires exactly one argument")
        return posixpath.normpath(posixpath.join(self.workdir, path)).replace("//", "/")

    def apply_workdir(self, path: str) -> str:
        resolved = self.resolve_workdir(path)
        self.container["WorkingDir"] = resolved
        return f"WORKDIR {resolved}"

    def command_argv(self, args: Sequence[str], json_form: bool) -> list[str]:
        """Shell form goes through the current SHELL; exec (JSON) form is taken as is."""
        if json_form:
            return list(args)
        return [*self.shell, " ".join(args)]

    def apply_cmd(self, args: Sequence[str], json_form: bool) -> str:
        argv = self.command_argv(args, json_form)
        self.container["Cmd"] = argv
        self.cmd_set = True
        return "CMD " + json.dumps(argv)

    def apply_entrypoint(self, args: Sequence[str], json_form: bool) -> str:
        if not json_form and not "".join(args).strip():
            argv: list[str] = []
        else:
            argv = self.command_argv(args, json_form)
        self.container["Entrypoint"] = argv or None
        if not self.cmd_set:
            # Docker: an ENTRYPOINT drops a CMD inherited from the base image.
            self.container["Cmd"] = None
        return "ENTRYPOINT " + json.dumps(argv)

    def apply_healthcheck(
        self, args: Sequence[str], json_form: bool, flags: Mapping[str, str]
    ) -> str:
        """args: ["NONE"] or ["CMD", ...command]; flags: interval, timeout, start-period,
        start-interval, retries (already parsed out of the instruction)."""
        if not args:
            raise DockerfileError("HEALTHCHECK requires an argument")
        kind = args[0].upper()
        if kind == "NONE":
            if len(args) > 1 or flags:
                raise DockerfileError("HEALTHCHECK NONE takes no arguments")
            self.container["Healthcheck"] = {"Test": ["NONE"]}
            return "HEALTHCHECK NONE"
        if kind != "CMD":
            raise DockerfileError(f"unknown type {args[0]!r} in HEALTHCHECK (try CMD)")
        rest = list(args[1:])
        if not rest:
            raise DockerfileError("missing command after HEALTHCHECK CMD")
        test = ["CMD", *rest] if json_form else ["CMD-SHELL", " ".join(rest)]
        hc: dict[str, Any] = {"Test": test}
        for flag, key in (
            ("interval", "Interval"),
            ("timeout", "Timeout"),
            ("start-period", "StartPeriod"),
            ("start-interval", "StartInterval"),
        ):
            raw = flags.get(flag)
            if raw is None or raw == "":
                continue
            ns = parse_go_duration(raw)
            if ns < 0 or (ns != 0 and ns < 1_000_000):
                raise DockerfileError(f"{flag} cannot be less than 1ms")
            if ns:
                hc[key] = ns
        unknown = set(flags) - {"interval", "timeout", "start-period", "start-interval", "retries"}
        if unknown:
            raise DockerfileError(f"unknown flag: {sorted(unknown)[0]}")
        if flags.get("retries"):
            try:
                retries = int(flags["retries"])
            except ValueError as exc:
                raise DockerfileError(f"invalid retries {flags['retries']!r}") from exc
            if retries < 0:
                raise DockerfileError("--retries cannot be negative")
            if retries:
                hc["Retries"] = retries
        self.container["Healthcheck"] = hc
        return "HEALTHCHECK " + json.dumps(hc, separators=(",", ":"))

    def apply_stopsignal(self, signal: str) -> str:
        if not signal:
            raise DockerfileError("STOPSIGNAL requires exactly one argument")
        self.container["StopSignal"] = signal
        return f"STOPSIGNAL {signal}"

    def apply_shell(self, args: Sequence[str], json_form: bool) -> str:
        if not json_form or not args:
            raise DockerfileError("SHELL requires the arguments to be in JSON form")
        self.container["Shell"] = list(args)
        return "SHELL " + json.dumps(list(args))

    def apply_onbuild(self, expression: str) -> str:
        """`expression` is the trigger text after ONBUILD, unexpanded (Docker stores it raw)."""
        text = expression.strip()
        keyword = text.split(None, 1)[0].upper() if text else ""
        if keyword in ("ONBUILD", "FROM", "MAINTAINER"):
            raise DockerfileError(f"{keyword} isn't allowed as an ONBUILD trigger")
        if not keyword:
            raise DockerfileError("ONBUILD requires an instruction")
        triggers = list(self.container.get("OnBuild") or [])
        triggers.append(text)
        self.container["OnBuild"] = triggers
        return f"ONBUILD {text}"

    def apply_maintainer(self, name: str) -> str:
        self.data["author"] = name
        return f"MAINTAINER {name}"

    # -- history and serialisation ----------------------------------------------------------

    def add_history(self, created_by: str, *, empty_layer: bool, created: str) -> None:
        entry: dict[str, Any] = {
            "created": created,
            "created_by": created_by,
            "comment": HISTORY_COMMENT,
        }
        if empty_layer:
            entry["empty_layer"] = True
        self.history.append(entry)

    def to_json(self, diff_ids: Sequence[str], created: str) -> dict[str, Any]:
        """The final config object: null/empty container fields dropped as Docker omits them."""
        out = copy.deepcopy(self.data)
        out["created"] = created
        out["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
        conf = {k: v for k, v in out.get("config", {}).items() if v is not None}
        out["config"] = conf
        return out


def run_created_by(argv: Sequence[str], build_args: Mapping[str, str]) -> str:
    """BuildKit's RUN history text: "RUN |2 A=1 B=2 /bin/sh -c make" when build args are in
    scope (not shadowed by ENV), else "RUN /bin/sh -c make"."""
    prefix = ""
    if build_args:
        pairs = " ".join(f"{k}={v}" for k, v in sorted(build_args.items()))
        prefix = f"|{len(build_args)} {pairs} "
    return "RUN " + prefix + " ".join(argv)


def copy_created_by(
    keyword: str, flags: Mapping[str, str], sources: Sequence[str], dest: str
) -> str:
    flag_text = "".join(f"--{k}={v} " for k, v in flags.items() if v is not None)
    return f"{keyword} {flag_text}{' '.join(sources)} {dest}".replace("  ", " ")
