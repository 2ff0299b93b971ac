"""Real scanner ultrasound that ships offline: the ``Modality=US`` DICOMs of ``pydicom-data``.

These are the only real ultrasound images a fresh machine has without registration. The
overview shows them, the simulator's gallery is compared against them, and the curation
pipeline uses them to exercise ingestion on real scanner output.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: (file in pydicom-data, what it is). JPEG-lossless files need GPL plugins and are left out.
PYDICOM_US_FILES = (
    ("US1_UNCR.dcm", "lymph node, colour Doppler"),
    ("gdcm-US-ALOKA-16.dcm", "pelvis, dual view"),
    ("OBXXXX1A.dcm", "obstetric, convex probe"),
    ("color3d_jpeg_baseline.dcm", "cardiac cine, frame 1"),
)


@dataclass
class USImage:
    name: str
    description: str
    manufacturer: str
    image: np.ndarray  # uint8 H x W x 3
    n_frames: int


def _find(name: str) -> str:
    try:
        from pydicom.data import get_testdata_file
    except ImportError as exc:  # pragma: no cover - pydicom is a core dependency
        raise ImportError("pydicom is required: run `make env`.") from exc
    # pydicom looks in pydicom-data's local store first; without that package it would try a
    # download, which this project never does, so check the package is there before asking.
    import importlib.util

    if importlib.util.find_spec("data_store") is None:
        raise FileNotFoundError(
            "The pydicom-data package (real ultrasound DICOM test files) is not installed; "
            "run `make env` or `pip install pydicom-data`."
        )
    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not in the installed pydicom-data package.")
    return str(path)


def load_pydicom_ultrasound(names=None) -> list[USImage]:
    """Read the real ultrasound DICOMs as 8-bit RGB frames (palette and YBR converted)."""
    import pydicom
    from pydicom.pixels import apply_color_lut

    out = []
    for name, desc in PYDICOM_US_FILES:
        if names is not None and name not in names:
            continue
        path = _find(name)
        ds = pydicom.dcmread(path)
        if ds.get("Modality") != "US":
            raise ValueError(f"{path}: Modality is {ds.get('Modality')!r}, expected 'US'")
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        arr = ds.pixel_array
        if n_frames > 1:
            arr = arr[0]
        # pydicom >= 3 already returns YBR-encoded pixels as RGB (pixel_array's as_rgb);
        # palette-colour images still need their lookup table applied.
        if ds.PhotometricInterpretation == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
        arr = np.asarray(arr)
        if arr.dtype != np.uint8:  # 16-bit palette LUTs: rescale to 8 bits for display
            arr = (arr.astype(np.float64) / max(float(arr.max()), 1.0) * 255).astype(np.uint8)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        out.append(USImage(name, desc, str(ds.get("Manufacturer", "unknown")), arr, n_frames))
    return out
