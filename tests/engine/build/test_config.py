from __future__ import annotations

import datetime as dt

import pytest

from engine.build.config import (
    DEFAULT_PATH,
    EPOCH,
    StageConfig,
    copy_created_by,
    expand_ports,
    format_created,
    parse_go_duration,
    run_created_by,
)
from engine.errors import DockerfileError


def base_with(**container: object) -> StageConfig:
    return StageConfig.from_base(
        {"architecture": "amd64", "os": "linux", "config": dict(container), "history": []}
    )


def test_scratch_has_buildkit_default_path() -> None:
    cfg = StageConfig.scratch()
    assert cfg.env == [f"PATH={DEFAULT_PATH}"]
    assert cfg.shell == ["/bin/sh", "-c"]
    assert cfg.workdir == "/"


def test_env_replaces_in_place_and_appends_new_keys() -> None:
    cfg = base_with(Env=["PATH=/bin", "A=1"])
    created_by = cfg.apply_env([("PATH", "/opt:/bin"), ("B", "two words")])
    assert cfg.env == ["PATH=/opt:/bin", "A=1", "B=two words"]
    assert created_by == "ENV PATH=/opt:/bin B=two words"
    assert cfg.env_dict()["B"] == "two words"


def test_arg_only_describes_history() -> None:
    assert StageConfig.describe_arg([("V", "1"), ("X", None)]) == "ARG V=1 X"


def test_labels_merge_over_base_labels() -> None:
    cfg = base_with(Labels={"a": "base", "keep": "1"})
    cfg.apply_labels([("a", "new"), ("b", "x y")])
    assert cfg.container["Labels"] == {"a": "new", "keep": "1", "b": "x y"}


def test_expose_keys_like_docker() -> None:
    cfg = base_with()
    cfg.apply_expose(["80", "53/UDP", "8000-8002/tcp"])
    assert cfg.container["ExposedPorts"] == {
        "80/tcp": {},
        "53/udp": {},
        "8000/tcp": {},
        "8001/tcp": {},
        "8002/tcp": {},
    }


def test_expose_rejects_bad_protocol_and_port() -> None:
    with pytest.raises(DockerfileError, match="invalid proto"):
        expand_ports(["80/http"])
    with pytest.raises(DockerfileError, match="invalid containerPort"):
        expand_ports(["eighty"])


def test_volume_and_user_and_stopsignal() -> None:
    cfg = base_with()
    cfg.apply_volume(["/data", "/logs"])
    cfg.apply_user("app:staff")
    cfg.apply_stopsignal("SIGQUIT")
    assert cfg.container["Volumes"] == {"/data": {}, "/logs": {}}
    assert cfg.user == "app:staff"
    assert cfg.container["StopSignal"] == "SIGQUIT"


def test_workdir_relative_to_previous_and_cleaned() -> None:
    cfg = base_with()
    assert cfg.apply_workdir("/app") == "WORKDIR /app"
    cfg.apply_workdir("src/../lib")
    assert cfg.workdir == "/app/lib"
    cfg.apply_workdir("/")
    assert cfg.workdir == "/"


def test_cmd_shell_form_uses_current_shell() -> None:
    cfg = base_with()
    cfg.apply_shell(["/bin/ash", "-eo", "pipefail", "-c"], json_form=True)
    cfg.apply_cmd(["echo", "hi"], json_form=False)
    assert cfg.container["Cmd"] == ["/bin/ash", "-eo", "pipefail", "-c", "echo hi"]
    assert cfg.container["Shell"] == ["/bin/ash", "-eo", "pipefail", "-c"]


def test_shell_requires_json_form() -> None:
    with pytest.raises(DockerfileError, match="JSON form"):
        base_with().apply_shell(["/bin/sh", "-c"], json_form=False)


def test_entrypoint_resets_inherited_cmd_only() -> None:
    cfg = base_with(Cmd=["sh"])
    cfg.apply_entrypoint(["/app"], json_form=True)
    assert cfg.container["Cmd"] is None
    assert cfg.container["Entrypoint"] == ["/app"]

    cfg = base_with(Cmd=["sh"])
    cfg.apply_cmd(["--help"], json_form=True)
    cfg.apply_entrypoint(["/app"], json_form=True)
    assert cfg.container["Cmd"] == ["--help"]


