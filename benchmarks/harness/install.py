"""brickyard as a builder image installs it: a virtualenv holding a wheel of this checkout,
on the distribution's Python (/usr/bin/python3) where there is one.

The benchmark runs that copy's `executor` script, not the editable development install: an
editable install adds an import finder to every start, and this sandbox's interpreter also
runs a CA-injecting .pth file at start-up (~40 ms together, per build). A virtualenv without
system site-packages sees neither, as the executor image would not.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The distribution's interpreter, as a Debian-based executor image ships it (built with the
# distribution's optimisation flags), else the one running the benchmark.
DISTRO_PYTHON = Path("/usr/bin/python3")


def _pip(venv: Path, *args: str) -> None:
    python = str(venv / "bin/python")
    quiet = ["-q", "--disable-pip-version-check"]
    subprocess.run([python, "-m", "pip", "install", *quiet, *args], check=True)


def install_brickyard(work: Path) -> Path:
    """(Re)install the working tree into work/venv; returns its `executor` script."""
    venv = work / "venv"
    python = DISTRO_PYTHON if DISTRO_PYTHON.exists() else Path(sys.executable)
    home = f"home = {python.resolve().parent}"
    cfg = venv / "pyvenv.cfg"
    if cfg.exists() and home not in cfg.read_text().splitlines():
        shutil.rmtree(venv)  # made by another interpreter
    fresh = not (venv / "bin/python").exists()
    if fresh:
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    # The working tree as git sees it (tracked and new files, nothing ignored): a stale
    # setuptools build/ directory must not put deleted modules back into the wheel.
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    with tempfile.TemporaryDirectory(prefix="brickyard-src-") as tmp:
        src = Path(tmp) / "src"
        for raw in filter(None, listed):
            rel = raw.decode()
            if not (ROOT / rel).is_file():
                continue  # deleted in the working tree
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
        if fresh:
            _pip(venv, str(src))  # dependencies, once
        _pip(venv, "--force-reinstall", "--no-deps", str(src))
    return venv / "bin/executor"
