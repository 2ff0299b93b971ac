"""USenhance 2023 (MICCAI 2023 Ultrasound Image Enhancement challenge): low-quality images of
handheld devices paired with high-quality images of hospital machines, five organs.

Layout (shared/DATASETS.md, row USenhance 2023, confidence *consensus*: the training archive of
the challenge as unpacked by rajpurkarlab/ReX-MLE's preparation script for this challenge,
which walks ``train_datasets/<organ>/{low_quality,high_quality}/*.png`` and pairs equal file
names within one organ)::

    train_datasets/
        {breast,carotid,kidney,liver,thyroid}/
            low_quality/<name>.png        the input (handheld device)
            high_quality/<name>.png       its partner of the same name (hospital machine)

``train_datasets/`` may be the root itself or sit up to two levels below it; organ and quality
folder names are matched ignoring case, spaces, ``-`` and ``_`` (``low_quality``, ``low``,
``lq`` / ``high_quality``, ``high``, ``hq``). Other image files under the release folder (an
unknown organ folder, images outside a quality folder) are listed as skipped with the reason;
a sibling folder of ``train_datasets`` (e.g. the challenge's test set, low-quality images only
and without references) is not read and is reported in a note.

Pairing: by (organ, file stem) -- **names repeat across organs**, so ``case_id`` is
``<organ>_<stem>`` (the id ReX-MLE builds, e.g. ``breast_12``). Images keep their native sizes,
also when the two images of a pair differ (``meta['image_shape']`` / ``meta['target_shape']``
say so); the pipeline resizes later.

Unpaired images (the application trains unpaired, the paper's setting, so they stay usable):

* a low-quality image without a readable high-quality partner is kept as a sample **without
  the** ``"target"`` **key** (``meta['paired']`` False, ``meta['unpaired_reason']`` says why);
* a high-quality image without a readable low-quality partner yields no sample (a sample needs
  an ``"image"``); it is kept in ``result.targets_only``, a list of
  ``{"target", "organ", "meta"}`` dicts (discriminator targets), not in the sample list.

Both are listed as notes in the :class:`ReaderWarning`. With ``unpaired=False`` they are
skipped with their reason instead (and ``targets_only`` is empty). Unreadable images are always
skipped with the decoder's message; their partner is then unpaired.

Patient identity: the release gives no patient ids (1,500 pairs of 109 patients, unmatched),
so ``patient_id`` is the case id and images of one patient may fall on both sides of a split
made here. Split: the training release has no train/test division (the challenge's test set
has no references), so ``split`` is None and :func:`~echocare_lib.readers.splits.patient_split`
divides. Pixel spacing is not in the release (None).

Sample: ``image`` float32 [1, H, W] in [0, 1] (low quality; colour -> BT.601 luminance),
``target`` float32 [1, H', W'] (high quality; absent when unpaired), ``organ``, ``meta``
(dataset ``"USenhance"``, task, case_id, patient_id, split, source_path, target_path, organ,
name, paired, ...).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ._common import (IMAGE_SUFFIXES, Collector, DataFormatError, ReadResult, check_root,
                      image_error, load_gray, natural_key)

DATASET = "USenhance"
TASK = "enhancement"
#: the organs, in the simulator's order (echocare_lib.sim.tasks.enhancement.ORGANS)
CLASSES = ("thyroid", "carotid", "breast", "liver", "kidney")
REQUIRED = (
    "train_datasets/{breast,carotid,kidney,liver,thyroid}/low_quality/<name>.png",
    "train_datasets/{breast,carotid,kidney,liver,thyroid}/high_quality/<name>.png "
    "(the partner of the same name)",
)
_LOW = {"lowquality", "low", "lq"}
_HIGH = {"highquality", "high", "hq"}
_TRAIN = {"traindatasets", "traindataset", "train", "training"}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _quality_dirs(organ_dir: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in sorted(organ_dir.iterdir(), key=lambda p: p.name):
        if d.is_dir():
            n = _norm(d.name)
            if n in _LOW and "low" not in out:
                out["low"] = d
            elif n in _HIGH and "high" not in out:
                out["high"] = d
    return out


def _is_release(d: Path) -> bool:
    """``d`` holds at least one organ folder with a low/high quality folder."""
    return any(c.is_dir() and _norm(c.name) in CLASSES and _quality_dirs(c)
               for c in d.iterdir())


def find_base(root: Path, max_depth: int = 2) -> Path | None:
    """The folder holding the organ folders (``train_datasets`` preferred), ``root`` or up to
    ``max_depth`` levels below it."""
    frontier = [root]
    for _ in range(max_depth + 1):
        hits = [d for d in frontier if _is_release(d)]
        if hits:
            named = [d for d in hits if _norm(d.name) in _TRAIN]
            return sorted(named or hits, key=lambda p: natural_key(p.as_posix()))[0]
        frontier = sorted((c for d in frontier for c in d.iterdir() if c.is_dir()),
                          key=lambda p: natural_key(p.as_posix()))
    return None


def _images(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.name))


def read_usenhance(root, *, limit: int | None = None, strict: bool = False,
                   unpaired: bool = True) -> ReadResult:
    """Read USenhance 2023 under ``root`` (see the module docstring). ``limit``: at most that
    many samples; ``strict``: raise :class:`DataFormatError` at the first problem instead of
    skipping and reporting; ``unpaired``: keep images without a partner (low-quality ones as
    samples without ``"target"``, high-quality ones in ``result.targets_only``) instead of
    skipping them."""
    root = check_root(root, DATASET, REQUIRED)
    base = find_base(root)
    if base is None:
        raise DataFormatError(f"{DATASET}: no organ folder ({', '.join(CLASSES)}) with a "
                              f"low_quality/ or high_quality/ subfolder under {root} (up to "
                              f"three levels down); expected:\n  " + "\n  ".join(REQUIRED))
    col = Collector(DATASET, root, strict=strict, limit=limit)

    # every image file under the release folder is an input
    organs: list[tuple[str, Path, dict[str, Path]]] = []
    for d in sorted(base.iterdir(), key=lambda p: natural_key(p.name)):
        if d.is_dir() and _norm(d.name) in CLASSES:
            organs.append((_norm(d.name), d, _quality_dirs(d)))
    in_quality = {q for _, _, qd in organs for q in qd.values()}
    for p in sorted(base.rglob("*"), key=lambda p: natural_key(p.as_posix())):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            col.expect(col.rel(p))
    seen_organs: dict[str, Path] = {}
    for p in sorted(base.rglob("*"), key=lambda p: natural_key(p.as_posix())):
        if not (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) or p.parent in in_quality:
            continue
        top = p.relative_to(base).parts[0]
        if p.parent == base:
            why = "not inside an organ folder"
        elif _norm(top) not in CLASSES:
            why = f"organ folder {top!r} is not one of {', '.join(CLASSES)}"
        elif p.parent.parent == base:
            why = "not inside a low_quality/ or high_quality/ folder of its organ"
        else:
            why = (f"in {p.parent.relative_to(base).as_posix()}/, not a low_quality/ or "
                   "high_quality/ folder of its organ (the first folder of each quality "
                   "is read)")
        col.skip(col.rel(p), why)
    for organ, d, qd in organs:
        if organ in seen_organs:
            for q in qd.values():
                for p in _images(q):
                    col.skip(col.rel(p), f"a second folder for organ {organ!r} "
                                         f"({seen_organs[organ].name} is read)")
        seen_organs.setdefault(organ, d)
    if base != root:
        others = [c.name for c in base.parent.iterdir() if c.is_dir() and c != base
                  and _is_release(c)] if base.parent != base else []
        if others:
            col.note(col.rel(base.parent), f"folder(s) {others} beside {base.name}/ not read "
                                           "(only the training release has pairs)")

    targets_only: list[dict] = []
    for organ, d, qd in organs:
        if col.full:
            break
        if seen_organs[organ] != d:
            continue
        lows = _by_stem(col, qd.get("low"))
        highs = _by_stem(col, qd.get("high"))
        stems = sorted(set(lows) | set(highs), key=natural_key)
        for stem in stems:
            if col.full:
                break
            low, high = lows.get(stem), highs.get(stem)
            case = f"{organ}_{stem}"
            lgray = hgray = None
            lwhy = hwhy = None
            if low is not None:
                lgray, lwhy = _load(low)
                if lwhy:
                    col.skip(col.rel(low), lwhy)
            if high is not None:
                hgray, hwhy = _load(high)
                if hwhy:
                    col.skip(col.rel(high), hwhy)
            meta = {"dataset": DATASET, "task": TASK, "case_id": case, "patient_id": case,
                    "patient_id_source": "case id (USenhance gives no patient id)",
                    "pixel_spacing_mm": None, "split": None, "organ": organ, "name": stem,
                    "release_folder": base.name, "source": "real",
                    "source_path": str(low) if low is not None else None,
                    "target_path": str(high) if high is not None else None}
            if lgray is not None and hgray is not None:
                meta.update(paired=True, image_shape=list(lgray.shape),
                            target_shape=list(hgray.shape))
                col.add({"image": lgray[None], "target": hgray[None], "organ": organ,
                         "meta": meta}, col.rel(low), col.rel(high))
                continue
            if lgray is not None:  # no usable partner
                why = (f"no high_quality/{stem}.* partner" if high is None else
                       f"its high_quality partner {col.rel(high)} is unreadable")
                if unpaired:
                    meta.update(paired=False, unpaired_reason=why,
                                image_shape=list(lgray.shape))
                    col.note(col.rel(low), f"{why}: kept as an unpaired sample (no 'target')")
                    col.add({"image": lgray[None], "organ": organ, "meta": meta}, col.rel(low))
                else:
                    col.skip(col.rel(low), f"{why} (unpaired=False)")
            elif hgray is not None:
                why = (f"no low_quality/{stem}.* partner" if low is None else
                       f"its low_quality partner {col.rel(low)} is unreadable")
                if unpaired:
                    meta.update(paired=False, unpaired_reason=why, source_path=None,
                                target_shape=list(hgray.shape))
                    col.note(col.rel(high), f"{why}: kept in targets_only (no sample)")
                    targets_only.append({"target": hgray[None], "organ": organ, "meta": meta})
                    col.use(col.rel(high))
                else:
                    col.skip(col.rel(high), f"{why} (unpaired=False)")
    out = col.finish()
    out.targets_only = targets_only
    return out


def _by_stem(col: Collector, folder: Path | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if folder is None:
        return found
    for p in _images(folder):
        if p.stem in found:
            col.skip(col.rel(p), f"a second image named {p.stem!r} in {folder.name}/ "
                                 f"({found[p.stem].name} is read)")
        else:
            found[p.stem] = p
    return found


def _load(path: Path) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_gray(path), None
    except (OSError, ValueError, SyntaxError) as exc:
        return None, image_error(exc)
