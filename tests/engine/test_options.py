from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from engine import options as o
from engine.errors import NotImplementedFlag, UsageError

# Every flag of kaniko's executor (cmd/executor/cmd/root.go at v1.24.0), its short form,
# default, and the forks' additions: the table must hold them all.
KANIKO_FLAGS: dict[str, tuple[str | None, object]] = {
    "dockerfile": ("f", "Dockerfile"),
    "context": ("c", "/workspace/"),
    "context-sub-path": (None, ""),
    "bucket": ("b", ""),
    "git": (None, None),
    "build-arg": (None, ()),
    "target": (None, ""),
    "skip-unused-stages": (None, False),
    "custom-platform": (None, ""),
    "ignore-path": (None, ()),
    "ignore-var-run": (None, True),
    "snapshot-mode": (None, "full"),
    "single-snapshot": (None, False),
    "use-new-run": (None, False),
    "reproducible": (None, False),
    "force-build-metadata": (None, False),
    "compression": (None, "gzip"),
    "compression-level": (None, -1),
    "label": (None, ()),
    "cache": (None, False),
    "cache-repo": (None, ""),
    "cache-dir": (None, "/cache"),
    "cache-ttl": (None, timedelta(hours=336)),
    "cache-copy-layers": (None, False),
    "cache-run-layers": (None, True),
    "compressed-caching": (None, True),
    "no-push-cache": (None, False),
    "destination": ("d", ()),
    "no-push": (None, False),
    "tar-path": (None, ""),
    "oci-layout-path": (None, ""),
    "digest-file": (None, ""),
    "image-name-with-digest-file": (None, ""),
    "image-name-tag-with-digest-file": (None, ""),
    "push-retry": (None, 0),
    "push-ignore-immutable-tag-errors": (None, False),
    "skip-push-permission-check": (None, False),
    "insecure": (None, False),
    "skip-tls-verify": (None, False),
    "insecure-pull": (None, False),
    "skip-tls-verify-pull": (None, False),
    "insecure-registry": (None, ()),
    "skip-tls-verify-registry": (None, ()),
    "registry-certificate": (None, {}),
    "registry-client-cert": (None, {}),
    "registry-mirror": (None, ()),
    "registry-map": (None, {}),
    "skip-default-registry-fallback": (None, False),
    "image-download-retry": (None, 0),
    "image-fs-extract-retry": (None, 0),
    "kaniko-dir": (None, "/kaniko"),
    "cleanup": (None, False),
    "force": (None, False),
    "verbosity": ("v", "info"),
    "log-format": (None, "color"),
    "log-timestamp": (None, False),
    "azure-container-registry-config": (None, ""),
    "annotation": (None, ()),
    "secret": (None, ()),
    "credential-helpers": (None, ()),
    "image-format": (None, ""),
    "dryrun": (None, False),
    "materialize": (None, False),
    "pre-cleanup": (None, False),
    "preserve-context": (None, False),
}
DEPRECATED = {
    "whitelist-var-run": "ignore-var-run",
    "snapshotMode": "snapshot-mode",
    "customPlatform": "custom-platform",
    "tarPath": "tar-path",
}

BASE = ["--no-push"]


def parse(argv: list[str], env: dict[str, str] | None = None, **kw: object) -> o.BuildOptions:
    kw.setdefault("check_implemented", False)
    return o.parse_build_options(argv, env or {}, euid=1000, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(KANIKO_FLAGS))
def test_every_kaniko_flag_is_in_the_table_with_its_short_form_and_default(name: str) -> None:
    short, default = KANIKO_FLAGS[name]
    opt = o.BY_NAME[name]
    assert opt.short == short
    if default is not None:
        assert opt.default == default


@pytest.mark.parametrize(("old", "new"), sorted(DEPRECATED.items()))
def test_deprecated_alias_sets_the_new_flag_and_warns(old: str, new: str) -> None:
    value = {"ignore-var-run": "false", "snapshot-mode": "redo"}.get(new, "linux/arm64")
    if new == "tar-path":
        value = "/tmp/out.tar"
    warnings: list[str] = []
    opts = parse([*BASE, f"--{old}={value}"], warn=warnings.append)
    expected = {"false": False}.get(value, value)
    assert getattr(opts, new.replace("-", "_")) == expected
    assert warnings == [f"flag --{old} is deprecated, use --{new}"]


