"""Snapshot and layer-write benchmark (issue 4 targets: >= 40,000 files/s, >= 300 MB/s).

    python3 benchmarks/snapshot_bench.py [--files 100000] [--dirs 1000] [--big-mib 1024]

many-files: index an (empty) rootfs, create N small files in D directories as a RUN would,
then time diff + write_layer (gzip). big-layer: one rootfs holding about 1 GiB of mixed data
(random, text-like, zeros) written as one layer (gzip, then zstd), right after the data
was written (page cache warm, as after a RUN). State lives on a fresh ext4 file system
in a sparse loop file when mkfs.ext4 + losetup + mount work (root), else in a tmp dir.
Prints a Markdown table; --readme rewrites the "snapshot" section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.fs.snapshot import Snapshotter
from engine.image.layers import HAVE_ISAL, write_layer

README = Path(__file__).resolve().parent / "README.md"


@contextmanager
def scratch_fs(size_gib: int) -> Iterator[tuple[Path, str]]:
    """A fresh ext4 in a sparse loop file if possible, else a tmp dir."""
    base = Path(tempfile.mkdtemp(prefix="brickyard-snapbench-"))
    image, mnt = base / "fs.img", base / "mnt"
    mnt.mkdir()
    mounted = False
    try:
        if os.geteuid() == 0 and shutil.which("mkfs.ext4"):
            with open(image, "wb") as fh:
                fh.truncate(size_gib << 30)
            try:
                subprocess.run(
                    ["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True
                )
                subprocess.run(
                    ["mount", "-o", "loop", str(image), str(mnt)], check=True, capture_output=True
                )
                mounted = True
            except (subprocess.CalledProcessError, OSError) as exc:
                print(f"loop ext4 unavailable ({exc}); using {base}", file=sys.stderr)
        yield mnt, ("fresh ext4 loop file system" if mounted else "tmp directory")
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def cpu_seconds() -> float:
    """User + system time of this process and its reaped children (the tar builders)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load_average() -> float:
    return os.getloadavg()[0]


def bench_many_files(work: Path, files: int, dirs: int) -> dict[str, float]:
    root = work / "rootfs"
    root.mkdir()
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text("ID=bench\n")
    snap = Snapshotter(root, ignore=["/proc", "/sys", "/dev"])
    snap.reset()
    t0 = time.perf_counter()
    per_dir = files // dirs
    payload = b"x" * 100
    for d in range(dirs):
        dp = root / "data" / f"d{d:04d}"
        dp.mkdir(parents=True)
        for f in range(per_dir):
            with open(dp / f"f{f:03d}.txt", "wb") as fh:
                fh.write(payload)
    create = time.perf_counter() - t0
    c1 = cpu_seconds()
    t1 = time.perf_counter()
    diff = snap.diff()
    t2 = time.perf_counter()
    blob = write_layer(
        root,
        diff.changed,
        diff.deleted,
        work / "layer.tgz",
        opaque=diff.opaque_dirs,
        index=snap.index,  # the stats the diff just took: no second lstat per path
    )
    t3 = time.perf_counter()
    cpu = cpu_seconds() - c1
    # second step: nothing changed -> the cost of a no-op snapshot
    t4 = time.perf_counter()
    assert snap.diff().empty
    noop = time.perf_counter() - t4
    total = t3 - t1
    return {
        "files": files,
        "create_s": create,
        "diff_s": t2 - t1,
        "write_s": t3 - t2,
        "total_s": total,
        "files_per_s": files / total,
        "noop_s": noop,
        "cpu_s": cpu,
        "load": load_average(),
        "entries": blob.entries,
        "layer_mb": blob.size / 1e6,
    }


