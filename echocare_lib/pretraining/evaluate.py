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


@torch.no_grad()
def pooled_features(encoder: EchoCareEncoder, images: np.ndarray, batch_size: int = 64,
                    device: str = "cpu") -> np.ndarray:
    """uint8 [N, S, S] (or float [N, 1, S, S] in [0, 1]) -> float32 [N, D] pooled features."""
    encoder = encoder.to(device).eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.as_tensor(np.asarray(images[i:i + batch_size]))
        x = x.float().div(255.0).unsqueeze(1) if x.dtype == torch.uint8 else x.float()
        out.append(encoder(x.to(device)).pooled.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, encoder.pooled_dim), np.float32)


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

    Returns macro AUROC and macro average precision over ``classes`` and per-class AUROC."""
    scaler = StandardScaler().fit(train_x)
    a, b = scaler.transform(train_x), scaler.transform(test_x)
    scores = np.zeros((len(b), test_y.shape[1]))
    for j in classes:
        clf = LogisticRegression(C=0.1, max_iter=2000, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(a, train_y[:, j])
        scores[:, j] = clf.decision_function(b)
    return macro_scores(test_y, scores, classes)


def macro_scores(y: np.ndarray, scores: np.ndarray, classes: list[int]) -> dict:
    """Macro AUROC and macro average precision of ``scores`` [N, C] against multi-hot ``y``
    over ``classes``, and the per-class AUROC."""
    aucs = {j: roc_auc_score(y[:, j], scores[:, j]) for j in classes}
    aps = [average_precision_score(y[:, j], scores[:, j]) for j in classes]
    return {"macro_auroc": float(np.mean(list(aucs.values()))) if aucs else float("nan"),
            "macro_ap": float(np.mean(aps)) if aps else float("nan"),
            "per_class_auroc": aucs}


def probe_table(encoders: dict[str, EchoCareEncoder], probe_set, onto, *, seed: int = 0,
                levels=("region", "meta"), device: str = "cpu",
                classifiers: dict | None = None) -> pd.DataFrame:
    """Linear-probe scores of each encoder on a held-out labelled set, one row per
    (encoder, level). ``probe_set`` has ``images`` uint8 [N, S, S] and ``hierarchy`` [N, C];
    the first half trains the probes, the second half tests them.

    ``classifiers`` (name -> a pretraining model with the hierarchical classifier) adds rows
    for what the pretraining classifier itself predicts on the same test half (its coherent
    probabilities as scores, nothing fitted): whether the labels it was trained on taught it
    anything that holds on new images."""
    n = len(probe_set.images)
    half = n // 2
    y = probe_set.hierarchy
    rows = []
    feats = {name: pooled_features(enc, probe_set.images, device=device)
             for name, enc in encoders.items()}
    own = {}
    for name, model in (classifiers or {}).items():
        x = torch.as_tensor(np.asarray(probe_set.images[half:])).float().div(255).unsqueeze(1)
        own[name] = hierarchy_probabilities(model.to(device), x.to(device))
    for level in levels:
        classes = probe_classes(onto, y[:half], y[half:], level)
        for name, f in feats.items():
            r = linear_probe(f[:half], y[:half], f[half:], y[half:], classes, seed)
            rows.append({"encoder": name, "method": "linear probe", "level": level,
                         "classes": len(classes), "train_images": half,
                         "test_images": n - half,
                         "macro_auroc": r["macro_auroc"], "macro_ap": r["macro_ap"]})
        for name, p in own.items():
            r = macro_scores(y[half:], p, classes)
            rows.append({"encoder": name, "method": "its pretraining classifier", "level": level,
                         "classes": len(classes), "train_images": 0, "test_images": n - half,
                         "macro_auroc": r["macro_auroc"], "macro_ap": r["macro_ap"]})
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
