"""What the overview notebook shows: profiles, environment, the catalogue, real ultrasound."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .examples import load_pydicom_ultrasound
from .figures import catalogue_status
from .profiles import PROFILES


def profiles_table() -> pd.DataFrame:
    """One row per profile with the settings a reader compares first."""
    rows = []
    for p in PROFILES.values():
        rows.append({
            "profile": p.name,
            "for": p.purpose,
            "data": p.data_source,
            "budget": (f"{p.budget_minutes:g} min, {p.budget_hardware}" if p.budget_minutes
                       else p.budget_hardware),
            "encoder": p.encoder,
            "image px": p.image_size,
            "pretrain steps": p.pretrain_steps,
            "pretrain batch": p.pretrain_batch_size,
            "trials": p.n_trials,
            "fine-tune epochs": p.finetune_epochs,
        })
    return pd.DataFrame(rows)


def versions_table(run) -> pd.DataFrame:
    return pd.DataFrame({"component": list(run.versions), "version": list(run.versions.values())})


def catalogue_table(out_dir) -> pd.DataFrame:
    """Every declared output with its owning notebook and whether this output folder has it."""
    df = catalogue_status(out_dir)
    return df[["paper_ref", "label", "kind", "notebook", "title", "status", "profile"]]


def plot_real_ultrasound(images=None):
    """A row of real scanner frames from pydicom-data, titled with vendor and geometry."""
    images = images if images is not None else load_pydicom_ultrasound()
    ncols = 2
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(9, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(images):]:
        ax.set_visible(False)
    for ax, im in zip(axes.flat, images):
        ax.imshow(im.image)
        h, w = im.image.shape[:2]
        frames = f", {im.n_frames} frames" if im.n_frames > 1 else ""
        ax.set_title(f"{im.manufacturer}: {im.description}\n{w}x{h} px{frames}", fontsize=9)
        ax.set_xlabel(im.name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Real scanner ultrasound (pydicom-data test files):\nburnt-in text, black "
                 "surround, calipers, sector and linear fields of view", fontsize=11)
    fig.tight_layout()
    return fig


def gallery_size(profile) -> int:
    """Pixel size of the simulator gallery panels: small for smoke runs, sharp otherwise."""
    return 128 if profile.name == "smoke" else 224
