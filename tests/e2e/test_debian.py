"""Builds on a real distribution: Debian minbase made with debootstrap (dynamic binaries,
dpkg database, setuid programs, /var/run -> /run, many hardlinks and files)."""

from __future__ import annotations

import os

import pytest

from tests.e2e.harness import E2E, Entry, entry, exists

pytestmark = pytest.mark.integration

DOCKERFILE = """FROM {minbase}
ENV DEBIAN_FRONTEND=noninteractive
RUN useradd --create-home --uid 2000 --shell /bin/bash builder \\
 && dpkg-query -W -f='${Package}\\n' | sort > /packages.txt \\
 && rm -rf /usr/share/doc /usr/share/man
USER builder
WORKDIR /home/builder/app
COPY --chown=builder:builder app.sh ./
RUN bash -c 'echo "$(id -un) $(pwd) $BASH_VERSION"' > built-by.txt
"""


def test_debian_minbase_build(e2e: E2E, minbase_image: str) -> None:
    b = e2e.build(
        "debian",
        DOCKERFILE.replace("{minbase}", minbase_image),
        {"app.sh": "#!/bin/bash\necho app\n"},
    ).ok()
    r = b.rootfs
    packages = entry(r, "/packages.txt").content.split()
    assert {"bash", "dpkg", "passwd", "coreutils"} <= set(packages)
    assert "builder:x:2000:2000::/home/builder:/bin/bash" in entry(r, "/etc/passwd").content
    assert entry(r, "/home/builder").uid == 2000
    assert entry(r, "/home/builder/app").uid == 2000  # WORKDIR made as the current USER
    app = entry(r, "/home/builder/app/app.sh")
    assert (app.uid, app.gid, app.content) == (2000, 2000, "#!/bin/bash\necho app\n")
    built = entry(r, "/home/builder/app/built-by.txt")
    assert built.uid == 2000 and built.content.startswith("builder /home/builder/app 5.")
    assert not exists(r, "/usr/share/doc") and not exists(r, "/usr/share/man")
    # untouched base content survives as it was
    assert entry(r, "/usr/bin/passwd").mode == 0o4755
    assert entry(r, "/var/run") == Entry("symlink", 0o777, 0, 0, "/run")
    assert os.path.isfile(r / "usr/lib/x86_64-linux-gnu/libc.so.6")
    # base, RUN useradd, WORKDIR (made app/), COPY, RUN as builder
    assert len(b.manifest["layers"]) == 5
