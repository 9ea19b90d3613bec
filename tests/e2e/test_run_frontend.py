"""RUN as BuildKit builds its argv: heredoc scripts (a `#!` body runs as a file under
/dev/pipes) and RUN flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import E2E, entry, exists, history_of, new_layers

pytestmark = pytest.mark.integration


def test_run_heredoc_with_shebang_runs_as_a_script_that_never_reaches_a_layer(e2e: E2E) -> None:
    dockerfile = (
        "FROM {base}\n"
        "RUN <<EOF\n"
        "#!/bin/awk -f\n"  # not shell syntax: only works when run as a file
        'BEGIN { print "awk ran" > "/script-out" }\n'
        "EOF\n"
        "USER app\n"
        "RUN <<EOF\n#!/bin/sh\nid -u > /tmp/uid\nEOF\n"
    )
    b = e2e.build("runshebang", dockerfile).ok()
    assert entry(b.rootfs, "/script-out").content == "awk ran\n"
    assert entry(b.rootfs, "/tmp/uid").content == "1000\n"  # readable by a non-root USER
    assert not exists(b.rootfs, "/.brickyard-pipes")
    assert not exists(b.rootfs, "/dev/pipes")
    assert history_of(b)[-1]["created_by"] == "RUN /bin/sh -c /dev/pipes/EOF"
    assert history_of(b)[-3]["created_by"] == "RUN /bin/sh -c /dev/pipes/EOF"


def test_run_with_several_heredocs_on_one_line_gets_them_all(e2e: E2E) -> None:
    dockerfile = "FROM {base}\nRUN cat <<A > /a && cat <<B > /b\nfirst $HOME\nA\nsecond\nB\n"
    b = e2e.build("runtwoheredocs", dockerfile).ok()
    assert entry(b.rootfs, "/a").content == "first /root\n"  # the shell expands RUN bodies
    assert entry(b.rootfs, "/b").content == "second\n"


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--mount=type=ssh", "RUN --mount=type=ssh is not supported (no SSH agent forwarding)"),
        ("--security=insecure", "RUN --security=insecure is not supported yet"),
        ("--network=bridge", "RUN --network=bridge: unknown network mode"),
        ("--mount=type=nfs,target=/x", "RUN --mount=type=nfs,target=/x: unknown mount type 'nfs'"),
        ("--mount=type=cache", "RUN --mount=type=cache: target is required"),
    ],
)
def test_run_flags_that_change_meaning_fail_before_any_step_naming_the_line(
    e2e: E2E, flag: str, message: str
) -> None:
    dockerfile = f"FROM {{base}}\nRUN echo first-step-ran\nRUN {flag} echo hi\n"
    b = e2e.build("runflag", dockerfile)
    assert b.rc == 7
    errors = [line for line in b.log.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {b.context / 'Dockerfile'}:3: {message}"]
    assert "first-step-ran" not in b.log  # refused before anything ran


def test_run_network_default_and_host_run_on_the_build_network(e2e: E2E) -> None:
    dockerfile = "FROM {base}\nRUN --network=default echo d > /d\nRUN --network=host echo h > /h\n"
    b = e2e.build("runnetwork", dockerfile).ok()
    assert entry(b.rootfs, "/d").content == "d\n"
    assert entry(b.rootfs, "/h").content == "h\n"
    assert "not supported" not in b.log


def test_dryrun_refuses_unsupported_run_flags_too(e2e: E2E) -> None:
    b = e2e.build("runflagdry", "FROM {base}\nRUN --mount=type=ssh true\n", args=["--dryrun"])
    assert b.rc == 7
    assert f"error: {b.context / 'Dockerfile'}:2: RUN --mount=type=ssh is not supported" in b.log


def test_base_image_trigger_with_unsupported_flag_is_reported_at_the_from_line(
    e2e: E2E,
) -> None:
    parent = e2e.build("runflagparent", "FROM {base}\nONBUILD RUN --security=insecure true\n").ok()
    child = e2e.build("runflagchild", f"# child\nFROM {parent.ref}\nRUN true\n")
    assert child.rc == 7
    errors = [line for line in child.log.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {child.context / 'Dockerfile'}:2: RUN --security=insecure is not supported yet"
    ]


def test_shebang_script_that_changes_nothing_makes_no_layer(e2e: E2E) -> None:
    b = e2e.build("runshebangnoop", "FROM {base}\nRUN <<EOF\n#!/bin/sh\ntrue\nEOF\n").ok()
    assert new_layers(b) == []
    assert history_of(b)[-1].get("empty_layer") is True


def test_run_network_none_has_only_loopback(e2e: E2E) -> None:
    dockerfile = (
        "FROM {base}\n"
        "RUN --network=none ls /sys/class/net > /none-nets\n"
        "RUN ls /sys/class/net > /default-nets\n"
    )
    b = e2e.build("runnetnone", dockerfile).ok()
    assert entry(b.rootfs, "/none-nets").content == "lo\n"
    assert entry(b.rootfs, "/default-nets").content != "lo\n"  # the build's own network


def test_run_mounts_bind_cache_tmpfs_and_secret_never_reach_the_layer(
    e2e: E2E, tmp_path: Path
) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t\n")
    dockerfile = (
        "FROM {base} AS tools\n"
        "RUN mkdir /tools && echo from-stage > /tools/t\n"
        "FROM {base}\n"
        # context bind, read-only by default; .dockerignore'd files are not there
        "RUN --mount=target=/ctx cat /ctx/src/app.txt > /out-bind && "
        "(ls /ctx/secret.env 2>/dev/null || echo ignored) >> /out-bind && "
        "(touch /ctx/x 2>/dev/null || echo ro) >> /out-bind\n"
        # rw bind: writes go to a throwaway copy
        "RUN --mount=type=bind,source=src,target=/srcdir,rw echo changed > /srcdir/app.txt && "
        "cat /srcdir/app.txt > /out-rw\n"
        "RUN --mount=type=bind,from=tools,source=/tools,target=/t cat /t/t > /out-from\n"
        "RUN --mount=type=cache,target=/var/cache/app echo one > /var/cache/app/c\n"
        "RUN --mount=type=cache,target=/var/cache/app cat /var/cache/app/c > /out-cache\n"
        "RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/f && "
        "cat /scratch/f > /out-tmpfs\n"
        "RUN --mount=type=secret,id=token cat /run/secrets/token > /out-secret && "
        "stat -c %a /run/secrets/token >> /out-secret\n"
        "RUN --mount=type=secret,id=absent,target=/absent ls /absent 2>/dev/null || echo none"
        " > /out-absent\n"
    )
    files = {"src/app.txt": "app\n", "secret.env": "X=1\n", ".dockerignore": "secret.env\n"}
    b = e2e.build("runmounts", dockerfile, files, args=["--secret", f"id=token,src={secret}"]).ok()
    assert entry(b.rootfs, "/out-bind").content == "app\nignored\nro\n"
    assert entry(b.rootfs, "/out-rw").content == "changed\n"
    assert (b.context / "src/app.txt").read_text() == "app\n"  # the context is untouched
    assert entry(b.rootfs, "/out-from").content == "from-stage\n"
    assert entry(b.rootfs, "/out-cache").content == "one\n"
    assert entry(b.rootfs, "/out-tmpfs").content == "t\n"
    assert entry(b.rootfs, "/out-secret").content == "s3cr3t\n400\n"
    assert entry(b.rootfs, "/out-absent").content == "none\n"
    for gone in ("/ctx", "/srcdir", "/t", "/var/cache/app", "/scratch", "/run/secrets", "/absent"):
        assert not exists(b.rootfs, gone), gone
    assert "s3cr3t" not in b.log
    # the step that only wrote into its cache mount made no layer at all
    cache_write = [h for h in history_of(b) if "echo one" in h["created_by"]]
    assert cache_write[0].get("empty_layer") is True
    assert len(new_layers(b)) == 7


def test_run_bind_mount_of_a_dockerignored_source_is_not_found(e2e: E2E) -> None:
    files = {"secret.env": "X=1\n", ".dockerignore": "secret.env\n"}
    dockerfile = "FROM {base}\nRUN --mount=source=secret.env,target=/s cat /s > /leak\n"
    b = e2e.build("runmountignored", dockerfile, files)
    assert b.rc == 7
    assert "RUN --mount: source secret.env not found in the build context" in b.log


def test_run_mount_and_network_none_refused_naming_the_line_without_namespaces(
    e2e: E2E,
) -> None:
    """The mknod tier (no mount or user namespaces) cannot give a step either."""
    from engine.run import backends

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backends.ChrootIsolation, "tier", lambda self: backends.MKNOD)
        b = e2e.build("runnons", "FROM {base}\nRUN true\nRUN --network=none true\n")
        c = e2e.build("runnons2", "FROM {base}\nRUN --mount=type=tmpfs,target=/t true\n")
    assert b.rc == c.rc == 7
    assert [ln for ln in b.log.splitlines() if ln.startswith("error: ")] == [
        f"error: {b.context / 'Dockerfile'}:3: "
        "RUN --network=none needs a network namespace, which is not allowed here"
    ]
    assert f"error: {c.context / 'Dockerfile'}:2: RUN --mount needs mount namespaces" in c.log


def test_cached_run_misses_when_what_its_bind_mount_shows_changes(e2e: E2E, tmp_path: Path) -> None:
    import json

    dockerfile = "FROM {base}\nRUN --mount=target=/ctx,source=src cat /ctx/f > /g\n"

    def build(name: str, content: str) -> tuple[str, bool]:
        files = {"src/f": content, "other": name}  # "other" is not mounted
        args = [
            "--cache",
            "--cache-repo",
            f"{e2e.registry}/e2e/cache-runmount-{tmp_path.name.lower()}",
            "--report-file",
            str(tmp_path / f"{name}.json"),
        ]
        b = e2e.build("runmountcache", dockerfile, files, args=args).ok()
        report = json.loads((tmp_path / f"{name}.json").read_text())
        return entry(b.rootfs, "/g").content, report["steps"][-1]["cache_hit"]

    assert build("a", "one\n") == ("one\n", False)
    assert build("b", "one\n") == ("one\n", True)
    assert build("c", "two\n") == ("two\n", False)  # kaniko-style keys would reuse "one"