def test_table_and_dataclass_declare_the_same_fields_and_defaults() -> None:
    fields = {f.name: f for f in dataclasses.fields(o.BuildOptions)}
    derived = {"docker_config", "given"}
    assert set(fields) - derived == {opt.field_name for opt in o.OPTIONS}
    blank = o.BuildOptions()
    for opt in o.OPTIONS:
        if opt.name in ("git", "isolation"):
            continue
        assert getattr(blank, opt.field_name) == opt.default, opt.name


def test_defaults_match_kaniko_when_nothing_is_given() -> None:
    opts = parse(BASE)
    assert opts.context == "/workspace/"
    assert opts.dockerfile == "Dockerfile"
    assert opts.cache_ttl == timedelta(days=14)
    assert opts.ignore_var_run is True
    assert opts.custom_platform.startswith("linux/")
    assert opts.given == frozenset({"no-push"})


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--cache"], True),
        (["--cache=true"], True),
        (["--cache=false"], False),
        (["--cache=1"], True),
        (["--cache=F"], False),
        (["--cache=TRUE"], True),
        ([], False),
    ],
)
def test_go_style_booleans(argv: list[str], expected: bool) -> None:
    assert parse([*BASE, "--cache-repo=r/c", *argv]).cache is expected


def test_boolean_with_separate_value_is_an_unexpected_argument() -> None:
    with pytest.raises(UsageError, match=r"unexpected argument: 'false' \(booleans take"):
        parse([*BASE, "--cache", "false"])


def test_invalid_boolean_value_names_the_flag() -> None:
    with pytest.raises(UsageError, match="invalid boolean 'yes' for --cache"):
        parse([*BASE, "--cache=yes"])


@pytest.mark.parametrize(
    "argv",
    [
        ["-f", "sub/Dockerfile"],
        ["-fsub/Dockerfile"],
        ["-f=sub/Dockerfile"],
        ["--dockerfile", "sub/Dockerfile"],
        ["--dockerfile=sub/Dockerfile"],
    ],
)
def test_short_and_long_forms_of_a_value_flag(argv: list[str]) -> None:
    assert parse([*BASE, *argv]).dockerfile == "sub/Dockerfile"


def test_short_forms_for_context_destination_verbosity() -> None:
    opts = parse(["-c", "dir:///src", "-d", "reg/a:1", "-d", "reg/a:2", "-v", "debug"])
    assert opts.context == "dir:///src"
    assert opts.destination == ("reg/a:1", "reg/a:2")
    assert opts.verbosity == "debug"


def test_value_flag_takes_the_next_word_even_if_it_starts_with_a_dash() -> None:
    assert parse([*BASE, "--target", "-weird"]).target == "-weird"


def test_value_flag_at_the_end_needs_an_argument() -> None:
    with pytest.raises(UsageError, match="flag needs an argument: --target"):
        parse([*BASE, "--target"])


def test_repeatable_flags_keep_order_as_tuples() -> None:
    opts = parse([*BASE, "--label", "a=1", "--label=b=2", "--ignore-path", "/x"])
    assert opts.label == ("a=1", "b=2")
    assert opts.ignore_path == ("/x",)


def test_key_value_maps_later_value_wins() -> None:
    opts = parse(
        [
            *BASE,
            "--registry-certificate",
            "r.io=/a.crt",
            "--registry-certificate=q.io=/b.crt",
            "--registry-certificate=r.io=/c.crt",
            "--registry-client-cert",
            "r.io=/c.pem,/k.pem",
        ]
    )
    assert opts.registry_certificate == {"r.io": "/c.crt", "q.io": "/b.crt"}
    assert opts.registry_client_cert == {"r.io": "/c.pem,/k.pem"}


def test_map_without_equals_is_malformed() -> None:
    with pytest.raises(UsageError, match="--registry-certificate: expected key=value"):
        parse([*BASE, "--registry-certificate", "r.io"])


def test_client_cert_needs_cert_and_key() -> None:
    with pytest.raises(UsageError, match=r"--registry-client-cert r\.io: expected CERT,KEY"):
        parse([*BASE, "--registry-client-cert", "r.io=/only.pem"])


def test_registry_map_is_multi_valued_and_semicolon_separated() -> None:
    opts = parse([*BASE, "--registry-map", "a.io=m1;a.io=m2;b.io=m3", "--registry-map=a.io=m4"])
    assert opts.registry_map == {"a.io": ("m1", "m2", "m4"), "b.io": ("m3",)}


def test_registry_mirror_repeatable_semicolons_and_env_appended_last() -> None:
    opts = parse(
        [*BASE, "--registry-mirror", "m1;m2", "--registry-mirror=m3"],
        {"KANIKO_REGISTRY_MIRROR": "m4;m5"},
    )
    assert opts.registry_mirror == ("m1", "m2", "m3", "m4", "m5")
    assert opts.effective_registry_map()["index.docker.io"] == ("m1", "m2", "m3", "m4", "m5")


