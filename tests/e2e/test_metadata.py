"""Instructions that only change the image config: pushed config read back from the registry."""

from __future__ import annotations

import pytest

from tests.e2e.harness import E2E, entry, history_of, new_layers

pytestmark = pytest.mark.integration


def test_env_sets_config_and_is_seen_by_run(e2e: E2E) -> None:
    b = e2e.build(
        "env",
        'FROM {base}\nENV A=1 B="two words"\nENV PATH=/opt/bin:$PATH\n'
        'RUN echo "$A|$B|$PATH" > /env.txt\n',
    ).ok()
    env = b.container["Env"]
    assert "A=1" in env and "B=two words" in env
    path = [e for e in env if e.startswith("PATH=")]
    assert path == ["PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert entry(b.rootfs, "/env.txt").content == (
        "1|two words|/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )


def test_arg_default_and_build_arg_reach_run_but_not_config(e2e: E2E) -> None:
    b = e2e.build(
        "arg",
        "ARG TAG_FROM_GLOBAL=x\nFROM {base}\nARG V=default\nARG W\nRUN echo $V-$W > /args\n",
        args=["--build-arg", "W=given"],
    ).ok()
    assert not any(e.startswith(("V=", "W=")) for e in b.container["Env"])
    assert entry(b.rootfs, "/args").content == "default-given\n"
    runs = [h["created_by"] for h in history_of(b) if h["created_by"].startswith("RUN")]
    assert runs == ["RUN |2 V=default W=given /bin/sh -c echo $V-$W > /args"]


def test_label_and_cli_label(e2e: E2E) -> None:
    b = e2e.build(
        "label",
        'FROM {base}\nLABEL org.example.a=b "with space"="x y"\nLABEL legacy value here\n',
        args=["--label", "from.cli=1"],
    ).ok()
    assert b.container["Labels"] == {
        "org.example.a": "b",
        "with space": "x y",
        "legacy": "value here",
        "from.cli": "1",
    }


def test_expose_ports_keyed_like_docker(e2e: E2E) -> None:
    b = e2e.build("expose", "FROM {base}\nEXPOSE 80 53/udp\nEXPOSE 8000-8001\n").ok()
    assert b.container["ExposedPorts"] == {
        "80/tcp": {},
        "53/udp": {},
        "8000/tcp": {},
        "8001/tcp": {},
    }
    assert new_layers(b) == []


def test_volume_json_and_plain(e2e: E2E) -> None:
    b = e2e.build("volume", 'FROM {base}\nVOLUME ["/data"]\nVOLUME /logs /cache\n').ok()
    assert b.container["Volumes"] == {"/data": {}, "/logs": {}, "/cache": {}}


def test_cmd_and_entrypoint_exec_form(e2e: E2E) -> None:
    b = e2e.build("cmdentry", 'FROM {base}\nENTRYPOINT ["/bin/echo"]\nCMD ["hello", "world"]\n')
    b.ok()
    assert b.container["Entrypoint"] == ["/bin/echo"]
    assert b.container["Cmd"] == ["hello", "world"]


def test_entrypoint_drops_inherited_cmd(e2e: E2E) -> None:
    b = e2e.build("entryreset", 'FROM {base}\nENTRYPOINT ["/bin/sh", "-c"]\n').ok()
    assert b.container["Entrypoint"] == ["/bin/sh", "-c"]
    assert "Cmd" not in b.container or b.container["Cmd"] is None


def test_shell_form_cmd_goes_through_shell_instruction(e2e: E2E) -> None:
    b = e2e.build(
        "shell",
        'FROM {base}\nSHELL ["/bin/sh", "-ec"]\nRUN echo "$0 $-" > /shell.txt\nCMD echo hi there\n',
    ).ok()
    assert b.container["Shell"] == ["/bin/sh", "-ec"]
    assert b.container["Cmd"] == ["/bin/sh", "-ec", "echo hi there"]
    assert "e" in entry(b.rootfs, "/shell.txt").content.split()[1]


def test_healthcheck_in_nanoseconds(e2e: E2E) -> None:
    b = e2e.build(
        "health",
        "FROM {base}\nHEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=4 "
        "CMD wget -q -O- http://localhost/ || exit 1\n",
    ).ok()
    assert b.container["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"],
        "Interval": 5_000_000_000,
        "Timeout": 2_000_000_000,
        "StartPeriod": 60_000_000_000,
        "Retries": 4,
    }


def test_stopsignal_user_and_maintainer(e2e: E2E) -> None:
    b = e2e.build(
        "stopsig",
        "FROM {base}\nMAINTAINER Jane Doe <jane@example.com>\nSTOPSIGNAL SIGQUIT\nUSER app\n",
    ).ok()
    assert b.container["StopSignal"] == "SIGQUIT"
    assert b.container["User"] == "app"
    assert b.config["author"] == "Jane Doe <jane@example.com>"


def test_history_has_one_entry_per_instruction_and_marks_empty_layers(e2e: E2E) -> None:
    b = e2e.build(
        "history",
        "FROM {base}\nENV X=1\nRUN echo made > /made\nRUN true\nLABEL a=b\n",
    ).ok()
    hist = history_of(b)
    mine = hist[-4:]
    assert [h["created_by"] for h in mine] == [
        "ENV X=1",
        "RUN /bin/sh -c echo made > /made",
        "RUN /bin/sh -c true",
        "LABEL a=b",
    ]
    assert [bool(h.get("empty_layer")) for h in mine] == [True, False, True, True]
    real = [h for h in hist if not h.get("empty_layer")]
    assert len(real) == len(b.config["rootfs"]["diff_ids"]) == len(b.manifest["layers"])
    assert len(new_layers(b)) == 1


def test_onbuild_stored_then_triggered_in_child(e2e: E2E) -> None:
    parent = e2e.build(
        "onbuild-parent",
        "FROM {base}\nONBUILD RUN echo triggered > /from-trigger\nONBUILD ENV CHILD=yes\n",
    ).ok()
    assert parent.container["OnBuild"] == [
        "RUN echo triggered > /from-trigger",
        "ENV CHILD=yes",
    ]
    child = e2e.build("onbuild-child", f"FROM {parent.ref}\nRUN test -f /from-trigger\n").ok()
    assert "OnBuild" not in child.container or not child.container["OnBuild"]
    assert "CHILD=yes" in child.container["Env"]
    assert entry(child.rootfs, "/from-trigger").content == "triggered\n"


def test_unused_build_arg_is_warned_about(e2e: E2E) -> None:
    b = e2e.build(
        "unusedarg",
        "FROM {base}\nARG USED\n",
        args=["--build-arg", "USED=1", "--build-arg", "NOT_USED=2"],
    ).ok()
    assert "One or more build-args ['NOT_USED'] were not consumed" in b.log
