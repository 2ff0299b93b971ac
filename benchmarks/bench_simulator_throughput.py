"""Simulator throughput: images per second per core for every generator at 64, 128, 256 px,
and the time to generate each profile's task sets and corpus.

Peer (same run): the simulator core on a homogeneous phantom at the same size
(``physics.simulate`` with a one-tissue scene), so the ratio shows what each generator's
anatomy, cine frames and labels cost on top of image formation. pymust, the physics
reference, is compared in ``bench_simulator_vs_pymust.py``.
Targets (issue: EchoAtlas-Sim): the smoke task sets and corpus in seconds, the cpu profile's
in well under a minute.
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # per-core numbers

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import date  # noqa: E402

import numpy as np  # noqa: E402

from echocare_lib.paths import project_root  # noqa: E402
from echocare_lib.profiles import PROFILES  # noqa: E402
from echocare_lib.sim import Probe, Processing, Scene, simulate  # noqa: E402
from echocare_lib.sim.corpus import write_corpus  # noqa: E402
from echocare_lib.sim.tasks import generate, task_names  # noqa: E402

SIZES = (64, 128, 256)


def _per_image(fn, n_min=3, t_min=1.0) -> float:
    fn()  # warm caches (filters, scan-conversion maps)
    n, t0 = 0, time.perf_counter()
    while n < n_min or time.perf_counter() - t0 < t_min:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = (64, 128) if quick else SIZES
    rows = []
    print(f"{'generator':<28}" + "".join(f"{s:>10} px" for s in sizes) + "   (images/s/core; ratio to core)")
    core = {}
    for s in sizes:
        scene, probe = Scene(), Probe("linear", width_mm=40)
        rng = np.random.default_rng(0)
        core[s] = _per_image(lambda: simulate(scene, probe, Processing(), depth_mm=40,
                                              out_shape=(s, s), rng=rng))
    print(f"{'core (homogeneous phantom)':<28}" + "".join(f"{1 / core[s]:>13.0f}" for s in sizes))
    for task in task_names():
        per = {}
        for s in sizes:
            counter = iter(range(10 ** 6))
            per[s] = _per_image(lambda: generate(task, 1, size=s, seed=0, start=next(counter)),
                                t_min=0.5 if quick else 1.0)
        rows.append({"task": task, **{f"img_per_s_{s}": 1 / per[s] for s in sizes},
                     **{f"ratio_to_core_{s}": per[s] / core[s] for s in sizes}})
        print(f"{task:<28}" + "".join(f"{1 / per[s]:>8.0f} ({per[s] / core[s]:>3.0f}x)"
                                      for s in sizes))
    sets = {}
    for name in ("smoke", "cpu"):
        p = PROFILES[name]
        t0 = time.perf_counter()
        for task in task_names():
            generate(task, p.sim_train_size + p.sim_test_size, size=p.image_size, seed=0,
                     n_jobs=os.cpu_count() or 1)
        t_tasks = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_corpus(tmp, n_sources=p.corpus_sources,
                         images_per_source=p.corpus_images_per_source, size=p.image_size,
                         seed=0, progress=False)
            t_corpus = time.perf_counter() - t0
        sets[name] = {"task_sets_s": t_tasks, "corpus_s": t_corpus,
                      "images_per_task": p.sim_train_size + p.sim_test_size,
                      "corpus_files": p.corpus_sources * p.corpus_images_per_source}
        print(f"profile {name} ({os.cpu_count()} processes): all task sets ({p.sim_train_size + p.sim_test_size} samples x "
              f"{len(task_names())} tasks at {p.image_size} px) {t_tasks:.1f} s; corpus "
              f"({p.corpus_sources * p.corpus_images_per_source} files) {t_corpus:.1f} s")
    out = project_root() / "benchmarks" / "results" / "simulator_throughput.json"
    out.write_text(json.dumps({"date": str(date.today()), "machine": platform.platform(),
                               "cores_used_per_generator": 1,
                               "processes_for_profile_sets": os.cpu_count(), "core_img_per_s": {s: 1 / core[s] for s in sizes},
                               "generators": rows, "profiles": sets}, indent=1) + "\n")
    print(f"results -> {out}")


if __name__ == "__main__":
    main()
