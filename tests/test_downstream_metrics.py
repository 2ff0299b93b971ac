"""Downstream metrics (paper section 4.3) against scikit-learn / MONAI and hand-computed cases."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays
from monai.metrics import compute_dice
from sklearn.metrics import (
    f1_score,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from echocare_lib.downstream.metrics import (
    classification_metrics,
    regression_metrics,
    segmentation_metrics,
    youden_operating_point,
)


# ---------------------------------------------------------------------------- classification
def test_binary_classification_hand_computed():
    # predicted positive when p1 > 0.5: preds = [0, 1, 1, 0, 1, 1]
    y = np.array([0, 0, 1, 1, 1, 1])
    p1 = np.array([0.2, 0.6, 0.9, 0.4, 0.7, 0.8])
    m = classification_metrics(y, np.c_[1 - p1, p1], classes=("benign", "malignant"))
    # TP = 3, FP = 1, FN = 1, TN = 1
    assert m["ACC"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["F1"] == pytest.approx(3 / 4)
    # negatives: precision 1/2, recall 1/2, F1 1/2 -> macro F1 (0.75 + 0.5) / 2
    assert m["macro_F1"] == pytest.approx(0.625)
    # AUC by pair counting: 8 positive-negative pairs, positive ranked higher in 7
    assert m["AUC"] == pytest.approx(7 / 8)
    assert m["n"] == 6 and m["notes"] == ()


def test_multiclass_classification_matches_sklearn():
    rng = np.random.default_rng(0)
    n, c = 60, 4
    y = np.arange(n) % c
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = classification_metrics(y, probs, classes=list("ABCD"))
    pred = probs.argmax(1)
    assert m["ACC"] == pytest.approx(np.mean(pred == y))
    assert m["precision"] == pytest.approx(precision_score(y, pred, average="macro"))
    assert m["recall"] == pytest.approx(recall_score(y, pred, average="macro"))
    assert m["F1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["macro_F1"] == m["F1"]
    assert m["AUC"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    for k, name in enumerate("ABCD"):
        assert m[f"AUC[{name}]"] == pytest.approx(roc_auc_score(y == k, probs[:, k]))
    assert 0.5 < m["AUC"] <= 1.0


def test_multiclass_auc_with_missing_class_is_skipped_with_reason():
    y = np.array([0, 0, 2, 2, 0, 2])
    probs = np.array([[.6, .2, .2], [.5, .3, .2], [.2, .2, .6],
                      [.1, .3, .6], [.3, .4, .3], [.4, .1, .5]])
    m = classification_metrics(y, probs, classes=("BI-RADS 3", "BI-RADS 4", "BI-RADS 5"))
    assert math.isnan(m["AUC[BI-RADS 4]"])
    auc0 = roc_auc_score(y == 0, probs[:, 0])
    auc2 = roc_auc_score(y == 2, probs[:, 2])
    assert m["AUC[BI-RADS 3]"] == pytest.approx(auc0)
    assert m["AUC"] == pytest.approx((auc0 + auc2) / 2)
    assert len(m["notes"]) == 1 and "BI-RADS 4" in m["notes"][0] and "absent" in m["notes"][0]
    # scikit-learn's one-call version gives up on the whole score here
    with pytest.warns(Warning):
        assert math.isnan(roc_auc_score(y, probs, multi_class="ovr", labels=[0, 1, 2]))


def test_binary_auc_with_single_class_is_nan_with_reason():
    m = classification_metrics([1, 1, 1], [[.2, .8], [.6, .4], [.3, .7]], classes=("b", "m"))
    assert math.isnan(m["AUC"]) and "only class 'm'" in m["notes"][0]
    assert m["ACC"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("y, scores, msg", [
    ([0, 1, 3], np.full((3, 3), 1 / 3), "outside"),
    ([0, 1], np.full((3, 3), 1 / 3), "expected"),          # 3 score rows for 2 labels
    ([0, 1, 1], np.full((3, 2), 0.5), "one column per class"),
])
def test_classification_rejects_bad_input(y, scores, msg):
    with pytest.raises(ValueError, match=msg):
        classification_metrics(y, scores, classes=("a", "b", "c"))


def test_youden_on_hand_made_roc():
    # negatives 0.1 0.2 0.3 0.65, positives 0.4 0.5 0.8 0.9. Cut-offs (sens, spec, J):
    # 0.9 (.25, 1, .25) 0.8 (.5, 1, .5) 0.65 (.5, .75, .25) 0.5 (.75, .75, .5)
    # 0.4 (1, .75, .75) <- unique maximum, 0.3 (1, .5, .5)
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.65, 0.4, 0.5, 0.8, 0.9]
    op = youden_operating_point(y, s)
    assert op["threshold"] == pytest.approx(0.4)
    assert op["sensitivity"] == pytest.approx(1.0)
    assert op["specificity"] == pytest.approx(0.75)
    assert op["youden_j"] == pytest.approx(0.75)
    assert op["accuracy"] == pytest.approx(7 / 8) and op["note"] == ""


def test_youden_single_class_is_nan():
    op = youden_operating_point([1, 1], [0.2, 0.9])
    assert math.isnan(op["threshold"]) and "single class" in op["note"]


# ------------------------------------------------------------------------------ segmentation
def _square(r0, r1, c0, c1, shape=(10, 10), label=1):
    m = np.zeros(shape, dtype=np.int64)
    m[r0:r1, c0:c1] = label
    return m


def test_dsc_hand_computed_4x4():
    a = np.array([[1, 1, 0, 0],
                  [1, 1, 0, 0],
                  [1, 1, 1, 0],
                  [0, 0, 0, 0]])        # |A| = 7
    b = np.array([[0, 1, 1, 0],
                  [0, 1, 1, 0],
                  [0, 1, 1, 0],
                  [0, 0, 0, 0]])        # |B| = 6, |A ∩ B| = 4
    res = segmentation_metrics(a, b, classes=("bg", "fg"), spacing_mm=1.0)
    assert res.table["dsc"].iloc[0] == pytest.approx(2 * 4 / (7 + 6))
    assert res.mDSC == pytest.approx(8 / 13)
    assert {"image", "class", "dsc", "nsd"} <= set(res.table.columns)


def test_nsd_boundaries_one_pixel_apart():
    # GT square rows 2-5, prediction rows 3-6 (same columns): a 1-px shift. Boundary = the
    # 12-px ring of each square. Pred ring -> GT ring: 6 pixels at distance 0 (on the GT ring)
    # and 6 at distance exactly 1 px (top-row interior, bottom row); the same the other way.
    gt, pr = _square(2, 6, 2, 6), _square(3, 7, 2, 6)
    for spacing in (1.0, 0.5):           # tolerance in mm; 1 px = `spacing` mm
        below = segmentation_metrics(pr, gt, ("bg", "fg"), spacing, nsd_tolerance_mm=0.8 * spacing)
        at = segmentation_metrics(pr, gt, ("bg", "fg"), spacing, nsd_tolerance_mm=1.0 * spacing)
        above = segmentation_metrics(pr, gt, ("bg", "fg"), spacing, nsd_tolerance_mm=1.5 * spacing)
        assert below.mNSD == pytest.approx(12 / 24)
        assert at.mNSD == pytest.approx(1.0)     # "<= tolerance" counts as correct
        assert above.mNSD == pytest.approx(1.0)
    assert below.mDSC == pytest.approx(2 * 12 / 32)


def test_nsd_anisotropic_spacing_is_row_col():
    # 1-px shift along rows; rows 0.5 mm apart and columns 1 mm: every distance <= 0.5 mm
    gt, pr = _square(2, 6, 2, 6), _square(3, 7, 2, 6)
    res = segmentation_metrics(pr, gt, ("bg", "fg"), (0.5, 1.0), nsd_tolerance_mm=0.5)
    assert res.mNSD == pytest.approx(1.0)
    # swapped: a row step is 1 mm (too far), a column step 0.5 mm; the 2 top-row interior
    # pixels find a GT boundary pixel one column over, so 8 of 12 per direction are correct
    res = segmentation_metrics(pr, gt, ("bg", "fg"), (1.0, 0.5), nsd_tolerance_mm=0.5)
    assert res.mNSD == pytest.approx(16 / 24)


def test_nsd_mm_tolerance_equals_pixel_tolerance_without_spacing():
    from monai.metrics import compute_surface_dice
    rng = np.random.default_rng(1)
    gt = _square(5, 20, 4, 18, shape=(32, 32))
    pr = np.roll(gt, (2, -1), axis=(0, 1))
    pr[rng.random(pr.shape) < 0.03] = 1
    spacing, tol = 0.3, 0.7                     # 0.7 mm = 2.33 px
    ours = segmentation_metrics(pr, gt, ("bg", "fg"), spacing, nsd_tolerance_mm=tol).mNSD
    oh = lambda m: torch.nn.functional.one_hot(torch.as_tensor(m)[None], 2).permute(0, 3, 1, 2)
    with warnings.catch_warnings():  # MONAI 1.6.1 warns a deprecation from its own code
        warnings.simplefilter("ignore", FutureWarning)
        ref = compute_surface_dice(oh(pr).float(), oh(gt).float(), [tol / spacing]).item()
    assert ours == pytest.approx(ref)
    assert 0 < ours < 1


def test_empty_mask_conventions():
    e = np.zeros((10, 10), dtype=np.int64)
    sq = _square(2, 6, 2, 6)
    pred = np.stack([e, sq, e])
    target = np.stack([e, e, sq])
    res = segmentation_metrics(pred, target, ("bg", "nodule"), 1.0)
    t = res.table.set_index("image")
    # both empty -> excluded (NaN), not 1 and not 0
    assert math.isnan(t.loc[0, "dsc"]) and math.isnan(t.loc[0, "nsd"])
    assert "excluded" in t.loc[0, "note"]
    # GT empty, prediction not -> 0 (MONAI's default ignore_empty=True would give NaN)
    assert t.loc[1, "dsc"] == 0.0 and t.loc[1, "nsd"] == 0.0
    assert "false detection" in t.loc[1, "note"]
    # GT present, prediction empty -> 0
    assert t.loc[2, "dsc"] == 0.0 and t.loc[2, "nsd"] == 0.0
    assert res.per_class.loc[0, "n_images"] == 2
    assert res.mDSC == 0.0 and res.mNSD == 0.0
    # what MONAI returns by default, which this function overrides
    oh = lambda m: torch.nn.functional.one_hot(torch.as_tensor(m), 2).permute(0, 3, 1, 2)
    monai_default = compute_dice(oh(pred), oh(target), include_background=False)
    assert torch.isnan(monai_default[:2]).all() and monai_default[2].item() == 0.0
    monai_no_ignore = compute_dice(oh(pred), oh(target), include_background=False,
                                   ignore_empty=False)
    assert monai_no_ignore[0].item() == 1.0


def test_class_absent_from_whole_batch_does_not_crash():
    # labels: 1 liver, 2 kidney, 3 pancreas; pancreas appears nowhere
    gt = np.stack([_square(1, 5, 1, 5) + _square(6, 9, 6, 9, label=2)] * 2)
    pr = gt.copy()
    pr[1] = np.roll(pr[1], 1, axis=0)
    res = segmentation_metrics(pr, gt, ("bg", "liver", "kidney", "pancreas"), 1.0)
    assert len(res.table) == 2 * 3
    pc = res.per_class.set_index("class")
    assert pc.loc["pancreas", "n_images"] == 0 and math.isnan(pc.loc["pancreas", "dsc"])
    assert pc.loc["liver", "n_images"] == 2
    # liver: image 0 perfect, image 1 shifted 4x4 square -> 2*12/32
    assert pc.loc["liver", "dsc"] == pytest.approx((1 + 0.75) / 2)
    assert res.mDSC == pytest.approx(pc.loc[["liver", "kidney"], "dsc"].mean())
    assert res.mNSD == pytest.approx(pc.loc[["liver", "kidney"], "nsd"].mean())
    assert any("pancreas" in n for n in res.notes)


def test_segmentation_matches_monai_dice_on_random_batch():
    rng = np.random.default_rng(2)
    pred = rng.integers(0, 3, size=(3, 16, 16))
    target = rng.integers(0, 3, size=(3, 16, 16))
    res = segmentation_metrics(pred, target, ("bg", "a", "b"), 1.0)
    oh = lambda m: torch.nn.functional.one_hot(torch.as_tensor(m), 3).permute(0, 3, 1, 2)
    ref = compute_dice(oh(pred), oh(target), include_background=False).numpy()
    assert np.allclose(res.table["dsc"].to_numpy().reshape(3, 2), ref)
    assert set(res.summary) == {"mDSC", "mNSD"}


def test_segmentation_rejects_bad_labels_and_spacing():
    sq = _square(2, 6, 2, 6)
    with pytest.raises(ValueError, match="outside"):
        segmentation_metrics(sq * 3, sq, ("bg", "fg"), 1.0)
    with pytest.raises(ValueError, match="spacing_mm"):
        segmentation_metrics(sq, sq, ("bg", "fg"), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="shapes differ"):
        segmentation_metrics(sq, sq[:5], ("bg", "fg"), 1.0)


@settings(max_examples=15, deadline=None)
@given(a=arrays(np.bool_, (6, 6)), b=arrays(np.bool_, (6, 6)))
def test_dsc_property_matches_formula_and_is_symmetric(a, b):
    ab = segmentation_metrics(a.astype(int), b.astype(int), ("bg", "fg"), 1.0)
    ba = segmentation_metrics(b.astype(int), a.astype(int), ("bg", "fg"), 1.0)
    if a.sum() + b.sum() == 0:
        assert math.isnan(ab.mDSC)
    else:
        assert ab.mDSC == pytest.approx(2 * (a & b).sum() / (a.sum() + b.sum()))
        assert ab.mDSC == pytest.approx(ba.mDSC) and 0.0 <= ab.mNSD <= 1.0
        assert ab.mNSD == pytest.approx(ba.mNSD)


# -------------------------------------------------------------------------------- regression
def test_regression_hand_computed_and_sklearn():
    y = np.array([55.0, 60.0, 35.0, 70.0])
    p = np.array([50.0, 62.0, 38.0, 70.0])
    m = regression_metrics(y, p)
    assert m["MAE"] == pytest.approx((5 + 2 + 3 + 0) / 4)
    assert m["RMSE"] == pytest.approx(np.sqrt((25 + 4 + 9 + 0) / 4))
    assert m["R2"] == pytest.approx(r2_score(y, p))
    assert m["R2"] == pytest.approx(1 - 38 / np.sum((y - y.mean()) ** 2))


def test_regression_degenerate():
    m = regression_metrics([50.0, 50.0], [48.0, 53.0])
    assert m["MAE"] == pytest.approx(2.5) and math.isnan(m["R2"]) and "constant" in m["note"]
    with pytest.raises(ValueError, match="NaN"):
        regression_metrics([1.0, np.nan], [1.0, 2.0])
