"""RUN as BuildKit builds its argv: heredoc scripts (a `#!` body runs as a file under
/dev/pipes) and RUN flags."""

from __future__ import annotations

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
        ("--mount=type=cache,target=/root/.cache", "RUN --mount is not supported yet"),
        ("--security=insecure", "RUN --security=insecure is not supported yet"),
        ("--network=none", "RUN --network=none is not supported yet"),
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
    b = e2e.build(
        "runflagdry", "FROM {base}\nRUN --mount=type=bind,target=/x true\n", args=["--dryrun"]
    )
    assert b.rc == 7
    assert f"error: {b.context / 'Dockerfile'}:2: RUN --mount is not supported yet" in b.log


def test_base_image_trigger_with_unsupported_flag_is_reported_at_the_from_line(
    e2e: E2E,
) -> None:
    parent = e2e.build(
        "runflagparent", "FROM {base}\nONBUILD RUN --mount=type=cache,target=/c true\n"
    ).ok()
    child = e2e.build("runflagchild", f"# child\nFROM {parent.ref}\nRUN true\n")
    assert child.rc == 7
    errors = [line for line in child.log.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {child.context / 'Dockerfile'}:2: RUN --mount is not supported yet"]


def test_shebang_script_that_changes_nothing_makes_no_layer(e2e: E2E) -> None:
    b = e2e.build("runshebangnoop", "FROM {base}\nRUN <<EOF\n#!/bin/sh\ntrue\nEOF\n").ok()
    assert new_layers(b) == []
    assert history_of(b)[-1].get("empty_layer") is True
