"""BUS-BRA (the paper's "BRA-BUS"): BI-RADS 2-5 classification of breast ultrasound images.

Layout (shared/DATASETS.md, row BUS-BRA, confidence *confirmed*; the authors' repository
wgomezf/BUS-BRA README points at the Zenodo record doi:10.5281/zenodo.7730709):

* ``Images/bus_NNNN-{l,r,s}.png``: the images (grey; RGB -> BT.601 luminance).
* ``Masks/mask_NNNN-{l,r,s}.png``: 1-bit lesion masks (read as 0/1).
* ``bus_data.csv``: ``ID, Case, Histology, Pathology, BIRADS, Device, Width, Height, Side,
  BBOX``; ``ID`` names the image (``bus_NNNN-l``), ``Case`` the patient, ``BIRADS`` the
  category (2-5), ``BBOX`` is ``"[x,y,w,h]"`` with 1-based x, y.
* ``5-fold-cv.csv`` / ``10-fold-cv.csv`` (optional): ``ID, Pathology, kFold, valid_1..``
  (literal ``NaN`` in the test fold); images of one case stay in one fold.

Sample: ``image`` float32 [1, H, W], ``mask`` uint8 [H, W] (0/1 lesion), ``label`` = BIRADS - 2
and ``label_name`` ``'BI-RADS k'`` (classes 'BI-RADS 2'..'BI-RADS 5' as in the simulator),
``meta``: case_id = ID, patient_id = Case, pixel_spacing_mm None (not in the CSV), split,
source_path, pathology, histology, device, side, ``bbox_xywh`` (converted to 0-based pixel x, y),
``cv5_fold`` / ``cv10_fold`` (the ``kFold`` cell of each fold file, when present).

Split: the release has cross-validation folds, not a train/test split, so ``split`` is None by
default; ``test_fold=k`` marks the images whose 5-fold (``cv=5``) or 10-fold (``cv=10``) kFold is
k as ``test`` and the rest ``train`` (5-fold gives the paper's 8:2 proportion). Only ``kFold`` is
read from the fold files.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import (Collector, DataFormatError, ReadResult, check_root, image_error,
                      image_files, load_gray, load_labels, read_csv_rows, require_columns)

DATASET = "BUS-BRA"
TASK = "breast_birads"
CLASSES = ("BI-RADS 2", "BI-RADS 3", "BI-RADS 4", "BI-RADS 5")
CSV_NAME = "bus_data.csv"
COLUMNS = ("ID", "Case", "Histology", "Pathology", "BIRADS", "Device", "Width", "Height",
           "Side", "BBOX")
FOLD_FILES = {5: "5-fold-cv.csv", 10: "10-fold-cv.csv"}
REQUIRED = (
    "bus_data.csv: ID, Case, Histology, Pathology, BIRADS, Device, Width, Height, Side, BBOX",
    "Images/bus_NNNN-{l,r,s}.png",
    "Masks/mask_NNNN-{l,r,s}.png (1-bit lesion masks)",
    "5-fold-cv.csv, 10-fold-cv.csv (optional): ID, Pathology, kFold, ...",
)


def parse_bbox(text: str) -> list[int] | None:
    """``"[x,y,w,h]"`` with 1-based x, y -> [x0, y0, w, h] with 0-based x0, y0 (None if the
    cell does not hold four numbers)."""
    nums = re.findall(r"-?\d+(?:\.\d+)?", text or "")
    if len(nums) != 4:
        return None
    x, y, w, h = (int(round(float(v))) for v in nums)
    return [x - 1, y - 1, w, h]


def _stem(id_text: str) -> str:
    return id_text[:-4] if id_text.lower().endswith(".png") else id_text


def _folds(root: Path, col: Collector) -> dict[int, dict[str, int | None]]:
    out: dict[int, dict[str, int | None]] = {}
    for k, name in FOLD_FILES.items():
        p = root / name
        if not p.is_file():
            continue
        header, rows = read_csv_rows(p)
        require_columns(p, header, ("ID", "kFold"), DATASET)
        col.expect(name)
        table: dict[str, int | None] = {}
        for r in rows:
            try:
                table[_stem(r["ID"])] = int(float(r["kFold"]))
            except ValueError:
                table[_stem(r["ID"])] = None
        out[k] = table
        col.use(name)
    return out


def read_busbra(root, *, limit: int | None = None, strict: bool = False,
                test_fold: int | None = None, cv: int = 5) -> ReadResult:
    """Read BUS-BRA under ``root`` (module docstring); ``limit``: at most that many samples;
    ``test_fold``/``cv``: mark fold ``test_fold`` of the ``cv``-fold file as the test split;
    ``strict``: raise at the first problem instead of skipping and reporting."""
    root = check_root(root, DATASET, REQUIRED)
    csv_path = root / CSV_NAME
    if not csv_path.is_file():
        raise DataFormatError(f"{DATASET}: {csv_path} not found; expected:\n  "
                              + "\n  ".join(REQUIRED))
    if cv not in FOLD_FILES:
        raise ValueError(f"cv must be one of {sorted(FOLD_FILES)}, got {cv!r}")
    header, rows = read_csv_rows(csv_path)
    require_columns(csv_path, header, ("ID", "Case", "BIRADS"), DATASET)
    col = Collector(DATASET, root, strict=strict, limit=limit)
    folds = _folds(root, col)
    if test_fold is not None and cv not in folds:
        raise DataFormatError(f"{DATASET}: test_fold={test_fold} needs {root / FOLD_FILES[cv]}, "
                              "which is missing")
    files = {}
    for sub in ("Images", "Masks"):
        if (root / sub).is_dir():
            for p in image_files(root / sub):
                files[p.resolve()] = p
                col.expect(col.rel(p))
    claimed: set = set()
    for i, _ in enumerate(rows, start=2):
        col.expect(f"{CSV_NAME}#line {i}")
    case_folds: dict[str, set] = {}
    for i, row in enumerate(rows, start=2):
        if col.full:
            break
        item = f"{CSV_NAME}#line {i}"
        sid = _stem(row["ID"])
        img = root / "Images" / f"{sid}.png"
        mask = root / "Masks" / f"{sid.replace('bus_', 'mask_', 1)}.png"
        here = [p for p in (img, mask) if p.is_file()]
        claimed.update(p.resolve() for p in here)

        def reject(reason: str) -> None:
            col.skip(item, f"{sid}: {reason}")
            for p in here:
                if p.resolve() in files:
                    col.skip(col.rel(p), f"its row ({item}) was skipped: {reason}")

        if not sid:
            reject("empty ID")
            continue
        if not row["Case"]:
            reject("empty Case (patient) cell")
            continue
        try:
            birads = int(float(row["BIRADS"]))
        except ValueError:
            birads = None
        if birads not in (2, 3, 4, 5):
            reject(f"BIRADS {row['BIRADS']!r} is not one of 2, 3, 4, 5")
            continue
        if not img.is_file():
            reject(f"image Images/{img.name} not found")
            continue
        if not mask.is_file():
            reject(f"mask Masks/{mask.name} not found")
            continue
        try:
            gray = load_gray(img)
        except (OSError, ValueError, SyntaxError) as exc:
            reject(f"Images/{img.name}: {image_error(exc)}")
            continue
        try:
            lab = load_labels(mask)
        except (OSError, ValueError, SyntaxError) as exc:
            reject(f"Masks/{mask.name}: {image_error(exc)}")
            continue
        if lab.shape != gray.shape:
            reject(f"mask shape {lab.shape} differs from the image's {gray.shape}")
            continue
        lab = (lab > 0).astype("uint8")
        for name, axis in (("Width", 1), ("Height", 0)):
            cell = row.get(name, "")
            if cell and cell.replace(".", "", 1).isdigit() and \
                    int(float(cell)) != gray.shape[axis]:
                col.note(item, f"{sid}: {name} {cell} but the image is {gray.shape[axis]} px")
        fold = {k: folds[k].get(sid) for k in folds}
        if test_fold is None:
            split = None
        elif fold.get(cv) is None:
            reject(f"no kFold for {sid} in {FOLD_FILES[cv]}")
            continue
        else:
            split = "test" if fold[cv] == test_fold else "train"
        if 5 in fold:
            case_folds.setdefault(row["Case"], set()).add(fold[5])
        col.add({"image": gray[None], "mask": lab, "label": birads - 2,
                 "label_name": CLASSES[birads - 2],
                 "meta": {"dataset": DATASET, "task": TASK, "case_id": sid,
                          "patient_id": row["Case"], "pixel_spacing_mm": None, "split": split,
                          "source_path": str(img), "annotation_path": str(mask),
                          "source": "real", "birads": birads,
                          "pathology": row.get("Pathology"), "histology": row.get("Histology"),
                          "device": row.get("Device"), "side": row.get("Side"),
                          "bbox_xywh": parse_bbox(row.get("BBOX", "")),
                          "cv5_fold": fold.get(5), "cv10_fold": fold.get(10)}},
                item, *[col.rel(p) for p in (img, mask)])
    for case, fs in case_folds.items():
        if len(fs) > 1:
            col.note(f"Case {case}", f"images spread over 5-fold folds {sorted(fs, key=str)}")
    if not col.full:
        for key, p in files.items():
            if key not in claimed:
                col.skip(col.rel(p), f"no row of {CSV_NAME} names it")
    return col.finish()
