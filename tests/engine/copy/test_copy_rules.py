"""Docker's COPY rules, one behaviour per test, on a real context and rootfs."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import pytest

from engine.context.dockerignore import IgnoreMatcher
from engine.copy import copy_instruction, copy_sources
from engine.dockerfile import parse_dockerfile
from engine.errors import BuildError, ContextError
from tests.engine.copy.conftest import MTIME_NS


def copy(ctx: Path, root: Path, sources: list[str], dest: str, **kw: object) -> list[str]:
    return copy_sources(sources=sources, dest=dest, src_root=ctx, rootfs=root, **kw)  # type: ignore[arg-type]


def owner(p: Path) -> tuple[int, int]:
    st = p.lstat()
    return st.st_uid, st.st_gid


def test_file_to_file_path_creates_parents_and_keeps_mode_and_mtime(
    context: Path, rootfs: Path
) -> None:
    written = copy(context, rootfs, ["a.txt"], "/x/y/z.txt")
    target = rootfs / "x/y/z.txt"
    assert target.read_text() == "A"
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_mtime_ns == MTIME_NS
    assert owner(target) == (0, 0)
    assert stat.S_IMODE((rootfs / "x").stat().st_mode) == 0o755
    assert written == ["x", "x/y", "x/y/z.txt"]


def test_trailing_slash_means_directory(context: Path, rootfs: Path) -> None:
    assert copy(context, rootfs, ["a.txt"], "/x/") == ["x", "x/a.txt"]
    assert (rootfs / "x/a.txt").read_text() == "A"


def test_existing_directory_without_slash_receives_the_file(context: Path, rootfs: Path) -> None:
    copy(context, rootfs, ["a.txt"], "/tmp")
    assert (rootfs / "tmp/a.txt").read_text() == "A"


def test_directory_source_copies_its_contents_not_itself(context: Path, rootfs: Path) -> None:
    written = copy(context, rootfs, ["dir"], "/d")
    assert sorted(os.listdir(rootfs / "d")) == [
        "d.txt",
        "debug.log",
        "hard1",
        "hard2",
        "link",
        "sub",
    ]
    assert (rootfs / "d/sub/c.txt").read_text() == "C"
    assert stat.S_IMODE((rootfs / "d/sub").stat().st_mode) == 0o750
    assert (rootfs / "d/sub").stat().st_mtime_ns == MTIME_NS  # dir times kept too
    assert "d/sub/c.txt" in written and "d" in written


def test_symlinks_inside_are_copied_as_links_named_links_are_followed(
    context: Path, rootfs: Path
) -> None:
    copy(context, rootfs, ["dir/"], "/d/")
    assert os.readlink(rootfs / "d/link") == "d.txt"
    copy(context, rootfs, ["link_to_a"], "/f")
    assert not (rootfs / "f").is_symlink()
    assert (rootfs / "f").read_text() == "A"


def test_hardlinks_in_one_copy_stay_hardlinks(context: Path, rootfs: Path) -> None:
    copy(context, rootfs, ["dir"], "/d")
    assert (rootfs / "d/hard1").stat().st_ino == (rootfs / "d/hard2").stat().st_ino


def test_several_sources_need_a_directory_destination(context: Path, rootfs: Path) -> None:
    with pytest.raises(BuildError, match="destination must be a directory and end with a /"):
        copy(context, rootfs, ["a.txt", "b.txt"], "/x")
    with pytest.raises(BuildError, match="more than one source file"):
        copy(context, rootfs, ["*.txt"], "/x")
    copy(context, rootfs, ["a.txt", "b.txt"], "/x/")
    assert sorted(os.listdir(rootfs / "x")) == ["a.txt", "b.txt"]


def test_wildcards_use_go_filepath_match_per_component(context: Path, rootfs: Path) -> None:
    copy(context, rootfs, ["*.txt", "dir/*/c.t?t", "[n]otes.*"], "/w/")
    assert sorted(os.listdir(rootfs / "w")) == ["a.txt", "b.txt", "c.txt", "notes.md"]
    assert not (rootfs / "w/sub").exists()


def test_a_wildcard_may_match_nothing_if_another_source_matches(
    context: Path, rootfs: Path
) -> None:
    copy(context, rootfs, ["*.none", "a.txt"], "/w/")
    assert os.listdir(rootfs / "w") == ["a.txt"]
    with pytest.raises(BuildError, match="no source files were specified"):
        copy(context, rootfs, ["*.none"], "/w/")


def test_missing_source_names_it(context: Path, rootfs: Path) -> None:
    with pytest.raises(BuildError, match="COPY failed: file not found in build context: nope"):
        copy(context, rootfs, ["nope"], "/")


def test_sources_cannot_leave_the_source_root(context: Path, rootfs: Path) -> None:
    with pytest.raises(ContextError, match="outside the build context"):
        copy(context, rootfs, ["../rootfs/etc/passwd"], "/x")
    # A context symlink pointing far up resolves inside the context: no host /etc here.
    with pytest.raises(BuildError, match="escape"):
        copy(context, rootfs, ["escape/passwd"], "/x")


def test_relative_destination_is_under_workdir(context: Path, rootfs: Path) -> None:
    copy(context, rootfs, ["a.txt"], "rel/", workdir="/app")
    copy(context, rootfs, ["b.txt"], ".", workdir="/app")
    assert sorted(os.listdir(rootfs / "app")) == ["b.txt", "rel"]
    assert (rootfs / "app/rel/a.txt").read_text() == "A"


def test_chown_by_name_applies_to_files_dirs_and_created_parents(
    context: Path, rootfs: Path
) -> None:
    copy(context, rootfs, ["dir"], "/srv/d", chown="app:staff")
    for rel in ("srv", "srv/d", "srv/d/sub", "srv/d/sub/c.txt", "srv/d/link"):
        assert owner(rootfs / rel) == (1000, 50), rel


def test_chown_by_number_uses_uid_as_gid(context: Path, rootfs: Path) -> None:
    copy(context, rootfs, ["a.txt"], "/f", chown="10")
    assert owner(rootfs / "f") == (10, 10)
    with pytest.raises(BuildError, match="can't find uid for user ghost"):
        copy(context, rootfs, ["a.txt"], "/g", chown="ghost")


def test_chmod_applies_to_files_and_directories(context: Path, rootfs: Path) -> None:
    copy(context, rootfs, ["dir"], "/d", chmod="600")
    assert stat.S_IMODE((rootfs / "d/sub").stat().st_mode) == 0o600
    assert stat.S_IMODE((rootfs / "d/sub/c.txt").stat().st_mode) == 0o600
    with pytest.raises(BuildError, match="invalid octal mode"):
        copy(context, rootfs, ["a.txt"], "/e", chmod="u+x")


def test_destination_through_symlinked_directories_stays_in_rootfs(
    context: Path, rootfs: Path, tmp_path: Path
) -> None:
    (rootfs / "real").mkdir()
    (rootfs / "link").symlink_to("/real")  # absolute: means rootfs/real
    (rootfs / "up").symlink_to("../../../../../../outside")
    copy(context, rootfs, ["a.txt"], "/link/")
    copy(context, rootfs, ["b.txt"], "/up/b.txt")
    assert (rootfs / "real/a.txt").read_text() == "A"
    assert (rootfs / "outside/b.txt").read_text() == "B"
    assert not (tmp_path / "outside").exists()


def test_dockerignore_excludes_named_sources_and_entries_below(context: Path, rootfs: Path) -> None:
    matcher = IgnoreMatcher.from_lines(["**/*.log", "notes.md"])
    copy(context, rootfs, ["dir"], "/d", ignore=matcher)
    assert not (rootfs / "d/debug.log").exists()
    assert (rootfs / "d/d.txt").exists()
    with pytest.raises(BuildError, match=r"file not found in build context: notes\.md"):
        copy(context, rootfs, ["notes.md"], "/n", ignore=matcher)
    copy(context, rootfs, ["*"], "/all/", ignore=lambda rel: rel.endswith(".txt"))
    assert "a.txt" not in os.listdir(rootfs / "all")


def test_file_cannot_replace_a_directory_and_dir_not_into_a_file(
    context: Path, rootfs: Path
) -> None:
    (rootfs / "afile").write_text("x")
    with pytest.raises(BuildError, match="cannot copy to non-directory"):
        copy(context, rootfs, ["dir"], "/afile")
    with pytest.raises(BuildError, match="cannot copy to non-directory"):
        copy(context, rootfs, ["a.txt"], "/afile/x")


def test_existing_file_is_replaced_not_written_through_a_symlink(
    context: Path, rootfs: Path
) -> None:
    (rootfs / "d").mkdir()
    (rootfs / "d/d.txt").symlink_to("/etc/passwd")
    before = (rootfs / "etc/passwd").read_text()
    copy(context, rootfs, ["dir"], "/d")
    assert (rootfs / "etc/passwd").read_text() == before
    assert not (rootfs / "d/d.txt").is_symlink()
    assert (rootfs / "d/d.txt").read_text() == "D"


def test_copy_from_a_stage_keeps_owners_unless_chown(context: Path, rootfs: Path) -> None:
    os.chown(context / "b.txt", 1234, 4321)
    copy(context, rootfs, ["b.txt"], "/kept", preserve_owner=True)
    copy(context, rootfs, ["b.txt"], "/reset")
    copy(context, rootfs, ["b.txt"], "/given", preserve_owner=True, chown="7:8")
    assert owner(rootfs / "kept") == (1234, 4321)
    assert owner(rootfs / "reset") == (0, 0)
    assert owner(rootfs / "given") == (7, 8)


def test_heredoc_sources_become_files(context: Path, rootfs: Path) -> None:
    written = copy(
        context, rootfs, ["<<EOF", "<<EOT"], "/etc/app/", inline={"EOF": "one\n", "EOT": "two\n"}
    )
    assert (rootfs / "etc/app/EOF").read_text() == "one\n"
    assert stat.S_IMODE((rootfs / "etc/app/EOT").stat().st_mode) == 0o644
    assert written == ["etc/app", "etc/app/EOF", "etc/app/EOT"]


def test_copy_instruction_reads_flags_and_heredocs(context: Path, rootfs: Path) -> None:
    df = parse_dockerfile(
        "FROM scratch\n"
        "COPY --chown=app --chmod=700 a.txt b.txt /bin2/\n"
        "COPY <<EOF /etc/motd\nhello\nEOF\n"
    )
    first, second = df.instructions[1:]
    copy_instruction(first, rootfs=rootfs, source_root=context, workdir="/")
    copy_instruction(second, rootfs=rootfs, source_root=context, workdir="/")
    assert owner(rootfs / "bin2/a.txt") == (1000, 1000)
    assert stat.S_IMODE((rootfs / "bin2/b.txt").stat().st_mode) == 0o700
    assert (rootfs / "etc/motd").read_text() == "hello\n"
    # the build pipeline's call form: the instruction as first positional argument
    copy_sources(first, rootfs=rootfs, source_root=context, workdir="/", is_add=False)


def test_copy_rejects_urls_and_checksums(context: Path, rootfs: Path) -> None:
    with pytest.raises(BuildError, match="source can't be a URL for COPY"):
        copy(context, rootfs, ["http://example.invalid/x"], "/x")
    with pytest.raises(BuildError, match="--checksum can only be used with HTTP"):
        copy(context, rootfs, ["a.txt"], "/x", is_add=True, checksum="sha256:" + "0" * 64)


def test_exclude_skips_matching_sources_and_entries(context: Path, rootfs: Path) -> None:
    copy(context, rootfs, ["*.txt", "notes.md"], "/e/", exclude=["b.*"])
    assert sorted(os.listdir(rootfs / "e")) == ["a.txt", "notes.md"]
    copy(context, rootfs, ["dir"], "/d/", exclude=["*.log", "sub"])
    assert sorted(os.listdir(rootfs / "d")) == ["d.txt", "hard1", "hard2", "link"]


def test_parents_recreates_source_paths_and_honours_the_pivot(context: Path, rootfs: Path) -> None:
    copy(context, rootfs, ["./dir/sub/c.txt", "a.txt"], "/p", parents=True)
    assert (rootfs / "p/dir/sub/c.txt").read_text() == "C"
    assert (rootfs / "p/a.txt").read_text() == "A"
    copy(context, rootfs, ["dir/./sub/*.txt"], "/q/", parents=True)
    assert (rootfs / "q/sub/c.txt").read_text() == "C"
    assert not (rootfs / "q/dir").exists()


def test_copy_instruction_passes_exclude_and_parents_flags(context: Path, rootfs: Path) -> None:
    df = parse_dockerfile(
        "FROM scratch\nCOPY --exclude=*.log --exclude=hard* dir /x/\n"
        "COPY --parents dir/sub/c.txt /y/\n"
    )
    for ins in df.instructions[1:]:
        copy_instruction(ins, rootfs=rootfs, source_root=context)
    assert sorted(os.listdir(rootfs / "x")) == ["d.txt", "link", "sub"]
    assert (rootfs / "y/dir/sub/c.txt").exists()


def test_copy_refuses_git_repositories(context: Path, rootfs: Path) -> None:
    with pytest.raises(BuildError, match="can't be a git repository for COPY"):
        copy(context, rootfs, ["git@example.invalid:org/repo.git"], "/src")


def test_file_capabilities_and_user_xattrs_are_copied(context: Path, rootfs: Path) -> None:
    src = context / "ping"
    src.write_bytes(b"\x7fELF")
    os.setxattr(src, "user.origin", b"ctx")
    # vfs_cap_data v2: effective flag, permitted = CAP_NET_RAW (13), i.e. cap_net_raw+ep
    net_raw = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)
    os.setxattr(src, "security.capability", net_raw)
    copy(context, rootfs, ["ping"], "/bin/ping", chown="app")
    assert os.getxattr(rootfs / "bin/ping", "user.origin") == b"ctx"
    # kept although the chown to app came first (a chown drops file capabilities)
    assert os.getxattr(rootfs / "bin/ping", "security.capability") == net_raw


def test_symlinked_directories_in_the_destination_are_followed_not_replaced(
    context: Path, rootfs: Path
) -> None:
    # merged /usr: /lib -> usr/lib; copying a tree with lib/ must write into /usr/lib
    (rootfs / "usr/lib").mkdir(parents=True)
    (rootfs / "lib").symlink_to("usr/lib")
    tree = context / "tree/lib/sub"
    tree.mkdir(parents=True)
    (tree / "x.so").write_text("so")
    copy(context, rootfs, ["tree"], "/")
    assert os.readlink(rootfs / "lib") == "usr/lib"
    assert (rootfs / "usr/lib/sub/x.so").read_text() == "so"


def test_chown_to_an_id_unmapped_in_the_user_namespace_keeps_the_copy(
    context: Path, rootfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rootless build without a subordinate id range: the kernel answers EINVAL.
    def unmapped(*_args: object) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "lchown", unmapped)
    monkeypatch.setattr(os, "fchown", unmapped)
    copy(context, rootfs, ["a.txt"], "/f", chown="4242")
    assert (rootfs / "f").read_text() == "A"


def test_chown_failing_otherwise_is_not_hidden(
    context: Path, rootfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "lchown", broken)
    monkeypatch.setattr(os, "fchown", broken)
    with pytest.raises(OSError, match="Input/output error"):
        copy(context, rootfs, ["a.txt"], "/f", chown="4242")
