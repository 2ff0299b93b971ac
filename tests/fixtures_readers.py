"""Tiny on-disk fixtures in each data set's layout, for the reader tests (tests/test_readers_*).

Each writer builds 2-4 cases under a folder with numpy/PIL and returns what the tests need to
check the reader against (expected pixels, labels, ids).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def gray_png(path: Path, h: int, w: int, seed: int = 0, *, rgb: bool = False,
             fmt: str | None = None) -> np.ndarray:
    """A random image; returns the grey values in [0, 1] the reader should produce."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if rgb:
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(a, "RGB").save(path, format=fmt)
        return (a.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255).astype(np.float32)
    a = rng.integers(0, 256, (h, w), dtype=np.uint8)
    Image.fromarray(a, "L").save(path, format=fmt)
    return a.astype(np.float32) / 255


def label_png(path: Path, lab: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "1":
        Image.fromarray(lab.astype(bool)).save(path)
    elif mode == "P":  # palette image whose indices are the classes (colours arbitrary)
        im = Image.new("P", (lab.shape[1], lab.shape[0]))
        im.putpalette([v for i in range(256) for v in ((40 * i) % 256, (90 * i) % 256, 0)])
        im.putdata(lab.astype(np.uint8).ravel().tolist())
        im.save(path)
    else:
        Image.fromarray(lab.astype(np.uint8), mode).save(path)


def corrupt(path: Path) -> None:
    """A PNG signature followed by garbage (PIL cannot decode it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)


# --------------------------------------------------------------------------- DDTI
def _ddti_xml(number: str, marks: list[tuple[int, str]], tirads: str = "4a") -> str:
    body = "".join(f"<mark><image>{k}</image><svg>{svg}</svg></mark>" for k, svg in marks)
    return (f'<?xml version="1.0" encoding="UTF-8"?><case><number>{number}</number>'
            f"<age>49</age><sex>F</sex><composition>solid</composition>"
            f"<echogenicity>hypoechogenicity</echogenicity><margins>well defined</margins>"
            f"<calcifications>non</calcifications><tirads>{tirads}</tirads>"
            f"<reportbacaf></reportbacaf><reporteco></reporteco>{body}</case>")


def _svg(*polys) -> str:
    return json.dumps([{"points": [{"x": x, "y": y} for x, y in poly],
                        "annotationType": "image", "regionType": "freehand"} for poly in polys])


def write_ddti(root: Path) -> dict:
    """Cases 1 (two images, one with two nodules), 2 (no mark), 3 (truncated JSON), plus an
    image without XML (4_1.jpg)."""
    root.mkdir(parents=True, exist_ok=True)
    gray_png(root / "1_1.jpg", 24, 32, 1, rgb=True, fmt="JPEG")
    gray_png(root / "1_2.jpg", 20, 30, 2, fmt="JPEG")
    rect = [(2, 3), (6, 3), (6, 8), (2, 8)]
    tri = [(20, 10), (28, 10), (20, 18)]
    (root / "1.xml").write_text(_ddti_xml("1", [(1, _svg(rect, tri)),
                                                (2, _svg([(5, 5), (10, 5), (10, 9), (5, 9)]))]))
    gray_png(root / "2_1.jpg", 16, 16, 3, fmt="JPEG")
    (root / "2.xml").write_text(_ddti_xml("2", []))
    gray_png(root / "3_1.jpg", 16, 16, 4, fmt="JPEG")
    (root / "3.xml").write_text(_ddti_xml("3", [(1, _svg(rect)[:-17])]))  # truncated JSON
    gray_png(root / "4_1.jpg", 16, 16, 5, fmt="JPEG")
    expected = np.zeros((24, 32), np.uint8)
    expected[3:9, 2:7] = 1  # PIL fills polygons boundary included: rows 3..8, cols 2..6
    return {"rect_mask": expected}


# --------------------------------------------------------------------------- Mus-V
def write_musv(root: Path) -> dict:
    """The release one folder deeper, files one level deeper: 2 videos (train, valid)."""
    base = root / "Multimodal Ultrasound Vascular Segmentation"
    lab = np.zeros((12, 16), np.uint8)
    lab[2:5, 2:6] = 1
    lab[6:10, 8:12] = 2
    frames = {}
    for split, vid in (("train", "carotid_000001"), ("valid", "femoral_00002")):
        for n in (1, 2):
            name = f"{vid}_{n:03d}.png"
            frames[name] = gray_png(base / "Videos" / split / vid / name, 12, 16, n, rgb=True)
            label_png(base / "Annotations" / vid / name, lab if n == 1 else np.roll(lab, 1, 1))
    # a frame without annotation and an annotation with a bad label value
    gray_png(base / "Videos" / "train" / "carotid_000001" / "carotid_000001_003.png", 12, 16, 9)
    gray_png(base / "Videos" / "train" / "carotid_000001" / "carotid_000001_004.png", 12, 16, 9)
    bad = lab.copy()
    bad[0, 0] = 7
    label_png(base / "Annotations" / "carotid_000001" / "carotid_000001_004.png", bad)
    (base / "Forces").mkdir(parents=True)
    forces = np.arange(24, dtype=float).reshape(4, 6)
    np.savetxt(base / "Forces" / "carotid_000001.txt", forces, fmt="%.3f", delimiter=" ")
    return {"label": lab, "frames": frames, "forces": forces}


# --------------------------------------------------------------------------- AbdomenUS
def write_abdomenus(root: Path) -> dict:
    lab = np.zeros((10, 14), np.uint8)
    for c in range(1, 6):
        lab[c, c:c + 3] = c
    gray_png(root / "images" / "a1.png", 10, 14, 1)
    label_png(root / "masks" / "a1.png", lab)
    gray_png(root / "images" / "a2.png", 10, 14, 2, rgb=True)
    label_png(root / "masks" / "a2.png", lab, mode="P")
    gray_png(root / "images" / "b1.png", 10, 14, 3)
    bad = lab.copy()
    bad[0, 0] = 6
    label_png(root / "masks" / "b1.png", bad)
    corrupt(root / "images" / "b2.png")
    label_png(root / "masks" / "b2.png", lab)
    gray_png(root / "images" / "orphan.png", 10, 14, 4)
    (root / "cases.csv").write_text(
        "image,patient_id,split,pixel_spacing_mm\n"
        "images/a1.png,P1,,0.3\n"
        "images/a2.png,P1,,\n"
        "images/b1.png,P2,,\n"
        "images/b2.png,P2,,\n"
        "images/missing.png,P3,,\n")
    return {"label": lab}


# --------------------------------------------------------------------------- AIMI
def write_aimi(root: Path, *, drop: str | None = None) -> dict:
    """3 nodules (1_ and 2_ same age/sex -> one patient proxy; 5_ another), frames shuffled and
    with a gap in frame_num; metadata has an extra row (9_) without frames."""
    import h5py

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    clips = {"1_": [1, 2, 3, 5], "2_": [1, 2], "5_": [1, 2, 3]}
    rows = []
    for a, nums in clips.items():
        for n in nums:
            img = np.full((8, 10), 10 * n + int(a[0]), np.uint8)
            mask = np.zeros((8, 10), np.uint8)
            mask[n:n + 2, 2:4] = 255
            rows.append((a, n, img, mask))
    order = rng.permutation(len(rows))
    rows = [rows[k] for k in order]
    with h5py.File(root / "dataset.hdf5", "w") as fh:
        data = {"annot_id": np.array([r[0].encode() for r in rows], dtype="S8"),
                "frame_num": np.array([str(r[1]).encode() for r in rows], dtype="S8"),
                "image": np.stack([r[2] for r in rows]),
                "mask": np.stack([r[3] for r in rows])}
        for k, v in data.items():
            if k != drop:
                fh.create_dataset(k, data=v)
    (root / "metadata.csv").write_text(
        "annot_id,age,sex,location,size_x,size_y,size_z,ti-rads_composition,"
        "ti-rads_echogenicity,ti-rads_shape,ti-rads_margin,ti-rads_echogenicfoci,"
        "ti-rads_level,histopath_diagnosis\n"
        "1_,48,Female,right,4,3.4,3.2,2,1,0,0,0,5,0\n"
        "2_,48,Female,left,1.6,1.2,1.3,1,1,0,0,0,2,1\n"
        "5_,75,Male,left,1.5,1.7,1.1,2,1,0,2,3,5,0\n"
        "9_,60,Female,left,1,1,1,2,1,0,0,0,3,1\n")
    return {"clips": clips}


# --------------------------------------------------------------------------- BUS-BRA
def write_busbra(root: Path) -> dict:
    """4 images of 3 cases; one row whose image is missing, one corrupt mask, one image with no
    row."""
    lab = np.zeros((12, 16), bool)
    lab[3:7, 4:9] = True
    ids = {"bus_0001-l": (1, 2), "bus_0001-r": (1, 5), "bus_0002-s": (2, 4),
           "bus_0003-l": (3, 3), "bus_0004-s": (4, 3)}
    for k, sid in enumerate(ids):
        if sid == "bus_0004-s":
            continue  # row present, image missing
        gray_png(root / "Images" / f"{sid}.png", 12, 16, k)
        if sid == "bus_0003-l":
            corrupt(root / "Masks" / f"{sid.replace('bus_', 'mask_')}.png")
        else:
            label_png(root / "Masks" / f"{sid.replace('bus_', 'mask_')}.png", lab, mode="1")
    gray_png(root / "Images" / "bus_0009-l.png", 12, 16, 9)  # no row
    lines = ["ID,Case,Histology,Pathology,BIRADS,Device,Width,Height,Side,BBOX"]
    for sid, (case, birads) in ids.items():
        lines.append(f'{sid},{case},Fibroadenoma,{"malignant" if birads >= 4 else "benign"},'
                     f'{birads},GE,16,12,{sid[-1]},"[5, 4, 5, 4]"')
    (root / "bus_data.csv").write_text("\n".join(lines) + "\n")
    folds = {"bus_0001-l": 1, "bus_0001-r": 1, "bus_0002-s": 2, "bus_0003-l": 3,
             "bus_0004-s": 4}
    (root / "5-fold-cv.csv").write_text(
        "ID,Pathology,kFold,valid_1,valid_2\n"
        + "".join(f"{sid},benign,{k},{'NaN' if k == 1 else 1},{'NaN' if k == 2 else 2}\n"
                  for sid, k in folds.items()))
    return {"mask": lab.astype(np.uint8), "ids": ids}


# --------------------------------------------------------------------------- SYSU-FLL-CEUS
def write_sysu(root: Path) -> dict:
    """Case c1: 5 PNG frames; c2: 3 frames, one a different size (skipped); c3: label 'FNH'
    written in full; c4 row without a clip; an orphan clip c9."""
    for t in range(5):
        gray_png(root / "clips" / "c1" / f"f{t + 1}.png", 8, 12, t)
    for t in range(3):
        gray_png(root / "clips" / "c2" / f"{t}.png", 8, 12 if t else 10, t)
    for t in range(12):  # name order must be numeric: 2 < 10
        gray_png(root / "clips" / "c3" / f"{t}.png", 6, 6, 100 + t)
    gray_png(root / "clips" / "c9" / "0.png", 6, 6, 7)
    (root / "labels.csv").write_text(
        "case_id,label,patient_id,split\n"
        "c1,HCC,p1,train\n"
        "c2,hemangioma,p2,test\n"
        "c3,focal nodular hyperplasia,p3,\n"
        "c4,FNH,p4,\n")
    return {}
