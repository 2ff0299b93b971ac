"""Curation step 3: quality control of decoded (and de-identified) images.

The paper discards empty images and those with fewer than 1,000 valid (non-zero) pixels, and
inspects the rest for images that are not ultrasound at all (diagrams, charts, photographs
that web collections also return). :func:`quality_check` rejects the first two and *flags*
the third with a reason, leaving the decision to a person or a later rule: a wrongly
discarded ultrasound image is lost for good, a flagged one can be looked at.

The non-ultrasound flag uses four cheap image statistics over the valid pixels:

* ``colourful``: share of pixels that are strongly coloured *and* off the image's dominant
  hue. Scanner tints (sepia, blue) put every pixel on one hue and colour Doppler covers a
  minority of the field, so neither trips it; photographs and slides do.
* ``flat``: share of pixels in exactly uniform 3 x 3 neighbourhoods (charts, diagrams).
* ``white``: share of near-white pixels (document and slide backgrounds).
* ``textured``: share of pixels with local variation; ultrasound is all speckle.

Thresholds were set on the simulator corpus (see the curation tests and the report).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .deid import background_level

__all__ = ["MIN_VALID_PIXELS", "quality_check"]

MIN_VALID_PIXELS = 1000

#: Flag thresholds: (statistic, comparison, threshold, reason)
_RULES = (
    ("colourful", ">", 0.50, "strongly coloured across {v:.0%} of the image, beyond one tint"),
    ("flat", ">", 0.45, "{v:.0%} of the image is flat uniform areas (chart or diagram)"),
    ("white", ">", 0.25, "{v:.0%} near-white background (slide or document)"),
    ("textured", "<", 0.30, "only {v:.0%} of the image has speckle-like texture"),
)


def _stats(img: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """The four non-ultrasound statistics over the valid pixels (see the module doc)."""
    rgb = img.astype(np.float32)
    grey = rgb.mean(axis=-1) if rgb.ndim == 3 else rgb
    # a black surround lifted by a gain or brightness change is background, not content
    valid = valid & (np.abs(grey - background_level(grey)) > 2)
    n = max(int(valid.sum()), 1)
    m = ndi.uniform_filter(grey, 3)
    std = np.sqrt(np.maximum(ndi.uniform_filter(grey * grey, 3) - m * m, 0))
    lit = valid & (grey > 24)  # flat areas that are bright: charts, not dark fluid
    out = {"flat": float(((std < 0.5) & lit).sum() / max(int(lit.sum()), 1)),
           "textured": float(((std > 2.0) & valid).sum() / n),
           "white": float(((grey > 240) & valid).sum() / n),
           "colourful": 0.0}
    if rgb.ndim == 3:
        mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
        sat = np.where(mx > 40, (mx - mn) / np.maximum(mx, 1), 0)
        # hue angle in the chroma plane; a tint keeps every pixel near one angle
        a = rgb[..., 0] - 0.5 * (rgb[..., 1] + rgb[..., 2])
        b = 0.866 * (rgb[..., 1] - rgb[..., 2])
        coloured = valid & (sat > 0.25)
        if coloured.any():
            hue = np.arctan2(b[coloured], a[coloured])
            dom = np.arctan2(np.sin(hue).mean(), np.cos(hue).mean())
            off = np.abs(np.angle(np.exp(1j * (hue - dom)))) > np.deg2rad(35)
            very = sat[coloured] > 0.6
            out["colourful"] = float((off | very).sum() / n)
    return out


def quality_check(image: np.ndarray | None, *, min_valid: int = MIN_VALID_PIXELS
                  ) -> tuple[bool, str, dict]:
    """(ok, reason, flags) for one uint8 image ([H, W] or [H, W, 3]).

    Rejected (ok False): "empty image" (missing, zero-size, all zero or constant) and
    "fewer than 1,000 valid pixels (N)". Otherwise ok is True; ``reason`` is "" or, for an
    image flagged as possibly non-ultrasound, says why (``flags["non_ultrasound"]`` is
    True). ``flags`` holds the valid-pixel count and the statistics behind the flag."""
    flags: dict = {"valid_pixels": 0, "non_ultrasound": False}
    if image is None or np.asarray(image).size == 0:
        return False, "empty image", flags
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        img = img[..., :3]
    valid = img.any(axis=-1) if img.ndim == 3 else img > 0
    n_valid = int(valid.sum())
    flags["valid_pixels"] = n_valid
    if n_valid == 0 or (img == img.reshape(-1, *img.shape[2:])[0]).all():
        return False, "empty image", flags
    if n_valid < min_valid:
        return False, f"fewer than {min_valid:,} valid pixels ({n_valid:,})", flags
    stats = _stats(img, valid)
    flags.update({k: round(v, 4) for k, v in stats.items()})
    why = [msg.format(v=stats[key]) for key, op, thr, msg in _RULES
           if (stats[key] > thr if op == ">" else stats[key] < thr)]
    if why:
        flags["non_ultrasound"] = True
        return True, "possibly not ultrasound: " + "; ".join(why), flags
    return True, "", flags
