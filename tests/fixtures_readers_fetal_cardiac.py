"""Tiny on-disk fixtures for the FOCUS, CAMUS and fetal brain landmark readers
(tests/test_readers_{focus,camus,brain_landmarks}.py), each in its data set's layout.

Each writer builds a few cases (good ones and one per kind of fault) with numpy/PIL (nibabel
for CAMUS NIfTI files) and returns what the tests check the reader against.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fixtures_readers import corrupt, gray_png, label_png

H, W = 32, 40  # FOCUS / brain landmark images: 32 rows, 40 columns


# --------------------------------------------------------------------------- FOCUS
def _ellipse_file(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_focus(root: Path) -> dict:
    """training/ 001 (masks given, cardiac b > a), 002 (``thoracic``, thorax b > a, no masks:
    rasterised), 003 (malformed line), 004 (corrupt image), an orphan annotation 009;
    validation/ 001; testing/ 001 and 002 (no annotation). Returns the expected values."""
    tr, va, te = root / "training", root / "validation", root / "testing"
    exp: dict = {"images": {}}
    exp["images"]["training_001"] = gray_png(tr / "images" / "001.png", H, W, 1, rgb=True)
    _ellipse_file(tr / "annfiles_ellipse" / "001.txt",
                  ["20.0 16.0 14.0 11.0 10.0 thorax", "22.5 15.0 6.0 8.0 30.0 cardiac"])
    _ellipse_file(tr / "annfiles_rectangle" / "001.txt",
                  ["1 2 3 4 5 6 7 8 thorax 0", "1 2 3 4 5 6 7 8 cardiac 0"])
    thorax = np.zeros((H, W), np.uint8)
    thorax[4:28, 6:34] = 255
    cardiac = np.zeros((H, W), np.uint8)
    cardiac[10:20, 15:30] = 255
    label_png(tr / "annfiles_mask" / "001-thorax.png", thorax)
    label_png(tr / "annfiles_mask" / "001-cardiac.png", cardiac)
    m = np.zeros((H, W), np.uint8)
    m[thorax > 0] = 1
    m[cardiac > 0] = 2
    exp["mask_001"] = m
    gray_png(tr / "images" / "002.png", H, W, 2)
    _ellipse_file(tr / "annfiles_ellipse" / "002.txt",
                  ["19 15 9 12 170 Thoracic", "", "18 14 3 2 45 cardiac"])
    gray_png(tr / "images" / "003.png", H, W, 3)
    _ellipse_file(tr / "annfiles_ellipse" / "003.txt",
                  ["20 16 14 11 thorax", "22 15 6 8 30 cardiac"])
    corrupt(tr / "images" / "004.png")
    _ellipse_file(tr / "annfiles_ellipse" / "004.txt",
                  ["20 16 14 11 0 thorax", "22 15 6 4 30 cardiac"])
    _ellipse_file(tr / "annfiles_ellipse" / "009.txt",
                  ["20 16 14 11 0 thorax", "22 15 6 4 30 cardiac"])
    gray_png(va / "images" / "001.png", H, W, 4)
    _ellipse_file(va / "annfiles_ellipse" / "001.txt",
                  ["20 16 15 10 0 thorax", "20 16 5 4 90 cardiac"])
    gray_png(te / "images" / "001.png", H, W, 5)
    _ellipse_file(te / "annfiles_ellipse" / "001.txt",
                  ["20 16 15 10 0 thorax", "20 16 5 4 90 cardiac"])
    gray_png(te / "images" / "002.png", H, W, 6)  # no annotation
    return exp


# --------------------------------------------------------------------------- CAMUS
def camus_sequence(t: int, h: int, w: int, seed: int) -> np.ndarray:
    """uint8 (T, H, W) with every value distinct along rows and columns (a transposition or
    a flipped axis changes it)."""
    i = np.arange(h)[:, None]
    j = np.arange(w)[None, :]
    return np.stack([(seed * 7 + k * 40 + 3 * i + 17 * j) % 256 for k in range(t)]) \
        .astype(np.uint8)


def camus_labels(t: int, h: int, w: int, shift: int = 0) -> np.ndarray:
    """uint8 (T, H, W) label maps 0..3 with an asymmetric layout that moves per frame."""
    m = np.zeros((t, h, w), np.uint8)
    for k in range(t):
        m[k, 1:4, 2 + k + shift:5 + k + shift] = 1
        m[k, 5:7, 1:3] = 2
        m[k, 8, 6:9] = 3
    return m


def _nii(path: Path, arr_thw: np.ndarray, zooms=(0.25, 0.25)) -> None:
    """Write (T, H, W) or (H, W) as CAMUS does: nibabel axis order (W, H[, T])."""
    import nibabel as nib

    a = arr_thw.T if arr_thw.ndim == 2 else arr_thw.transpose(2, 1, 0)
    img = nib.Nifti1Image(np.ascontiguousarray(a), np.diag([*zooms, 1.0, 1.0]))
    img.header.set_zooms((*zooms, 1.0)[:a.ndim])
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def _cfg(path: Path, **kv) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}: {v}\n" for k, v in kv.items()))


def write_camus(root: Path) -> dict:
    """Current (NIfTI) release: patient0001 (4CH + 2CH, half-sequence ground truth),
    patient0002 (4CH without sequence gt but an ED_gt, anisotropic pixels; its 2CH gt holds a
    label 7), patient0003 (4CH cfg lacks EF), patient0004 (corrupt 4CH sequence), split files.
    Sequences are 10 rows x 12 columns, 4-5 frames."""
    base = root / "database_nifti"
    h, w = 10, 12
    exp: dict = {"seq": {}, "gt": {}}
    # patient0001
    p = base / "patient0001"
    for view, t, es, ef, seed in (("4CH", 5, 4, 55.5, 1), ("2CH", 4, 4, 54.0, 2)):
        seq = camus_sequence(t, h, w, seed)
        gt = camus_labels(t, h, w, shift=seed)
        _nii(p / f"patient0001_{view}_half_sequence.nii.gz", seq)
        _nii(p / f"patient0001_{view}_half_sequence_gt.nii.gz", gt)
        _nii(p / f"patient0001_{view}_ED.nii.gz", seq[0])
        _nii(p / f"patient0001_{view}_ED_gt.nii.gz", gt[0])
        _cfg(p / f"Info_{view}.cfg", ED=1, ES=es, NbFrame=t, Sex="F", Age=61,
             ImageQuality="Good", EF=ef, FrameRate=25.0)
        exp["seq"][("patient0001", view)] = seq
        exp["gt"][("patient0001", view)] = gt
    # patient0002: no sequence gt, an ED_gt; ED is frame 2 (1-based), ES frame 4
    p = base / "patient0002"
    seq = camus_sequence(4, h, w, 3)
    _nii(p / "patient0002_4CH_half_sequence.nii.gz", seq, zooms=(0.2, 0.4))
    ed_gt = camus_labels(1, h, w)[0]
    _nii(p / "patient0002_4CH_ED_gt.nii.gz", ed_gt, zooms=(0.2, 0.4))
    _cfg(p / "Info_4CH.cfg", ED=2, ES=4, NbFrame=4, Sex="M", Age=70, ImageQuality="Poor",
         EF=38.25, FrameRate=30)
    exp["seq"][("patient0002", "4CH")] = seq
    exp["ed_gt_0002"] = ed_gt
    bad = camus_labels(4, h, w)
    bad[2, 0, 0] = 7
    _nii(p / "patient0002_2CH_half_sequence.nii.gz", seq)
    _nii(p / "patient0002_2CH_half_sequence_gt.nii.gz", bad)
    _cfg(p / "Info_2CH.cfg", ED=1, ES=4, NbFrame=4, EF=38.25, FrameRate=30)
    # patient0003: cfg lacks EF
    p = base / "patient0003"
    _nii(p / "patient0003_4CH_half_sequence.nii.gz", camus_sequence(3, h, w, 4))
    _cfg(p / "Info_4CH.cfg", ED=1, ES=3, NbFrame=3, Sex="F", Age=50, ImageQuality="Medium",
         FrameRate=25)
    # patient0004: corrupt sequence
    p = base / "patient0004"
    p.mkdir(parents=True)
    (p / "patient0004_4CH_half_sequence.nii.gz").write_bytes(b"\x1f\x8b\x08" + b"junk" * 10)
    _cfg(p / "Info_4CH.cfg", ED=1, ES=3, NbFrame=3, EF=60, FrameRate=25)
    sp = root / "database_split"
    sp.mkdir(parents=True)
    (sp / "subgroup_training.txt").write_text("patient0001\npatient0003\n")
    (sp / "subgroup_validation.txt").write_text("patient0002\n")
    (sp / "subgroup_testing.txt").write_text("patient0004\npatient0099\n")
    return exp


def _mhd(path: Path, arr_thw: np.ndarray, spacing=(0.3, 0.3)) -> None:
    """MetaImage header + raw file, x fastest (numpy (T, H, W) order on disk)."""
    dims = list(arr_thw.shape[::-1])
    sp = list(spacing) + [1.0] * (len(dims) - 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw")
    raw.write_bytes(np.ascontiguousarray(arr_thw, np.uint8).tobytes())
    path.write_text(f"ObjectType = Image\nNDims = {len(dims)}\nBinaryData = True\n"
                    f"BinaryDataByteOrderMSB = False\nCompressedData = False\n"
                    f"ElementSpacing = {' '.join(map(str, sp))}\n"
                    f"DimSize = {' '.join(map(str, dims))}\nElementType = MET_UCHAR\n"
                    f"ElementDataFile = {raw.name}\n")


def write_camus_2019(root: Path) -> dict:
    """2019 release: training/patient0001 (4CH .mhd sequence + ED_gt, cfg LVedv/LVesv/LVef),
    testing/patient0051 (cfg without LVef, as in the test set)."""
    h, w = 10, 12
    p = root / "training" / "patient0001"
    seq = camus_sequence(3, h, w, 5)
    _mhd(p / "patient0001_4CH_sequence.mhd", seq)
    ed_gt = camus_labels(1, h, w)[0]
    _mhd(p / "patient0001_4CH_ED_gt.mhd", ed_gt)
    _cfg(p / "Info_4CH.cfg", ED=1, ES=3, NbFrame=3, Sex="F", Age=45, ImageQuality="Good",
         LVedv=94.14, LVesv=48.73, LVef=48.24)
    q = root / "testing" / "patient0051"
    _mhd(q / "patient0051_4CH_sequence.mhd", camus_sequence(3, h, w, 6))
    _cfg(q / "Info_4CH.cfg", ED=1, ES=3, NbFrame=3, Sex="M", Age=80, ImageQuality="Good")
    return {"seq": seq, "ed_gt": ed_gt}


# --------------------------------------------------------------------------- brain landmarks
def brain_points(seed: int) -> np.ndarray:
    """[24, 2] (x, y) pixel coordinates with quarter-pixel values (exact in float32)."""
    k = np.arange(24, dtype=np.float64)
    return np.stack([(k * 1.5 + seed) % 38 + 0.25, (k * 0.75 + 2 * seed) % 30 + 0.5], axis=1)


def write_brain_landmarks(root: Path) -> dict:
    """images a (P1), b (P1, one landmark outside the image), c (corrupt), d (a non-numeric
    coordinate), e (no row); rows for a, b, c, d and a missing image."""
    from echocare_lib.sim.tasks.fetal import LANDMARK_NAMES

    exp = {"a": gray_png(root / "images" / "a.png", H, W, 1, rgb=True),
           "b": gray_png(root / "images" / "b.png", H, W, 2)}
    corrupt(root / "images" / "c.png")
    gray_png(root / "images" / "d.png", H, W, 4)
    gray_png(root / "images" / "e.png", H, W, 5)
    pts = {n: brain_points(s) for s, n in enumerate("abcdf", start=1)}
    pts["b"][3] = (45.0, 10.0)  # outside the 40-column image: kept, noted
    cols = [c for n in LANDMARK_NAMES for c in (f"x_{n}", f"y_{n}")]
    lines = [",".join(["image", "patient_id", "spacing_mm", "split", *cols])]
    meta = {"a": ("P1", "0.2", "train"), "b": ("P1", "", "train"), "c": ("P2", "", ""),
            "d": ("P3", "", "test"), "f": ("P4", "", "")}
    for n, (pid, sp, split) in meta.items():
        cells = [f"{v:g}" for v in pts[n].ravel()]
        if n == "d":
            cells[5] = "n/a"
        name = "images/missing.png" if n == "f" else ("b.png" if n == "b" else f"images/{n}.png")
        lines.append(",".join([name, pid, sp, split, *cells]))
    (root / "landmarks.csv").write_text("\n".join(lines) + "\n")
    exp["points"] = pts
    return exp
