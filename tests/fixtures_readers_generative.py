"""Tiny on-disk fixtures for the USenhance and USreport readers
(tests/test_readers_{usenhance,usreport}.py), each in its release's layout.

Each writer builds a few cases (good ones and one per kind of fault) with numpy/PIL and returns
what the tests check the reader against.
"""
from __future__ import annotations

import json
from pathlib import Path

from fixtures_readers import corrupt, gray_png


# --------------------------------------------------------------------------- USenhance
def write_usenhance(root: Path) -> dict:
    """``root/train_datasets/``: breast 1 (pair), 2 (pair, high 20x24 vs low 16x16), 3 (low
    only); carotid 1 (pair: the same name as breast 1, different pixels), 5 (high only),
    6 (corrupt low, readable high), 7 (readable low, corrupt high); kidney 1 (RGB pair);
    an unknown organ folder ``spleen`` and a stray image in ``breast/``; a sibling
    ``test_datasets/`` (low only, not read). Returns the expected grey images by
    (organ, name, "low"/"high")."""
    base = root / "train_datasets"
    exp: dict = {}

    def png(organ, q, name, h=16, w=16, seed=0, rgb=False):
        a = gray_png(base / organ / f"{q}_quality" / f"{name}.png", h, w, seed, rgb=rgb)
        exp[(organ, name, q)] = a
        return a

    png("breast", "low", "1", seed=1)
    png("breast", "high", "1", seed=2)
    png("breast", "low", "2", seed=3)
    png("breast", "high", "2", 20, 24, seed=4)
    png("breast", "low", "3", seed=5)
    png("carotid", "low", "1", seed=6)
    png("carotid", "high", "1", seed=7)
    png("carotid", "high", "5", seed=8)
    corrupt(base / "carotid" / "low_quality" / "6.png")
    png("carotid", "high", "6", seed=9)
    png("carotid", "low", "7", seed=10)
    corrupt(base / "carotid" / "high_quality" / "7.png")
    png("kidney", "low", "1", seed=11, rgb=True)
    png("kidney", "high", "1", seed=12, rgb=True)
    gray_png(base / "spleen" / "low_quality" / "1.png", 8, 8, 13)
    gray_png(base / "breast" / "stray.png", 8, 8, 14)
    gray_png(root / "test_datasets" / "liver" / "low_quality" / "9.png", 8, 8, 15)
    (base / "breast" / "low_quality" / "notes.txt").write_text("not an image")
    return exp


# --------------------------------------------------------------------------- USreport
ZH_REPORT = "肝脏大小形态正常，包膜光滑，实质回声均匀。胆囊未见异常。"
EN_REPORT = ("Findings: The liver is normal in size with a smooth capsule and homogeneous "
             "echogenicity. The portal vein is not dilated. The gallbladder is unremarkable.\n"
             "Impression: Normal liver ultrasound.")


def _rec(uid, finding, paths, labels=0, **extra) -> dict:
    return {"uid": uid, "finding": finding, "image_path": paths, "labels": labels, **extra}


def write_usreport(root: Path, *, bom: bool = True) -> dict:
    """``root/new_Liver2.json`` (UTF-8 with a BOM) + ``root/Liver_report/``:
    train: 101 (Chinese), 102 (English; second image 12x10 vs first 8x8), 103 (second image
    missing), 104 (no 'finding'); val: 201 (Chinese, second image in a subfolder, named with
    a backslash), 101 again (repeated uid); test: 301 (English, a 'split' field saying
    'train', three image paths), 302 (corrupt image). Plus an image no record names
    (999_1.jpeg). Returns the expected grey images by file name."""
    img = root / "Liver_report"
    exp: dict = {}

    def jpeg(name, h=8, w=8, seed=0):
        exp[name] = gray_png(img / name, h, w, seed, fmt="PNG")  # lossless, any suffix
        return exp[name]

    for uid, seed in ((101, 1), (201, 3), (301, 5)):
        jpeg(f"{uid}_1.jpeg", seed=seed)
        jpeg(f"{uid}/{uid}_2.jpeg" if uid == 201 else f"{uid}_2.jpeg", seed=seed + 1)
    jpeg("301_3.jpeg", seed=20)
    jpeg("102_1.jpeg", seed=7)
    jpeg("102_2.jpeg", 12, 10, seed=8)
    jpeg("103_1.jpeg", seed=9)
    jpeg("104_1.jpeg", seed=10)
    jpeg("104_2.jpeg", seed=11)
    jpeg("302_1.jpeg", seed=12)
    corrupt(img / "302_2.jpeg")
    jpeg("999_1.jpeg", seed=13)
    data = {
        "train": [_rec(101, ZH_REPORT, ["101_1.jpeg", "101_2.jpeg"], 2),
                  _rec(102, EN_REPORT, ["102_1.jpeg", "102_2.jpeg"], 1),
                  _rec(103, ZH_REPORT, ["103_1.jpeg", "103_2.jpeg"]),
                  {"uid": 104, "image_path": ["104_1.jpeg", "104_2.jpeg"], "labels": 0}],
        "val": [_rec(201, ZH_REPORT, ["201_1.jpeg", "201\\201_2.jpeg"], 3),
                _rec(101, ZH_REPORT, ["101_1.jpeg", "101_2.jpeg"])],
        "test": [_rec(301, EN_REPORT, ["301_1.jpeg", "301_2.jpeg", "301_3.jpeg"], 4,
                      split="train"),
                 _rec(302, ZH_REPORT, ["302_1.jpeg", "302_2.jpeg"])],
    }
    text = json.dumps(data, ensure_ascii=False, indent=1)
    (root / "new_Liver2.json").write_bytes(("\ufeff" if bom else "").encode("utf-8")
                                           + text.encode("utf-8"))
    return exp
