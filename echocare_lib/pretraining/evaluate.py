"""What pretraining bought: frozen-feature linear probes, reconstructions, hierarchy predictions.

The linear probe is the standard test of a self-supervised representation: freeze the
encoder, take its pooled feature for held-out labelled images, fit a logistic regression
(scikit-learn) per class on one half and score the other half. A random-initialised encoder
of the same architecture is the baseline every pretrained encoder must beat.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from ..models.encoder import EchoCareEncoder
from ..models.masking import pixel_mask, random_mask
from ..ontology import LEVELS


#: What a probe reads: the encoder's pooled vector (the classifier's input, the standard linear
#: probe), or the average-pooled maps of all four stages side by side (what the downstream
#: decoders read; MIM features are known to probe better below the last layer, BEiT, Bao et
#: al., ICLR 2022, section 3.3).
PROBE_FEATURES = ("pooled", "stages")


@torch.no_grad()
def pooled_features(encoder: EchoCareEncoder, images: np.ndarray, batch_size: int = 64,
                    device: str = "cpu", features: str = "pooled") -> np.ndarray:
    """uint8 [N, S, S] (or float [N, 1, S, S] in [0, 1]) -> float32 [N, D] features:
    ``"pooled"`` (D = the pooled dimension) or ``"stages"`` (every stage's map averaged over
    space, concatenated; D = the sum of the stage channels)."""
    if features not in PROBE_FEATURES:
        raise ValueError(f"features must be one of {PROBE_FEATURES}, got {features!r}")
    encoder = encoder.to(device).eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.as_tensor(np.asarray(images[i:i + batch_size]))
        x = x.float().div(255.0).unsqueeze(1) if x.dtype == torch.uint8 else x.float()
        enc = encoder(x.to(device))
        f = enc.pooled if features == "pooled" else torch.cat(
            [m.mean(dim=(2, 3)) for m in enc.features], 1)
        out.append(f.float().cpu().numpy())
    dim = encoder.pooled_dim if features == "pooled" else sum(encoder.stage_channels)
    return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def probe_classes(onto, labels_train: np.ndarray, labels_test: np.ndarray, level: str,
                  min_count: int = 5) -> list[int]:
    """Classes of ``level`` with at least ``min_count`` positives and negatives in both halves."""
    sl = onto.level_slice(level)
    keep = []
    for j in range(sl.start, sl.stop):
        ok = all(min_count <= y[:, j].sum() <= len(y) - min_count
                 for y in (labels_train, labels_test))
        if ok:
            keep.append(j)
    return keep


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, classes: list[int], seed: int = 0) -> dict:
    """One-vs-rest logistic regression per class on standardised features.

    Returns macro AUROC and macro average precision over ``classes``, per-class AUROC and
    the test scores [N, C] (``scores``)."""
    scaler = StandardScaler().fit(train_x)
    a, b = scaler.transform(train_x), scaler.transform(test_x)
    scores = np.zeros((len(b), test_y.shape[1]))
    for j in classes:
        clf = LogisticRegression(C=0.1, max_iter=2000, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(a, train_y[:, j])
        scores[:, j] = clf.decision_function(b)
    return {**macro_scores(test_y, scores, classes), "scores": scores}


def macro_scores(y: np.ndarray, scores: np.ndarray, classes: list[int]) -> dict:
    """Macro AUROC and macro average precision of ``scores`` [N, C] against multi-hot ``y``
    over ``classes``, and the per-class AUROC."""
    aucs = {j: roc_auc_score(y[:, j], scores[:, j]) for j in classes}
    aps = [average_precision_score(y[:, j], scores[:, j]) for j in classes]
    return {"macro_auroc": float(np.mean(list(aucs.values()))) if aucs else float("nan"),
            "macro_ap": float(np.mean(aps)) if aps else float("nan"),
            "per_class_auroc": aucs}


def bootstrap_auroc(y: np.ndarray, scores: np.ndarray, classes: list[int], idx: np.ndarray
                    ) -> np.ndarray:
    """Macro AUROC over ``classes`` for each bootstrap resample of the test images (rows of
    ``idx`` [B, N]), vectorised over resamples. AUROC is the Mann-Whitney statistic: the share
    of (positive, negative) pairs the scores order correctly, ties counting one half (as
    ``roc_auc_score``). A resample is a multiplicity per image, so with the images grouped by
    score once, every resample's statistic is a weighted sum over those groups. Classes a
    resample leaves with one label only are left out of that resample's mean. (scikit-learn
    scores one sample at a time; the thousand resamples of a confidence interval need this.)"""
    n_boot, n = idx.shape[0], len(y)
    w = np.zeros((n_boot, n))
    np.add.at(w, (np.arange(n_boot)[:, None], idx), 1.0)    # multiplicity of each image
    out = np.zeros((n_boot, len(classes)))
    valid = np.zeros_like(out, dtype=bool)
    for k, j in enumerate(classes):
        pos = y[:, j] > 0.5
        _, group = np.unique(scores[:, j], return_inverse=True)   # ascending score groups
        onehot = np.zeros((n, group.max() + 1))
        onehot[np.arange(n), group.ravel()] = 1.0
        pw, nw = w[:, pos] @ onehot[pos], w[:, ~pos] @ onehot[~pos]   # [B, groups]
        below = np.cumsum(nw, axis=1) - nw                              # negatives scored lower
        n_pos, n_neg = pw.sum(1), nw.sum(1)
        ok = (n_pos > 0) & (n_neg > 0)
        num = (pw * (below + 0.5 * nw)).sum(1)
        out[ok, k] = num[ok] / (n_pos[ok] * n_neg[ok])
        valid[:, k] = ok
    return np.where(valid, out, 0.0).sum(1) / np.maximum(valid.sum(1), 1)


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n] resamples (with replacement) of n test images."""
    return np.random.default_rng([seed, 0xB007]).integers(0, n, size=(n_boot, n))


