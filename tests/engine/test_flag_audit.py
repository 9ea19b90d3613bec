"""Every flag marked implemented is read by the code that builds (or warms), or is listed
below as accepted for compatibility with a help text that says so.

A source scan, deliberately simple: a field counts as read when engine/ or adapters/ (outside
engine/options.py, which only parses) names it as an attribute (`opts.cache_ttl`) or as a
string (`getattr(opts, "cache_ttl")`, RegistryConfig's `get("push_retry", 0)`). It cannot tell
a read that has no effect from one that has; it catches the flag nobody looks at.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from engine import options as o

REPO = Path(__file__).resolve().parents[2]

# Flags brickyard accepts and deliberately ignores, because its one behaviour already gives what
# the flag asks for. Each help text says "Accepted for compatibility" and why.
ACCEPTED_BUILD_FLAGS = {
    # the stat index compares more than redo/time and catches what full's content hash does
    "snapshot-mode",
    # every RUN is already a before/after stat walk, which is what kaniko's new run is
    "use-new-run",
    # layers are streamed through files, never held in memory: nothing to trade (docs/cache.md)
    "compressed-caching",
    # stages build in their own directories; no stage cleanup can touch the build context
    "preserve-context",
}
# Every warmer flag has an effect (its log flags too: warm() logs as a build does).
ACCEPTED_WARMER_FLAGS: set[str] = set()
# WarmerOptions shares field names with BuildOptions, so the warmer's reads are looked for only
# where its options go: warm() and RegistryConfig.from_options. Add a file when warm() passes
# its options on to one more.
WARMER_READERS = ("engine/cache/warm.py", "engine/registry/config.py")

# Fields parse_build_options folds into another field: read there, not by the build.
FOLDED_BY_PARSER = {"bucket": "becomes --context gs://BUCKET"}

# BuildOptions methods that read fields for their callers.
OPTION_METHODS = {
    "build_args_dict": ("build_arg",),
    "effective_registry_map": ("registry_map", "registry_mirror"),
}


def names_read(sources: Iterable[str]) -> set[str]:
    """Attribute names and string constants (identifier-like) used anywhere in `sources`."""
    found: set[str] = set()
    for text in sources:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Attribute):
                found.add(node.attr)
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.isidentifier()
            ):
                found.add(node.value)
    return found


def _engine_sources() -> list[str]:
    files = [*(REPO / "engine").rglob("*.py"), *(REPO / "adapters").rglob("*.py")]
    return [
        p.read_text(encoding="utf-8") for p in sorted(files) if p != REPO / "engine" / "options.py"
    ]


@pytest.fixture(scope="module")
def read() -> set[str]:
    names = names_read(_engine_sources())
    for method, fields in OPTION_METHODS.items():
        if method in names:
            names.update(fields)
    return names


@pytest.fixture(scope="module")
def warmer_read() -> set[str]:
    return names_read((REPO / p).read_text(encoding="utf-8") for p in WARMER_READERS)


def _unread(table: Iterable[o.Option], read: set[str], accepted: set[str]) -> list[str]:
    return sorted(
        opt.name
        for opt in table
        if opt.implemented
        and opt.name not in accepted
        and opt.name not in FOLDED_BY_PARSER
        and opt.field_name not in read
    )


def test_every_implemented_build_flag_is_read_or_accepted(read: set[str]) -> None:
    assert _unread(o.OPTIONS, read, ACCEPTED_BUILD_FLAGS) == []


def test_every_implemented_warmer_flag_is_read_or_accepted(warmer_read: set[str]) -> None:
    assert _unread(o.WARMER_OPTIONS, warmer_read, ACCEPTED_WARMER_FLAGS) == []


@pytest.mark.parametrize("kind", ["build", "warm"])
def test_accepted_flags_say_so_and_are_really_unread(
    kind: str, read: set[str], warmer_read: set[str]
) -> None:
    table, accepted, seen = (
        (o.OPTIONS, ACCEPTED_BUILD_FLAGS, read)
        if kind == "build"
        else (o.WARMER_OPTIONS, ACCEPTED_WARMER_FLAGS, warmer_read)
    )
    by_name = {opt.name: opt for opt in table}
    for name in sorted(accepted):
        opt = by_name[name]
        assert opt.implemented, name  # accepted: setting it must not stop the build
        assert opt.help.startswith("Accepted for compatibility"), name
        # once something reads it, it is implemented: take it off the list, fix its help
        assert opt.field_name not in seen, f"--{name} is read now: drop it from the allowlist"


def test_folded_fields_are_folded() -> None:
    opts = o.parse_build_options(["--no-push", "--bucket", "b"], {}, euid=0)
    assert opts.context == "gs://b"


def test_accepted_values_parse_and_change_no_other_field() -> None:
    base = o.parse_build_options(["--no-push"], {}, euid=0)
    for argv in (
        ["--snapshot-mode=redo"],
        ["--snapshot-mode", "time"],
        ["--use-new-run"],
        ["--compressed-caching=false"],
        ["--preserve-context"],
    ):
        opts = o.parse_build_options(["--no-push", *argv], {}, euid=0)
        changed = {
            f
            for f in o.BuildOptions.__dataclass_fields__
            if getattr(opts, f) != getattr(base, f) and f != "given"
        }
        assert len(changed) == 1, (argv, changed)


def test_the_scan_sees_attribute_and_string_reads_and_nothing_else() -> None:
    names = names_read(['x = opts.cache_ttl\ny = get("push_retry", 0)\nz = "not a name!"\n'])
    assert {"cache_ttl", "push_retry"} <= names
    assert "not a name!" not in names
    assert "image_fs_extract_retry" not in names


# Help texts that state a limit of the engine; each test fails once the limit is gone, so the
# help is rewritten then.


def test_inplace_isolation_is_refused_in_a_build_as_its_help_says() -> None:
    from engine.build import sources

    isolation = sources.isolation_for(o.BuildOptions(isolation="inplace"))
    assert isolation.name == "inplace" and isolation.allowed is False
    assert "none does yet" in o.BY_NAME["isolation"].help


def test_kaniko_dir_repoints_docker_config_as_its_help_says(read: set[str]) -> None:
    # parse_build_options derives docker_config as kaniko does; RegistryConfig reads it
    assert o.parse_build_options(["--no-push", "--kaniko-dir=/k"], {}, euid=0).docker_config
    assert "docker_config" in read
    assert "re-points DOCKER_CONFIG" in o.BY_NAME["kaniko-dir"].help
