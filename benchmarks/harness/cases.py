"""The benchmark cases: each writes its build context (Dockerfile included) into a directory.

Dockerfiles name their base as `${BASE}` after an `ARG BASE` line; the harness writes the
concrete local-registry reference in before each run (ch-image cannot expand ARGs in FROM).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    make_context: Callable[[Path], None]
    base: str = "busybox"  # or "debian"
    build_args: dict[str, str] = field(default_factory=dict)
    # cached-rebuild: change applied between the warm-up build and the measured rebuild
    mutate: Callable[[Path], None] | None = None


SMALL_APP = """\
ARG BASE
FROM ${BASE}
ARG APP_VERSION=1.0
ENV APP_HOME=/app APP_VERSION=${APP_VERSION}
WORKDIR /app
COPY src/ /app/src/
RUN find /app/src -type f | wc -l > /app/file-count
RUN echo "version $APP_VERSION" > /app/version && mkdir -p /app/var/log \\
 && touch /app/var/log/app.log
RUN cat /app/src/*/*.txt | md5sum > /app/src.md5
ENV APP_MODE=production
COPY config/ /app/config/
"""


def small_app(ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(SMALL_APP)
    for d in range(10):
        sub = ctx / "src" / f"pkg{d}"
        sub.mkdir(parents=True)
        for i in range(20):
            body = "".join(f"line {j} of module {d}.{i}\n" for j in range(40 + i))
            (sub / f"mod{i}.txt").write_text(body)
    (ctx / "config").mkdir()
    (ctx / "config/app.conf").write_text("port = 8080\nworkers = 4\n")
    (ctx / ".dockerignore").write_text("*.tmp\n")


def change_config(ctx: Path) -> None:
    (ctx / "config/app.conf").write_text("port = 9090\nworkers = 8\n")


MANY_FILES = """\
ARG BASE
FROM ${BASE}
RUN mkdir /data && cd /data && i=0 && while [ $i -lt 100 ]; do mkdir d$i; i=$((i+1)); done \\
 && awk 'BEGIN { for (i = 0; i < 100000; i++) { f = "/data/d" int(i / 1000) "/f" i; \\
      printf "small file %d\\n", i > f; close(f) } }'
RUN find /data -type f -name 'f*0' | xargs rm -f \\
 && find /data -type f -name 'f*1' | awk '{ print "modified" >> $0; close($0) }'
"""


def many_files(ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(MANY_FILES)


BIG_LAYER = """\
ARG BASE
FROM ${BASE}
RUN mkdir /data \\
 && dd if=/dev/urandom of=/data/random.bin bs=1M count=384 2>/dev/null \\
 && dd if=/dev/zero of=/data/zeros.bin bs=1M count=384 2>/dev/null \\
 && yes "log line: request served in 12 ms, status 200, bytes 5120" \\
    | head -c 268435456 > /data/text.log \\
 && ls -l /data
"""


def big_layer(ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(BIG_LAYER)


MULTI_STAGE = """\
ARG BASE
FROM ${BASE} AS build
WORKDIR /src
COPY src/ /src/
RUN mkdir -p /out/bin /out/share \\
 && for f in /src/*.txt; do md5sum "$f" >> /out/share/manifest; done \\
 && i=0 && while [ $i -lt 2000 ]; do echo "artifact $i" > /out/share/a$i; i=$((i+1)); done \\
 && tar -cf /out/bin/app.tar -C /src .

FROM ${BASE}
COPY --from=build /out/ /app/
RUN ls /app/share | wc -l > /app/count
"""


def multi_stage(ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(MULTI_STAGE)
    (ctx / "src").mkdir()
    for i in range(50):
        (ctx / "src" / f"unit{i}.txt").write_text(f"unit {i}\n" * 200)


PACKAGE_INSTALL = """\
ARG BASE
FROM ${BASE}
COPY bench-hello_1.0_all.deb /opt/pkgs/
RUN dpkg -i /opt/pkgs/bench-hello_1.0_all.deb && rm -r /opt/pkgs \\
 && /usr/bin/bench-hello
"""


def package_install(ctx: Path) -> None:
    """A small .deb (a script plus 2 MiB of data files) built with dpkg-deb."""
    (ctx / "Dockerfile").write_text(PACKAGE_INSTALL)
    pkg = ctx.parent / f"{ctx.name}-pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(
        "Package: bench-hello\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: brickyard benchmarks <bench@example.invalid>\n"
        "Description: benchmark package\n"
    )
    (pkg / "usr/bin").mkdir(parents=True)
    script = pkg / "usr/bin/bench-hello"
    script.write_text("#!/bin/sh\necho hello from a package\n")
    script.chmod(0o755)
    share = pkg / "usr/share/bench-hello"
    share.mkdir(parents=True)
    for i in range(200):
        (share / f"data{i}.txt").write_text(f"data file {i}\n" * 800)
    subprocess.run(
        [
            "dpkg-deb",
            "--root-owner-group",
            "--build",
            str(pkg),
            str(ctx / "bench-hello_1.0_all.deb"),
        ],
        check=True,
        capture_output=True,
    )


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case(
            "small-app",
            "WORKDIR, COPY of a 200-file tree, 3 RUNs, ENV, build arg",
            small_app,
            build_args={"APP_VERSION": "2.0"},
        ),
        Case(
            "many-files",
            "RUN creating 100,000 small files; RUN deleting 10%, modifying 10%",
            many_files,
        ),
        Case(
            "big-layer",
            "RUN producing 1 GiB (384 MiB random, 384 MiB zeros, 256 MiB text)",
            big_layer,
        ),
        Case(
            "multi-stage",
            "build stage (COPY, RUN making 2,000 files) + final stage COPY --from",
            multi_stage,
        ),
        Case(
            "package-install",
            "dpkg -i of a .deb from the context on Debian bookworm minbase",
            package_install,
            base="debian",
        ),
        Case(
            "cached-rebuild",
            "small-app rebuilt with the cache after changing the last COPY's file",
            small_app,
            build_args={"APP_VERSION": "2.0"},
            mutate=change_config,
        ),
    )
}
