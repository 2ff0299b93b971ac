"""The one call every scene generator uses: scene + device + probe -> labelled frame -> sample.

Also the sample schema shared with real-data readers (DESIGN.md): a dict with ``image``
(float32 [C, H, W] in [0, 1]) and, per task, ``mask``, ``label``, ``ellipses``, ``landmarks``,
``frames`` + ``ef``, ``report``, ``hierarchy``, plus ``meta`` (data set, case and patient id
for patient-level splits, device, pixel spacing in mm, probe).
"""
from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from .devices import DeviceStyle, apply_tint, device_style
from .overlay import burn_in
from .physics import Frame, Processing, simulate
from .scene import Scene

SPLITS = ("train", "val", "test")


def sample_rng(seed: int, task: str, split: str, index: int) -> np.random.Generator:
    """Independent, reproducible stream per (seed, task, split, sample): samples can be made
    in any order or in parallel and still come out bit-for-bit the same."""
    task_key = zlib.crc32(task.encode())
    split_key = zlib.crc32(split.encode())
    return np.random.default_rng([int(seed), task_key, split_key, int(index)])


def acquire(scene: Scene, rng: np.random.Generator, *, device: "str | DeviceStyle" = "mid_range",
            probe: str = "linear", depth_mm: float = 40.0, size: "int | tuple[int, int]" = 128,
            focus_mm: float | None = None, probe_changes: dict | None = None,
            proc_changes: dict | None = None, margin: float = 0.0,
            speckle: np.ndarray | None = None, texture: np.ndarray | None = None) -> Frame:
    """Image ``scene`` with a device's probe; returns a :class:`Frame` on display pixels."""
    style = device_style(device) if isinstance(device, str) else device
    changes = dict(probe_changes or {})
    if focus_mm is not None:
        changes["focus_mm"] = focus_mm
    pr = style.probe(probe, **changes)
    proc: Processing = replace(style.proc, **proc_changes) if proc_changes else style.proc
    shape = (size, size) if isinstance(size, int) else tuple(size)
    return simulate(scene, pr, proc, depth_mm=depth_mm, out_shape=shape, rng=rng,
                    margin=margin, speckle=speckle, texture=texture)


def screen_export(frame: Frame, style: DeviceStyle, rng: np.random.Generator, *,
                  calipers: bool = False) -> tuple[np.ndarray, dict]:
    """A raw scanner export of the frame: burnt-in annotations and the device's colour tint,
    as RGB [3, H, W]."""
    grey, drawn = burn_in(frame.image, frame.fov, frame.display, frame.grid.probe,
                          depth_mm=frame.grid.depth_mm, gain_db=frame.beam_gain_db
                          if hasattr(frame, "beam_gain_db") else -18.0, label=style.label,
                          rng=rng, calipers=calipers)
    return apply_tint(grey, style.tint), drawn


def frame_meta(frame: Frame, style: "str | DeviceStyle", **extra) -> dict:
    style = device_style(style) if isinstance(style, str) else style
    pr = frame.grid.probe
    return {"device": style.name, "device_tier": style.tier, "probe": pr.kind,
            "f0_mhz": pr.f0_mhz, "depth_mm": frame.grid.depth_mm,
            "pixel_spacing_mm": float(frame.pixel_spacing_mm), "source": "simulator", **extra}


def as_image(gray: np.ndarray) -> np.ndarray:
    """[H, W] -> float32 [1, H, W] clipped to [0, 1] (the schema's image layout)."""
    return np.clip(gray, 0, 1).astype(np.float32)[None]


def to_pixel_index(frame: Frame, x_mm, z_mm) -> tuple[np.ndarray, np.ndarray]:
    """Physical mm -> pixel index coordinates (col, row) where pixel (j, i) has its centre at
    exactly (j, i): the convention for landmarks and ellipse centres in samples."""
    col, row = frame.display.to_pixel(x_mm, z_mm)
    return np.asarray(col) - 0.5, np.asarray(row) - 0.5
