"""Fetal brain landmarks (the paper's "BrainBenchmark": 24 landmarks in the axial
transthalamic / transcerebellar plane) -- an *import* layout.

**The official release's layout was not available.** The landmark definitions are published
(4 skull, 3 thalami, 8 cerebellum, 4 cavum septi pellucidi, 3 Sylvian fissure, 2 midline), but
the release's file format was not found (shared/DATASETS.md, row "Fetal brain landmarks":
*not found*). This reader therefore defines a simple, documented import layout that a holder
of the data can produce; it is not a reader of an official release, and the simulator
(``echocare_lib.sim.tasks``, task ``fetal_brain_landmarks``) stays the default for this
application.

Import layout (folder ``BrainBenchmark/`` under the data directory)::

    landmarks.csv   one row per image; columns
                      image              path of the image relative to the folder
                                         (e.g. images/a.png; a bare name is looked up in
                                         images/)
                      x_<name>, y_<name> for each of the 24 names of
                                         echocare_lib.sim.tasks.fetal.LANDMARK_NAMES (all 48
                                         columns required): pixel coordinates, x = column,
                                         y = row, pixel centres at integers (the pixel in
                                         column j, row i has its centre at (j, i)), as the
                                         simulator's landmarks
                      patient_id         optional (default: the image name, noted in meta)
                      spacing_mm         optional: pixel spacing in mm
                      split              optional: train | val | test (an official split)
    images/         B-mode images (PNG/JPEG/BMP/TIFF; colour -> BT.601 luminance)

A row with an empty, non-numeric or non-finite coordinate is **skipped** with its reason (no
per-landmark NaN: the landmark metrics expect all 24 points). Coordinates outside the image
are kept and noted. Every row and every file in ``images/`` is accounted for (used, or skipped
with a reason: missing or unreadable image, bad cell, a second row for one image, an image no
row names).

Sample: ``image`` float32 [1, H, W] in [0, 1], ``landmarks`` float32 [24, 2] (x, y) in the
order of ``landmark_names`` (= LANDMARK_NAMES), ``meta`` (dataset, case_id = image stem,
patient_id, pixel_spacing_mm, split, source_path, ...). Unlike the simulator's samples there
is no head ``mask`` (the import layout has none).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..sim.tasks.fetal import LANDMARK_NAMES
from ._common import (SPLIT_NAMES, Collector, DataFormatError, ReadResult, check_root,
                      image_error, import_layout_csv,
                      image_files, load_gray, optional_float, read_csv_rows, require_columns)

DATASET = "BrainBenchmark"
TASK = "fetal_brain_landmarks"
CSV_NAME = "landmarks.csv"
COLUMNS = tuple(c for n in LANDMARK_NAMES for c in (f"x_{n}", f"y_{n}"))
REQUIRED = (
    "landmarks.csv: image, x_<name>, y_<name> for the 24 names of "
    "echocare_lib.sim.tasks.fetal.LANDMARK_NAMES (pixels, x = column, y = row) "
    "[, patient_id, spacing_mm, split]",
    "images/<name>.png: B-mode images",
    "(import layout defined by this project: the official release's layout was unavailable)",
)


class _RowError(Exception):
    pass


def _image_path(root: Path, cell: str) -> Path:
    p = root / cell
    if not p.is_file() and len(Path(cell).parts) == 1:
        q = root / "images" / cell
        if q.is_file():
            return q
    return p


def read_brain_landmarks(root, *, limit: int | None = None, strict: bool = False
                         ) -> ReadResult:
    """Read the fetal brain landmark import layout under ``root`` (module docstring);
    ``limit``: at most that many samples; ``strict``: raise :class:`DataFormatError` at the
    first problem instead of skipping and reporting."""
    root = check_root(root, DATASET, REQUIRED)
    csv_path = import_layout_csv(root, CSV_NAME, DATASET, REQUIRED)
    header, rows = read_csv_rows(csv_path)
    require_columns(csv_path, header, ("image", *COLUMNS), DATASET)
    has_pid = "patient_id" in header
    col = Collector(DATASET, root, strict=strict, limit=limit)
    files = {}
    if (root / "images").is_dir():
        for p in image_files(root / "images"):
            files[p.resolve()] = p
            col.expect(col.rel(p))
    for i, _ in enumerate(rows, start=2):  # line 1 is the header
        col.expect(f"{CSV_NAME}#line {i}")
    claimed: dict[Path, str] = {}
    for i, row in enumerate(rows, start=2):
        if col.full:
            break
        item = f"{CSV_NAME}#line {i}"
        img = _image_path(root, row["image"]) if row["image"] else None
        key = img.resolve() if img is not None and img.is_file() else None
        try:
            if img is None:
                raise _RowError("empty 'image' cell")
            if key is not None and key in claimed:
                raise _RowError(f"a second row for {col.rel(img)} (first: {claimed[key]})")
            if key is not None:
                claimed[key] = item
            pts = _landmarks(row)
            if has_pid and not row.get("patient_id"):
                raise _RowError("empty 'patient_id' cell")
            try:
                spacing = optional_float(row.get("spacing_mm"))
            except ValueError:
                raise _RowError(f"spacing_mm {row.get('spacing_mm')!r} is not a number") \
                    from None
            if spacing is not None and spacing <= 0:
                raise _RowError(f"spacing_mm {spacing} is not > 0")
            split_text = row.get("split", "")
            if split_text.lower() not in SPLIT_NAMES:
                raise _RowError(f"split {split_text!r} is not one of train, val, test "
                                "(or empty)")
            if key is None:
                raise _RowError(f"image {col.rel(img)} not found")
            try:
                gray = load_gray(img)
            except (OSError, ValueError, SyntaxError) as exc:
                raise _RowError(f"image {col.rel(img)}: {image_error(exc)}") from None
        except _RowError as exc:
            col.skip(item, str(exc))
            if key is not None and key in files and claimed.get(key) == item:
                col.skip(col.rel(img), f"its row ({item}) was skipped: {exc}")
            continue
        h, w = gray.shape
        out = [n for n, (x, y) in zip(LANDMARK_NAMES, pts) if not (-0.5 <= x <= w - 0.5
                                                                 and -0.5 <= y <= h - 0.5)]
        if out:
            col.note(item, f"{len(out)} landmark(s) outside the {w}x{h} image: {out[:4]}")
        case = Path(row["image"]).stem
        pid = row["patient_id"] if has_pid else case
        col.add({"image": gray[None], "landmarks": pts, "landmark_names": list(LANDMARK_NAMES),
                 "meta": {"dataset": DATASET, "task": TASK, "case_id": case, "patient_id": pid,
                          "patient_id_source": "patient_id column" if has_pid
                          else "image name (landmarks.csv has no patient_id column)",
                          "pixel_spacing_mm": spacing,
                          "split": SPLIT_NAMES[split_text.lower()], "source_path": str(img),
                          "annotation_path": str(csv_path), "source": "real",
                          "layout": "import (official layout unavailable)"}},
                item, *([col.rel(img)] if key in files else []))
    if not col.full:
        for key, p in files.items():
            if key not in claimed:
                col.skip(col.rel(p), f"not referenced by any row of {CSV_NAME}")
    return col.finish()


def _landmarks(row: dict) -> np.ndarray:
    pts = np.zeros((len(LANDMARK_NAMES), 2), np.float64)
    bad = []
    for k, name in enumerate(LANDMARK_NAMES):
        for j, axis in enumerate("xy"):
            cell = row.get(f"{axis}_{name}", "")
            try:
                v = float(cell)
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                bad.append(f"{axis}_{name}={cell!r}")
            pts[k, j] = v
    if bad:
        raise _RowError(f"{len(bad)} missing or non-numeric coordinate(s): "
                        f"{', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}")
    return pts.astype(np.float32)
