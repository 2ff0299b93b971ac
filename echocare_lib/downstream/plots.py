"""Figures of the downstream notebooks, drawn only from tidy result rows (never from numbers
typed in): box plots across the encoder zoo with significance stars (Figs. 5a-f, 6a-d), and
segmentation overlays (Fig. 5g)."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..session import OKABE_ITO
from . import stats

MODEL_ORDER = ["echocare", "mim-only", "hie-only", "imagenet", "scratch"]
MODEL_COLOURS = {"echocare": OKABE_ITO[0], "mim-only": OKABE_ITO[1], "hie-only": OKABE_ITO[2],
                 "imagenet": OKABE_ITO[3], "scratch": "#999999"}
MASK_COLOURS = [OKABE_ITO[1], OKABE_ITO[2], OKABE_ITO[4], OKABE_ITO[5], OKABE_ITO[3]]


def _order(models) -> list[str]:
    known = [m for m in MODEL_ORDER if m in set(models)]
    return known + sorted(set(models) - set(known))


def box_with_stars(rows: pd.DataFrame, metrics: list[str], *, title: str,
                   higher_is_better: dict | None = None, scale: "float | dict" = 100.0,
                   unit: "str | dict" = "%", ncols: int | None = None):
    """One panel per metric (``ncols`` per row; default one row): trials per encoder as box +
    points; above, the two-sided Wilcoxon signed-rank test (paired by trial) of the best encoder
    against each other one.

    ``scale`` and ``unit`` are one value for every panel or a dict per metric (metrics missing
    from the dict: 1 and no unit), for tasks mixing fractions, percentages and pixels."""
    hib = higher_is_better or {}
    scales = scale if isinstance(scale, dict) else {m: scale for m in metrics}
    units = unit if isinstance(unit, dict) else {m: unit for m in metrics}
    ncols = min(ncols or len(metrics), len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    tests = []
    for ax, metric in zip(axes.flat, metrics):
        d = rows[rows.metric == metric].copy()
        d["value"] = d["value"].astype(float) * scales.get(metric, 1.0)
        models = _order(d.model.unique())
        data = [d[d.model == m].value.dropna().to_numpy() for m in models]
        bp = ax.boxplot(data, widths=0.55, patch_artist=True, showfliers=False)
        for patch, m in zip(bp["boxes"], models):
            patch.set_facecolor(MODEL_COLOURS.get(m, OKABE_ITO[6]))
            patch.set_alpha(0.55)
        rng = np.random.default_rng(0)
        for i, (m, v) in enumerate(zip(models, data), start=1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(v)), v, s=10, color="black", zorder=3)
        ax.set_xticks(range(1, len(models) + 1), models, rotation=30, ha="right")
        u = units.get(metric, "")
        ax.set_ylabel(f"{metric} ({u})" if u else metric)
        ax.grid(axis="y", alpha=0.3)
        if d.model.nunique() >= 2:
            cmp = stats.compare_to_best(d, "model", "trial", "value",
                                        higher_is_better=hib.get(metric, True))
            cmp["metric"] = metric
            tests.append(cmp)
            top = max((v.max() for v in data if len(v)), default=0)
            span = max(1e-9, top - min((v.min() for v in data if len(v)), default=0))
            best = cmp["best"].iloc[0]
            bi = models.index(best) + 1
            for k, (_, r) in enumerate(cmp.sort_values("rank").iterrows()):
                oi = models.index(r["model"]) + 1
                y = top + span * (0.08 + 0.1 * k)
                ax.plot([bi, bi, oi, oi], [y - span * 0.02, y, y, y - span * 0.02], lw=0.8,
                        color="black")
                ax.text((bi + oi) / 2, y, r["w_stars"], ha="center", va="bottom", fontsize=8)
            ax.set_ylim(top=top + span * (0.2 + 0.1 * len(cmp)))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    table = pd.concat(tests, ignore_index=True) if tests else pd.DataFrame()
    return fig, table


COLOUR_NAMES = ["orange", "green", "sky blue", "vermillion", "purple"]


def segmentation_examples(items: list[tuple[str, list[str], np.ndarray, np.ndarray, np.ndarray,
                                            float]], *, title: str, model: str = "EchoCare"):
    """Rows of (data set, classes, image [H, W], ground truth, prediction, mean DSC):
    image | truth | prediction, class colours named in each row's title."""
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(MASK_COLOURS)
    n = len(items)
    fig, axes = plt.subplots(n, 3, figsize=(6.6, 2.4 * n + 0.6), squeeze=False)
    for i, (name, classes, img, gt, pred, dsc) in enumerate(items):
        key = textwrap.fill(", ".join(f"{c} = {COLOUR_NAMES[k]}"
                                      for k, c in enumerate(classes[1:])), 34)
        for j, (mask, head) in enumerate(((None, f"{name}\n{key}"), (gt, "ground truth"),
                                          (pred, f"{model} (mean DSC {dsc:.2f})"))):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            if mask is not None:
                ax.imshow(np.ma.masked_equal(mask, 0) - 1, cmap=cmap, vmin=0,
                          vmax=len(MASK_COLOURS) - 1, alpha=0.55, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(head, fontsize=7, loc="left" if j == 0 else "center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


def _ellipse_patch(e, colour: str, style: str):
    from matplotlib.patches import Ellipse as EllipsePatch

    return EllipsePatch((e["cx"], e["cy"]), 2 * e["a"], 2 * e["b"], angle=e["angle"],
                        fill=False, edgecolor=colour, linestyle=style, linewidth=1.4)


def ellipse_examples(items, *, title: str, classes=("thorax", "cardiac")):
    """Panels of (image [H, W], true ellipses, predicted ellipses (dicts, or None when the
    model found none), caption): truth dashed, prediction solid, one colour per class."""
    n = len(items)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.0), squeeze=False)
    colours = dict(zip(classes, (OKABE_ITO[1], OKABE_ITO[2])))
    for ax, (img, gt, pred, caption) in zip(axes[0], items):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        for e in gt:
            ax.add_patch(_ellipse_patch(e, colours.get(e["label"], "white"), "--"))
        for e in pred:
            if e is not None:
                ax.add_patch(_ellipse_patch(e, colours.get(e["label"], "white"), "-"))
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    handles = [plt.Line2D([], [], color=c, label=k) for k, c in colours.items()]
    handles += [plt.Line2D([], [], color="black", ls="--", label="ground truth"),
                plt.Line2D([], [], color="black", ls="-", label="prediction")]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.06),
               ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.14, 1, 1))  # room for the legend and the provenance line
    return fig


