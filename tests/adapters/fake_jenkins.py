"""A local server answering as Jenkins' documented REST API (/api/python, createItem,
config.xml, build -> queue item -> build, progressive console), enough for jenkinsapi."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


@dataclass
class FakeJenkins:
    server: HTTPServer
    jobs: dict[str, str] = field(default_factory=dict)  # name -> config.xml
    console: list[str] = field(default_factory=lambda: ["Started\n", "brickyard build ok\n"])
    result: str = "SUCCESS"
    builds: dict[str, int] = field(default_factory=dict)
    posts: list[str] = field(default_factory=list)
    crumbs_seen: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.server.url_for("").rstrip("/")

    def install(self) -> None:
        self.server.expect_request(__import__("re").compile(".*")).respond_with_handler(self)

    def _json(self, data: object, status: int = 200) -> Response:
        return Response(json.dumps(data), status, mimetype="application/json")

    def _job(self, name: str) -> dict[str, object]:
        url = f"{self.base}/job/{name}/"
        builds = [
            {"number": n, "url": f"{url}{n}/"} for n in range(self.builds.get(name, 0), 0, -1)
        ]
        last = builds[0] if builds else None
        return {
            "name": name,
            "url": url,
            "color": "blue",
            "actions": [{}],
            "property": [],
            "builds": builds,
            "lastBuild": last,
            "firstBuild": builds[-1] if builds else None,
            "nextBuildNumber": self.builds.get(name, 0) + 1,
            "inQueue": False,
        }

    def __call__(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if request.method == "POST":
            self.posts.append(path)
            self.crumbs_seen.append(request.headers.get("Jenkins-Crumb", ""))
        parts = path.strip("/").split("/")
        if path == "/crumbIssuer/api/python":
            return self._json({"crumbRequestField": "Jenkins-Crumb", "crumb": "c0ffee"})
        if path == "/api/python":
            jobs = [{"name": n, "color": "blue", "url": f"{self.base}/job/{n}/"} for n in self.jobs]
            return self._json({"jobs": jobs})
        if path == "/createItem" and request.method == "POST":
            name = request.args["name"]
            if name in self.jobs:
                return Response("A job already exists with the name", 400)
            self.jobs[name] = request.get_data(as_text=True)
            return Response("", 200)
        if parts[0] == "queue":  # /queue/item/<n>/api/python
            name = next(iter(self.builds))
            number = self.builds[name]
            return self._json(
                {
                    "id": int(parts[2]),
                    "task": {"name": name, "url": f"{self.base}/job/{name}/"},
                    "executable": {"number": number, "url": f"{self.base}/job/{name}/{number}/"},
                }
            )
        if parts[0] != "job" or parts[1] not in self.jobs:
            return Response("Not found", 404)
        name, rest = parts[1], parts[2:]
        if rest == ["api", "python"]:
            return self._json(self._job(name))
        if rest == ["config.xml"]:
            if request.method == "POST":
                self.jobs[name] = request.get_data(as_text=True)
                return Response("", 200)
            return Response(self.jobs[name], 200, mimetype="application/xml")
        if rest in (["build"], ["buildWithParameters"]) and request.method == "POST":
            self.builds[name] = self.builds.get(name, 0) + 1
            return Response("", 201, headers={"Location": f"{self.base}/queue/item/7/"})
        if len(rest) >= 1 and rest[0].isdigit():
            number = int(rest[0])
            if rest[1:] == ["api", "python"]:
                return self._json(
                    {
                        "number": number,
                        "result": self.result,
                        "building": False,
                        "url": f"{self.base}/job/{name}/{number}/",
                        "actions": [],
                        "changeSet": {"items": []},
                        "timestamp": 0,
                        "duration": 5,
                    }
                )
            if rest[1:] == ["logText", "progressiveText"]:
                start = int(request.args.get("start", "0"))
                if start >= len(self.console):
                    return Response("", 200, headers={"X-Text-Size": str(start)})
                headers = {"X-Text-Size": str(start + 1)}
                if start + 1 < len(self.console):
                    headers["X-More-Data"] = "true"
                return Response(self.console[start], 200, headers=headers)
        return Response("Not found", 404)
