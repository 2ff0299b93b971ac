"""Geometry metrics (paper section 4.3): ellipses, COCO box/mask-AP, CTR, landmarks."""
import contextlib
import io
import math

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from echocare_lib.downstream.geometry import (
    ctr,
    decode_heatmaps,
    detection_ap,
    ellipse_bbox,
    ellipse_iou,
    ellipse_mask,
    fit_ellipse,
    gaussian_heatmaps,
    landmark_metrics,
    object_dsc,
    p_ctr,
)


def ell(cx, cy, a, b, angle, label="thorax", **kw):
    return dict(label=label, cx=cx, cy=cy, a=a, b=b, angle=angle, **kw)


# ----------------------------------------------------------------------------------- ellipses
def test_mask_matches_simulator_convention():
    # same formula as tests/test_sim_fetal.py::raster (the simulator's _rotate): the a axis
    # points along (cos t, sin t) in (x=col, y=row), y down.
    m = ellipse_mask(ell(20, 20, 10, 2, 90), (41, 41))
    ys, xs = np.nonzero(m)
    assert np.ptp(ys) > 15 and np.ptp(xs) <= 4          # angle 90: a axis along the rows
    m = ellipse_mask(ell(20, 20, 12, 2, 45), (41, 41))
    assert m[28, 28] and m[12, 12] and not m[12, 28]    # +45 deg: down-right on screen


@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 90.0, 123.4, 160.0])
def test_bbox_matches_dense_raster_extent(angle):
    # rasterise 20x finer: the extent of the fine pixel centres approaches the exact bbox
    e = ell(30.3, 25.7, 14.0, 6.5, angle)
    f = 20
    fine = ell((e["cx"] + 0.5) * f - 0.5, (e["cy"] + 0.5) * f - 0.5, e["a"] * f, e["b"] * f,
               angle)
    ys, xs = np.nonzero(ellipse_mask(fine, (60 * f, 60 * f)))
    x0, y0, w, h = ellipse_bbox(e)
    # fine pixel centre j is at coarse x = (j + 0.5) / f - 0.5; tolerance one fine pixel
    tol = 1.0 / f
    assert (xs.min() + 0.5) / f - 0.5 == pytest.approx(x0, abs=tol)
    assert (xs.max() + 0.5) / f - 0.5 == pytest.approx(x0 + w, abs=tol)
    assert (ys.min() + 0.5) / f - 0.5 == pytest.approx(y0, abs=tol)
    assert (ys.max() + 0.5) / f - 0.5 == pytest.approx(y0 + h, abs=tol)


def test_bbox_axis_aligned_and_normalisation():
    assert ellipse_bbox(ell(10, 20, 5, 3, 0)) == pytest.approx((5, 17, 10, 6))
    assert ellipse_bbox(ell(10, 20, 5, 3, 90)) == pytest.approx((7, 15, 6, 10))
    # b > a is the same ellipse as the swapped axes turned by 90 degrees
    assert ellipse_bbox(ell(10, 20, 3, 5, 30)) == pytest.approx(ellipse_bbox(ell(10, 20, 5, 3,
                                                                                  120)))


@pytest.mark.parametrize("a,b,angle", [(20, 12, 0), (25, 9, 33), (18.5, 17, 150)])
def test_raster_area(a, b, angle):
    m = ellipse_mask(ell(50.2, 49.7, a, b, angle), (100, 100))
    assert m.sum() == pytest.approx(math.pi * a * b, rel=0.02)


@pytest.mark.parametrize("e", [ell(40.3, 35.6, 22.0, 11.0, 30.0), ell(50, 45, 30, 14, 147.0),
                               ell(45.5, 40.2, 18, 8, 2.0), ell(45, 45, 25, 15, 91.0)])
def test_fit_ellipse_recovers_parameters(e):
    f = fit_ellipse(ellipse_mask(e, (90, 100)), label="thorax")
    assert f["label"] == "thorax"
    assert f["cx"] == pytest.approx(e["cx"], abs=0.2) and f["cy"] == pytest.approx(e["cy"],
                                                                                     abs=0.2)
    assert f["a"] == pytest.approx(e["a"], abs=1.0) and f["b"] == pytest.approx(e["b"], abs=1.0)
    d = (f["angle"] - e["angle"] + 90) % 180 - 90   # angles modulo 180
    assert abs(d) < 2.0
    assert f["a"] >= f["b"] and 0 <= f["angle"] < 180


