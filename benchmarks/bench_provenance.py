"""How long provenance capture takes in a repository of 1,000 files.

    .venv/bin/python benchmarks/bench_provenance.py [--files 1000] [--repeat 5]

Builds a temporary git repository (1,000 committed files in 50 folders, 10 of them modified,
20 untracked small text files), then times, in milliseconds:

* ``capture()`` cold (first call in the process: nothing cached) and warm (median of repeats),
  with the per-part breakdown;
* the same with ``packages=False`` (no requirements.txt);
* a data fingerprint of the 1,000 files, cold (hashing) and warm (fingerprint cache hit);
* ``capture_async()``: what stays on the caller's path (the call returning) and when the result lands.

The bar (issue 4): capture adds <= 300 ms to ``init``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GIT = ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", "-c", "commit.gpgsign=false"]


def make_repo(root: Path, n: int) -> None:
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=root, check=True)
    for i in range(n):
        d = root / f"pkg{i % 50:02d}"
        d.mkdir(exist_ok=True)
        (d / f"mod{i:04d}.py").write_text(f"# module {i}\n" + "x = 1\n" * 40)
    subprocess.run([*GIT, "add", "."], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "init"], cwd=root, check=True)
    for i in range(0, n, max(1, n // 10)):  # 10 modified tracked files
        p = root / f"pkg{i % 50:02d}" / f"mod{i:04d}.py"
        p.write_text(p.read_text() + "y = 2\n")
    for i in range(20):  # 20 untracked small files
        (root / f"scratch{i}.txt").write_text("note\n" * 10)
    old = time.time() - 3600  # outside the fingerprint cache's racy window
    for p in root.rglob("*.py"):
        os.utime(p, (old, old))


def ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        os.environ["TRACKKIT_CACHE_DIR"] = str(Path(tmp) / "cache")
        make_repo(root, args.files)

        t0 = time.perf_counter()
        from trackkit import provenance

        import_ms = ms(t0)

        t0 = time.perf_counter()
        p = provenance.capture(cwd=str(root), warn=False)
        cold = ms(t0)
        parts = {k: round(v, 1) for k, v in p.timings_ms.items()}
        assert p.meta["git"]["dirty"] and p.meta["git"]["untracked_count"] == 20, p.meta["git"]

        warm_runs, warm_parts = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            p = provenance.capture(cwd=str(root), warn=False)
            warm_runs.append(ms(t0))
            warm_parts.append(p.timings_ms)
        warm = statistics.median(warm_runs)
        wparts = {k: round(statistics.median(d[k] for d in warm_parts), 1) for k in warm_parts[0]}

        nopkg_runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            provenance.capture(cwd=str(root), packages=False, warn=False)
            nopkg_runs.append(ms(t0))
        nopkg = statistics.median(nopkg_runs)

        dataset = Path(tmp) / "dataset"
        old = time.time() - 3600
        for i in range(n_data := args.files):
            f = dataset / f"shard{i % 20:02d}" / f"sample{i:05d}.bin"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(os.urandom(4096))
            os.utime(f, (old, old))
        data = {"name": "toy", "version": "v1", "path": str(dataset)}
        t0 = time.perf_counter()
        d1 = provenance.capture(git=False, environment=False, invocation=False, data=data, warn=False)
        data_cold = ms(t0)
        t0 = time.perf_counter()
        d2 = provenance.capture(git=False, environment=False, invocation=False, data=data, warn=False)
        data_warm = ms(t0)
        assert d1.meta["data"]["fingerprint"] == d2.meta["data"]["fingerprint"]

        caller, total = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fut = provenance.capture_async(cwd=str(root), data=data, warn=False)
            caller.append(ms(t0))
            fut.result()
            total.append(ms(t0))

    n = args.files
    assert d1.meta["data"]["files"] == n_data
    print(
        f"provenance capture, git repository of {n} files (10 modified, 20 untracked), python {sys.version.split()[0]}"
    )
    print(f"  import trackkit.provenance          {import_ms:8.1f} ms")
    print(f"  capture() cold (first call)         {cold:8.1f} ms   parts: {parts}")
    print(f"  capture() warm (median of {args.repeat})        {warm:8.1f} ms   parts: {wparts}")
    print(f"  capture(packages=False) warm        {nopkg:8.1f} ms")
    print(
        f"  data fingerprint, {n_data} x 4 KiB files  cold {data_cold:6.1f} ms"
        f" (hashed {d1.meta['data']['cache']['hashed_bytes']} B)   warm {data_warm:6.1f} ms"
        f" (hashed {d2.meta['data']['cache']['hashed_bytes']} B)"
    )
    print(
        f"  capture_async(data=...) caller path  {statistics.median(caller):8.2f} ms   "
        f"result ready after {statistics.median(total):6.1f} ms (median of {args.repeat})"
    )
    print(f"  bar: <= 300 ms added to init -> synchronous warm capture {'OK' if warm <= 300 else 'OVER'}")


if __name__ == "__main__":
    main()
