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
    fig, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.0))
    for ax, im in zip(axes, images):
        ax.imshow(im.image)
        h, w = im.image.shape[:2]
        frames = f", {im.n_frames} frames" if im.n_frames > 1 else ""
        ax.set_title(f"{im.manufacturer}\n{w}x{h} px{frames}", fontsize=9)
        ax.set_xlabel(im.name, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Real scanner ultrasound (pydicom-data test files): burnt-in text, "
                 "black surround, sector and linear fields of view", fontsize=10)
    fig.tight_layout()
    return fig
