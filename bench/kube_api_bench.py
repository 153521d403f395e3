"""Figures for the test Kubernetes API server (tests/operator/kube_api.py): prints, asserts nothing.

    .venv/bin/python bench/kube_api_bench.py [--runs N] [--cold]

- build: the cached binary's recorded build time, or with --cold a fresh build into a temp
  cache with empty Go build and module caches (what a new machine or CI pays; minutes);
- binary size;
- start -> /readyz ok, CRD install, restart (stop + start) and kill + start, over N runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.operator import kube_api  # noqa: E402


def _seconds(samples: list[float]) -> str:
    return (f"median {statistics.median(samples):.2f} s, min {min(samples):.2f}, "
            f"max {max(samples):.2f} (n={len(samples)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="build with empty Go caches (slow)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kube-api-bench-") as scratch:
        if args.cold:
            os.environ["GPUSTACK_TOKEN_USAGE_CACHE"] = str(Path(scratch) / "cache")
            os.environ["GOCACHE"] = str(Path(scratch) / "gocache")
            os.environ["GOMODCACHE"] = str(Path(scratch) / "gomod")
        started = time.monotonic()
        binary = kube_api.build_binary()
        elapsed = time.monotonic() - started
        recorded = json.loads((binary.parent / "build.json").read_text())
        print(f"build: {elapsed:.1f} s this call; {recorded['seconds']} s when built "
              f"({recorded['go']}, Kubernetes {recorded['k8s']}){' [cold caches]' if args.cold else ''}")
        print(f"binary: {binary.stat().st_size / 2**20:.1f} MiB ({binary})")

        ready, crds, restart, crash = [], [], [], []
        for run in range(args.runs):
            server = kube_api.KubeApiServer(binary, Path(scratch) / f"run{run}")
            try:
                t = time.monotonic()
                server.start()
                ready.append(time.monotonic() - t)
                t = time.monotonic()
                server.install_all_crds()
                crds.append(time.monotonic() - t)
                t = time.monotonic()
                server.restart()
                restart.append(time.monotonic() - t)
                t = time.monotonic()
                server.kill()
                server.start()
                crash.append(time.monotonic() - t)
            finally:
                server.stop()
        print(f"start -> ready (empty data dir): {_seconds(ready)}")
        print(f"install CRDs ({len(kube_api.crd_files())} files, kubectl apply + wait): {_seconds(crds)}")
        print(f"restart (SIGTERM, start, ready): {_seconds(restart)}")
        print(f"kill -9 + start -> ready: {_seconds(crash)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
