"""Gallery figures of the simulator: every scene with its labels, every device style, and
real scanner images beside them for comparison."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse as EllipsePatch

from ..examples import load_pydicom_ultrasound
from ..session import OKABE_ITO
from .devices import DEVICE_STYLES
from .render import acquire, sample_rng
from .scene import TISSUES, Ellipse, Layer, Scene
from .tasks import generate, task_names, task_spec


def _show(ax, img, title):
    if img.ndim == 3 and img.shape[0] == 3:
        ax.imshow(np.transpose(img, (1, 2, 0)))
    else:
        ax.imshow(img.squeeze(), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_labels(ax, sample: dict) -> None:
    """Overlay a sample's ground truth: mask contours, ellipses, landmarks."""
    mask = sample.get("mask")
    if mask is not None and mask.max() > 0:
        for k in range(1, int(mask.max()) + 1):
            if (mask == k).any():
                ax.contour(mask == k, levels=[0.5], colors=[OKABE_ITO[(k - 1) % 7]],
                           linewidths=0.9)
    for j, e in enumerate(sample.get("ellipses", []) or []):
        ax.add_patch(EllipsePatch((e["cx"], e["cy"]), 2 * e["a"], 2 * e["b"], angle=e["angle"],
                                  fill=False, color=OKABE_ITO[(j + 4) % 7], lw=1.0))
    lm = sample.get("landmarks")
    if lm is not None:
        ax.scatter(lm[:, 0], lm[:, 1], s=6, c=OKABE_ITO[5], edgecolors="none")


def _caption(task: str, s: dict) -> str:
    spec = task_spec(task)
    bits = [task]
    if "label_name" in s:
        bits.append(str(s["label_name"]))
    if "ef" in s:
        bits.append(f"EF {s['ef']:.0f}%")
    if "ctr" in s:
        bits.append(f"CTR {s['ctr']:.2f}")
    bits.append(s["meta"].get("device", ""))
    return "\n".join([bits[0], " | ".join(b for b in bits[1:] if b)]) or spec["kind"]


def scenes_figure(size: int = 192, seed: int = 0):
    """One sample of every simulated application with its labels, and real images."""
    real = load_pydicom_ultrasound()
    tasks = task_names()
    ncols = 5
    nrows = 1 + int(np.ceil((len(tasks) + 1) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.75 * nrows))
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, im in zip(axes[0], real):
        ax.set_axis_on()
        _show(ax, im.image.transpose(2, 0, 1).astype(np.float32) / 255,
              f"REAL: {im.manufacturer.split(',')[0]}\n{im.description}")
    axes[0, -1].text(0.02, 0.5, "Top row: real scanner\nimages (pydicom-data).\n\n"
                     "Below: EchoAtlas-Sim,\none sample per\napplication, with its\n"
                     "ground truth overlaid.", fontsize=8, va="center")
    flat = list(axes[1:].flat)
    k = 0
    for task in tasks:
        s = generate(task, 1, size=size, seed=seed, split="test")[0]
        ax = flat[k]
        ax.set_axis_on()
        if task == "enhancement":
            _show(ax, s["image"], f"enhancement: low-end\n{s['organ']}")
            k += 1
            ax = flat[k]
            ax.set_axis_on()
            _show(ax, s["target"], f"enhancement: high-end\n{s['organ']}")
        else:
            _show(ax, s["image"], _caption(task, s))
            draw_labels(ax, s)
        k += 1
    fig.suptitle("EchoAtlas-Sim scenes next to real scanner images", fontsize=11)
    fig.tight_layout()
    return fig


def _phantom(rng) -> Scene:
    """A small thyroid-like phantom with a cyst, a hypoechoic nodule and a calcification."""
    sc = Scene(background=TISSUES["thyroid"])
    sc.add(Layer(0, 1.2), "skin")
    sc.add(Layer(1.2, 4.5, amp=0.6), "fat")
    sc.add(Layer(4.5, 8.5, amp=0.8, period=30), "muscle")
    sc.add(Ellipse(-8, 19, 4.5, 4.0), "cyst")
    sc.add(Ellipse(7, 21, 4.0, 5.5, 15), "lesion_hypo")
    sc.add(Ellipse(7.5, 18.5, 0.7, 0.7), "calcification")
    sc.add(Layer(30, 33, amp=1.0, period=25), "fascia")
    return sc


def devices_figure(size: int = 192, seed: int = 0):
    """The same phantom on every device style (linear probe), and raw screen exports."""
    from .corpus import screen_from_image

    styles = list(DEVICE_STYLES)
    fig, axes = plt.subplots(2, len(styles), figsize=(2.5 * len(styles), 6.2))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.02, wspace=0.06,
                        hspace=0.32)
    darker = -6.0  # the phantom is small and shallow: a sonographer would lower the gain
    for j, name in enumerate(styles):
        rng = sample_rng(seed, "gallery-devices", "test", j)
        gain = {"gain_db": DEVICE_STYLES[name].proc.gain_db + darker}
        fr = acquire(_phantom(rng), rng, device=name, probe="linear", depth_mm=40, size=size,
                     focus_mm=20, probe_changes={"width_mm": 40}, proc_changes=gain)
        st = DEVICE_STYLES[name]
        p = st.linear
        _show(axes[0, j], fr.image, f"{name} ({st.tier})\n{p.f0_mhz:g} MHz, "
              f"DR {st.proc.dynamic_range_db:g} dB")
        kind = ["linear", "convex", "phased"][j % 3]
        fr2 = acquire(_phantom(rng), rng, device=name, probe=kind, depth_mm=60, size=size,
                      focus_mm=25, proc_changes=gain)
        screen = screen_from_image(fr2.image, name, rng, screen=(int(size * 0.9), size),
                                   depth_mm=60, calipers=j % 2 == 0, probe_kind=kind)
        _show(axes[1, j], screen.transpose(2, 0, 1).astype(np.float32) / 255,
              f"raw export, {kind} probe\n(tint: {st.tint})")
    fig.suptitle("One phantom (cyst, hypoechoic nodule with a calcification) on every device "
                 "style; bottom: raw exports with burnt-in text, rulers and calipers",
                 fontsize=10)
    return fig
