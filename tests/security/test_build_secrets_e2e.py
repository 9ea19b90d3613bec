"""Whole builds: a secret passed with --secret or as URL credentials never reaches the log,
the image config/history or a layer; a --build-arg reaches history only as BuildKit puts it
there (RUN `|N K=V`, ARG K=V), never the log or the config's Env."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import e2e  # noqa: F401  (fixture)
from tests.e2e.harness import E2E, Built

SECRET = "s3cr3t-F1LE-value"
ARG_VALUE = "Pa55-BuildArg-value"


def _layer_bytes(b: Built) -> bytes:
    """Every layer blob of the pushed image, decompressed, concatenated."""
    host, _, rest = b.ref.partition("/")
    repo = rest.rpartition(":")[0]
    out = b""
    for layer in b.manifest["layers"]:
        r = requests.get(f"http://{host}/v2/{repo}/blobs/{layer['digest']}", timeout=10)
        r.raise_for_status()
        out += gzip.decompress(r.content) if r.content[:2] == b"\x1f\x8b" else r.content
    return out


def test_secret_mount_and_build_arg_stay_where_buildkit_keeps_them(
    e2e: E2E,  # noqa: F811
    tmp_path: Path,
) -> None:
    secret = tmp_path / "token"
    secret.write_text(SECRET)
    dockerfile = (
        "FROM {base}\n"
        "ARG PASSWORD\n"
        "RUN --mount=type=secret,id=token test -s /run/secrets/token && echo used > /used\n"
        'RUN test -n "$PASSWORD" && echo arg-seen > /arg\n'
    )
    b = e2e.build(
        "secrets",
        dockerfile,
        args=[
            "--secret",
            f"id=token,src={secret}",
            "--build-arg",
            f"PASSWORD={ARG_VALUE}",
            "--verbosity",
            "trace",
        ],
    ).ok()
    config = json.dumps(b.config)
    layers = _layer_bytes(b)
    assert SECRET not in b.log and SECRET not in config
    assert SECRET.encode() not in layers
    assert ARG_VALUE not in b.log
    assert ARG_VALUE not in json.dumps(b.container.get("Env", []))
    assert ARG_VALUE.encode() not in layers
    # BuildKit's history lists the build args a RUN saw (and ARG's value); brickyard matches
    history = [h.get("created_by", "") for h in b.config["history"]]
    assert any(f"|1 PASSWORD={ARG_VALUE} " in h for h in history), history


def test_registry_url_credentials_in_a_git_context_never_reach_the_log(
    e2e: E2E,  # noqa: F811
    tmp_path: Path,
) -> None:
    b = e2e.build(
        "gitcreds",
        "FROM {base}\n",
        args=["--context", "https://bob:UrlPa55w0rd@127.0.0.1:9/org/repo.git#main"],
    )
    assert b.rc != 0
    assert "UrlPa55w0rd" not in b.log
    assert "127.0.0.1" in b.log


@pytest.mark.parametrize("flag", ["--registry-mirror", "--cache-repo"])
def test_credentials_in_registry_flags_never_reach_the_log(
    e2e: E2E,  # noqa: F811
    flag: str,
) -> None:
    b = e2e.build(
        f"flagcreds{flag.strip('-')}",
        "FROM {base}\nRUN true\n",
        args=[flag, "https://bob:FlagPa55w0rd@127.0.0.1:9", "--cache=true"],
    )
    assert "FlagPa55w0rd" not in b.log, b.log[-2000:]
