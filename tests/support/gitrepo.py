"""Git repositories for tests, served over git's dumb HTTP protocol by pytest-httpserver."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def git(*args: str, cwd: Path) -> None:
    """Run git with a fixed identity, so commits work on a machine without git config."""
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def serve_dumb_http(httpserver: HTTPServer, work: Path, bare: Path) -> str:
    """Clone the repository in `work` to `bare` and serve it; returns the clone URL."""
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    git("update-server-info", cwd=bare)

    def serve(request: Request) -> Response:
        path = bare / request.path.removeprefix("/repo.git/")
        if not path.is_file():
            return Response("not found", status=404)
        return Response(path.read_bytes(), content_type="application/octet-stream")

    httpserver.expect_request(re.compile("^/repo.git/.*")).respond_with_handler(serve)
    return httpserver.url_for("/repo.git")
