"""A whole build inside the capability set of a default, unprivileged Kubernetes pod:
Docker's default capabilities, no CAP_SYS_ADMIN, no_new_privs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import E2E, Built, Entry, entry, exists

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCKER_DEFAULT_CAPS = (
    "chown,dac_override,fsetid,fowner,mknod,net_raw,setgid,setuid,setfcap,setpcap,"
    "net_bind_service,sys_chroot,kill,audit_write"
)
DEFAULT_POD = [
    "setpriv",
    "--no-new-privs",
    "--inh-caps=-all",
    "--bounding-set=-all," + ",".join(f"+{c}" for c in DOCKER_DEFAULT_CAPS.split(",")),
]


def test_whole_build_with_docker_default_capabilities(e2e: E2E) -> None:
    ctx = e2e.work / "restricted-ctx"
    ctx.mkdir()
    (ctx / "app.conf").write_text("x=1\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {e2e.base}\nRUN grep -c CapEff /proc/self/status > /caps && rm /bin/vi\n"
        "COPY --chown=app:app app.conf /etc/app.conf\nUSER app\nRUN id -u > /tmp/uid\n"
    )
    ref = f"{e2e.registry}/e2e/restricted:latest"
    code = "import sys; from engine.cli import executor_main; sys.exit(executor_main())"
    proc = subprocess.run(
        [
            *DEFAULT_POD,
            sys.executable,
            "-c",
            code,
            "--context",
            str(ctx),
            "--destination",
            ref,
            "--insecure",
            "--insecure-pull",
            "--log-format",
            "text",
        ],
        cwd=REPO,
        env={"HOME": str(e2e.work), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    b = Built(0, proc.stderr, ref, ctx, e2e)
    assert entry(b.rootfs, "/etc/app.conf") == Entry("file", 0o644, 1000, 1000, "x=1\n")
    assert entry(b.rootfs, "/tmp/uid").content == "1000\n"
    assert entry(b.rootfs, "/caps").content == "1\n"  # RUN saw a /proc
    assert not exists(b.rootfs, "/bin/vi")
    assert not exists(b.rootfs, "/etc/resolv.conf")  # RUN plumbing never leaks
