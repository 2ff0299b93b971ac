"""Mus-V (Multimodal Ultrasound Vascular Segmentation): artery/vein segmentation.

Layout (shared/DATASETS.md, row Mus-V, confidence *partial*; read in the authors' loaders,
evelynskip/artery-vein-segmentation ``vessel_loader.py`` and ``utils/generate_dataset.py``, and
evelynskip/PADReg ``PADReg/data/us_dataset.py``):

* ``Videos/{train,valid}/<vid>_<NNN>.png``: RGB frames (NNN 1-based, zero-padded to 3);
  RGB -> BT.601 luminance.
* ``Annotations/<vid>_<NNN>.png``: the frame's label map, 0 background, 1 vein, 2 artery (the
  task's class order already, kept as is); matched to its frame by file name.
* ``Forces/<vid>.txt`` (optional): 6 space-separated columns per frame (row NNN-1); the
  authors' code reads column index 2 (the third) as Fz.

The release may sit one folder deeper (``Multimodal Ultrasound Vascular Segmentation/``) and
its files one level deeper inside ``Videos/<split>/`` and ``Annotations/`` (the authors'
script flattens them with ``os.walk``): the reader finds the folder holding ``Videos`` and
``Annotations`` and lists files recursively.

Patient identity: the release names frames only by video id; no subject id is known to be
encoded in it, so ``patient_id`` is the video id (every frame of one video stays on one side of
a split). The release's own split is kept: ``Videos/train`` -> split ``train``,
``Videos/valid`` -> split ``test`` (the authors evaluate on it; ``meta['release_split']`` keeps
the folder name), and :func:`~echocare_lib.readers.splits.patient_split` honours it.
Pixel spacing is not in the release (None).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ._common import (Collector, DataFormatError, ReadResult, check_root, image_error,
                      image_files, load_gray, load_labels, natural_key)

DATASET = "Mus-V"
TASK = "vessel_seg"
REQUIRED = (
    "Videos/train/**/<vid>_<NNN>.png and Videos/valid/**/<vid>_<NNN>.png: RGB frames",
    "Annotations/**/<vid>_<NNN>.png: 0 background, 1 vein, 2 artery",
    "Forces/<vid>.txt (optional): 6 columns per frame, column index 2 = Fz",
)
SPLIT_NAMES = {"train": "train", "training": "train", "valid": "test", "val": "test",
               "validation": "test", "test": "test", "testing": "test"}
_FRAME = re.compile(r"^(?P<vid>.+)_(?P<n>\d+)$")


def find_base(root: Path, max_depth: int = 3) -> Path | None:
    """The folder holding ``Videos/`` and ``Annotations/`` (root or up to 3 levels below)."""
    frontier = [root]
    for _ in range(max_depth + 1):
        nxt = []
        for d in sorted(frontier, key=lambda p: natural_key(p.as_posix())):
            if (d / "Videos").is_dir() and (d / "Annotations").is_dir():
                return d
            nxt += [c for c in d.iterdir() if c.is_dir()]
        frontier = nxt
    return None


def read_musv(root, *, limit: int | None = None, strict: bool = False) -> ReadResult:
    """Read Mus-V under ``root`` (see the module docstring); ``limit``: at most that many
    samples; ``strict``: raise at the first problem instead of skipping and reporting."""
    root = check_root(root, DATASET, REQUIRED)
    base = find_base(root)
    if base is None:
        raise DataFormatError(f"{DATASET}: no folder holding both Videos/ and Annotations/ "
                              f"under {root}; expected:\n  " + "\n  ".join(REQUIRED))
    col = Collector(DATASET, root, strict=strict, limit=limit)
    annotations: dict[str, Path] = {}
    for p in image_files(base / "Annotations"):
        col.expect(col.rel(p))
        if p.name in annotations:
            col.skip(col.rel(p), f"duplicate annotation name (also {col.rel(annotations[p.name])})")
        else:
            annotations[p.name] = p
    frames: list[tuple[str, Path]] = []
    for split_dir in sorted((d for d in (base / "Videos").iterdir() if d.is_dir()),
                            key=lambda d: d.name):
        for p in image_files(split_dir):
            frames.append((split_dir.name, p))
            col.expect(col.rel(p))
    for p in image_files(base / "Videos", recursive=False):
        if p.is_file():
            col.expect(col.rel(p))
            col.skip(col.rel(p), "frame outside Videos/<split>/: split unknown")
    forces_dir = base / "Forces"
    force_files = {p.stem: p for p in sorted(forces_dir.rglob("*.txt"))} \
        if forces_dir.is_dir() else {}
    for p in force_files.values():
        col.expect(col.rel(p))
    force_cache: dict[str, np.ndarray | None] = {}

    matched: set[str] = set()
    for release_split, img in frames:
        if col.full:
            break
        irel = col.rel(img)
        m = _FRAME.match(img.stem)
        if not m:
            col.skip(irel, "name is not <vid>_<NNN>.png")
            continue
        vid, n = m["vid"], int(m["n"])
        ann = annotations.get(img.name)
        if ann is None:
            col.skip(irel, f"no Annotations/{img.name}")
            continue
        matched.add(img.name)
        arel = col.rel(ann)
        try:
            gray = load_gray(img)
        except (OSError, ValueError, SyntaxError) as exc:
            col.skip(irel, image_error(exc))
            col.skip(arel, "its frame is unreadable")
            continue
        try:
            lab = load_labels(ann)
        except (OSError, ValueError, SyntaxError) as exc:
            col.skip(arel, image_error(exc))
            col.skip(irel, "its annotation is unreadable")
            continue
        if lab.shape != gray.shape:
            col.skip(irel, f"annotation shape {lab.shape} differs from the frame's {gray.shape}")
            col.skip(arel, "shape differs from its frame")
            continue
        extra = sorted(set(np.unique(lab).tolist()) - {0, 1, 2})
        if extra:
            col.skip(arel, f"label values {extra} outside 0 background / 1 vein / 2 artery")
            col.skip(irel, "its annotation has unexpected label values")
            continue
        force = _force_row(col, force_files, force_cache, vid, n)
        col.add({"image": gray[None], "mask": lab,
                 "meta": {"dataset": DATASET, "task": TASK, "case_id": img.stem,
                          "patient_id": vid, "video_id": vid, "frame_index": n,
                          "pixel_spacing_mm": None,
                          "split": SPLIT_NAMES.get(release_split.lower()),
                          "release_split": release_split, "source_path": str(img),
                          "annotation_path": str(ann), "source": "real",
                          "force": None if force is None else force.tolist(),
                          "force_fz": None if force is None else float(force[2])}},
                irel, arel)
    if not col.full:
        for name, p in annotations.items():
            if name not in matched:
                col.skip(col.rel(p), "no frame of that name under Videos/<split>/")
        for vid, p in force_files.items():
            if vid not in force_cache:
                col.skip(col.rel(p), "no annotated frame of that video was read")
    return col.finish()


def _force_row(col: Collector, files: dict, cache: dict, vid: str, n: int):
    if vid not in files:
        return None
    if vid not in cache:
        frel = col.rel(files[vid])
        try:
            data = np.loadtxt(files[vid], ndmin=2)
            if data.shape[1] < 3:
                raise ValueError(f"{data.shape[1]} column(s), need at least 3")
            cache[vid] = data
            col.use(frel)
        except (OSError, ValueError) as exc:
            cache[vid] = None
            col.skip(frel, f"unreadable force file ({exc}); frames keep force=None")
    data = cache[vid]
    if data is None or not 1 <= n <= len(data):
        return None
    return data[n - 1]
