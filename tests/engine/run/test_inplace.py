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
from engine.run import select_isolation
out = io.StringIO()
iso = select_isolation("inplace", 0, executor_image=True)
status = iso.run(["/bin/sh", "-c", "echo inside > /tmp/made-by-step; id -u; pwd"],
                 rootfs=Path("/"), env={}, cwd="/workspace", user="app", step_label="s",
                 out=out)
print(json.dumps({"status": status, "out": out.getvalue()}))
"""


def test_inplace_runs_in_the_containers_own_root(tmp_path: Path) -> None:
    root = make_busybox_rootfs(tmp_path / "container")
    os.chmod(root / "tmp", 0o1777)
    binds = ["/usr", "/lib", "/lib64", str(PYTHON_HOME), str(REPO), "/proc", "/dev"]
    script_lines = ["set -e", "mount --make-rprivate /"]
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
