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


def generate(task: str, n: int, *, size: int, seed: int = 0, split: str = "train",
             start: int = 0, progress: bool = False) -> list[dict]:
    """``n`` samples of ``task`` at ``size`` px, indices ``start .. start + n - 1``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 0 or size < 16:
        raise ValueError(f"need n >= 0 and size >= 16, got n={n}, size={size}")
    spec = task_spec(task)
    fn = spec["sample"]
    it = range(start, start + n)
    if progress:
        it = tqdm(it, desc=f"simulating {task} ({split})", unit="img", leave=False)
    return [fn(sample_rng(seed, task, split, i), size=size, index=i, split=split) for i in it]