def test_fit_ellipse_empty_and_bad():
    assert fit_ellipse(np.zeros((10, 10), bool)) is None
    with pytest.raises(ValueError, match="mask"):
        fit_ellipse(np.zeros(10))


def test_ellipse_iou():
    e = ell(30, 30, 15, 8, 20)
    assert ellipse_iou(e, dict(e), (64, 64)) == 1.0
    assert ellipse_iou(e, ell(5, 58, 4, 3, 0), (64, 64)) == 0.0
    e2 = ell(36, 27, 12, 9, 75)
    m1, m2 = ellipse_mask(e, (64, 64)), ellipse_mask(e2, (64, 64))
    ref = (m1 & m2).sum() / (m1 | m2).sum()
    assert 0.2 < ref < 0.9
    assert ellipse_iou(e, e2, (64, 64)) == pytest.approx(ref, abs=1e-12)
    assert math.isnan(ellipse_iou(ell(-50, -50, 3, 2, 0), ell(-80, -50, 3, 2, 0), (64, 64)))


def test_ellipse_bad_inputs():
    with pytest.raises(ValueError, match="lacks ellipse key"):
        ellipse_bbox({"cx": 1, "cy": 2, "a": 3})
    with pytest.raises(ValueError, match="a, b > 0"):
        ellipse_mask(ell(1, 2, 0, 1, 0), (5, 5))


# --------------------------------------------------------------------------------- detection
SHAPE = (96, 96)
TH, CA = ell(45, 48, 30, 22, 25), ell(50, 45, 14, 11, 110, label="cardiac")
CLASSES = ("thorax", "cardiac")


def scored(e, s):
    return {**e, "score": s}


def test_perfect_predictions_ap_one():
    gts = [[TH, CA], [ell(40, 50, 25, 20, 170), ell(42, 47, 12, 10, 5, label="cardiac")]]
    preds = [[scored(e, 0.9 - 0.1 * j) for j, e in enumerate(img)] for img in gts]
    res = detection_ap(preds, gts, SHAPE, CLASSES)
    assert set(res.table["AP"]) == {1.0} and set(res.table["AP50"]) == {1.0}
    assert res.summary == {f"{p}-{m}": 1.0 for p in ("box", "mask")
                           for m in ("AP", "AP50", "AP75")}
    assert res.get("segm", "cardiac", "AP75") == 1.0
    row = res.table[(res.table["iou_type"] == "bbox") & (res.table["class"] == "all")].iloc[0]
    assert row["n_gt"] == 4 and row["n_pred"] == 4


def test_half_found_is_51_over_101():
    # one class, two thorax objects (one per image); the first found exactly, the second
    # missed; a false positive (no overlap) ranked *below* the hit.
    g2 = ell(40, 40, 20, 15, 60)
    gts = [[TH], [g2]]
    preds = [[scored(TH, 0.9)], [scored(ell(85, 8, 5, 4, 0), 0.3)]]
    res = detection_ap(preds, gts, SHAPE, ["thorax"])
    # precision 1 up to recall 0.5, never recall > 0.5: COCO's 101 recall points 0..0.50
    # (51 of them) have precision 1, the rest 0 -> 51/101 at every IoU threshold
    for t in ("bbox", "segm"):
        for m in ("AP", "AP50", "AP75"):
            assert res.get(t, "thorax", m) == pytest.approx(51 / 101)
    # the false positive ranked *above* the hit: precision 1/2 at recall 1/2 -> 0.5 * 51/101
    preds = [[scored(TH, 0.3)], [scored(ell(85, 8, 5, 4, 0), 0.9)]]
    res = detection_ap(preds, gts, SHAPE, ["thorax"])
    assert res.get("bbox", "thorax", "AP50") == pytest.approx(0.5 * 51 / 101)
    assert res.get("segm", "all", "AP") == pytest.approx(0.5 * 51 / 101)


