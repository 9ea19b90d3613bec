"""BuildKit-faithful Dockerfile frontend: parser, word expansion, ARG/ENV scoping, stages.

Usage, as the build engine drives it::

    df = parse_dockerfile(text, filename="Dockerfile")          # DockerfileError on bad input
    graph = build_stage_graph(df, {"VERSION": "1.2"}, target="app", skip_unused_stages=True)
    for stage in graph.needed_stages():                         # dependencies first
        parent = stage.base_stage                               # index of an earlier stage or None
        base_env = stage_env[parent] if parent is not None else image_env(stage.base)
        scope = graph.global_scope.stage_scope(base_env)
        for ins in stage.instructions:
            ins = scope.expand_instruction(ins)                 # ADD/COPY/ENV/... expanded
            scope.apply(ins)                                    # ARG and ENV update the scope
            if ins.keyword == "RUN":
                run(ins.args, env=scope.run_env())              # RUN text: the shell expands it
    warn_unused(graph.global_scope.unused_build_args())

`scope.env` is the image ENV so far; `scope.heredoc_content(h)` gives a COPY heredoc's
file body (pass expand=False for RUN heredocs: the shell expands those).
"""

from __future__ import annotations

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
    "KEYWORDS",
    "PLATFORM_ARGS",
    "PROXY_ARGS",
    "Directive",
    "Dockerfile",
    "GlobalScope",
    "Heredoc",
    "Instruction",
    "PlatformSpec",
    "Stage",
    "StageGraph",
    "StageScope",
    "build_stage_graph",
    "expand",
    "expand_words",
    "parse_dockerfile",
    "platform_args",
]