def auroc_difference(y: np.ndarray, scores: np.ndarray, base_scores: np.ndarray,
                     classes: list[int], *, n_boot: int = 1000, seed: int = 0
                     ) -> tuple[float, float, float]:
    """Macro AUROC of ``scores`` minus that of ``base_scores`` on the same test images, with
    a 95% paired bootstrap interval (both scored on every resample)."""
    idx = bootstrap_indices(len(y), n_boot, seed)
    return _difference(y, scores, classes, idx, base_scores,
                       bootstrap_auroc(y, base_scores, classes, idx))


def _difference(y, scores, classes, idx, base_scores, base_boot) -> tuple[float, float, float]:
    diff = bootstrap_auroc(y, scores, classes, idx) - base_boot
    point = macro_scores(y, scores, classes)["macro_auroc"] - \
        macro_scores(y, base_scores, classes)["macro_auroc"]
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return float(point), float(lo), float(hi)


def probe_table(encoders: dict[str, EchoCareEncoder], probe_set, onto, *, seed: int = 0,
                levels=("region", "meta"), device: str = "cpu",
                classifiers: dict | None = None, baseline: str | None = None,
                n_boot: int = 1000, features: str = "pooled") -> pd.DataFrame:
    """Linear-probe scores of each encoder on a held-out labelled set, one row per
    (encoder, level). ``probe_set`` has ``images`` uint8 [N, S, S] and ``hierarchy`` [N, C];
    the first half trains the probes, the second half tests them.

    ``classifiers`` (name -> a pretraining model with the hierarchical classifier) adds rows
    for what the pretraining classifier itself predicts on the same test half (its coherent
    probabilities as scores, nothing fitted): whether the labels it was trained on taught it
    anything that holds on new images.

    ``baseline`` (the name of one of ``encoders``, e.g. the random-initialised one) adds, for
    every row, the macro-AUROC difference to that encoder's linear probe and its 95% paired
    bootstrap interval over the test images (``vs_baseline``, ``ci95_low``, ``ci95_high``):
    with a hundred-odd test images a difference of 0.01 can be noise, and the interval says
    whether it is.

    ``features`` ("pooled" or "stages", see :data:`PROBE_FEATURES`) is what the linear probes
    read; the classifier rows always score the classifier (on the pooled vector)."""
    n = len(probe_set.images)
    half = n // 2
    y = probe_set.hierarchy
    rows = []
    feats = {name: pooled_features(enc, probe_set.images, device=device, features=features)
             for name, enc in encoders.items()}
    own = {}
    for name, model in (classifiers or {}).items():
        x = torch.as_tensor(np.asarray(probe_set.images[half:])).float().div(255).unsqueeze(1)
        own[name] = hierarchy_probabilities(model.to(device), x.to(device))
    if baseline is not None and baseline not in feats:
        raise ValueError(f"baseline {baseline!r} is not one of the encoders {sorted(feats)}")
    for level in levels:
        classes = probe_classes(onto, y[:half], y[half:], level)
        scored = []
        for name, f in feats.items():
            r = linear_probe(f[:half], y[:half], f[half:], y[half:], classes, seed)
            scored.append(({"encoder": name, "method": f"linear probe ({features})",
                            "level": level,
                            "classes": len(classes), "train_images": half,
                            "test_images": n - half, "macro_auroc": r["macro_auroc"],
                            "macro_ap": r["macro_ap"]}, r["scores"]))
        for name, p in own.items():
            r = macro_scores(y[half:], p, classes)
            scored.append(({"encoder": name, "method": "its pretraining classifier",
                            "level": level, "classes": len(classes), "train_images": 0,
                            "test_images": n - half, "macro_auroc": r["macro_auroc"],
                            "macro_ap": r["macro_ap"]}, p))
        base = next((sc for row, sc in scored if row["encoder"] == baseline
                     and row["method"].startswith("linear probe")), None)
        if base is not None:  # the same resamples for every row: the differences are paired
            idx = bootstrap_indices(n - half, n_boot, seed)
            base_boot = bootstrap_auroc(y[half:], base, classes, idx)
        for row, sc in scored:
            if base is not None:
                d, lo, hi = _difference(y[half:], sc, classes, idx, base, base_boot)
                row.update(vs_baseline=d, ci95_low=lo, ci95_high=hi)
            rows.append(row)
    return pd.DataFrame(rows)