def test_per_class_equals_restricted_cocoeval():
    # a messier case: shifted, rescaled predictions and a duplicate; compare each class's
    # row with an independent COCOeval restricted to that category (boxes).
    gts = [[TH, CA], [ell(40, 50, 25, 20, 170), ell(42, 47, 12, 10, 5, label="cardiac")]]
    preds = [[scored(ell(47, 49, 28, 22, 30), 0.8), scored(ell(52, 45, 15, 10, 100,
                                                                label="cardiac"), 0.7),
              scored(ell(45, 48, 30, 22, 25), 0.6)],
             [scored(ell(42, 50, 25, 18, 160), 0.95),
              scored(ell(48, 52, 12, 10, 5, label="cardiac"), 0.9)]]
    res = detection_ap(preds, gts, SHAPE, CLASSES)

    def box(e):
        x0, y0, w, h = ellipse_bbox(e)
        return [x0 + 0.5, y0 + 0.5, w, h]

    cat = {"thorax": 1, "cardiac": 2}
    gt = COCO()
    gt.dataset = {"images": [{"id": i + 1, "height": 96, "width": 96} for i in range(2)],
                  "categories": [{"id": v, "name": k} for k, v in cat.items()],
                  "annotations": [{"id": 10 * i + j + 1, "image_id": i + 1, "iscrowd": 0,
                                   "category_id": cat[e["label"]], "bbox": box(e),
                                   "area": box(e)[2] * box(e)[3]}
                                  for i, img in enumerate(gts) for j, e in enumerate(img)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([{"image_id": i + 1, "category_id": cat[e["label"]], "bbox": box(e),
                          "score": e["score"]} for i, img in enumerate(preds) for e in img])
        for name, cid in cat.items():
            ev = COCOeval(gt, dt, "bbox")
            ev.params.catIds = [cid]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            assert res.get("bbox", name, "AP") == pytest.approx(ev.stats[0])
            assert res.get("bbox", name, "AP50") == pytest.approx(ev.stats[1])
            assert res.get("bbox", name, "AP75") == pytest.approx(ev.stats[2])
    assert 0 < res.get("bbox", "all") < 1 and 0 < res.get("segm", "all") < 1


def test_wrong_class_predictions_do_not_count():
    gts = [[TH]]
    preds = [[scored({**TH, "label": "cardiac"}, 0.99)]]   # right place, wrong class
    res = detection_ap(preds, gts, SHAPE, CLASSES)
    assert res.get("bbox", "thorax") == 0.0 and res.get("segm", "thorax", "AP50") == 0.0
    assert math.isnan(res.get("bbox", "cardiac"))          # no cardiac ground truth
    assert res.get("bbox", "all") == 0.0 and res.notes      # NaN class left out, noted
    # no predictions at all: AP 0 where there is ground truth
    res = detection_ap([[]], gts, SHAPE, CLASSES)
    assert res.get("segm", "thorax") == 0.0 and math.isnan(res.get("segm", "cardiac"))


def test_detection_bad_inputs():
    with pytest.raises(ValueError, match="gts"):
        detection_ap([[]], [], SHAPE, CLASSES)
    with pytest.raises(ValueError, match="preds"):
        detection_ap([], [[TH]], SHAPE, CLASSES)
    with pytest.raises(ValueError, match="score"):
        detection_ap([[TH]], [[TH]], SHAPE, CLASSES)
    with pytest.raises(ValueError, match="label"):
        detection_ap([[scored({**TH, "label": "liver"}, 1.0)]], [[TH]], SHAPE, CLASSES)
    with pytest.raises(ValueError, match="no objects"):
        detection_ap([[]], [[]], SHAPE, CLASSES)


# ----------------------------------------------------------------------- CTR and object DSC
def test_ctr_and_p_ctr():
    assert ctr([ell(0, 0, 40, 30, 0), ell(0, 0, 12, 15, 0, label="cardiac")]) == 0.4
    assert p_ctr(0.5, 0.45) == pytest.approx(90.0)
    assert p_ctr(0.5, 0.55) == pytest.approx(90.0)
    np.testing.assert_allclose(p_ctr([0.5, 0.4], [0.5, 0.5]), [100.0, 75.0])
    with pytest.raises(ValueError, match="cardiac"):
        ctr([ell(0, 0, 40, 30, 0)])
    with pytest.raises(ValueError, match="ellipses"):
        ctr([])
    with pytest.raises(ValueError, match="r_true"):
        p_ctr([], [])


def test_object_dsc():
    gts = [[TH, CA]]
    m = ellipse_mask(TH, SHAPE)
    shifted = ell(48, 48, 30, 22, 25)
    s = ellipse_mask(shifted, SHAPE)
    ref = 2 * (m & s).sum() / (m.sum() + s.sum())
    preds = [[scored(ell(10, 10, 5, 4, 0), 0.2), scored(shifted, 0.9),
              scored(CA, 0.5)]]
    tab = object_dsc(preds, gts, SHAPE, CLASSES)
    assert list(tab["class"]) == ["thorax", "cardiac"]
    assert tab["dsc"].iloc[0] == pytest.approx(ref) and tab["score"].iloc[0] == 0.9
    assert tab["dsc"].iloc[1] == 1.0
    tab = object_dsc([[TH]], gts, SHAPE, CLASSES)              # cardiac missed
    assert list(tab["dsc"]) == [1.0, 0.0] and tab["note"].iloc[1].startswith("missed")


# --------------------------------------------------------------------------------- landmarks
def test_sdr_mre_mse_hand_computed():
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[0, :, 0] = [1.0, 3.0, 12.0]          # radial errors 1, 3, 12
    pred[1, :, 1] = [2.0, 4.5, 0.0]           #               2, 4.5, 0
    r = landmark_metrics(pred, gt, names=["a", "b", "c"])
    assert r["MRE_px"] == pytest.approx((1 + 3 + 12 + 2 + 4.5 + 0) / 6)
    assert r["MSE_px2"] == pytest.approx((1 + 9 + 144 + 4 + 20.25 + 0) / 6)
    assert r["SDR@2"] == pytest.approx(100 * 3 / 6)     # 1, 2, 0 (<= 2 counts)
    assert r["SDR@4"] == pytest.approx(100 * 4 / 6)
    assert r["SDR@10"] == pytest.approx(100 * 5 / 6)
    per = r["per_landmark"]
    assert list(per["name"]) == ["a", "b", "c"]
    np.testing.assert_allclose(per["MRE_px"], [1.5, 3.75, 6.0])
    np.testing.assert_allclose(per["SDR@2"], [100, 0, 50])
    r = landmark_metrics(pred, gt, spacing_mm=0.5)
    assert r["MRE_mm"] == pytest.approx(r["MRE_px"] * 0.5)
    assert r["SDR@2mm"] == pytest.approx(100 * 4 / 6)  # errors in mm: .5 1.5 6 1 2.25 0
    # anisotropic (row, col) spacing: x errors scale by col, y errors by row spacing
    r = landmark_metrics(pred, gt, spacing_mm=(2.0, 1.0))
    assert r["radial_error_mm"][0] == pytest.approx([1, 3, 12])
    assert r["radial_error_mm"][1] == pytest.approx([4, 9, 0])


def test_landmark_bad_inputs():
    with pytest.raises(ValueError, match="pred"):
        landmark_metrics(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="shapes differ"):
        landmark_metrics(np.zeros((1, 3, 2)), np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match="points"):
        gaussian_heatmaps(np.zeros((0, 2)), (8, 8), 2.0)
    with pytest.raises(ValueError, match="heatmaps"):
        decode_heatmaps(torch.zeros(0, 3, 8, 8))


def test_heatmap_round_trip_subpixel():
    pts = np.array([[10.3, 20.7], [33.25, 5.6], [1.9, 40.1], [47.45, 45.2]])
    hm = gaussian_heatmaps(pts, (48, 50), sigma=2.0)
    assert hm.dtype == np.float32 and hm.shape == (4, 48, 50)
    assert hm.max() <= 1.0
    got = decode_heatmaps(torch.from_numpy(hm)[None])
    assert isinstance(got, torch.Tensor) and got.shape == (1, 4, 2)
    assert got.dtype == torch.float32
    err = np.linalg.norm(got[0].numpy() - pts, axis=1)
    assert err.max() < 0.1
    # the integer arg-max alone is off by up to ~0.7 px
    idx = hm.reshape(4, -1).argmax(1)
    assert np.linalg.norm(np.c_[idx % 50, idx // 50] - pts, axis=1).max() > 0.3
    # arg-max on the border (row 0): x is still refined
    hm = gaussian_heatmaps([[12.35, -0.2]], (20, 30), sigma=1.5)
    got = decode_heatmaps(torch.from_numpy(hm)[None])[0, 0]
    assert got[0].item() == pytest.approx(12.35, abs=1e-3) and got[1].item() == 0.0
    # an anisotropic, rotated Gaussian (log still quadratic) is also recovered
    y, x = np.mgrid[:40, :40].astype(float)
    dx, dy = x - 18.6, y - 21.3
    g = np.exp(-(dx ** 2 / 18 + dy ** 2 / 6 + dx * dy / 10))
    assert torch.dist(decode_heatmaps(torch.tensor(g)[None, None])[0, 0],
                      torch.tensor([18.6, 21.3])) < 0.1
