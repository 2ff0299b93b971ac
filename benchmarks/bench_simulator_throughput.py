"""Simulator throughput: images per second per core for every generator at 64, 128, 256 px,
and the time to generate each profile's task sets and corpus.

Peer (same run): the simulator core on a homogeneous phantom at the same size
(``physics.simulate`` with a one-tissue scene), so the ratio shows what each generator's
anatomy, cine frames and labels cost on top of image formation. pymust, the physics
reference, is compared in ``bench_simulator_vs_pymust.py``.
Targets (issue: EchoAtlas-Sim): the smoke task sets and corpus in seconds, the cpu profile's
in well under a minute. The task sets are made as ``downstream.trials.task_data`` makes them:
per task, ``sim_train_size`` train and ``sim_test_size`` test samples at the profile's image
size, ``N_JOBS`` = 2 processes (the cpu profile's budget hardware is 2 cores); the total wall
time of every task's sets is the number to compare with the target. The machine's load
average is recorded next to it: on a shared machine wall times grow with other people's work.
Run: ``.venv/bin/python benchmarks/bench_simulator_throughput.py [--quick]``.
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
N_JOBS = 2  # processes for the profiles' task sets (the cpu profile's 2 cores); corpus: serial
TARGET_CPU_TASK_SETS_S = 60.0  # "well under a minute"


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
        load_before = os.getloadavg()
        per_task = {}
        t0 = time.perf_counter()
        for task in task_names():
            t = time.perf_counter()
            for split, n in (("train", p.sim_train_size), ("test", p.sim_test_size)):
                generate(task, n, size=p.image_size, seed=0, split=split, n_jobs=N_JOBS)
            per_task[task] = time.perf_counter() - t
        t_tasks = time.perf_counter() - t0
        load_after = os.getloadavg()
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_corpus(tmp, n_sources=p.corpus_sources,
                         images_per_source=p.corpus_images_per_source, size=p.image_size,
                         seed=0, progress=False)
            t_corpus = time.perf_counter() - t0
        n_img = p.sim_train_size + p.sim_test_size
        sets[name] = {"task_sets_s": t_tasks, "task_sets_per_task_s": per_task,
                      "corpus_s": t_corpus, "images_per_task": n_img,
                      "train_per_task": p.sim_train_size, "test_per_task": p.sim_test_size,
                      "image_size": p.image_size, "processes": N_JOBS,
                      "load_average_1min_before_after": [load_before[0], load_after[0]],
                      "corpus_files": p.corpus_sources * p.corpus_images_per_source}
        print(f"profile {name}: all task sets ({p.sim_train_size} train + {p.sim_test_size} test x "
              f"{len(task_names())} tasks at {p.image_size} px, {N_JOBS} processes) "
              f"{t_tasks:.1f} s wall; corpus ({p.corpus_sources * p.corpus_images_per_source} "
              f"files) {t_corpus:.1f} s  [load average {load_before[0]:.1f} -> "
              f"{load_after[0]:.1f} on {os.cpu_count()} cores]")
        print("    per task: " + ", ".join(f"{k} {v:.1f} s" for k, v in per_task.items()))
    cpu_total = sets["cpu"]["task_sets_s"]
    verdict = "PASS" if cpu_total < TARGET_CPU_TASK_SETS_S else "FAIL"
    sets["cpu"]["target_s"] = TARGET_CPU_TASK_SETS_S
    sets["cpu"]["pass"] = verdict == "PASS"
    print(f"cpu profile task sets: {cpu_total:.1f} s wall on {N_JOBS} processes "
          f"(target: well under {TARGET_CPU_TASK_SETS_S:.0f} s) {verdict}")
    out = project_root() / "benchmarks" / "results" / "simulator_throughput.json"
    out.write_text(json.dumps({"date": str(date.today()), "machine": platform.platform(),
                               "cores": os.cpu_count(), "cores_used_per_generator": 1,
                               "processes_for_profile_sets": N_JOBS,
                               "core_img_per_s": {s: 1 / core[s] for s in sizes},
                               "generators": rows, "profiles": sets}, indent=1) + "\n")
    print(f"results -> {out}")


if __name__ == "__main__":
    main()
