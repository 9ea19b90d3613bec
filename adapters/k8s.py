"""`brickyard k8s render`: Pod and Job manifests for a one-off build.

Context from a volume (PVC), a git URL or a bucket URL; registry auth from a docker config
secret; no privileged mode, the runtime's default capabilities (root for chroot RUN steps).
Manifests are data dumped as YAML.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.defaults import BUILDER_IMAGE, DOCKER_CONFIG_DIR
from adapters.render import dump_yaml_documents
from engine.errors import AdapterError

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
WORKSPACE = "/workspace"


@dataclass(frozen=True)
class K8sBuild:
    destinations: tuple[str, ...]
    context_from: str = "volume:brickyard-context"
    dockerfile: str = "Dockerfile"
    name: str = "brickyard-build"
    namespace: str = ""
    image: str = BUILDER_IMAGE
    secret: str = "regcred"
    bucket_secret: str = ""
    build_args: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def check(self) -> None:
        if not _NAME.match(self.name) or len(self.name) > 63:
            raise AdapterError(f"name {self.name!r}: not a Kubernetes DNS label")
        if not self.destinations:
            raise AdapterError("k8s render: at least one --destination is required")
        if self.context_from.split(":", 1)[0] not in ("volume", "git", "bucket"):
            raise AdapterError(
                f"--context-from {self.context_from!r}: use volume:, git: or bucket:"
            )


def _context(
    b: K8sBuild,
) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """Executor args, volume mounts, volumes and envFrom for the build context source."""
    kind, _, where = b.context_from.partition(":")
    if kind == "volume":
        claim, _, sub = where.partition("/")
        mount: dict[str, Any] = {"name": "context", "mountPath": WORKSPACE, "readOnly": True}
        if sub:
            mount["subPath"] = sub
        volume = {
            "name": "context",
            "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
        }
        dockerfile = b.dockerfile if b.dockerfile.startswith("/") else f"{WORKSPACE}/{b.dockerfile}"
        return [f"--context=dir://{WORKSPACE}", f"--dockerfile={dockerfile}"], [mount], [volume], []
    if kind == "git":
        url = where if where.startswith("git://") else re.sub(r"^https?://", "git://", where)
        return [f"--context={url}", f"--dockerfile={b.dockerfile}"], [], [], []
    env_from = [{"secretRef": {"name": b.bucket_secret}}] if b.bucket_secret else []
    return [f"--context={where}", f"--dockerfile={b.dockerfile}"], [], [], env_from


def pod_spec(b: K8sBuild) -> dict[str, Any]:
    b.check()
    args, mounts, volumes, env_from = _context(b)
    args += [f"--destination={d}" for d in b.destinations]
    args += [f"--build-arg={a}" for a in b.build_args] + list(b.extra_args)
    container: dict[str, Any] = {
        "name": "brickyard",
        "image": b.image,
        "command": ["executor"],
        "args": args,
        "env": [{"name": "DOCKER_CONFIG", "value": DOCKER_CONFIG_DIR}],
        "securityContext": {"privileged": False, "runAsUser": 0},
        "volumeMounts": [
            *mounts,
            {"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True},
        ],
    }
    if env_from:
        container["envFrom"] = env_from
    return {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [
            *volumes,
            {
                "name": "docker-config",
                "secret": {
                    "secretName": b.secret,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            },
        ],
    }


def _metadata(b: K8sBuild) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": b.name, "labels": {"app.kubernetes.io/name": "brickyard"}}
    if b.namespace:
        meta["namespace"] = b.namespace
    return meta


def pod_manifest(b: K8sBuild) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _metadata(b), "spec": pod_spec(b)}


def job_manifest(b: K8sBuild) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(b),
        "spec": {
            "backoffLimit": 0,  # a failed build is a result, not a flake to retry
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "brickyard"}},
                "spec": pod_spec(b),
            },
        },
    }


def render(argv: list[str], env: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="brickyard k8s render", description=__doc__)
    parser.add_argument("--kind", choices=("pod", "job", "both"), default="job")
    parser.add_argument("--destination", "-d", action="append", default=[], required=True)
    parser.add_argument(
        "--context-from",
        default="volume:brickyard-context",
        help="volume:CLAIM[/subdir] | git:URL[#ref] | bucket:s3://b/ctx.tar.gz",
    )
    parser.add_argument("--dockerfile", default="Dockerfile")
    parser.add_argument("--name", default="brickyard-build")
    parser.add_argument("--namespace", default="")
    parser.add_argument("--image", default=BUILDER_IMAGE)
    parser.add_argument("--secret", default="regcred", help="docker config secret")
    parser.add_argument("--bucket-secret", default="", help="secret with bucket credentials")
    parser.add_argument("--build-arg", action="append", default=[])
    parser.add_argument("extra", nargs="*", help="after --: more executor flags")
    ns = parser.parse_args(argv)
    build = K8sBuild(
        destinations=tuple(ns.destination),
        context_from=ns.context_from,
        dockerfile=ns.dockerfile,
        name=ns.name,
        namespace=ns.namespace,
        image=ns.image,
        secret=ns.secret,
        bucket_secret=ns.bucket_secret,
        build_args=tuple(ns.build_arg),
        extra_args=tuple(ns.extra),
    )
    docs = {"pod": [pod_manifest(build)], "job": [job_manifest(build)]}
    chosen = docs["pod"] + docs["job"] if ns.kind == "both" else docs[ns.kind]
    print(dump_yaml_documents(*chosen), end="")
    return 0


SUBCOMMANDS: dict[str, Callable[[list[str], Mapping[str, str]], int]] = {"render": render}