@torch.no_grad()
def reconstruct(model, images: torch.Tensor, mask_ratio: float, seed: int = 0):
    """Masked input, reconstruction and target for a batch (float [B, 1, S, S] in [0, 1]).

    Returns numpy arrays (masked, reconstruction, target, pixel mask), each [B, S, S]; the
    reconstruction is shown with the visible pixels pasted back, as SimMIM's figures do."""
    cfg = model.encoder.config
    g = torch.Generator().manual_seed(seed)
    mask = random_mask(images.shape[0], images.shape[-1], cfg.mask_patch_size, mask_ratio,
                       generator=g)
    model.eval()
    out = model(images, mask, None, None) if not model.use_hie else model(
        images, mask, torch.zeros(images.shape[0], model.classifier.hierarchy.n_classes),
        None)
    pm = pixel_mask(mask, cfg.mask_patch_size)
    rec = out.reconstruction
    shown = rec * pm + images * (1 - pm)
    masked = images * (1 - pm)
    return (masked[:, 0].numpy(), shown[:, 0].numpy(), images[:, 0].numpy(), pm[:, 0].numpy())


@torch.no_grad()
def hierarchy_probabilities(model, images: torch.Tensor) -> np.ndarray:
    """Coherent probabilities [B, N] of the meta-object classifier on unmasked images."""
    model.eval()
    enc = model.encoder(images)
    return model.classifier.hierarchy.probabilities(model.classifier(enc.pooled)).numpy()


def top_path(onto, probs: np.ndarray) -> list[tuple[str, float]]:
    """The most probable region, then its most probable meta child, then anatomical child."""
    path, parent = [], None
    for level in LEVELS:
        sl = onto.level_slice(level)
        cands = [j for j in range(sl.start, sl.stop)
                 if parent is None or onto.parent_index[j] == parent]
        if not cands:
            break
        j = max(cands, key=lambda k: probs[k])
        path.append((onto.ids[j], float(probs[j])))
        parent = j
    return path
