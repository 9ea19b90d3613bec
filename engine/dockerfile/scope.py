"""ARG and ENV scoping and which instructions get variables expanded, as Docker does it.

- Global ARGs (before the first FROM) are seen by FROM lines only; a stage sees one
  when it declares `ARG NAME` again (value inherited unless given a default there).
- `--build-arg` beats an ARG default; ENV beats ARG of the same name.
- Proxy ARGs (HTTP_PROXY, ...) reach RUN without being declared and stay out of history.
- Automatic platform ARGs (TARGETPLATFORM, BUILDARCH, ...) are global ARGs that a stage
  must declare (`ARG TARGETARCH`) to see.
- Expansion happens in ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR and
  ARG defaults (plus COPY/ADD --chown/--chmod/--checksum/--exclude and RUN --mount
  values). RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are left to
  the shell or to the build that runs the trigger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from engine.dockerfile.model import Heredoc, Instruction
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
_HEREDOC_SOURCE = re.compile(r"\d*<<-?[^<]+\Z")
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
        # Name -> value for FROM lines; a declared global ARG without value is "".
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
                value = ""
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

    def stage_scope(self, base_image_env: Mapping[str, str]) -> StageScope:
        return StageScope(self, base_image_env)

    def unused_build_args(self) -> list[str]:
        """Build args no ARG consumed so far (proxy and platform args never count)."""
        ignore = set(PROXY_ARGS) | set(PLATFORM_ARGS)
        return sorted(k for k in self.build_args if k not in self.consumed and k not in ignore)


class StageScope:
    """Variables of one stage while its instructions are dispatched in order."""

    def __init__(self, global_scope: GlobalScope, base_image_env: Mapping[str, str]) -> None:
        self.global_scope = global_scope
        self.env: dict[str, str] = dict(base_image_env)
        self.args: dict[str, str | None] = {}

    # -- variables ----------------------------------------------------------
    def variables(self) -> dict[str, str]:
        """What `$NAME` sees: ARGs declared in this stage, overridden by ENV."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(self.env)
        return out

    def run_env(self) -> dict[str, str]:
        """Environment for RUN: undeclared proxy build args, then ARGs, then ENV."""
        out = {
            k: v
            for k, v in self.global_scope.build_args.items()
            if k in PROXY_ARGS and k not in self.args
        }
        out.update(self.variables())
        return out

    def run_build_args(self) -> list[tuple[str, str]]:
        """ARGs with values in scope, for RUN history (`|N K=V ...`) and cache keys."""
        return [(k, v) for k, v in self.args.items() if v is not None and k not in self.env]

    def unused_build_args(self) -> list[str]:
        return self.global_scope.unused_build_args()

    # -- instructions -------------------------------------------------------
    def _word(self, word: str, ins: Instruction, variables: Mapping[str, str]) -> str:
        return self.global_scope.expand_word(word, variables, ins)

    def expand_instruction(self, ins: Instruction) -> Instruction:
        """A copy of `ins` with variables expanded where Docker expands them."""
        if ins.expanded:
            return ins
        v = self.variables()
        kw = ins.keyword
        word = self._word
        changes: dict[str, object] = {"expanded": True}
        if kw in ("ENV", "LABEL"):
            changes["args"] = tuple(word(a, ins, v) for a in ins.args)
        elif kw == "ARG":
            changes["args"] = tuple(
                name if default is None else f"{name}={default}"
                for name, default, _ in self._resolve_args(ins)
            )
        elif kw in ("ADD", "COPY"):
            changes["args"] = tuple(
                a if _HEREDOC_SOURCE.match(a) and ins.heredocs else word(a, ins, v)
                for a in ins.args
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
            elif k == "from":
                # BuildKit resolves --from before stages run: only global ARGs apply.
                val = self.global_scope.expand_from(val, ins)
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
            return
        for name, _, arg_value in self._resolve_args(ins):
            if name in self.global_scope.build_args:
                self.global_scope.consumed.add(name)
            self.args[name] = arg_value

    def _resolve_args(self, ins: Instruction) -> list[tuple[str, str | None, str | None]]:
        """(name, expanded default, value) for each ARG word, in order: a default may use
        an ARG declared earlier on the same line."""
        gs = self.global_scope
        v = self.variables()
        out: list[tuple[str, str | None, str | None]] = []
        for word in ins.args:
            name, default = split_arg(word)
            if default is not None and not ins.expanded:
                default = self._word(default, ins, v)
            value: str | None
            if name in gs.build_args:
                value = gs.build_args[name]
            elif default is not None:
                value = default
            elif name in gs.meta:
                value = gs.meta[name]
            else:
                value = None
            if value is not None and name not in self.env:
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
                data = lex.process_word(data, self.variables())
            except ShellError as exc:
                raise DockerfileError(str(exc), file=self.global_scope.filename) from None
        return data
