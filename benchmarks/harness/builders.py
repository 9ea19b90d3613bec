"""How each builder is invoked. Every builder keeps all its state under `state` (on the
run's fresh ext4) and pulls its base image from the local TLS registry without verifying it.

Timed: the build itself. brickyard's build includes pushing the image to the local registry
(a CI build's real output; kaniko-style builders have no local image store). buildah's and
ch-image's builds end in their local storage; their push (for measuring layers and compressed
size, first run only) is not timed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.cases import Case

CH_IMAGE = ["/usr/bin/python3", "/usr/bin/ch-image"]  # Debian's python3 has python3-lark


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str]


def base_env(state: Path) -> dict[str, str]:
    tmp = state / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(state / "home"),
        "USER": "root",
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        # ch-image's build cache is a git repository: commits need an identity.
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    (state / "home").mkdir(parents=True, exist_ok=True)
    return env


def build_arg_flags(case: Case) -> list[str]:
    """The case's build args as `--build-arg K=V` pairs: every builder spells them the same."""
    return [f for k, v in case.build_args.items() for f in ("--build-arg", f"{k}={v}")]


class Builder:
    name = ""
    pushes_in_build = False
    flattens = False  # one layer holding the whole image (ch-image): report the whole image
    measures_size = True

    def unsupported(self, case: Case) -> str:
        return ""

    def build(
        self,
        case: Case,
        ctx: Path,
        state: Path,
        *,
        base: str,
        ref: str,
        registry: str,
        cache_repo: str | None = None,
    ) -> Invocation:
        raise NotImplementedError

    def publish(self, state: Path, *, ref: str) -> Invocation | None:
        return None


class Brickyard(Builder):
    name = "brickyard"
    pushes_in_build = True
    # harness/install.py's virtualenv copy of this checkout, set by run.py
    executor: Path | None = None
    extra_flags: tuple[str, ...] = ()  # appended to every build's command line

    def build(
        self,
        case: Case,
        ctx: Path,
        state: Path,
        *,
        base: str,
        ref: str,
        registry: str,
        cache_repo: str | None = None,
    ) -> Invocation:
        if self.executor is None:
            raise RuntimeError("brickyard is not installed: call install_brickyard first")
        env = base_env(state)
        env["DOCKER_CONFIG"] = str(state / "docker-config")
        # The executor image's /kaniko exists before the build: the workspace lives in it.
        (state / "kaniko").mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.executor),
            "--context",
            f"dir://{ctx}",
            "--dockerfile",
            str(ctx / "Dockerfile"),
            "--destination",
            ref,
            "--skip-tls-verify-registry",
            registry,
            "--kaniko-dir",
            str(state / "kaniko"),
        ]
        argv += build_arg_flags(case)
        if cache_repo:
            argv += ["--cache=true", "--cache-copy-layers=true", "--cache-repo", cache_repo]
        return Invocation([*argv, *self.extra_flags], env)


class BrickyardNoPush(Brickyard):
    """The same build with --no-push: what brickyard costs without the registry upload,
    comparable to the peers' timed builds, which end in local storage."""

    name = "brickyard-nopush"
    measures_size = False
    extra_flags = ("--no-push",)


class Buildah(Builder):
    name = "buildah"

    def _global(self, state: Path) -> list[str]:
        return [
            "buildah",
            "--root",
            str(state / "root"),
            "--runroot",
            str(state / "runroot"),
            "--storage-driver",
            "overlay",
        ]

    def build(
        self,
        case: Case,
        ctx: Path,
        state: Path,
        *,
        base: str,
        ref: str,
        registry: str,
        cache_repo: str | None = None,
    ) -> Invocation:
        argv = [
            *self._global(state),
            "bud",
            "--isolation=chroot",
            "--layers",
            "--tls-verify=false",
            "-f",
            str(ctx / "Dockerfile"),
            "-t",
            "bench-image",
        ]
        argv += build_arg_flags(case)
        argv.append(str(ctx))
        return Invocation(argv, base_env(state))

    def publish(self, state: Path, *, ref: str) -> Invocation | None:
        argv = [
            *self._global(state),
            "push",
            "--tls-verify=false",
            "bench-image",
            f"docker://{ref}",
        ]
        return Invocation(argv, base_env(state))


class ChImage(Builder):
    name = "ch-image"
    flattens = True

    def build(
        self,
        case: Case,
        ctx: Path,
        state: Path,
        *,
        base: str,
        ref: str,
        registry: str,
        cache_repo: str | None = None,
    ) -> Invocation:
        argv = [
            *CH_IMAGE,
            "-s",
            str(state / "ch"),
            "build",
            "--tls-no-verify",
            "-t",
            "bench-image",
            "-f",
            str(ctx / "Dockerfile"),
        ]
        argv += build_arg_flags(case)
        argv.append(str(ctx))
        return Invocation(argv, base_env(state))

    def publish(self, state: Path, *, ref: str) -> Invocation | None:
        argv = [*CH_IMAGE, "-s", str(state / "ch"), "push", "--tls-no-verify", "bench-image", ref]
        return Invocation(argv, base_env(state))


BUILDERS: dict[str, Builder] = {
    b.name: b for b in (Brickyard(), BrickyardNoPush(), Buildah(), ChImage())
}
