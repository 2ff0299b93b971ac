"""Scene generators for the downstream applications: one registry, one call.

Each task module declares ``TASKS = {name: {"kind", "classes", "sample", "description",
"paper_dataset"}}``; ``sample(rng, *, size, index, split)`` returns one sample in the
project's common schema (see :mod:`echocare_lib.sim.render`). This registry collects them,
gives every sample its own random stream (:func:`~echocare_lib.sim.render.sample_rng`) so
sets are reproducible bit for bit whatever the order, and shows progress for long sets.
"""
from __future__ import annotations

import importlib
from functools import lru_cache

from tqdm.auto import tqdm

from ..render import SPLITS, sample_rng

#: Task modules, in the order of the paper's Table 1 (plus the pretraining-only extras).
MODULES = ("neck", "breast", "liver_ceus", "abdomen", "fetal", "cardiac", "enhancement",
           "report")


@lru_cache(maxsize=1)
def registry() -> dict[str, dict]:
    tasks: dict[str, dict] = {}
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        for task, spec in module.TASKS.items():
            if task in tasks:
                raise RuntimeError(f"task {task!r} is declared twice ({name} and earlier)")
            tasks[task] = {**spec, "module": name}
    return tasks


def task_names() -> list[str]:
    return list(registry())


def task_spec(task: str) -> dict:
    reg = registry()
    if task not in reg:
        raise KeyError(f"Unknown simulated task {task!r}; known tasks: {list(reg)}")
    return reg[task]


def _one(args: tuple) -> dict:
    task, seed, split, index, size = args
    fn = task_spec(task)["sample"]
    return fn(sample_rng(seed, task, split, index), size=size, index=index, split=split)


def generate(task: str, n: int, *, size: int, seed: int = 0, split: str = "train",
             start: int = 0, progress: bool = False, n_jobs: int = 1) -> list[dict]:
    """``n`` samples of ``task`` at ``size`` px, indices ``start .. start + n - 1``.

    ``n_jobs`` > 1 spreads samples over worker processes; every sample has its own random
    stream, so the result is identical bit for bit whatever ``n_jobs`` is."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 0 or size < 16:
        raise ValueError(f"need n >= 0 and size >= 16, got n={n}, size={size}")
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    task_spec(task)  # unknown task names fail here, with the list of known ones
    jobs = [(task, seed, split, i, size) for i in range(start, start + n)]
    return map_jobs(_one, jobs, n_jobs, desc=f"simulating {task} ({split})", progress=progress)


def map_jobs(fn, jobs: list, n_jobs: int, *, desc: str, progress: bool) -> list:
    """``[fn(job) for job in jobs]``, in order, on ``n_jobs`` worker processes when worth it."""
    n = len(jobs)
    bar = tqdm(total=n, desc=desc, unit="img", leave=False, disable=not progress)
    if n_jobs <= 1 or n < 2 * n_jobs:
        out = []
        for job in jobs:
            out.append(fn(job))
            bar.update()
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(n_jobs, mp_context=ctx) as pool:
            out = []
            # ~16 chunks per worker: large enough to amortise the transfers, small enough
            # that the last ones do not leave a worker idle for long (a cine sample ~60 ms)
            for sample in pool.map(fn, jobs, chunksize=max(1, n // (16 * n_jobs))):
                out.append(sample)
                bar.update()
    bar.close()
    return out