def test_registry_map_env_var_adds_to_flags() -> None:
    opts = parse([*BASE, "--registry-map=a.io=m1"], {"KANIKO_REGISTRY_MAP": "a.io=m2;c.io=m3"})
    assert opts.registry_map == {"a.io": ("m1", "m2"), "c.io": ("m3",)}


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False)])
def test_kaniko_no_push_env_var_overrides_like_kaniko(value: str, expected: bool) -> None:
    opts = parse(["-d", "r/a"], {"KANIKO_NO_PUSH": value})
    assert opts.no_push is expected


def test_kaniko_no_push_env_var_rejects_non_boolean() -> None:
    with pytest.raises(UsageError, match="KANIKO_NO_PUSH"):
        parse(["-d", "r/a"], {"KANIKO_NO_PUSH": "yes please"})


def test_kaniko_dir_flag_wins_over_env_and_repoints_docker_config() -> None:
    assert parse(BASE, {"KANIKO_DIR": "/k2"}).kaniko_dir == "/k2"
    opts = parse([*BASE, "--kaniko-dir=/k3"], {"KANIKO_DIR": "/k2", "DOCKER_CONFIG": "/d"})
    assert opts.kaniko_dir == "/k3"
    assert opts.docker_config == "/k3/.docker"
    assert parse(BASE, {"DOCKER_CONFIG": "/d"}).docker_config == "/d"


def test_build_arg_without_value_takes_it_from_env() -> None:
    opts = parse([*BASE, "--build-arg", "A", "--build-arg", "B", "--build-arg=C=x=y"], {"A": "1"})
    assert opts.build_arg == ("A=1", "B=", "C=x=y")
    assert opts.build_args_dict() == {"A": "1", "B": "", "C": "x=y"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("336h", 336 * 3600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("0", 0), ("250ms", 0.25)],
)
def test_cache_ttl_takes_go_durations(text: str, seconds: float) -> None:
    assert parse([*BASE, f"--cache-ttl={text}"]).cache_ttl.total_seconds() == seconds


@pytest.mark.parametrize("text", ["336", "h", "1d", "", "1h-2m"])
def test_bad_duration_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse([*BASE, f"--cache-ttl={text}"])


def test_int_flags_parse_go_integers_and_reject_words() -> None:
    assert parse([*BASE, "--push-retry=0x10"]).push_retry == 16
    with pytest.raises(UsageError, match="invalid integer 'many' for --push-retry"):
        parse([*BASE, "--push-retry", "many"])


def test_choice_flags_reject_unknown_values_with_a_suggestion() -> None:
    with pytest.raises(UsageError, match=r"--compression: choose one of gzip, zstd \(did you mean"):
        parse([*BASE, "--compression=zstdd"])
    assert parse([*BASE, "--compression", "zstd"]).compression == "zstd"


def test_git_options_are_key_value_and_go_booleans() -> None:
    opts = parse([*BASE, "--git", "branch=dev", "--git=single-branch=true"])
    assert opts.git == o.GitOptions(branch="dev", single_branch=True)
    both = parse([*BASE, "--git=branch=main,recurse-submodules=true"]).git
    assert both == o.GitOptions(branch="main", recurse_submodules=True)
    with pytest.raises(UsageError, match=r"unknown --git key 'brnch' \(did you mean branch"):
        parse([*BASE, "--git", "brnch=dev"])


def test_isolation_default_follows_euid_and_never_picks_inplace() -> None:
    assert o.parse_build_options(BASE, {}, euid=0).isolation == "chroot"
    assert o.parse_build_options(BASE, {}, euid=1000).isolation == "rootless"
    env = {"BRICKYARD_ISOLATION": "inplace"}
    assert o.parse_build_options(BASE, env, euid=0, check_implemented=False).isolation == "inplace"


def test_bucket_becomes_a_gs_context() -> None:
    assert parse([*BASE, "-b", "my-bucket"]).context == "gs://my-bucket"
    assert parse([*BASE, "--bucket", "s3://b/ctx.tgz"]).context == "s3://b/ctx.tgz"


def test_custom_platform_is_validated() -> None:
    assert parse([*BASE, "--custom-platform=linux/arm/v7"]).custom_platform == "linux/arm/v7"
    with pytest.raises(UsageError, match="invalid platform"):
        parse([*BASE, "--custom-platform=linux/arm/v7/extra"])


# ---- kaniko's validation rules


