"""ARG and ENV scoping, and which instructions get variables expanded, as BuildKit does it.

- Global ARGs (before the first FROM) are seen by FROM lines only; a stage sees one when
  it declares `ARG NAME` again (value inherited unless it gives a default). A global ARG
  with neither default nor `--build-arg` stays unset.
- `--build-arg` beats an ARG default (the default is then not even expanded).
- What `$NAME` and RUN see is BuildKit's state environment: the base image ENV, then ENV
  and ARG values in instruction order, the last one writing a name winning. So an ENV
  after an ARG overrides it (the documented "ENV wins"), and an ARG written after an ENV
  of the same name is what RUN sees, while the image config keeps the ENV value.
- A stage built FROM another stage starts from that stage's variables (`parent=`).
- Proxy ARGs (HTTP_PROXY, ...) reach RUN without being declared and stay out of history.
- Automatic platform ARGs (TARGETPLATFORM, BUILDARCH, ...) are global ARGs that a stage
  must declare (`ARG TARGETARCH`) to see.
- Expansion happens in ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR and
  ARG defaults (plus COPY/ADD --chown/--chmod/--checksum/--exclude and RUN --mount
  values). RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are left to
  the shell or to the build that runs the trigger. COPY --from is never expanded.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping

from engine.dockerfile.model import Heredoc, Instruction
from engine.dockerfile.parser import heredoc_marker
from engine.dockerfile.shell import ShellError, ShellLex
from engine.errors import DockerfileError

PROXY_ARGS = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)
PLATFORM_ARGS = (
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
)
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


def split_arg(word: str) -> tuple[str, str | None]:
    """`NAME=default` -> (NAME, default); `NAME` -> (NAME, None)."""
    name, eq, value = word.partition("=")
    return name, (value if eq else None)


class GlobalScope:
    """Build-wide variable state: build args, global (meta) ARGs, consumption tracking."""

    def __init__(
        self,
        build_args: Mapping[str, str],
        automatic: Mapping[str, str],
        *,
        escape: str = "\\",
        filename: str = "Dockerfile",
    ) -> None:
        self.build_args = dict(build_args)
        self.escape = escape
        self.filename = filename
        self.lex = ShellLex(escape)
        # Name -> value for FROM lines and for stage ARGs that inherit a global one.
        self.meta: dict[str, str] = dict(automatic)
        for name in PLATFORM_ARGS:
            if name in self.build_args:
                self.meta[name] = self.build_args[name]
        self.declared_global: set[str] = set()
        self.consumed: set[str] = set()

    def declare_global(self, ins: Instruction) -> None:
        """Apply an ARG that comes before the first FROM."""
        for word in ins.args:
            name, default = split_arg(word)
            if name in self.build_args:
                value = self.build_args[name]
                self.consumed.add(name)
            elif default is not None:
                value = self.expand_word(default, self.meta, ins)
            else:
                self.declared_global.add(name)
                continue  # declared without a value: stays unset
            self.meta[name] = value
            self.declared_global.add(name)

    def expand_word(self, word: str, variables: Mapping[str, str], ins: Instruction) -> str:
        try:
            return self.lex.process_word(word, variables)
        except ShellError as exc:
            raise DockerfileError(str(exc), file=self.filename, line=ins.line) from None

    def expand_from(self, word: str, ins: Instruction) -> str:
        """Expand a FROM base name or `--platform` (and `--from=`) with global ARGs only."""
        return self.expand_word(word, self.meta, ins)

    def stage_scope(
        self, base_image_env: Mapping[str, str], *, parent: StageScope | None = None
    ) -> StageScope:
        """Scope for one stage. For `FROM <stage>` pass that stage's finished scope as
        `parent`: BuildKit carries its ENV and ARG values over (base_image_env is then
        only the image ENV, normally equal to parent.env)."""
        return StageScope(self, base_image_env, parent)

    def unused_build_args(self) -> list[str]:
        """Build args no ARG consumed so far (proxy, platform, BUILDKIT_* never count)."""
        return sorted(k for k in self.build_args if k not in self.consumed and not _always_used(k))


def _always_used(name: str) -> bool:
    return (
        name in PROXY_ARGS
        or name in PLATFORM_ARGS
        or name.startswith("BUILDKIT_")
        or name == "SOURCE_DATE_EPOCH"
    )


class StageScope:
    """Variables of one stage while its instructions are dispatched in order."""

    def __init__(
        self,
        global_scope: GlobalScope,
        base_image_env: Mapping[str, str],
        parent: StageScope | None = None,
    ) -> None:
        self.global_scope = global_scope
        # The image config ENV: base image ENV updated by ENV instructions only.
        self.env: dict[str, str] = dict(base_image_env)
        # BuildKit's state env: ENV and ARG values, last writer wins; `$NAME` reads it.
        self.state_env: dict[str, str] = dict(base_image_env)
        # ARGs declared so far (name -> value or None), in declaration order.
        self.args: dict[str, str | None] = {}
        if parent is not None:
            self.state_env = dict(parent.state_env)
            self.args = dict(parent.args)

    # -- variables ----------------------------------------------------------
    def variables(self) -> dict[str, str]:
        """What `$NAME` sees in this stage right now."""
        return dict(self.state_env)

    def run_env(self) -> dict[str, str]:
        """Environment for RUN: the state env plus proxy build args (both spellings)."""
        out: dict[str, str] = {}
        build_args = self.global_scope.build_args
        for upper in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"):
            value = None
            for key in sorted(build_args):
                if key.upper() == upper:
                    value = build_args[key]
            if value is not None:
                out[upper] = out[upper.lower()] = value
        out.update(self.state_env)
        return out

    def run_build_args(self) -> list[tuple[str, str]]:
        """Declared ARGs as RUN's history shows them (`|N K=V ...`) and cache keys use:
        every ARG in declaration order, with the value RUN sees ("" when unset)."""
        return [(k, self.state_env.get(k, v or "")) for k, v in self.args.items()]

    def unused_build_args(self) -> list[str]:
        return self.global_scope.unused_build_args()

    # -- instructions -------------------------------------------------------
    def _word(self, word: str, ins: Instruction, variables: Mapping[str, str]) -> str:
        return self.global_scope.expand_word(word, variables, ins)

    def expand_instruction(self, ins: Instruction) -> Instruction:
        """A copy of `ins` with variables expanded where Docker expands them."""
        if ins.expanded:
            return ins
        v = self.state_env  # read only here; copying it per instruction is quadratic
        kw = ins.keyword
        word = self._word
        changes: dict[str, object] = {"expanded": True}
        if kw in ("ENV", "LABEL"):
            changes["args"] = tuple(word(a, ins, v) for a in ins.args)
        elif kw == "ARG":
            # As BuildKit's history shows it: the value the ARG ends up with.
            changes["args"] = tuple(
                name if value is None else f"{name}={value}"
                for name, _, value in self._resolve_args(ins)
            )
        elif kw in ("ADD", "COPY"):
            last = len(ins.args) - 1
            changes["args"] = tuple(
                a if i < last and heredoc_marker(a) is not None else word(a, ins, v)
                for i, a in enumerate(ins.args)
            )
            changes["flag_values"] = self._copy_flags(ins, v)
        elif kw == "EXPOSE":
            ports: list[str] = []
            for a in ins.args:
                try:
                    ports += self.global_scope.lex.process_words(a, v)
                except ShellError as exc:
                    raise DockerfileError(
                        str(exc), file=self.global_scope.filename, line=ins.line
                    ) from None
            changes["args"] = tuple(ports)
        elif kw in ("VOLUME", "WORKDIR", "USER", "STOPSIGNAL"):
            changes["args"] = tuple(word(a, ins, v) for a in ins.args)
        elif kw == "FROM":
            args = list(ins.args)
            args[0] = self.global_scope.expand_from(args[0], ins)
            changes["args"] = tuple(args)
            changes["flag_values"] = tuple(
                (k, self.global_scope.expand_from(val, ins) if k == "platform" else val)
                for k, val in ins.flag_values
            )
        elif kw == "RUN":
            changes["flag_values"] = tuple(
                (k, self._mount(val, ins, v) if k == "mount" else val) for k, val in ins.flag_values
            )
        return ins.with_values(**changes)

    def _copy_flags(self, ins: Instruction, v: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        out = []
        for k, val in ins.flag_values:
            if k in ("chown", "chmod", "checksum", "exclude"):
                val = self._word(val, ins, v)
            out.append((k, val))
        return tuple(out)

    def _mount(self, spec: str, ins: Instruction, v: Mapping[str, str]) -> str:
        if "$" not in spec:
            return spec
        fields = []
        for part in spec.split(","):
            key, eq, value = part.partition("=")
            fields.append(f"{key}={self._word(value, ins, v)}" if eq else part)
        return ",".join(fields)

    def apply(self, ins: Instruction) -> None:
        """Record what ARG and ENV change (expanding `ins` first if needed)."""
        if ins.keyword not in ("ARG", "ENV"):
            return
        if ins.keyword == "ENV":
            for key, value in self.expand_instruction(ins).pairs():
                self.env[key] = value
                self.state_env[key] = value
            return
        for name, _, arg_value in self._resolve_args(ins):
            if name in self.global_scope.build_args:
                self.global_scope.consumed.add(name)
            self.args[name] = arg_value  # a redeclared ARG keeps its first position
            if arg_value is not None:
                self.state_env[name] = arg_value

    def _resolve_args(self, ins: Instruction) -> list[tuple[str, str | None, str | None]]:
        """(name, expanded default, value) for each ARG word, in order: a default may use
        an ARG declared earlier on the same line."""
        gs = self.global_scope
        v: ChainMap[str, str] = ChainMap({}, self.state_env)
        out: list[tuple[str, str | None, str | None]] = []
        for word in ins.args:
            name, default = split_arg(word)
            value: str | None
            if name in gs.build_args:
                value = gs.build_args[name]  # the default is not even expanded
            elif default is not None:
                if not ins.expanded:
                    default = self._word(default, ins, v)
                value = default
            elif name in gs.meta:
                value = gs.meta[name]
            else:
                value = None
            if value is not None:
                v[name] = value
            out.append((name, default, value))
        return out

    def heredoc_content(self, heredoc: Heredoc, *, expand: bool = True) -> str:
        """Body of a COPY/ADD heredoc file: tabs chomped for `<<-`, variables expanded
        unless the delimiter was quoted. Pass expand=False for RUN (the shell expands)."""
        data = heredoc.content
        if heredoc.chomp:
            data = _LEADING_TABS.sub("", data)
        if expand and heredoc.expand:
            lex = ShellLex("\\", skip_process_quotes=True)
            try:
                data = lex.process_word(data, self.state_env)
            except ShellError as exc:
                raise DockerfileError(str(exc), file=self.global_scope.filename) from None
        return data
