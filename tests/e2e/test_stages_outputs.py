"""Multi-stage builds, failures, determinism and every output of a build."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import E2E, entry, exists, new_layers, run

pytestmark = pytest.mark.integration

MULTI = """FROM {base} AS build
RUN mkdir /out && echo built > /out/app && echo junk > /build-only
FROM build AS test
RUN echo tested > /out/tested
FROM {base}
COPY --from=build /out/app /usr/local/bin/app
COPY --from=0 /out /copied
"""


def test_multistage_copy_from_stage_name_and_index(e2e: E2E) -> None:
    b = e2e.build("multi", MULTI).ok()
    assert entry(b.rootfs, "/usr/local/bin/app").content == "built\n"
    assert sorted(p.name for p in (b.rootfs / "copied").iterdir()) == ["app"]
    assert not exists(b.rootfs, "/build-only")
    assert len(new_layers(b)) == 2


def test_target_stops_at_named_stage_built_on_earlier_stage(e2e: E2E) -> None:
    b = e2e.build("target", MULTI, args=["--target", "test"]).ok()
    assert entry(b.rootfs, "/out/tested").content == "tested\n"
    assert entry(b.rootfs, "/build-only").content == "junk\n"
    assert len(new_layers(b)) == 2  # build's RUN layer and test's RUN layer


def test_failing_run_names_step_command_and_status(e2e: E2E, tmp_path: Path) -> None:
    b = e2e.build(
        "fails",
        "FROM {base}\nENV A=1\nRUN echo before && exit 3\nRUN true\n",
        args=["--report-file", str(tmp_path / "report.json")],
    )
    assert b.rc == 7
    message = "step 3/4: RUN echo before && exit 3: exit status 3"
    assert f"error: {message}" in b.log
    assert "before" in b.log
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["error"] == message and report["digest"] == ""
    assert [s["instruction"] for s in report["steps"]] == ["ENV A=1"]
    r = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{b.ref}"], capture_output=True
    )
    assert r.returncode != 0  # nothing was pushed


def test_reproducible_builds_match_across_directories(e2e: E2E, tmp_path: Path) -> None:
    dockerfile = "FROM {base}\nCOPY f /f\nRUN echo x > /x && touch /y\nENV A=1\n"
    args = ["--reproducible", "--no-push", "--digest-file"]
    one = e2e.build("repro", dockerfile, {"f": "same\n"}, args=[*args, str(tmp_path / "d1")])
    two = e2e.build("repro", dockerfile, {"f": "same\n"}, args=[*args, str(tmp_path / "d2")])
    one.ok(), two.ok()
    d1, d2 = (tmp_path / "d1").read_text(), (tmp_path / "d2").read_text()
    assert d1 == d2 and d1.startswith("sha256:")
    assert one.context != two.context


def test_reproducible_config_has_epoch_times(e2e: E2E) -> None:
    b = e2e.build("reprocfg", "FROM {base}\nRUN touch /z\n", args=["--reproducible"]).ok()
    assert b.config["created"] == "1970-01-01T00:00:00Z"
    assert all(h.get("created", "1970-01-01T00:00:00Z") for h in b.config["history"])


def test_scratch_image_is_docker_schema2_with_default_path(e2e: E2E) -> None:
    b = e2e.build("scratch", "FROM scratch\nCOPY hello /hello\n", {"hello": "hi\n"}).ok()
    assert b.manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert b.container["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]
    assert entry(b.rootfs, "/hello").content == "hi\n"
    assert len(b.manifest["layers"]) == 1


def test_busybox_base_keeps_oci_manifest_and_reuses_base_layer(e2e: E2E) -> None:
    b = e2e.build("ocibase", "FROM {base}\nRUN touch /t\n").ok()
    assert b.manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    base_manifest = json.loads(
        run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{e2e.base}"])
    )
    assert b.manifest["layers"][0] == base_manifest["layers"][0]
    assert b.config["architecture"] and b.config["os"] == "linux"


def test_single_snapshot_makes_one_layer(e2e: E2E) -> None:
    b = e2e.build(
        "single",
        "FROM {base}\nRUN echo 1 > /one\nCOPY f /f\nRUN echo 2 > /two && rm /etc/group\n",
        {"f": "F"},
        args=["--single-snapshot"],
    ).ok()
    assert len(new_layers(b)) == 1
    assert entry(b.rootfs, "/two").content == "2\n"
    assert entry(b.rootfs, "/f").content == "F"
    assert not exists(b.rootfs, "/etc/group")


def test_several_destinations_digest_files_and_report(e2e: E2E, tmp_path: Path) -> None:
    second = f"{e2e.registry}/e2e/outputs-copy:v1"
    b = e2e.build(
        "outputs",
        "FROM {base}\nRUN echo o > /o\n",
        args=[
            "--destination",
            second,
            "--digest-file",
            str(tmp_path / "digest"),
            "--image-name-with-digest-file",
            str(tmp_path / "names"),
            "--image-name-tag-with-digest-file",
            str(tmp_path / "tags"),
            "--report-file",
            str(tmp_path / "report.json"),
        ],
    ).ok()
    digest = (tmp_path / "digest").read_text()
    assert digest == b.digest
    assert (tmp_path / "names").read_text().splitlines() == [
        f"{e2e.registry}/e2e/outputs@{digest}",
        f"{e2e.registry}/e2e/outputs-copy@{digest}",
    ]
    assert (tmp_path / "tags").read_text().splitlines() == [
        f"{b.ref}@{digest}",
        f"{second}@{digest}",
    ]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["digest"] == digest
    assert report["image_refs"] == [b.ref, second]
    steps = report["steps"]
    assert [s["instruction"] for s in steps] == ["RUN echo o > /o"]
    assert steps[0]["layer"]["size"] > 0 and steps[0]["duration_s"] >= 0
    inspected = json.loads(run(["skopeo", "inspect", "--tls-verify=false", f"docker://{second}"]))
    assert inspected["Digest"] == digest


def test_no_push_tarball_and_oci_layout(e2e: E2E, tmp_path: Path) -> None:
    tar = tmp_path / "image.tar"
    layout = tmp_path / "layout"
    b = e2e.build(
        "files",
        "FROM {base}\nRUN echo t > /t\n",
        args=[
            "--no-push",
            "--destination",
            f"{e2e.registry}/e2e/files:v2",
            "--tar-path",
            str(tar),
            "--oci-layout-path",
            str(layout),
            "--digest-file",
            str(tmp_path / "digest"),
        ],
    ).ok()
    assert "Skipping push" in b.log
    digest = (tmp_path / "digest").read_text()
    from_layout = json.loads(run(["skopeo", "inspect", f"oci:{layout}:v2"]))
    assert from_layout["Digest"] == digest
    from_tar = json.loads(run(["skopeo", "inspect", f"docker-archive:{tar}"]))
    assert len(from_tar["Layers"]) == 2
    assert (
        subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{b.ref}"],
            capture_output=True,
        ).returncode
        != 0
    )


def test_image_format_and_annotations(e2e: E2E) -> None:
    b = e2e.build(
        "dockerfmt",
        "FROM {base}\nRUN echo d > /d\n",
        args=["--image-format", "docker", "--annotation", "org.example.built-by=e2e"],
    ).ok()
    m = b.manifest
    assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert m["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert {layer["mediaType"] for layer in m["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    }
    assert m["annotations"] == {"org.example.built-by": "e2e"}
    assert entry(b.rootfs, "/d").content == "d\n"


def test_zstd_compression_on_oci_base(e2e: E2E) -> None:
    import io
    import tarfile

    import requests
    import zstandard

    b = e2e.build("zstd", "FROM {base}\nRUN echo z > /z\n", args=["--compression", "zstd"]).ok()
    layer = b.manifest["layers"][-1]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    # Debian's umoci cannot read zstd layers: read this one directly
    blob = requests.get(
        f"http://{e2e.registry}/v2/e2e/zstd/blobs/{layer['digest']}", timeout=10
    ).content
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = tar.extractfile("z")
        assert member is not None and member.read() == b"z\n"


def test_dryrun_checks_and_builds_nothing(e2e: E2E) -> None:
    b = e2e.build("dry", "FROM {base}\nRUN exit 1\n", args=["--dryrun"]).ok()
    assert "Dry run: nothing built" in b.log
    assert "Running:" not in b.log
    missing = e2e.build(
        "dry2", f"FROM {e2e.registry}/e2e/does-not-exist:1\nRUN true\n", args=["--dryrun"]
    )
    assert missing.rc == 5


def test_stage_on_stage_without_file_steps_still_serves_copy_from(e2e: E2E) -> None:
    b = e2e.build(
        "lazychain",
        "FROM {base} AS a\nRUN echo a > /a\n"
        "FROM a AS b\nENV ONLY=metadata\n"
        "FROM {base}\nCOPY --from=b /a /from-b\n",
    ).ok()
    assert entry(b.rootfs, "/from-b").content == "a\n"
