"""RUN, COPY, ADD, WORKDIR, USER: the pushed image unpacked by umoci and compared entry by entry."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from tests.e2e.harness import E2E, Entry, entry, exists, listing, new_layers

pytestmark = pytest.mark.integration


def test_run_writes_files_dirs_links_and_modes(e2e: E2E) -> None:
    b = e2e.build(
        "runfs",
        "FROM {base}\n"
        "RUN mkdir -p /opt/a/b && echo hello > /opt/a/b/f && chmod 640 /opt/a/b/f "
        "&& chmod 700 /opt/a && ln -s b/f /opt/a/link && mkfifo /opt/fifo "
        "&& chown 1000:50 /opt/a/b/f && touch /opt/suid && chmod 4755 /opt/suid "
        "&& mkdir /opt/sticky && chmod 1777 /opt/sticky\n",
    ).ok()
    r = b.rootfs
    assert entry(r, "/opt/a") == Entry("dir", 0o700, 0, 0)
    assert entry(r, "/opt/a/b/f") == Entry("file", 0o640, 1000, 50, "hello\n")
    assert entry(r, "/opt/a/link") == Entry("symlink", 0o777, 0, 0, "b/f")
    assert entry(r, "/opt/fifo").kind == "fifo"
    assert entry(r, "/opt/suid").mode == 0o4755
    assert entry(r, "/opt/sticky").mode == 0o1777
    assert len(new_layers(b)) == 1


def test_run_hardlinks_survive(e2e: E2E) -> None:
    b = e2e.build("hardlink", "FROM {base}\nRUN echo x > /a && ln /a /b\n").ok()
    assert os.stat(b.rootfs / "a").st_ino == os.stat(b.rootfs / "b").st_ino
    assert entry(b.rootfs, "/b").content == "x\n"


def test_rm_in_run_becomes_whiteout(e2e: E2E) -> None:
    b = e2e.build(
        "whiteout",
        "FROM {base}\nRUN rm -f /etc/group && rm -rf /home/app && rm /bin/vi\n",
    ).ok()
    assert not exists(b.rootfs, "/etc/group")
    assert not exists(b.rootfs, "/home/app")
    assert not exists(b.rootfs, "/bin/vi")
    assert exists(b.rootfs, "/etc/passwd")
    assert exists(b.rootfs, "/bin/sh")


def test_replaced_directory_hides_lower_content(e2e: E2E) -> None:
    b = e2e.build(
        "opaque",
        "FROM {base}\nRUN rm -rf /home && mkdir /home && echo new > /home/only\n",
    ).ok()
    assert listing(b.rootfs, "/home") == ["only"]


def test_file_replaced_by_directory_and_back(e2e: E2E) -> None:
    b = e2e.build(
        "replace",
        "FROM {base}\nRUN rm /etc/passwd && mkdir /etc/passwd && touch /etc/passwd/x\n"
        "RUN rm -rf /etc/passwd && echo root:x:0:0::/:/bin/sh > /etc/passwd\n",
    ).ok()
    assert entry(b.rootfs, "/etc/passwd") == Entry("file", 0o644, 0, 0, "root:x:0:0::/:/bin/sh\n")


def test_user_by_name_owns_what_run_writes(e2e: E2E) -> None:
    b = e2e.build(
        "username",
        "FROM {base}\nUSER app\nRUN id -u > /home/app/uid && id -G > /home/app/groups\n",
    ).ok()
    assert entry(b.rootfs, "/home/app/uid") == Entry("file", 0o644, 1000, 1000, "1000\n")
    assert set(entry(b.rootfs, "/home/app/groups").content.split()) == {"1000", "50"}


def test_user_uid_gid_numbers(e2e: E2E) -> None:
    b = e2e.build("useruid", "FROM {base}\nUSER 1234:50\nRUN touch /tmp/mine\n").ok()
    f = entry(b.rootfs, "/tmp/mine")
    assert (f.uid, f.gid) == (1234, 50)


def test_workdir_created_and_used(e2e: E2E) -> None:
    b = e2e.build(
        "workdir",
        "FROM {base}\nWORKDIR /srv/app\nRUN pwd > here\nWORKDIR sub\nRUN pwd > here\n",
    ).ok()
    assert b.container["WorkingDir"] == "/srv/app/sub"
    assert entry(b.rootfs, "/srv/app") == Entry("dir", 0o755, 0, 0)
    assert entry(b.rootfs, "/srv/app/here").content == "/srv/app\n"
    assert entry(b.rootfs, "/srv/app/sub/here").content == "/srv/app/sub\n"


def test_workdir_owned_by_user(e2e: E2E) -> None:
    b = e2e.build("workdiruser", "FROM {base}\nUSER app\nWORKDIR /data/app\n").ok()
    d = entry(b.rootfs, "/data/app")
    assert (d.kind, d.uid, d.gid) == ("dir", 1000, 1000)


def test_heredoc_run(e2e: E2E) -> None:
    b = e2e.build(
        "heredoc",
        "FROM {base}\nRUN <<EOF\necho one > /h1\necho two >> /h1\nEOF\n",
    ).ok()
    assert entry(b.rootfs, "/h1").content == "one\ntwo\n"


def test_exec_form_run_without_shell(e2e: E2E) -> None:
    b = e2e.build("execrun", 'FROM {base}\nRUN ["/bin/mkdir", "-p", "/exec/$HOME"]\n').ok()
    assert exists(b.rootfs, "/exec/$HOME")  # no shell, no expansion


def test_copy_files_and_directory_contents(e2e: E2E) -> None:
    b = e2e.build(
        "copy",
        "FROM {base}\nCOPY a.txt dir /app/\nCOPY a.txt /renamed\n",
        {"a.txt": "A\n", "dir/b.txt": "B\n", "dir/sub/c.txt": "C\n"},
    ).ok()
    r = b.rootfs
    assert listing(r, "/app") == ["a.txt", "b.txt", "sub"]
    assert entry(r, "/app/a.txt").content == "A\n"
    assert entry(r, "/app/sub/c.txt").content == "C\n"
    assert entry(r, "/renamed").content == "A\n"
    assert entry(r, "/app/a.txt").uid == 0


def test_copy_chown_chmod(e2e: E2E) -> None:
    b = e2e.build(
        "copychown",
        "FROM {base}\nCOPY --chown=app:staff --chmod=640 f.txt /f.txt\n"
        "COPY --chown=1234 f.txt /g\n",
        {"f.txt": "F\n"},
    ).ok()
    assert entry(b.rootfs, "/f.txt") == Entry("file", 0o640, 1000, 50, "F\n")
    g = entry(b.rootfs, "/g")
    assert (g.uid, g.gid) == (1234, 1234)


def test_copy_wildcards_relative_to_workdir(e2e: E2E) -> None:
    b = e2e.build(
        "copyglob",
        "FROM {base}\nWORKDIR /w\nCOPY *.txt ./\n",
        {"one.txt": "1", "two.txt": "2", "skip.md": "no"},
    ).ok()
    assert listing(b.rootfs, "/w") == ["one.txt", "two.txt"]


def test_copy_keeps_symlinks_and_honours_dockerignore(e2e: E2E) -> None:
    ctx = e2e.work / "ignore-ctx"
    ctx.mkdir()
    (ctx / "real.txt").write_text("real\n")
    os.symlink("real.txt", ctx / "link.txt")
    (ctx / "secret.env").write_text("TOKEN=1\n")
    (ctx / ".dockerignore").write_text("*.env\nDockerfile\n")
    b = e2e.build("copyignore", "FROM {base}\nCOPY . /ctx/\n", context=ctx).ok()
    assert listing(b.rootfs, "/ctx") == [".dockerignore", "link.txt", "real.txt"]
    assert entry(b.rootfs, "/ctx/link.txt") == Entry("symlink", 0o777, 0, 0, "real.txt")


def test_add_extracts_local_tar(e2e: E2E) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"inside\n"
        info = tarfile.TarInfo("pkg/inside.txt")
        info.size = len(data)
        info.mode = 0o600
        tar.addfile(info, io.BytesIO(data))
    b = e2e.build(
        "addtar", "FROM {base}\nADD bundle.tar.gz /opt/\n", {"bundle.tar.gz": buf.getvalue()}
    ).ok()
    assert entry(b.rootfs, "/opt/pkg/inside.txt") == Entry("file", 0o600, 0, 0, "inside\n")
