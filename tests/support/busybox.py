"""Offline base images for tests: a busybox rootfs made from Debian's busybox-static."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BUSYBOX = Path("/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
"""

GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
staff:x:50:app
nogroup:x:65534:
app:x:1000:
"""


def busybox_applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list"], check=True, capture_output=True, text=True)
    return [a for a in out.stdout.split() if a and a != "busybox"]


def make_busybox_rootfs(dest: Path) -> Path:
    """Create a minimal but real Linux rootfs at dest: /bin/busybox, applet
    symlinks in /bin, /etc/passwd and /etc/group (root, app:1000), /tmp 1777."""
    dest.mkdir(parents=True, exist_ok=True)
    for d in ("bin", "etc", "root", "tmp", "home/app", "usr/bin", "var", "dev", "proc", "sys"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "root", 0o700)
    os.chown(dest / "home/app", 1000, 1000)
    shutil.copy2(BUSYBOX, dest / "bin/busybox")
    for applet in busybox_applets():
        link = dest / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (dest / "etc/passwd").write_text(PASSWD)
    (dest / "etc/group").write_text(GROUP)
    return dest