def test_destination_required_unless_no_push() -> None:
    with pytest.raises(UsageError, match="you must provide --destination, or use --no-push"):
        parse([])
    assert parse(["--no-push"]).destination == ()
    assert parse(["-d", "r/a"]).no_push is False


def test_cache_with_no_push_needs_cache_repo() -> None:
    with pytest.raises(UsageError, match="specify cache repo with --cache-repo"):
        parse(["--no-push", "--cache"])
    assert parse(["--no-push", "--cache", "--cache-repo", "r/cache"]).cache_repo == "r/cache"
    assert parse(["-d", "r/a", "--cache"]).cache is True


@pytest.mark.parametrize(
    "flag", ["--image-name-with-digest-file", "--image-name-tag-with-digest-file"]
)
def test_digest_name_files_need_a_destination(flag: str) -> None:
    with pytest.raises(UsageError, match=f"you must provide --destination if setting {flag}"):
        parse(["--no-push", flag, "/tmp/f"])
    assert parse(["-d", "r/a", flag, "/tmp/f"]).destination == ("r/a",)


def test_tar_path_and_digest_file_with_no_push_are_allowed() -> None:
    opts = parse(["--no-push", "--tar-path", "/tmp/i.tar", "--digest-file=/tmp/d"])
    assert (opts.tar_path, opts.digest_file) == ("/tmp/i.tar", "/tmp/d")


def test_empty_context_without_bucket_is_rejected() -> None:
    with pytest.raises(UsageError, match="--context flag or a bucket"):
        parse([*BASE, "--context="])


# ---- unknown flags and not-implemented markers


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["--destinaton", "r/a"], "(did you mean --destination?)"),
        (["--no-psh"], "(did you mean --no-push?)"),
        (["--cach=true"], "(did you mean --cache?)"),
        (["--zzzzzzzzzz"], None),
    ],
)
def test_unknown_flag_names_it_and_suggests_the_closest(argv: list[str], hint: str | None) -> None:
    with pytest.raises(UsageError) as info:
        parse([*BASE, *argv])
    flag = argv[0].split("=")[0]
    expected = f"unknown flag: {flag}" + (f" {hint}" if hint else "")
    assert str(info.value) == expected


def test_unknown_flag_exit_code_is_usage() -> None:
    with pytest.raises(UsageError) as info:
        parse(["--bogus"])
    assert info.value.exit_code == 2


@pytest.fixture
def cleanup_unimplemented(monkeypatch: pytest.MonkeyPatch) -> str:
    """Mark --cleanup as not implemented, whatever its real marker says today."""
    table = tuple(
        dataclasses.replace(opt, implemented=False) if opt.name == "cleanup" else opt
        for opt in o.OPTIONS
    )
    monkeypatch.setattr(o, "OPTIONS", table)
    return "cleanup"


def test_flag_set_but_not_implemented_raises_naming_it(cleanup_unimplemented: str) -> None:
    with pytest.raises(NotImplementedFlag) as info:
        o.parse_build_options([*BASE, "--cleanup"], {}, euid=0)
    assert str(info.value) == "--cleanup is accepted but not implemented yet"
    assert info.value.exit_code == 10


def test_not_implemented_flag_at_its_default_is_harmless(cleanup_unimplemented: str) -> None:
    opts = o.parse_build_options([*BASE, "--cleanup=false"], {}, euid=0)
    assert "cleanup" in opts.given and opts.cleanup is False


def test_help_lists_every_visible_flag() -> None:
    text = o.render_help("executor")
    for opt in o.OPTIONS:
        assert (f"--{opt.name} " in text or f"--{opt.name}\n" in text) != opt.hidden, opt.name
    assert "-f, --dockerfile" in text


def test_docs_flags_md_is_up_to_date() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "flags.md"
    assert doc.read_text(encoding="utf-8") == o.render_flags_markdown(), (
        "docs/flags.md is stale: run `python -m engine.options docs/flags.md`"
    )


def test_warmer_parses_its_own_short_forms() -> None:
    opts = o.parse_warmer_options(["-i", "debian:12", "-c", "/c", "-f"], {})
    assert opts.image == ("debian:12",) and opts.cache_dir == "/c" and opts.force
    with pytest.raises(UsageError, match="at least one image"):
        o.parse_warmer_options([], {})


def test_long_flag_with_one_dash_is_caught_instead_of_read_as_a_short_flag() -> None:
    with pytest.raises(UsageError, match=r"-destination \(did you mean --destination"):
        parse(["-destination", "r/a"])
    assert parse([*BASE, "-fDockerfile.prod"]).dockerfile == "Dockerfile.prod"