def landmark_examples(items, *, title: str):
    """Panels of (image [H, W], true points [K, 2], predicted points [K, 2], caption): truth as
    circles, prediction as crosses, a line between each pair (the radial error)."""
    n = len(items)
    fig, axes = plt.subplots(1, n, figsize=(2.8 * n, 3.1), squeeze=False)
    for ax, (img, gt, pred, caption) in zip(axes[0], items):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        for (gx, gy), (px, py) in zip(gt, pred):
            ax.plot([gx, px], [gy, py], color=OKABE_ITO[5], lw=0.8)
        ax.scatter(gt[:, 0], gt[:, 1], s=16, facecolors="none", edgecolors=OKABE_ITO[2],
                   linewidths=1.0, label="ground truth")
        ax.scatter(pred[:, 0], pred[:, 1], s=16, marker="x", color=OKABE_ITO[1],
                   linewidths=1.0, label="prediction")
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    axes[0][0].legend(loc="lower left", fontsize=7, framealpha=0.8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def ef_scatter(points: dict, *, title: str):
    """Predicted vs true EF (%) per encoder: ``points`` = {model: (true [N], predicted [N])}."""
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    lo, hi = np.inf, -np.inf
    for m in _order(points):
        t, p = (np.asarray(a, float) for a in points[m])
        mae = float(np.mean(np.abs(t - p)))
        ax.scatter(t, p, s=14, alpha=0.75, color=MODEL_COLOURS.get(m, OKABE_ITO[6]),
                   label=f"{m} (MAE {mae:.1f})")
        lo, hi = min(lo, t.min(), p.min()), max(hi, t.max(), p.max())
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="identity")
    ax.set_xlabel("true LVEF (%)")
    ax.set_ylabel("predicted LVEF (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def enhancement_examples(low: np.ndarray, outputs: dict[str, np.ndarray], high: np.ndarray,
                         labels: list[str], *, title: str):
    """Fig. 6g: one row per case: the low-quality input, each encoder's enhanced image and the
    high-quality acquisition of the same scene (simulator pairs; independent speckle, so it is
    a reference for the look, not a pixel target). Images [N, 1, H, W] or [N, H, W] in [0, 1],
    shown on one grey scale."""
    cols = [("input (low-end)", low)] + [(f"enhanced: {m}", v) for m, v in outputs.items()] + \
        [("high-end acquisition", high)]
    n = len(labels)
    fig, axes = plt.subplots(n, len(cols), figsize=(1.9 * len(cols), 1.95 * n + 0.5),
                             squeeze=False)
    for i, lab in enumerate(labels):
        for j, (name, arr) in enumerate(cols):
            ax = axes[i, j]
            ax.imshow(np.asarray(arr[i], np.float32).squeeze(), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(textwrap.fill(name, 18), fontsize=8.5)
            if j == 0:
                ax.set_ylabel(lab, fontsize=8.5)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
