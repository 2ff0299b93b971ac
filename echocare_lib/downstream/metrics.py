"""Downstream evaluation metrics of the paper (section 4.3), as pure functions.

Every value is computed by a maintained library: scikit-learn for classification, ROC and
regression, MONAI for the Dice Similarity Coefficient (DSC) and the Normalized Surface Dice
(NSD). What is written here by hand is only glue: input checks, the one-hot encoding MONAI
expects, the empty-mask conventions below, and the tidy tables (conventions 10 and 11).

>>> from echocare_lib.downstream.metrics import classification_metrics, segmentation_metrics
>>> classification_metrics(y_true, probs, classes=("benign", "malignant"))["AUC"]
>>> res = segmentation_metrics(pred, target, classes=("background", "nodule"), spacing_mm=0.1)
>>> res.table              # one row per (image, foreground class): dsc, nsd, pixel counts, note
>>> res.mDSC, res.mNSD     # mean over foreground classes of the per-class mean over images

Empty-mask conventions (segmentation), the same for DSC and NSD:

* ground truth and prediction both empty for a class in an image: the class is *excluded*
  for that image (NaN), neither 1 nor 0, and the row's ``note`` says so;
* ground truth empty, prediction not empty: DSC 0 and NSD 0 (a false detection);
* ground truth not empty, prediction empty: DSC 0 and NSD 0 (a miss).

MONAI 1.6.1 defaults differ and are overridden here: ``compute_dice`` with its default
``ignore_empty=True`` returns NaN whenever the ground truth is empty, even when the prediction
is not (it hides false detections); with ``ignore_empty=False`` it returns 1.0 when both are
empty. So DSC is computed with ``ignore_empty=False`` and the both-empty entries are then set
to NaN. ``compute_surface_dice`` already returns NaN for both-empty and 0 when only one side
is empty, which matches, but it warns for each empty side ("... is all 0, this may result in
nan/inf distance."); those warnings are silenced because the table reports the pixel counts
and a note for every such case instead.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
    root_mean_squared_error,
)

__all__ = [
    "classification_metrics", "youden_operating_point", "segmentation_metrics",
    "SegmentationResult", "regression_metrics",
]

# MONAI's own warnings that the table makes redundant (see module docstring), and a
# deprecation warning MONAI 1.6.1 raises from inside its own surface-distance code.
_MONAI_NOISE = (
    r"the (ground truth|prediction) of class \d+ is all 0",
    r".*get_mask_edges:always_return_as_numpy",
)


# --------------------------------------------------------------------------- classification
def _check_classification(y_true, scores, classes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=float)
    classes = [str(c) for c in classes]
    n_cls = len(classes)
    if n_cls < 2:
        raise ValueError(f"classes must name at least 2 classes, got {classes!r}")
    if y_true.ndim != 1 or scores.ndim != 2:
        raise ValueError(f"expected y_true [N] and scores [N, C]; got shapes {y_true.shape} and "
                         f"{scores.shape}")
    if scores.shape != (len(y_true), n_cls):
        raise ValueError(f"scores has shape {scores.shape}, expected ({len(y_true)}, {n_cls}): "
                         f"one column per class in {classes}")
    if len(y_true) == 0:
        raise ValueError("y_true is empty: nothing to evaluate")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf; check the model outputs")
    if not np.issubdtype(y_true.dtype, np.integer):
        if not np.all(np.mod(y_true, 1) == 0):
            raise ValueError("y_true must hold integer class indices into `classes`")
        y_true = y_true.astype(int)
    bad = sorted(set(np.unique(y_true).tolist()) - set(range(n_cls)))
    if bad:
        raise ValueError(f"y_true holds labels {bad} outside 0..{n_cls - 1} (classes={classes})")
    return y_true, scores, classes


def classification_metrics(y_true, scores, classes: Sequence[str]) -> dict:
    """ACC, Precision, Recall, F1 / macro-F1 and AUC (paper section 4.3, "Classification").

    ``y_true`` holds integer indices into ``classes``; ``scores`` is ``[N, C]`` class
    probabilities, one column per class. The predicted class is the arg-max of ``scores``.

    * Binary (``len(classes) == 2``): ``classes[1]`` is the positive class; precision, recall
      and F1 are for that class, AUC is ``roc_auc_score`` on ``scores[:, 1]``.
    * Multi-class: precision, recall and F1 are macro averages; AUC is the one-vs-rest macro
      AUC, i.e. the mean of ``roc_auc_score(y_true == k, scores[:, k])`` over classes k. A
      class absent from ``y_true`` has no one-vs-rest AUC: its ``AUC[<class>]`` is NaN, it is
      left out of the macro mean, and ``notes`` says so. (scikit-learn's own
      ``multi_class="ovr"`` returns NaN for the whole score in that case.)

    ``macro_F1`` is always reported (the paper's BI-RADS and liver results use it). Precision
    of a class never predicted is 0 (scikit-learn's ``zero_division=0``, stated explicitly).

    Returns a flat dict: ``n``, ``ACC``, ``precision``, ``recall``, ``F1``, ``macro_F1``,
    ``AUC``, ``AUC[<class>]`` per class (multi-class only), and ``notes`` (tuple of strings,
    empty when nothing was skipped).
    """
    y_true, scores, classes = _check_classification(y_true, scores, classes)
    labels = list(range(len(classes)))
    y_pred = scores.argmax(axis=1)
    binary = len(classes) == 2
    avg = dict(average="binary", pos_label=1) if binary else dict(average="macro")
    out: dict = {
        "n": int(len(y_true)),
        "ACC": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, labels=labels, zero_division=0, **avg)),
        "recall": float(recall_score(y_true, y_pred, labels=labels, zero_division=0, **avg)),
        "F1": float(f1_score(y_true, y_pred, labels=labels, zero_division=0, **avg)),
        "macro_F1": float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                   zero_division=0)),
    }
    notes: list[str] = []
    present = set(np.unique(y_true).tolist())
    if binary:
        if len(present) < 2:
            out["AUC"] = math.nan
            notes.append(f"AUC undefined: y_true holds only class "
                         f"{classes[next(iter(present))]!r}; ROC AUC needs both classes")
        else:
            out["AUC"] = float(roc_auc_score(y_true, scores[:, 1]))
    else:
        per_class = {}
        for k, name in enumerate(classes):
            if k not in present:
                per_class[name] = math.nan
                notes.append(f"AUC[{name}] skipped (NaN): class absent from y_true, so its "
                             "one-vs-rest AUC is undefined; macro AUC averages the other classes")
            elif len(present) == 1:
                per_class[name] = math.nan
                notes.append(f"AUC[{name}] skipped (NaN): y_true holds only this class")
            else:
                per_class[name] = float(roc_auc_score(y_true == k, scores[:, k]))
        defined = [v for v in per_class.values() if not math.isnan(v)]
        out["AUC"] = float(np.mean(defined)) if defined else math.nan
        out.update({f"AUC[{name}]": v for name, v in per_class.items()})
    out["notes"] = tuple(notes)
    return out


def youden_operating_point(y_true, score) -> dict:
    """ROC cut-off maximising Youden's J = sensitivity + specificity - 1 (paper section 4.4).

    Used for the thyroid false-positive task, where accuracy, sensitivity and specificity are
    reported at this cut-off. ``y_true`` is 0/1 (1 = positive), ``score`` the positive-class
    score; a case is called positive when ``score >= threshold`` (scikit-learn's ``roc_curve``
    convention). On ties in J the highest threshold wins (the first maximum along the curve).

    Returns ``threshold``, ``sensitivity``, ``specificity``, ``youden_j``, ``accuracy`` (at the
    cut-off) and ``note`` ("" unless undefined: with one class in ``y_true`` all values are NaN).
    """
    y_true = np.asarray(y_true)
    score = np.asarray(score, dtype=float)
    if y_true.ndim != 1 or y_true.shape != score.shape or len(y_true) == 0:
        raise ValueError(f"expected y_true and score of the same 1-D shape; got {y_true.shape} "
                         f"and {score.shape}")
    if not set(np.unique(y_true).tolist()) <= {0, 1}:
        raise ValueError(f"y_true must be 0/1, got values {np.unique(y_true).tolist()}")
    if len(np.unique(y_true)) < 2:
        nan = math.nan
        return dict(threshold=nan, sensitivity=nan, specificity=nan, youden_j=nan, accuracy=nan,
                    note="undefined: y_true holds a single class, so the ROC curve is undefined")
    fpr, tpr, thresholds = roc_curve(y_true, score, pos_label=1)
    j = tpr - fpr
    i = int(np.argmax(j))
    thr = float(thresholds[i])
    acc = float(accuracy_score(y_true, (score >= thr).astype(int)))
    return dict(threshold=thr, sensitivity=float(tpr[i]), specificity=float(1.0 - fpr[i]),
                youden_j=float(j[i]), accuracy=acc, note="")


# ----------------------------------------------------------------------------- segmentation
@dataclass
class SegmentationResult:
    """Per-image DSC/NSD table, per-class means, and the paper's mDSC / mNSD."""

    table: pd.DataFrame      # image, class, label, dsc, nsd, gt_pixels, pred_pixels, note
    per_class: pd.DataFrame  # class, label, dsc, nsd, n_images (images where defined)
    mDSC: float
    mNSD: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> dict:
        return {"mDSC": self.mDSC, "mNSD": self.mNSD}


def _spacing_for_monai(spacing_mm, n_images: int) -> list[list[float]]:
    """Return one (row, col) spacing in mm per image, the nested form MONAI accepts."""
    arr = np.asarray(spacing_mm, dtype=float)
    if arr.ndim == 0:
        arr = np.full((n_images, 2), float(arr))
    elif arr.shape == (2,):
        arr = np.tile(arr, (n_images, 1))
    elif arr.shape != (n_images, 2):
        raise ValueError(f"spacing_mm must be a number, a (row, col) pair, or an [N, 2] array "
                         f"with N = {n_images} images; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"spacing_mm must be finite and > 0, got {spacing_mm!r}")
    return arr.tolist()


def _one_hot(labels: np.ndarray, n_cls: int) -> torch.Tensor:
    """[N, H, W] integer labels -> [N, C, H, W] float one-hot, the layout MONAI expects."""
    t = torch.as_tensor(labels, dtype=torch.long)
    return torch.nn.functional.one_hot(t, n_cls).permute(0, 3, 1, 2).float()


def segmentation_metrics(pred, target, classes: Sequence[str], spacing_mm,
                         nsd_tolerance_mm: float = 2.0, nsd: bool = True) -> SegmentationResult:
    """DSC and NSD per image and foreground class (paper section 4.3, "Segmentation").

    ``pred`` and ``target`` are integer label maps ``[N, H, W]`` (or one ``[H, W]``) with
    values in ``0 .. len(classes) - 1``; ``classes[0]`` is the background, which is excluded
    (MONAI ``include_background=False``). ``spacing_mm`` is the pixel size: a number, a
    ``(row, col)`` pair, or an ``[N, 2]`` array for images of different pixel sizes.

    DSC = 2|X ∩ Y| / (|X| + |Y|) (``monai.metrics.compute_dice``). NSD (Nikolov et al. 2021,
    ``monai.metrics.compute_surface_dice``) is the fraction of both boundaries lying within
    ``nsd_tolerance_mm`` (the paper's epsilon = 2 mm) of the other boundary. MONAI 1.6.1 accepts
    ``spacing`` and then measures distances in mm, so the tolerance is passed in mm together
    with the spacing. (Passing pixel thresholds ``tolerance_mm / spacing_mm`` is equivalent
    for isotropic pixels only if ``spacing`` is *not* passed too; doing both would convert
    twice. With the spacing passed, anisotropic pixels are handled exactly.)
    ``nsd=False`` skips the surface distances (NSD is then NaN): model selection during
    fine-tuning needs only the DSC, and NSD costs most of the time.

    Empty masks follow the module's conventions: both empty -> NaN (excluded), exactly one
    empty -> 0. ``mDSC``/``mNSD`` average, over foreground classes, each class's mean over the
    images where it is defined; a class absent from every image (both empty everywhere) is
    left out of the mean and named in ``notes``; it never raises.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {pred.shape} vs {target.shape}")
    if pred.ndim == 2:
        pred, target = pred[None], target[None]
    if pred.ndim != 3 or pred.size == 0:
        raise ValueError(f"expected label maps [N, H, W] or [H, W], got shape {pred.shape}")
    classes = [str(c) for c in classes]
    n_cls = len(classes)
    if n_cls < 2:
        raise ValueError(f"classes must list the background and >= 1 foreground class, "
                         f"got {classes!r}")
    for name, arr in (("pred", pred), ("target", target)):
        if not np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
            if not np.all(np.mod(arr, 1) == 0):
                raise ValueError(f"{name} must be an integer label map (got non-integer values)")
        bad = sorted(set(np.unique(arr).astype(int).tolist()) - set(range(n_cls)))
        if bad:
            raise ValueError(f"{name} holds labels {bad} outside 0..{n_cls - 1} "
                             f"(classes={classes})")
    if not (np.isfinite(nsd_tolerance_mm) and nsd_tolerance_mm >= 0):
        raise ValueError(f"nsd_tolerance_mm must be finite and >= 0, got {nsd_tolerance_mm}")

    # imported here, not at the top: ``import monai`` loads every MONAI subpackage (about 7 s
    # on 2 cores), which notebooks without segmentation need not pay
    from monai.metrics import compute_dice, compute_surface_dice

    n_img = pred.shape[0]
    spacing = _spacing_for_monai(spacing_mm, n_img)
    y_pred, y = _one_hot(pred.astype(np.int64), n_cls), _one_hot(target.astype(np.int64), n_cls)

    # DSC: ignore_empty=False gives 0 for a false detection (MONAI's default would give NaN);
    # its 1.0 for both-empty is replaced by NaN below.
    dsc = compute_dice(y_pred, y, include_background=False, ignore_empty=False).numpy()
    if nsd:
        with warnings.catch_warnings():
            for pattern in _MONAI_NOISE:
                warnings.filterwarnings("ignore", message=pattern)
            nsd = compute_surface_dice(y_pred, y, class_thresholds=[float(nsd_tolerance_mm)] *
                                       (n_cls - 1), include_background=False,
                                       distance_metric="euclidean", spacing=spacing).numpy()
    else:
        nsd = np.full_like(dsc, np.nan)

    gt_px = y[:, 1:].sum(dim=(2, 3)).numpy().astype(int)    # [N, C-1]
    pr_px = y_pred[:, 1:].sum(dim=(2, 3)).numpy().astype(int)
    both_empty = (gt_px == 0) & (pr_px == 0)
    dsc = np.where(both_empty, np.nan, dsc).astype(float)
    nsd = np.where(both_empty, np.nan, nsd).astype(float)

    rows = []
    for i in range(n_img):
        for c in range(1, n_cls):
            g, p = gt_px[i, c - 1], pr_px[i, c - 1]
            note = ("excluded: class empty in prediction and ground truth" if g == 0 and p == 0
                    else "false detection: ground truth empty" if g == 0
                    else "missed: prediction empty" if p == 0 else "")
            rows.append(dict(image=i, **{"class": classes[c]}, label=c, dsc=dsc[i, c - 1],
                             nsd=nsd[i, c - 1], gt_pixels=int(g), pred_pixels=int(p), note=note))
    table = pd.DataFrame(rows, columns=["image", "class", "label", "dsc", "nsd", "gt_pixels",
                                        "pred_pixels", "note"])

    per_class = (table.groupby(["label", "class"], sort=True)
                 .agg(dsc=("dsc", "mean"), nsd=("nsd", "mean"),
                      n_images=("dsc", "count"))   # mean/count skip NaN: defined images only
                 .reset_index()[["class", "label", "dsc", "nsd", "n_images"]])
    notes = tuple(f"class {r['class']!r} is empty in every prediction and ground truth; "
                  "left out of mDSC/mNSD" for _, r in per_class.iterrows() if r["n_images"] == 0)
    defined = per_class[per_class["n_images"] > 0]
    m_dsc = float(defined["dsc"].mean()) if len(defined) else math.nan
    m_nsd = float(defined["nsd"].mean()) if len(defined) else math.nan
    return SegmentationResult(table=table, per_class=per_class, mDSC=m_dsc, mNSD=m_nsd,
                              notes=notes)


# ------------------------------------------------------------------------------- regression
def regression_metrics(y_true, y_pred) -> dict:
    """MAE (the paper's LVEF metric, section 4.3 "Regression"), plus RMSE and R2.

    All three from scikit-learn; R2 is NaN (with a note) when ``y_true`` is constant or has
    fewer than 2 values, where it is undefined.
    """
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape or len(y_true) == 0:
        raise ValueError(f"y_true and y_pred need the same non-zero length, got {y_true.shape} "
                         f"and {y_pred.shape}")
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise ValueError("y_true / y_pred contain NaN or inf")
    out = {"n": int(len(y_true)), "MAE": float(mean_absolute_error(y_true, y_pred)),
           "RMSE": float(root_mean_squared_error(y_true, y_pred))}
    if len(y_true) < 2 or np.all(y_true == y_true[0]):
        out["R2"], out["note"] = math.nan, "R2 undefined: y_true is constant or has < 2 values"
    else:
        out["R2"], out["note"] = float(r2_score(y_true, y_pred)), ""
    return out
