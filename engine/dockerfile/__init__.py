"""BuildKit-faithful Dockerfile frontend: parser, word expansion, ARG/ENV scoping, stages.

Usage, as the build engine drives it::

    df = parse_dockerfile(text, filename="Dockerfile")          # DockerfileError on bad input
    graph = build_stage_graph(df, {"VERSION": "1.2"}, target="app", skip_unused_stages=True)
    scopes = {}
    for stage in graph.needed_stages():                         # dependencies first
        parent = scopes.get(stage.base_stage)                   # FROM <earlier stage>
        env = parent.env if parent else image_env(stage.base)   # base image config ENV
        scope = scopes[stage.index] = graph.global_scope.stage_scope(env, parent=parent)
        for ins in [*stage.triggers, *stage.instructions]:      # base stage ONBUILDs first
            ins = scope.expand_instruction(ins)                 # ADD/COPY/ENV/... expanded
            scope.apply(ins)                                    # ARG and ENV update the scope
            if ins.keyword == "RUN":
                run(run_command(ins, shell).argv, env=scope.run_env())  # the shell expands RUN
    warn_unused(graph.unused_build_args())

`scope.env` is the image config ENV; `scope.run_build_args()` the `|N K=V` of RUN history;
`copy_sources(ins)` splits COPY/ADD into paths, heredoc files and destination;
`scope.heredoc_content(h)` gives a heredoc file's body (chomped and expanded).
Triggers from a base image's config: `parse_trigger(text, line=stage.from_instruction.line)`.
"""

from __future__ import annotations

from engine.dockerfile.commands import (
    DEFAULT_PATH,
    CopySources,
    InlineFile,
    RunCommand,
    command_argv,
    copy_sources,
    default_shell,
    parse_trigger,
    run_command,
)
from engine.dockerfile.model import KEYWORDS, Directive, Dockerfile, Heredoc, Instruction
from engine.dockerfile.parser import parse_dockerfile
from engine.dockerfile.scope import PLATFORM_ARGS, PROXY_ARGS, GlobalScope, StageScope
from engine.dockerfile.shell import expand, expand_words
from engine.dockerfile.stages import (
    PlatformSpec,
    Stage,
    StageGraph,
    build_stage_graph,
    platform_args,
)

__all__ = [
    "DEFAULT_PATH",
    "KEYWORDS",
    "PLATFORM_ARGS",
    "PROXY_ARGS",
    "CopySources",
    "Directive",
    "Dockerfile",
    "GlobalScope",
    "Heredoc",
    "InlineFile",
    "Instruction",
    "PlatformSpec",
    "RunCommand",
    "Stage",
    "StageGraph",
    "StageScope",
    "build_stage_graph",
    "command_argv",
    "copy_sources",
    "default_shell",
    "expand",
    "expand_words",
    "parse_dockerfile",
    "parse_trigger",
    "platform_args",
    "run_command",
]
