"""A build's process never imports requests or urllib3 (their import cost ~0.1 s of a cached
rebuild): pull, ADD <url>, layer cache lookups and stores, push all go through
engine.httpclient."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.engine.httpd import origin_server
from tests.support.registry import RunningRegistry

_PROBE = """
import json, sys
from engine.cli import executor_main
codes = [executor_main(sys.argv[1:]) for _ in range(2)]  # the second build is all cache hits
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("requests", "urllib3"))
print("RESULT " + json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_a_build_never_imports_requests_or_urllib3(
    registry: RunningRegistry, busybox_image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n")
    with origin_server() as origin:
        (ctx / "Dockerfile").write_text(
            f"FROM {busybox_image}\nCOPY hello.txt /hello.txt\nADD {origin.url}/bytes/7 /seven\n"
        )
        argv = [
            "--context",
            str(ctx),
            "--dockerfile",
            str(ctx / "Dockerfile"),
            "--destination",
            f"{registry.host}/imports/probe:latest",
            "--cache=true",
            f"--cache-repo={registry.host}/imports/cache",
            "--cache-copy-layers=true",
            "--kaniko-dir",
            str(tmp_path / "kaniko"),
            "--force",
        ]
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, *argv],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[3],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        fetched = [s.path for s in origin.seen]
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), "")
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(line[len("RESULT ") :])
    assert result["codes"] == [0, 0], proc.stderr[-3000:]
    assert "/bytes/7" in fetched  # the ADD <url> really went over HTTP
    assert result["heavy"] == []
