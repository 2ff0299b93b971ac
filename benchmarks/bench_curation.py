"""Curation throughput: files per second through ingest + de-identification + QC + hashing,
on 1 worker (in process) and on a 2-worker Dask LocalCluster, on the same simulated corpus.

Peer (same run): the 1-worker run; the printed ratio is the speed-up from Dask workers.
Near-duplicate search is benchmarked against imagededup in ``bench_dedup.py``.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

from echocare_lib.curation.ingest import Limits, walk_inputs
from echocare_lib.curation.pipeline import run_steps
from echocare_lib.paths import project_root
from echocare_lib.sim.corpus import write_corpus

N_SOURCES, PER_SOURCE = 18, 25


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "raw"
        write_corpus(root, n_sources=N_SOURCES, images_per_source=PER_SOURCE, size=128, seed=0,
                     progress=False)
        files = walk_inputs(root)
        from dask.distributed import LocalCluster

        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        startup = time.perf_counter() - t0
        results = {"cluster_startup_s": startup}
        warm = Path(tmp) / "warm"
        warm.mkdir()
        # warm the workers (imports) on a few files, as a long run amortises them
        run_steps(files[:8], root=str(root), out_images=str(warm), limits=Limits(),
                  scheduler=cluster.scheduler_address, n_workers=2, progress=False)
        for label, scheduler, workers in (("1 worker", "synchronous", 1),
                                          ("2 workers (LocalCluster)", cluster.scheduler_address,
                                           2)):
            out = Path(tmp) / f"images-{workers}"
            out.mkdir()
            t0 = time.perf_counter()
            rows = run_steps(files, root=str(root), out_images=str(out), limits=Limits(),
                             scheduler=scheduler, n_workers=workers, progress=False)
            dt = time.perf_counter() - t0
            results[label] = {"seconds": dt, "files_per_s": len(files) / dt,
                              "rows": len(rows)}
            print(f"{label:<26} {len(files)} files, {len(rows)} images/frames/rejections: "
                  f"{dt:6.1f} s, {len(files) / dt:6.1f} files/s")
        cluster.close()
        print(f"(cluster start-up, not included above: {startup:.1f} s)")
    one, two = results["1 worker"], results["2 workers (LocalCluster)"]
    print(f"speed-up with 2 workers: {two['files_per_s'] / one['files_per_s']:.2f}x")
    out = project_root() / "benchmarks" / "results" / "curation.json"
    out.write_text(json.dumps({"date": str(date.today()), "machine": platform.platform(),
                               "cores": os.cpu_count(), "files": len(files), **results},
                              indent=1) + "\n")
    print(f"results -> {out}")


if __name__ == "__main__":
    main()
