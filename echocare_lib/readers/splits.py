"""Patient-level train/test split of reader (or simulator) samples.

Every patient's samples land on one side. Official splits win: a sample whose
``meta['split']`` is ``'test'`` goes to the test side and one marked ``'train'`` or ``'val'`` to
the training side; only patients with no official split at all are divided, deterministically,
``test_fraction`` of them (by patient count, rounded, at least one on each side when there are
two or more) going to test. The draw depends on ``seed`` and the set of patient ids only, not
on the order of the samples.

Simulator samples always carry the split they were generated for (``train``/``val``/``test``),
so for them this function simply keeps those sides: generate the test set with
``split='test'`` rather than splitting a training set here.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._common import ReaderWarning

_TRAIN = {"train", "training", "val", "valid", "validation"}
_TEST = {"test", "testing"}


def _patient(sample: dict, i: int) -> str:
    meta = sample.get("meta") or {}
    pid = meta.get("patient_id")
    if pid is None or str(pid) == "":
        raise ValueError(f"sample {i} (case_id {meta.get('case_id')!r}) has no "
                         "meta['patient_id']: a patient-level split needs one")
    # ids are compared as text; the data set name keeps ids of different sets apart
    return f"{meta.get('dataset', '')}\x1f{pid}"


def _official(sample: dict) -> str | None:
    s = (sample.get("meta") or {}).get("split")
    if s is None or str(s) == "":
        return None
    s = str(s).lower()
    if s in _TRAIN:
        return "train"
    if s in _TEST:
        return "test"
    raise ValueError(f"unknown split {s!r} in meta (expected train, val or test)")


def patient_split(samples, test_fraction: float = 0.2, seed: int = 0
                  ) -> tuple[list[dict], list[dict]]:
    """(train, test) lists, each in the input order; see the module docstring."""
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    samples = list(samples)
    pids = [_patient(s, i) for i, s in enumerate(samples)]
    offi = [_official(s) for s in samples]
    sides: dict[str, set] = {}
    for p, o in zip(pids, offi):
        sides.setdefault(p, set()).add(o)
    mixed = sorted(p for p, s in sides.items() if {"train", "test"} <= s)
    if mixed:
        warnings.warn(f"{len(mixed)} patient(s) sit on both sides of the official split (kept "
                      f"as the release has them): {[m.split(chr(31))[1] for m in mixed[:10]]}",
                      ReaderWarning, stacklevel=2)
    free = sorted(p for p, s in sides.items() if s == {None})
    # a patient with some officially assigned samples follows them with the unassigned ones
    follow = {p: ("test" if "test" in s else "train") for p, s in sides.items()
              if s != {None} and not {"train", "test"} <= s}
    n_test = int(round(test_fraction * len(free)))
    if len(free) >= 2 and test_fraction > 0:
        n_test = min(max(n_test, 1), len(free) - 1)
    order = np.random.default_rng(seed).permutation(len(free))
    test_free = {free[k] for k in order[:n_test]}
    train, test = [], []
    for s, p, o in zip(samples, pids, offi):
        side = o or follow.get(p) or ("test" if p in test_free else "train")
        (test if side == "test" else train).append(s)
    return train, test
