"""AbdomenUS (BGI Genomics, MGIUS-R3): 5-organ abdominal segmentation -- an *import* layout.

**The official release's layout was not available.** No public release or loader of the
paper's AbdomenUS was found (shared/DATASETS.md, row AbdomenUS: *not found*; beware that other
benchmarks use the name for a different Kaggle set, real + simulated with 8 labels, which this
is not). This reader therefore defines a simple, documented import layout that a holder of the
data can produce; it is not a reader of an official release, and the simulator
(``echocare_lib.sim.tasks``, task ``abdomen_organ_seg``) stays the default for this
application.

Import layout (folder ``AbdomenUS/`` under the data directory)::

    cases.csv     one row per image; columns
                    image            path of the image, relative to the folder (e.g. images/a.png)
                    patient_id       the patient (unit of the patient-level split; required)
                    mask             optional: label map path (default masks/<image stem>.png)
                    split            optional: train | test (an official split, if you have one)
                    pixel_spacing_mm optional: number
    images/       B-mode images (PNG/JPEG/BMP/TIFF; RGB -> BT.601 luminance)
    masks/        PNG label maps of the same size, values in the task's class order:
                    0 background, 1 liver, 2 kidney, 3 pancreas, 4 bladder, 5 spleen

Every row, every file in images/ and every file in masks/ is accounted for: used, or skipped
with a reason (missing or unreadable file, size mismatch, label value > 5, empty patient_id).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import (SPLIT_NAMES, Collector, ReadResult, check_root,
                      image_error, import_layout_csv,
                      image_files, load_gray, load_labels, optional_float, read_csv_rows,
                      require_columns)

DATASET = "AbdomenUS"
TASK = "abdomen_organ_seg"
CLASSES = ("background", "liver", "kidney", "pancreas", "bladder", "spleen")
CSV_NAME = "cases.csv"
REQUIRED = (
    "cases.csv: image, patient_id [, mask, split, pixel_spacing_mm]",
    "images/<name>.png: B-mode images",
    "masks/<name>.png: label maps 0 bg, 1 liver, 2 kidney, 3 pancreas, 4 bladder, 5 spleen",
    "(import layout defined by this project: the official release's layout was unavailable)",
)


def read_abdomenus(root, *, limit: int | None = None, strict: bool = False) -> ReadResult:
    """Read the AbdomenUS import layout under ``root`` (module docstring); ``limit``: at most
    that many samples; ``strict``: raise at the first problem instead of skipping."""
    root = check_root(root, DATASET, REQUIRED)
    csv_path = import_layout_csv(root, CSV_NAME, DATASET, REQUIRED)
    header, rows = read_csv_rows(csv_path)
    require_columns(csv_path, header, ("image", "patient_id"), DATASET)
    col = Collector(DATASET, root, strict=strict, limit=limit)
    files = {}
    for sub in ("images", "masks"):
        if (root / sub).is_dir():
            for p in image_files(root / sub):
                files[p.resolve()] = p
                col.expect(col.rel(p))
    claimed: set[Path] = set()
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        col.expect(f"{CSV_NAME}#line {i}")
    for i, row in enumerate(rows, start=2):
        if col.full:
            break
        item = f"{CSV_NAME}#line {i}"
        img = root / row["image"] if row["image"] else None
        mask = root / row["mask"] if row.get("mask") else (
            root / "masks" / f"{Path(row['image']).stem}.png" if row["image"] else None)
        for p in (img, mask):
            if p is not None and p.is_file():
                claimed.add(p.resolve())
        try:
            gray, lab, spacing, split = _load_row(col, row, img, mask)
        except _RowError as exc:
            col.skip(item, str(exc))
            for p in (img, mask):
                if p is not None and p.resolve() in files:
                    col.skip(col.rel(p), f"its row ({item}) was skipped: {exc}")
            continue
        col.add({"image": gray[None], "mask": lab,
                 "meta": {"dataset": DATASET, "task": TASK, "case_id": Path(row["image"]).stem,
                          "patient_id": row["patient_id"], "pixel_spacing_mm": spacing,
                          "split": split, "source_path": str(img), "annotation_path": str(mask),
                          "source": "real", "layout": "import (official layout unavailable)"}},
                item, *[col.rel(p) for p in (img, mask) if p.resolve() in files])
    if not col.full:
        for key, p in files.items():
            if key not in claimed:
                col.skip(col.rel(p), f"not referenced by any row of {CSV_NAME}")
    return col.finish()


class _RowError(Exception):
    pass


def _load_row(col: Collector, row: dict, img: Path | None, mask: Path | None):
    if img is None:
        raise _RowError("empty 'image' cell")
    if not row.get("patient_id"):
        raise _RowError("empty 'patient_id' cell (needed for patient-level splits)")
    if not img.is_file():
        raise _RowError(f"image {col.rel(img)} not found")
    if mask is None or not mask.is_file():
        raise _RowError("no mask" if mask is None else f"mask {col.rel(mask)} not found")
    try:
        gray = load_gray(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise _RowError(f"image {col.rel(img)}: {image_error(exc)}") from None
    try:
        lab = load_labels(mask)
    except (OSError, ValueError, SyntaxError) as exc:
        raise _RowError(f"mask {col.rel(mask)}: {image_error(exc)}") from None
    if lab.shape != gray.shape:
        raise _RowError(f"mask shape {lab.shape} differs from the image's {gray.shape}")
    bad = sorted(set(np.unique(lab).tolist()) - set(range(len(CLASSES))))
    if bad:
        raise _RowError(f"mask values {bad} outside 0..5 ({', '.join(CLASSES)})")
    try:
        spacing = optional_float(row.get("pixel_spacing_mm"))
    except ValueError:
        raise _RowError(f"pixel_spacing_mm {row.get('pixel_spacing_mm')!r} is not a number") \
            from None
    split_text = row.get("split", "")
    if split_text.lower() not in SPLIT_NAMES:
        raise _RowError(f"split {split_text!r} is not one of train, val, test (or empty)")
    return gray, lab, spacing, SPLIT_NAMES[split_text.lower()]
