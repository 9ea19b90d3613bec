"""Registry blob streaming benchmark: push then pull one large blob through RegistryClient
against a local docker-registry, each in a fresh child process, and report the child's
peak RSS and throughput. The claim to hold: memory does not grow with blob size
(1 GiB push and pull under 150 MB peak RSS).

    python3 benchmarks/registry_blob.py [--size-mib 1024] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from engine.image.model import Descriptor
from engine.registry import Reference, RegistryClient, RegistryConfig
mode, host, path, digest, size = sys.argv[1:6]
desc = Descriptor("application/vnd.oci.image.layer.v1.tar", digest, int(size))
ref = Reference.parse(f"{host}/bench/blob:1")
start = time.monotonic()
with RegistryClient(RegistryConfig(env={})) as client:
    if mode == "push":
        result = client.push_blob(ref, desc, Path(path))
        assert result == "uploaded", result
    else:
        client.fetch_blob(ref, desc, Path(path))
elapsed = time.monotonic() - start
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mode": mode, "seconds": elapsed, "peak_rss_mib": rss_mib}))
"""


def make_blob(path: Path, size: int) -> str:
    """Write `size` bytes (a random 1 MiB block repeated with a counter) and return its digest."""
    block = os.urandom(1024 * 1024)
    h = hashlib.sha256()
    with path.open("wb") as f:
        written = 0
        i = 0
        while written < size:
            chunk = (i.to_bytes(8, "big") + block)[: min(len(block), size - written)]
            f.write(chunk)
            h.update(chunk)
            written += len(chunk)
            i += 1
    return "sha256:" + h.hexdigest()


def run_child(mode: str, host: str, path: Path, digest: str, size: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, host, str(path), digest, str(size)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def baseline_rss_mib() -> float:
    """Peak RSS of a child that only imports the client (the interpreter's own cost)."""
    code = (
        "import resource; import engine.registry; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    )
    return float(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    from tests.support.registry import start_registry

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="brickyard-bench-") as tmp:
        work = Path(tmp)
        blob = work / "blob"
        t0 = time.monotonic()
        digest = make_blob(blob, size)
        gen_s = time.monotonic() - t0
        reg = start_registry(work / "registry")
        try:
            push = run_child("push", reg.host, blob, digest, size)
            pulled = work / "pulled"
            pull = run_child("pull", reg.host, pulled, digest, size)
            assert pulled.stat().st_size == size
        finally:
            reg.stop()
    base = baseline_rss_mib()
    result = {
        "size_mib": args.size_mib,
        "generate_seconds": round(gen_s, 2),
        "push_seconds": round(push["seconds"], 2),
        "push_mib_per_s": round(args.size_mib / push["seconds"], 1),
        "push_peak_rss_mib": round(push["peak_rss_mib"], 1),
        "pull_seconds": round(pull["seconds"], 2),
        "pull_mib_per_s": round(args.size_mib / pull["seconds"], 1),
        "pull_peak_rss_mib": round(pull["peak_rss_mib"], 1),
        "import_only_peak_rss_mib": round(base, 1),
        "host_cpus": os.cpu_count(),
        "self_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:26} {value}")
    ok = result["push_peak_rss_mib"] < 150 and result["pull_peak_rss_mib"] < 150
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
