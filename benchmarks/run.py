#!/usr/bin/env python3
"""brickyard vs buildah vs ch-image, side by side (see benchmarks/README.md).

    python3 benchmarks/run.py                 # every case, 3 runs, table into README.md
    python3 benchmarks/run.py --reps 1 --cases small-app,cached-rebuild --no-readme

Needs root (loop devices, mounts, chroot). Every builder run gets a fresh ext4 file system
in a sparse loop file; builders are interleaved run by run, in a rotating order.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from harness.builders import BUILDERS, Brickyard, Builder  # noqa: E402
from harness.cases import CASES, Case  # noqa: E402
from harness.images import BenchImages, setup  # noqa: E402
from harness.install import install_brickyard  # noqa: E402
from harness.loopfs import fresh_ext4  # noqa: E402
from harness.measure import Measured, run_measured  # noqa: E402
from harness.report import Series, table, write_readme  # noqa: E402


def _tail(log: Path, n: int = 400) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return " ".join(text[-n:].split())


def image_stats(ref: str, base_layers: int) -> tuple[int, float]:
    """(layers added over the base, their compressed MB) from the pushed manifest."""
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=True,
    )
    manifest = json.loads(out.stdout)
    layers = manifest.get("layers", [])[base_layers:]
    return len(layers), sum(int(x["size"]) for x in layers) / 1e6


def base_layer_count(ref: str) -> int:
    return image_stats(ref, 0)[0]


def concrete_base(dockerfile: Path, base: str) -> None:
    """Write the base reference into FROM: ch-image cannot expand `FROM ${BASE}`."""
    lines = dockerfile.read_text().splitlines(keepends=True)
    text = "".join(line for line in lines if line.strip() != "ARG BASE")
    dockerfile.write_text(text.replace("${BASE}", base))


def measured(builder: Builder, inv_args: dict, log: Path, cwd: Path) -> Measured:
    inv = builder.build(**inv_args)
    return run_measured(inv.argv, env=inv.env, cwd=cwd, log=log)


def one_run(
    case: Case,
    builder: Builder,
    rep: int,
    images: BenchImages,
    contexts: Path,
    work: Path,
    logs: Path,
    series: Series,
    measure_size: bool,
) -> None:
    host = images.registry.host
    base = images.debian if case.base == "debian" else images.busybox
    assert base is not None
    ref = f"{host}/bench/{case.name}:{builder.name}-r{rep}"
    log = logs / f"{case.name}-{builder.name}-r{rep}.log"
    log.unlink(missing_ok=True)
    tag = f"{case.name}-{builder.name}-{rep}"
    with fresh_ext4(work, tag) as mnt:
        ctx = mnt / "context"
        shutil.copytree(contexts / case.name, ctx, symlinks=True)
        concrete_base(ctx / "Dockerfile", base)
        state = mnt / "state"
        state.mkdir()
        args = dict(case=case, ctx=ctx, state=state, base=base, ref=ref, registry=host)
        if case.mutate is not None:
            cache_repo = f"{host}/bench/{case.name}-r{rep}/cache"
            args["cache_repo"] = cache_repo
            warm = measured(builder, args, log, mnt)
            if warm.returncode != 0:
                series.failures.append(f"warm-up exit {warm.returncode}: {_tail(log)}")
                return
            case.mutate(ctx)
            if builder.name == "brickyard":
                # A new CI pod: empty local state, the registry is the only cache.
                with fresh_ext4(work, tag + "-again") as mnt2:
                    ctx2 = mnt2 / "context"
                    shutil.copytree(ctx, ctx2, symlinks=True)
                    state2 = mnt2 / "state"
                    state2.mkdir()
                    args2 = {**args, "ctx": ctx2, "state": state2}
                    result = measured(builder, args2, log, mnt2)
            else:
                result = measured(builder, args, log, mnt)
        else:
            result = measured(builder, args, log, mnt)
        if result.returncode != 0:
            series.failures.append(f"exit {result.returncode}: {_tail(log)}")
            return
        series.seconds.append(result.seconds)
        series.rss_mb.append(result.peak_rss_mb)
        print(
            f"  {case.name:16} {builder.name:10} run {rep + 1}: {result.seconds:7.2f} s "
            f"{result.peak_rss_mb:6.0f} MB",
            flush=True,
        )
        if measure_size and builder.measures_size:
            pub = builder.publish(state, ref=ref)
            if pub is not None:
                done = run_measured(pub.argv, env=pub.env, cwd=mnt, log=log)
                if done.returncode != 0:
                    series.note = f"push for size failed: {_tail(log, 200)}"
                    return
            skip = 0 if builder.flattens else base_layer_count(base)
            series.layers, series.compressed_mb = image_stats(ref, skip)
            if builder.flattens:
                series.note = "flattened: one layer holding the whole image"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--builders", default=",".join(BUILDERS))
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/brickyard-bench"))
    ap.add_argument("--readme", type=Path, default=HERE / "README.md")
    ap.add_argument("--no-readme", action="store_true", help="print the table only")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("benchmarks need root (loop devices, mounts, chroot)", file=sys.stderr)
        return 2
    cases = [CASES[c] for c in args.cases.split(",") if c]
    builders = [BUILDERS[b] for b in args.builders.split(",") if b]
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    started = time.monotonic()
    load_before = os.getloadavg()
    images = setup(work, want_debian=any(c.base == "debian" for c in cases))
    if any(isinstance(b, Brickyard) for b in builders):
        Brickyard.executor = install_brickyard(work)
    try:
        contexts = work / "contexts"
        shutil.rmtree(contexts, ignore_errors=True)
        contexts.mkdir()
        for case in cases:
            (contexts / case.name).mkdir()
            case.make_context(contexts / case.name)
        series = {(c.name, b.name): Series(c.name, b.name) for c in cases for b in builders}
        for c in cases:
            for b in builders:
                if c.base == "debian" and images.debian is None:
                    series[(c.name, b.name)].note = f"no Debian base: {images.debian_problem}"
                elif why := b.unsupported(c):
                    series[(c.name, b.name)].note = why
        for rep in range(args.reps):
            print(f"run {rep + 1}/{args.reps}", flush=True)
            for case in cases:
                # Rotate the order each run so no builder always goes first.
                order = builders[rep % len(builders) :] + builders[: rep % len(builders)]
                for b in order:
                    s = series[(case.name, b.name)]
                    if s.note.startswith("no Debian") or b.unsupported(case):
                        continue
                    one_run(case, b, rep, images, contexts, work, logs, s, measure_size=rep == 0)
    finally:
        images.registry.stop()
    elapsed = time.monotonic() - started
    loads = (load_before, os.getloadavg())
    body = render(series, cases, builders, args.reps, elapsed, loads)
    print(body)
    results = {
        f"{k[0]}/{k[1]}": {
            "seconds": v.seconds,
            "rss_mb": v.rss_mb,
            "failures": v.failures,
            "layers": v.layers,
            "compressed_mb": v.compressed_mb,
            "note": v.note,
        }
        for k, v in series.items()
    }
    (work / "results.json").write_text(json.dumps(results, indent=2))
    if not args.no_readme:
        write_readme(args.readme, body)
        (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def render(
    series: dict[tuple[str, str], Series],
    cases: list[Case],
    builders: list[Builder],
    reps: int,
    elapsed: float,
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> str:
    names = [c.name for c in cases]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"Measured {when} on {os.cpu_count()} cores, Linux {platform.release()}, "
        f"{reps} run(s) per builder and case, whole benchmark {elapsed / 60:.1f} min; "
        f"load average {loads[0][0]:.1f} at the start, {loads[1][0]:.1f} at the end "
        "(other work shared the machine).\n\n"
    )
    extra = []
    small = series.get(("small-app", "brickyard"))
    cached = series.get(("cached-rebuild", "brickyard"))
    if small and cached and small.median and cached.median:
        pct = 100 * cached.median / small.median
        verdict = "met" if pct < 10 else "MISSED"
        extra.append(
            f"\nbrickyard cached-rebuild / brickyard small-app cold: {pct:.1f}% "
            f"(target under 10%: {verdict})."
        )
    extra += [
        "",
        "brickyard's times include pushing the image to the local registry; buildah's and "
        "ch-image's end in their local storage (their push is not timed). brickyard-nopush is "
        "the same build with --no-push (its ratio to buildah is shown in brackets); its "
        "layers and size are brickyard's. ch-image flattens "
        "an image into one layer: its layer count and size are the whole image's. "
        "cached-rebuild: brickyard starts from an empty file system and uses only the registry "
        "cache; buildah and ch-image keep their local storage from the warm-up build.",
    ]
    return head + table(series, names, [b.name for b in builders]) + "\n" + "\n".join(extra)


if __name__ == "__main__":
    sys.exit(main())
