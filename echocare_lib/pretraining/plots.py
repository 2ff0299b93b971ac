"""Figures of the pretraining notebook: Fig. 4 drawn from the real model, loss curves,
reconstructions and hierarchy predictions. Every number comes from the model or run passed in."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..session import OKABE_ITO

VARIANT_COLOURS = {"echocare": OKABE_ITO[0], "mim-only": OKABE_ITO[1], "hie-only": OKABE_ITO[2],
                   "random init": OKABE_ITO[7]}


def _ema(y: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    out, acc = np.empty_like(y, dtype=float), None
    for i, v in enumerate(y):
        acc = v if acc is None or not np.isfinite(acc) else (1 - alpha) * acc + alpha * v
        out[i] = acc
    return out


def loss_curves(histories: dict[str, pd.DataFrame], *, title: str):
    """L_MIM and L_HIE per step for each variant (faint: per step; bold: moving average)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, col, name in zip(axes, ("mim", "hie"), ("L_MIM (masked-pixel MAE)",
                                                     "L_HIE (hierarchical BCE)")):
        for variant, h in histories.items():
            y = h[col].to_numpy(float)
            if not np.isfinite(y).any():
                continue
            c = VARIANT_COLOURS.get(variant, OKABE_ITO[4])
            ax.plot(h["step"] + 1, y, color=c, alpha=0.25, lw=0.8)
            ax.plot(h["step"] + 1, _ema(y), color=c, lw=2, label=variant)
        ax.set_xlabel("training step")
        ax.set_ylabel(name)
        ax.set_yscale("log")
        ax.legend(fontsize=8, title="variant", title_fontsize=8)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def reconstruction_grid(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], *,
                        title: str, mae: list[float] | None = None):
    """One row per image: masked input | reconstruction (visible pixels pasted back) | target."""
    n = len(rows)
    fig, axes = plt.subplots(n, 3, figsize=(6.3, 2.1 * n + 0.5), squeeze=False)
    for i, (name, masked, rec, target) in enumerate(rows):
        for j, (img, head) in enumerate(((masked, "masked input (50%)"),
                                         (rec, "reconstruction"), (target, "original"))):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(head, fontsize=9)
        label = name if mae is None else f"{name}\nmasked MAE {mae[i]:.3f}"
        axes[i, 0].set_ylabel(label, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def hierarchy_panel(items: list[tuple[np.ndarray, list[tuple[str, float]], list[str]]], onto, *,
                    title: str):
    """Held-out images with the classifier's most probable coherent path and the truth."""
    n = len(items)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    # constrained layout makes room for the three-line titles (tight_layout let the second
    # row's titles run over the first row's images)
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 3.3 * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for k, (img, path, truth) in enumerate(items):
        ax = axes.ravel()[k]
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        lines = [f"{onto.node(i).name}: {p:.2f}" for i, p in path]
        ok = [i in truth for i, _ in path]
        ax.set_title("\n".join(("+ " if o else "x ") + s for s, o in zip(lines, ok)),
                     fontsize=7, loc="left")
    fig.suptitle(title + "\n(+ on the true path, x not; probabilities are coherent: "
                 "each level <= its parent)", fontsize=9)
    return fig


def _box(ax, xy, w, h, text, colour, fontsize=8):
    ax.add_patch(FancyBboxPatch(xy, w, h, boxstyle="round,pad=0.02", fc=colour, ec="black",
                                lw=1, alpha=0.9))
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, a, b):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, lw=1.2))


def flowchart(model, *, image: np.ndarray, masked: np.ndarray, recon: np.ndarray,
              path: list[tuple[str, float]], onto, n_params: int, title: str):
    """Fig. 4 from the real model: shapes, sizes and outputs are read from ``model``."""
    enc = model.encoder
    cfg = enc.config
    s = cfg.image_size
    fig = plt.figure(figsize=(11, 4.6))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 11), ax.set_ylim(0, 4.6), ax.axis("off")
    for x0, img, cap in ((0.15, image, "input image"), (1.75, masked, "masked input")):
        ia = fig.add_axes([x0 / 11, 1.55 / 4.6, 1.3 / 11, 1.3 / 4.6])
        ia.imshow(img, cmap="gray", vmin=0, vmax=1), ia.set_xticks([]), ia.set_yticks([])
        ax.text(x0 + 0.65, 1.35, cap, ha="center", fontsize=8)
    ax.text(1.45, 3.05, f"mask {model_mask_text(cfg)}", ha="center", fontsize=7)
    _arrow(ax, (1.45, 2.2), (1.75, 2.2))
    stages = [f"stage {i + 1}: {c} x {s // st} x {s // st}"
              for i, (c, st) in enumerate(zip(cfg.stage_channels, cfg.stage_strides))]
    _box(ax, (3.3, 0.9), 2.2, 2.6,
         f"Swin encoder ({cfg.name})\npatch {cfg.patch_size}, window {cfg.window_size}\n"
         f"depths {list(cfg.depths)}\n" + "\n".join(stages) + f"\n{n_params / 1e6:.1f} M params",
         "#cfe2f3", 7)
    _arrow(ax, (3.05, 2.2), (3.3, 2.2))
    dec = type(model.decoder).__name__ if model.decoder is not None else "none"
    _box(ax, (6.0, 2.8), 2.0, 1.0, f"image decoder\n{dec}\nL_MIM: MAE on masked pixels",
         "#fde9c9", 7)
    _box(ax, (6.0, 0.5), 2.0, 1.3,
         f"meta-object classifier\nlinear {cfg.pooled_dim} -> {len(onto)}\n"
         f"({onto.n_regions} + {onto.n_meta} + {onto.n_anatomical} classes)\n"
         "L_HIE: coherent BCE (eqs. 2-3)", "#d9ead3", 7)
    _arrow(ax, (5.5, 2.6), (6.0, 3.3))
    _arrow(ax, (5.5, 1.8), (6.0, 1.15))
    ra = fig.add_axes([8.4 / 11, 2.55 / 4.6, 1.3 / 11, 1.3 / 4.6])
    ra.imshow(recon, cmap="gray", vmin=0, vmax=1), ra.set_xticks([]), ra.set_yticks([])
    ax.text(9.05, 2.35, "reconstruction", ha="center", fontsize=8)
    _arrow(ax, (8.0, 3.3), (8.4, 3.3))
    txt = "\n-> ".join(f"{onto.node(i).name} ({p:.2f})" for i, p in path)
    ax.text(8.3, 1.15, "coherent prediction:\n" + txt, fontsize=7, va="center")
    _arrow(ax, (8.0, 1.15), (8.25, 1.15))
    ax.text(5.5, 4.35, title, ha="center", fontsize=10)
    ax.text(5.5, 0.12, "L_PRE = L_MIM + L_HIE (one forward pass on the masked image)",
            ha="center", fontsize=8)
    return fig


def model_mask_text(cfg) -> str:
    return (f"units of {cfg.mask_patch_size} px\n({cfg.mask_patch_size // cfg.patch_size}x"
            f"{cfg.mask_patch_size // cfg.patch_size} tokens)")
