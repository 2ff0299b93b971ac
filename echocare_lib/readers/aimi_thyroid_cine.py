"""Stanford AIMI Thyroid Ultrasound Cine-clip data set: benign/malignant nodule from a cine clip.

Layout (shared/DATASETS.md, row Stanford AIMI thyroid cine-clip, confidence *confirmed*; read
in adamtupper/ultrabench ``process/stanford_thyroid.py`` and mxochicale/thyroid_deep_learning
``data/README.md``, ``data/metadata.csv``):

* ``dataset.hdf5`` with root datasets ``annot_id`` (bytes such as ``b'22_'``), ``frame_num``
  (bytes, 1-based, gaps possible), ``image`` (N, H, W uint8) and ``mask`` (N, H, W, 0/255).
  The frames of one clip are neither necessarily contiguous nor sorted: they are grouped by
  ``annot_id`` and ordered by ``frame_num``.
* ``metadata.csv``: ``annot_id, age, sex, location, size_x, size_y, size_z, ti-rads_*,
  histopath_diagnosis``. The label is ``histopath_diagnosis`` (0 benign, 1 malignant); it is
  never derived from TI-RADS.

One sample per clip: ``frames`` float32 [T, 1, H, W] (at most ``max_frames`` frames spread
evenly over the clip, default 16; ``None`` keeps all, which for the full release is tens of GB),
``masks`` uint8 [T, H, W] (mask > 0 -> 1), ``image``/``mask`` = the middle selected frame (as the
simulator does), ``label`` and ``label_name``.

Patient identity: ``annot_id`` is a *nodule* (192 nodules from 167 patients), and the release
has no patient column. ``patient_grouping='age_sex_runs'`` (default) groups nodules whose ids
are adjacent in the metadata's numeric order and share age and sex into one *patient proxy*
(``patient_id`` = the first annot_id of the group, ``meta['nodule_id']`` the annot_id,
``meta['patient_group']`` the members). This is a heuristic, chosen to err on the side of
grouping too much (no leakage of a real patient across a split, at the cost of coarser
groups): on the published metadata it gives about 161 groups for 167 patients.
``patient_grouping='nodule'`` uses the annot_id itself (nodule-level split, may leak patients).
No official split and no pixel spacing in the release (split None, pixel_spacing_mm None).

Needs ``h5py`` (``pip install h5py``), imported only when this reader runs.
"""
from __future__ import annotations

import re

import numpy as np

from ._common import (Collector, DataFormatError, ReadResult, check_root, natural_key,
                      read_csv_rows, require_columns, select_frames)

DATASET = "Stanford AIMI thyroid cine-clip"
TASK = "thyroid_nodule_cine_cls"
CLASSES = ("benign", "malignant")
HDF5_NAME = "dataset.hdf5"
CSV_NAME = "metadata.csv"
HDF5_DATASETS = ("annot_id", "frame_num", "image", "mask")
REQUIRED = (
    "dataset.hdf5: root datasets annot_id, frame_num, image (N, H, W), mask (N, H, W)",
    "metadata.csv: annot_id, age, sex, ..., histopath_diagnosis (0 benign, 1 malignant)",
)
GROUPINGS = ("age_sex_runs", "nodule")


def _h5py():
    try:
        import h5py
    except ImportError as exc:
        raise ImportError("Reading the Stanford AIMI thyroid cine-clip set needs h5py: "
                          "pip install h5py") from exc
    return h5py


def _text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace").strip()
    if isinstance(v, np.ndarray) and v.dtype.kind == "S":
        return v.tobytes().decode("utf-8", "replace").strip()
    return str(v).strip()


def patient_groups(rows: list[dict], grouping: str = "age_sex_runs") -> dict[str, list[str]]:
    """annot_id -> members of its patient proxy (see the module docstring)."""
    if grouping not in GROUPINGS:
        raise ValueError(f"patient_grouping must be one of {GROUPINGS}, got {grouping!r}")
    ids = sorted((r["annot_id"] for r in rows), key=natural_key)
    if grouping == "nodule":
        return {a: [a] for a in ids}
    by_id = {r["annot_id"]: r for r in rows}
    out: dict[str, list[str]] = {}
    group: list[str] = []
    prev_key = None
    for a in ids:
        key = (by_id[a].get("age", ""), by_id[a].get("sex", "").lower())
        if group and (key != prev_key or "" in key):
            for g in group:
                out[g] = group
            group = []
        group.append(a)
        prev_key = key
    for g in group:
        out[g] = group
    return out


