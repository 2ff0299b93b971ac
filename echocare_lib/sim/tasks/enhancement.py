"""Low-/high-quality image pairs for the enhancement application (paper: USenhance 2023).

USenhance pairs images of five organs (thyroid, carotid, breast, liver, kidney) taken with a
low-end device (mSonics MU1, SSUN) and a premium one (Toshiba Aplio 500, SuperSonic
Aixplorer). Here each pair images one simulated scene twice: with the ``low_end`` style
(narrow-band probe, few beam lines, poor TGC, noise, low dynamic range) and the ``high_end``
style (broadband probe, compounding, speckle reduction). The two acquisitions have
independent speckle, as two real devices would; anatomy and geometry are shared, so the
pair is registered. Training treats the sets as unpaired (the paper's setting); pairs
serve evaluation and the figure.
"""
from __future__ import annotations

import numpy as np

from ..render import acquire, as_image, frame_meta
from . import abdomen, breast, neck

ORGANS = ("thyroid", "carotid", "breast", "liver", "kidney")
# organ -> (scene builder, probe, depth range mm, structures)
_SETUP = {
    "thyroid": (neck.thyroid_scene, "linear", (35, 45), ["thyroid"]),
    "carotid": (neck.carotid_scene, "linear", (30, 40), ["carotid artery", "jugular vein"]),
    "breast": (breast.breast_scene, "linear", (30, 45), ["breast"]),
    "liver": (abdomen.liver_scene, "convex", (120, 160), ["liver"]),
    "kidney": (abdomen.kidney_scene, "convex", (110, 150), ["kidney"]),
}


def sample_enhancement_pair(rng: np.random.Generator, *, size: int, index: int,
                            split: str) -> dict:
    organ = ORGANS[index % len(ORGANS)]  # organ-stratified, as in the paper's 8:2 split
    build, probe, (dmin, dmax), structures = _SETUP[organ]
    depth = float(rng.uniform(dmin, dmax))
    scene, info = build(rng, depth_mm=depth, lesion="random") if organ == "breast" else \
        build(rng, depth_mm=depth)
    focus = float(rng.uniform(0.35, 0.6) * depth)
    changes = {"width_mm": depth} if probe == "linear" else None
    low = acquire(scene, rng, device="low_end", probe=probe, depth_mm=depth, size=size,
                  focus_mm=focus, probe_changes=changes)
    high = acquire(scene, rng, device="high_end", probe=probe, depth_mm=depth, size=size,
                   focus_mm=focus, probe_changes=changes)
    case = f"usenhance-{organ}-{split}-{index:05d}"
    return {
        "image": as_image(low.image),
        "target": as_image(high.image),
        "fov": low.fov & high.fov,
        "organ": organ,
        "structures": list(structures),
        "meta": frame_meta(low, "low_end", dataset="USenhance", task="enhancement",
                           case_id=case, patient_id=case, split=split, organ=organ,
                           target_device="high_end"),
    }


TASKS = {
    "enhancement": {
        "kind": "enhancement",
        "classes": list(ORGANS),
        "sample": sample_enhancement_pair,
        "description": "low-end -> high-end image translation, five organs",
        "paper_dataset": "USenhance 2023",
    },
}
