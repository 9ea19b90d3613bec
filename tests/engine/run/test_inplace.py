"""inplace runs a step in the container's own / : tested inside a chroot made to look like a
container (busybox + the host's Python bound in, in a private mount namespace), never
against this machine's /."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.busybox import make_busybox_rootfs

REPO = Path(__file__).resolve().parents[3]
PYTHON_HOME = Path(sys.base_prefix)

SCRIPT = """
import io, json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from engine.run import StepMount, select_isolation
out = io.StringIO()
iso = select_isolation("inplace", 0, executor_image=True)
status = iso.run(["/bin/sh", "-c", "echo inside > /tmp/made-by-step; id -u; pwd"],
                 rootfs=Path("/"), env={}, cwd="/workspace", user="app", step_label="s",
                 out=out)
out2 = io.StringIO()
mounts = [StepMount("bind", "/mnt/x", "/srcdir"), StepMount("tmpfs", "/tmp/t")]
script = ("/dev/pipes/S; cat /mnt/x/f; touch /mnt/x/g 2>/dev/null || echo ro; "
          "echo t > /tmp/t/f && echo tmpfs; grep -c : /proc/net/dev")
status2 = iso.run(["/bin/sh", "-c", script], rootfs=Path("/"), env={}, cwd="/", user=None,
                  step_label="s", out=out2, network="none", mounts=mounts,
                  files=[("S", b"#!/bin/sh\\necho $0\\n", 0o755)])
print(json.dumps({"status": status, "out": out.getvalue(), "status2": status2,
                  "out2": out2.getvalue()}))
"""


def test_inplace_runs_in_the_containers_own_root(tmp_path: Path) -> None:
    root = make_busybox_rootfs(tmp_path / "container")
    os.chmod(root / "tmp", 0o1777)
    (root / "srcdir").mkdir()
    (root / "srcdir/f").write_text("bound\n")
    binds = ["/usr", "/lib", "/lib64", str(PYTHON_HOME), str(REPO), "/proc", "/dev"]
    # a container's / is a mount point of its own
    script_lines = ["set -e", "mount --make-rprivate /", f"mount --bind {root} {root}"]
    for src in binds:
        if not os.path.exists(src):
            continue
        dst = root / src.lstrip("/")
        dst.mkdir(parents=True, exist_ok=True)
        script_lines.append(f"mount --rbind {src} {dst}")
    script_lines.append(f"exec chroot {root} {sys.executable} -c '{SCRIPT}' {REPO}")
    res = subprocess.run(
        ["unshare", "-m", "sh", "-c", "\n".join(script_lines)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["status"] == 0
    assert result["out"].splitlines() == ["s 1000", "s /workspace"]
    # the step wrote the chroot's /, which here is the fake container's root
    assert (root / "tmp/made-by-step").read_text() == "inside\n"
    assert (root / "workspace").is_dir()
    assert not Path("/tmp/made-by-step").exists()
    # RUN --mount, --network=none and /dev/pipes in the container's own /
    assert result["status2"] == 0, result["out2"]
    assert result["out2"].splitlines() == ["s /dev/pipes/S", "s bound", "s ro", "s tmpfs", "s 1"]
    assert not (root / "mnt").exists()
    assert not (root / "tmp/t").exists()
    assert sorted(os.listdir(root / "srcdir")) == ["f"]