def read_aimi_thyroid_cine(root, *, limit: int | None = None, strict: bool = False,
                           max_frames: int | None = 16,
                           patient_grouping: str = "age_sex_runs") -> ReadResult:
    """Read the AIMI cine-clip set under ``root`` (module docstring); ``limit``: at most that
    many clips; ``max_frames``: frames kept per clip (None: all); ``patient_grouping``:
    ``'age_sex_runs'`` or ``'nodule'``; ``strict``: raise at the first problem."""
    root = check_root(root, DATASET, REQUIRED)
    select_frames(1, max_frames)  # validates max_frames
    if patient_grouping not in GROUPINGS:
        raise ValueError(f"patient_grouping must be one of {GROUPINGS}, got {patient_grouping!r}")
    h5_path, csv_path = root / HDF5_NAME, root / CSV_NAME
    for p in (h5_path, csv_path):
        if not p.is_file():
            raise DataFormatError(f"{DATASET}: {p} not found; expected:\n  "
                                  + "\n  ".join(REQUIRED))
    h5py = _h5py()
    header, rows = read_csv_rows(csv_path)
    require_columns(csv_path, header, ("annot_id", "histopath_diagnosis"), DATASET)
    col = Collector(DATASET, root, strict=strict, limit=limit)
    meta_rows: dict[str, dict] = {}
    for i, r in enumerate(rows, start=2):
        item = f"{CSV_NAME}#line {i}"
        col.expect(item)
        if r["annot_id"] in meta_rows:
            col.skip(item, f"duplicate annot_id {r['annot_id']!r}")
            continue
        r["_item"] = item
        meta_rows[r["annot_id"]] = r
    groups = patient_groups(list(meta_rows.values()), patient_grouping)

    try:
        fh = h5py.File(h5_path, "r")
    except OSError as exc:
        raise DataFormatError(f"{DATASET}: cannot open {h5_path} as HDF5 ({exc})") from None
    with fh:
        missing = [d for d in HDF5_DATASETS if d not in fh]
        if missing:
            raise DataFormatError(f"{DATASET}: {h5_path} lacks dataset(s) {missing}; it has "
                                  f"{sorted(fh.keys())}; expected {list(HDF5_DATASETS)}")
        lens = {d: len(fh[d]) for d in HDF5_DATASETS}
        if len(set(lens.values())) != 1:
            raise DataFormatError(f"{DATASET}: {h5_path} datasets differ in length: {lens}")
        img_ds, mask_ds = fh["image"], fh["mask"]
        if img_ds.ndim != 3 or mask_ds.shape != img_ds.shape:
            raise DataFormatError(f"{DATASET}: {h5_path} image {img_ds.shape} and mask "
                                  f"{mask_ds.shape} must both be (N, H, W) of one shape")
        annot = [_text(a) for a in fh["annot_id"][()]]
        fnum_text = [_text(f) for f in fh["frame_num"][()]]
        clips: dict[str, list[int]] = {}
        for i, a in enumerate(annot):
            clips.setdefault(a, []).append(i)
        for a in clips:
            col.expect(f"{HDF5_NAME}#annot_id={a}")
        for a in sorted(clips, key=natural_key):
            if col.full:
                break
            item = f"{HDF5_NAME}#annot_id={a}"
            row = meta_rows.get(a)
            if row is None:
                col.skip(item, f"no row for annot_id {a!r} in {CSV_NAME}")
                continue
            diag = row.get("histopath_diagnosis", "")
            if diag not in ("0", "1", "0.0", "1.0"):
                col.skip(item, f"histopath_diagnosis {diag!r} is not 0 or 1")
                col.skip(row["_item"], f"histopath_diagnosis {diag!r} is not 0 or 1")
                continue
            idx = clips[a]
            try:
                nums = [int(fnum_text[i]) for i in idx]
            except ValueError:
                bad = [fnum_text[i] for i in idx if not re.fullmatch(r"-?\d+", fnum_text[i])]
                col.skip(item, f"frame_num values {bad[:3]} are not integers")
                col.skip(row["_item"], "its clip was skipped (frame_num not integers)")
                continue
            order = np.argsort(nums, kind="stable")
            idx = [idx[k] for k in order]
            nums = [nums[k] for k in order]
            if len(set(nums)) != len(nums):
                col.note(item, "repeated frame_num values; kept in file order")
            sel = select_frames(len(idx), max_frames)
            rows_h5 = [idx[k] for k in sel]
            read_order = np.argsort(rows_h5)  # h5py needs increasing indices
            inc = sorted(rows_h5)
            frames_u = np.empty((len(inc),) + img_ds.shape[1:], img_ds.dtype)
            masks_u = np.empty((len(inc),) + mask_ds.shape[1:], mask_ds.dtype)
            frames_u[read_order] = img_ds[inc]
            masks_u[read_order] = mask_ds[inc]
            frames = _to01(frames_u)[:, None]
            masks = (masks_u > 0).astype(np.uint8)
            label = int(float(diag))
            mid = len(sel) // 2
            group = groups[a]
            col.add({"image": frames[mid], "frames": frames, "mask": masks[mid],
                     "masks": masks, "label": label, "label_name": CLASSES[label],
                     "meta": {"dataset": DATASET, "task": TASK, "case_id": a,
                              "patient_id": group[0], "nodule_id": a, "patient_group": group,
                              "patient_grouping": patient_grouping,
                              "pixel_spacing_mm": None, "split": None,
                              "source_path": str(h5_path), "source": "real",
                              "frame_nums": [nums[k] for k in sel],
                              "n_frames_total": len(idx), "n_frames": len(sel),
                              "clinical": {k: v for k, v in row.items()
                                           if not k.startswith("_") and k != "annot_id"}}},
                    item, row["_item"])
        if not col.full:
            for a, r in meta_rows.items():
                if a not in clips:
                    col.skip(r["_item"], f"annot_id {a!r} has no frames in {HDF5_NAME}")
    return col.finish()


def _to01(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return (a.astype(np.float32) / 255.0)
    if a.dtype.kind in "ui":
        top = float(a.max()) if a.size else 0.0
        return np.clip(a.astype(np.float32) / (255.0 if top <= 255 else 65535.0), 0, 1)
    return np.clip(a.astype(np.float32), 0, 1)