def make_mixed(root: Path, total_mib: int) -> None:
    """Thirds of random bytes, text-like bytes and zeros, in files of 1-64 MiB."""
    root.mkdir()
    words = b" ".join(b"brickyard layer %d snapshot data" % i for i in range(40000))[: 1 << 20]
    written, i = 0, 0
    sizes = [1, 8, 64, 3, 16, 32, 2]
    while written < total_mib:
        mib = min(sizes[(i // 3) % len(sizes)], total_mib - written)
        kind = i % 3
        with open(root / f"blob{i:03d}.bin", "wb") as fh:
            for _ in range(mib):
                # fresh random bytes (incompressible), text-like bytes, or zeros
                fh.write(
                    os.urandom(1 << 20) if kind == 0 else words if kind == 1 else bytes(1 << 20)
                )
        written += mib
        i += 1


def bench_big_layer(work: Path, mib: int, compression: str) -> dict[str, float]:
    root = work / "big"
    if not root.exists():
        make_mixed(root, mib)
    # The data was just written, as by a RUN step: its pages are still cached, as they are
    # when a real build snapshots. (No drop_caches: other jobs share this machine.)
    snap = Snapshotter(root)
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    diff = snap.diff()
    blob = write_layer(
        root,
        diff.changed,
        [],
        work / f"big.{compression}",
        compression=compression,
        index=snap.index,
    )
    dt = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    size = blob.uncompressed_size
    (work / f"big.{compression}").unlink()
    return {
        "mb": size / 1e6,
        "s": dt,
        "mb_per_s": size / 1e6 / dt,
        "ratio": blob.size / size,
        "cpu_s": cpu,
        "load": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--dirs", type=int, default=1_000)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--readme", action="store_true", help="write results to benchmarks/README.md")
    args = ap.parse_args(argv)

    many: list[dict[str, float]] = []
    big: dict[str, list[dict[str, float]]] = {"gzip": [], "zstd": []}
    fs_gib = 4 if args.big_mib <= 1024 else 2 + args.big_mib // 512
    where = ""
    for _ in range(args.runs):
        with scratch_fs(fs_gib) as (work, kind):
            many.append(bench_many_files(work, args.files, args.dirs))
        with scratch_fs(fs_gib) as (work, kind):
            for comp in big:
                big[comp].append(bench_big_layer(work, args.big_mib, comp))
        where = kind
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def med(rows: list[dict[str, float]], key: str) -> float:
        vals = sorted(r[key] for r in rows)
        return vals[len(vals) // 2]

    def rng(rows: list[dict[str, float]], key: str, fmt: str) -> str:
        vals = [r[key] for r in rows]
        return f"{min(vals):{fmt}}-{max(vals):{fmt}}"

    fps = med(many, "files_per_s")
    lines = [
        "`python3 benchmarks/snapshot_bench.py [--files N --dirs D --big-mib M --runs R]",
        "[--readme]` (as root, for the loop file system) measures engine/fs/snapshot.py and",
        "engine/image/layers.py directly, without a build around them. many-files: index a",
        "rootfs, create the files as a RUN would, then time `Snapshotter.diff()` (one scandir",
        "walk, one lstat per path, a forked helper walking part of the tree) plus",
        "`write_layer(..., index=snapshotter.index)` (no second lstat; two forked builders make",
        "the tar entries, the parent hashes, a thread compresses). big-layer: one gzip and one",
        "zstd layer of about 1 GiB (thirds of random bytes, text and zeros in 1-64 MiB files).",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"gzip backend {'isal' if HAVE_ISAL else 'zlib'}, state on a {where}; "
        f"median of {args.runs} runs (min-max). "
        f"Command: `python3 benchmarks/snapshot_bench.py --readme`.",
        "",
        "Other jobs shared the machine: the load average (over 1 min, 2 cores) is shown, and",
        "CPU time (user + system, builders included) is the contention-free cost.",
        "",
        "| case | result | target | |",
        "|---|---|---|---|",
        f"| many-files: {args.files:,} files in {args.dirs:,} dirs, diff + gzip layer "
        f"| {fps:,.0f} files/s ({rng(many, 'files_per_s', ',.0f')}); "
        f"{med(many, 'total_s'):.2f} s = diff {med(many, 'diff_s'):.2f} s "
        f"+ write {med(many, 'write_s'):.2f} s; CPU {med(many, 'cpu_s'):.2f} s "
        f"(load {rng(many, 'load', '.1f')}) | >= 40,000 files/s "
        f"| {'met' if fps >= 40_000 else 'MISSED'} |",
        f"| many-files: no-op snapshot of the same tree | {med(many, 'noop_s'):.2f} s | | |",
    ]
    for comp, rows in big.items():
        mbps = med(rows, "mb_per_s")
        target = ">= 300 MB/s" if comp == "gzip" else "(zstd, for comparison)"
        verdict = ("met" if mbps >= 300 else "MISSED") if comp == "gzip" else ""
        lines.append(
            f"| big-layer: {med(rows, 'mb'):,.0f} MB mixed data just written, {comp} "
            f"| {mbps:,.0f} MB/s ({rng(rows, 'mb_per_s', ',.0f')}), "
            f"compressed to {med(rows, 'ratio'):.0%}; CPU {med(rows, 'cpu_s'):.2f} s "
            f"(load {rng(rows, 'load', '.1f')}) | {target} | {verdict} |"
        )
    lines.append(f"| peak RSS of the benchmark process | {rss_mb:,.0f} MB | | |")
    idle = args.files / (med(many, "cpu_s") / 2)
    lines += [
        "",
        f"The work is spread over two cores (a scan helper, two tar builders, a compression "
        f"thread), so on an idle machine the wall time approaches half the CPU time: "
        f"{args.files:,} files in {med(many, 'cpu_s'):.2f} CPU-s is about {idle:,.0f} files/s "
        f"there (an estimate, not a measurement). A MISSED above with a load average over 2 "
        f"means this job got only part of the 2 cores while other jobs ran.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.readme:
        write_section(text)
    return 0


def write_section(body: str) -> None:
    """Replace (or append) the '## snapshot' section of benchmarks/README.md."""
    head = "## snapshot"
    old = README.read_text() if README.exists() else "# brickyard benchmarks\n"
    start = old.find(head + "\n")
    section = f"{head}\n\n{body}\n"
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + section
    else:
        end = old.find("\n## ", start + len(head))
        new = old[:start] + section + (old[end:] if end >= 0 else "")
    README.write_text(new)


if __name__ == "__main__":
    raise SystemExit(main())