def test_to_json_drops_null_fields_and_sets_rootfs() -> None:
    cfg = base_with(Cmd=["sh"])
    cfg.apply_entrypoint(["/app"], json_form=True)
    out = cfg.to_json(["sha256:aa"], EPOCH)
    assert "Cmd" not in out["config"]
    assert out["rootfs"] == {"type": "layers", "diff_ids": ["sha256:aa"]}
    assert out["created"] == EPOCH


def test_healthcheck_durations_in_nanoseconds() -> None:
    cfg = base_with()
    cfg.apply_healthcheck(
        ["CMD", "wget -q localhost"],
        json_form=False,
        flags={"interval": "30s", "timeout": "1m30s", "start-period": "500ms", "retries": "3"},
    )
    assert cfg.container["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q localhost"],
        "Interval": 30_000_000_000,
        "Timeout": 90_000_000_000,
        "StartPeriod": 500_000_000,
        "Retries": 3,
    }


def test_healthcheck_exec_form_and_none() -> None:
    cfg = base_with()
    cfg.apply_healthcheck(["CMD", "/bin/check", "-x"], json_form=True, flags={})
    assert cfg.container["Healthcheck"] == {"Test": ["CMD", "/bin/check", "-x"]}
    cfg.apply_healthcheck(["NONE"], json_form=False, flags={})
    assert cfg.container["Healthcheck"] == {"Test": ["NONE"]}


def test_healthcheck_rejects_tiny_interval() -> None:
    with pytest.raises(DockerfileError, match="less than 1ms"):
        base_with().apply_healthcheck(["CMD", "x"], json_form=False, flags={"interval": "10us"})


def test_go_durations() -> None:
    assert parse_go_duration("1h2m3s") == 3723 * 10**9
    assert parse_go_duration("1.5s") == 1_500_000_000
    with pytest.raises(DockerfileError):
        parse_go_duration("5 minutes")


def test_onbuild_stored_and_moved_out_of_child_config() -> None:
    cfg = base_with()
    cfg.apply_onbuild("RUN echo $HOME")
    assert cfg.container["OnBuild"] == ["RUN echo $HOME"]
    child = StageConfig.from_base(cfg.to_json([], EPOCH))
    assert child.onbuild_triggers == ["RUN echo $HOME"]
    assert "OnBuild" not in child.container


def test_onbuild_refuses_chained_triggers() -> None:
    with pytest.raises(DockerfileError, match="isn't allowed"):
        base_with().apply_onbuild("ONBUILD RUN x")


def test_maintainer_sets_author() -> None:
    cfg = base_with()
    cfg.apply_maintainer("Jane <j@example.com>")
    assert cfg.to_json([], EPOCH)["author"] == "Jane <j@example.com>"


def test_history_entries_mark_empty_layers() -> None:
    cfg = base_with()
    cfg.add_history("ENV A=1", empty_layer=True, created=EPOCH)
    cfg.add_history("RUN /bin/sh -c make", empty_layer=False, created=EPOCH)
    assert cfg.history[0]["empty_layer"] is True
    assert "empty_layer" not in cfg.history[1]
    assert cfg.history[1]["created_by"] == "RUN /bin/sh -c make"


def test_run_history_lists_build_args_like_buildkit() -> None:
    assert run_created_by(["/bin/sh", "-c", "make"], {}) == "RUN /bin/sh -c make"
    assert (
        run_created_by(["/bin/sh", "-c", "make"], {"V": "1", "A": "x"})
        == "RUN |2 A=x V=1 /bin/sh -c make"
    )


def test_copy_history_names_flags_sources_and_dest() -> None:
    assert copy_created_by("COPY", {"from": "build"}, ["/out"], "/app") == (
        "COPY --from=build /out /app"
    )


def test_created_format() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC)
    assert format_created(when) == "2026-01-02T03:04:05.12Z"
    assert format_created(None) == EPOCH


def test_base_without_env_gets_kaniko_default_path_only_when_env_is_absent() -> None:
    assert base_with().env == [f"PATH={DEFAULT_PATH}"]
    assert base_with(Env=None).env == [f"PATH={DEFAULT_PATH}"]
    assert base_with(Env=[]).env == []  # kaniko: only a nil Env is replaced
    assert base_with(Env=["A=1"]).env == ["A=1"]
    assert DEFAULT_PATH == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
