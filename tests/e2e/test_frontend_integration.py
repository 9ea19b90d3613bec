"""How the build uses the Dockerfile frontend: COPY heredocs, stages built FROM a stage
(ARG values, ONBUILD triggers) and the default PATH."""

from __future__ import annotations

import pytest

from tests.e2e.harness import E2E, entry, history_of, listing

pytestmark = pytest.mark.integration

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_copy_heredoc_with_quoted_delimiter_is_not_expanded(e2e: E2E) -> None:
    dockerfile = (
        "FROM {base}\nENV NAME=world\n"
        "COPY <<EOF /a.txt\nhello $NAME\nEOF\n"
        'COPY <<"EOF" /b.txt\nhello $NAME\nEOF\n'
    )
    b = e2e.build("copyheredocquoted", dockerfile).ok()
    assert entry(b.rootfs, "/a.txt").content == "hello world\n"
    assert entry(b.rootfs, "/b.txt").content == "hello $NAME\n"
    assert [h["created_by"] for h in history_of(b)[-2:]] == [
        "COPY <<EOF /a.txt",
        "COPY <<EOF /b.txt",
    ]


def test_copy_mixing_a_context_file_and_a_heredoc(e2e: E2E) -> None:
    dockerfile = "FROM {base}\nCOPY f1 <<EOF /dir/\ninline\nEOF\n"
    b = e2e.build("copymixed", dockerfile, {"f1": "from context\n"}).ok()
    assert listing(b.rootfs, "/dir") == ["EOF", "f1"]
    assert entry(b.rootfs, "/dir/f1").content == "from context\n"
    assert entry(b.rootfs, "/dir/EOF").content == "inline\n"
    assert history_of(b)[-1]["created_by"] == "COPY f1 <<EOF /dir/"


def test_stage_from_stage_inherits_arg_values_and_onbuild_triggers(e2e: E2E) -> None:
    dockerfile = (
        "FROM {base} AS parent\n"
        "ARG VERSION=1.2\n"
        "ONBUILD RUN echo triggered > /trigger\n"
        "FROM parent AS child\n"
        'RUN echo "v=$VERSION" > /version\n'
        "COPY <<EOF /copied\nv=$VERSION\nEOF\n"
    )
    b = e2e.build("stagescope", dockerfile).ok()
    assert entry(b.rootfs, "/version").content == "v=1.2\n"
    assert entry(b.rootfs, "/copied").content == "v=1.2\n"
    assert entry(b.rootfs, "/trigger").content == "triggered\n"
    assert "OnBuild" not in b.container  # triggers run once, not passed on again
    run_history = [h["created_by"] for h in history_of(b) if "/version" in h["created_by"]]
    assert run_history == ['RUN |1 VERSION=1.2 /bin/sh -c echo "v=$VERSION" > /version']


def test_scratch_gets_kaniko_default_path_in_config_and_run(e2e: E2E) -> None:
    dockerfile = (
        "FROM scratch\nCOPY --from={base} /bin /bin\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo $PATH > /path"]\n'
    )
    b = e2e.build("scratchpath", dockerfile).ok()
    assert b.container["Env"] == [DEFAULT_PATH]
    assert "PATH=" + (entry(b.rootfs, "/path").content or "").strip() == DEFAULT_PATH
