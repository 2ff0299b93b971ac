"""Device styles: what makes images from different scanners look different.

EchoAtlas pools 138 data sets from many scanners (Philips EPIQ, Siemens ACUSON, GE LOGIQ,
Mindray, SonoScape, handheld probes, ...). A style bundles the probes a scanner carries
(centre frequency, bandwidth, f-number, line density) with its receiver and display
processing (dynamic range, gain, TGC accuracy, noise, compounding, speckle reduction, grey
map and colour tint). The names are fictional; each describes a class of device, not a
vendor. ``low_end`` and ``high_end`` form the pair used for the enhancement task
(USenhance pairs a portable device with a premium cart-based system).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .geometry import Probe
from .physics import Processing


@dataclass(frozen=True)
class DeviceStyle:
    name: str
    tier: str  # "high", "mid", "low"
    description: str
    linear: Probe
    convex: Probe
    phased: Probe
    proc: Processing
    tint: str = "gray"  # gray, sepia, blue, green
    label: str = ""  # text burnt into exported screens

    def probe(self, kind: str, **changes) -> Probe:
        """The device's probe of this kind, optionally adjusted (depth focus, sector...)."""
        base = {"linear": self.linear, "convex": self.convex, "phased": self.phased}[kind]
        return replace(base, **changes) if changes else base


def _style(name, tier, description, f_lin, f_cvx, f_ph, bw, fnum, lines, proc, tint="gray",
           label=""):
    return DeviceStyle(
        name, tier, description,
        linear=Probe("linear", f_lin, bw, width_mm=38.0, focus_mm=15.0, f_number=fnum,
                     n_lines=lines),
        convex=Probe("convex", f_cvx, bw, radius_mm=50.0, sector_deg=65.0, focus_mm=60.0,
                     f_number=fnum, n_lines=lines),
        phased=Probe("phased", f_ph, bw, sector_deg=80.0, focus_mm=70.0, f_number=fnum,
                     n_lines=max(lines * 2 // 3, 64)),
        proc=proc, tint=tint, label=label or name.replace("_", " ").upper(),
    )


DEVICE_STYLES: dict[str, DeviceStyle] = {s.name: s for s in [
    _style("high_end", "high", "premium cart system: broadband probes, compounding, "
           "speckle reduction, low noise", 11.0, 5.0, 3.5, 0.85, 1.6, 256,
           Processing(dynamic_range_db=66, gain_db=-20, noise_db=-80, compounding=2,
                      smoothing_px=0.7, gamma=1.05), label="APEX 900"),
    _style("mid_range", "mid", "mid-range cart system", 9.0, 4.0, 3.0, 0.7, 2.0, 192,
           Processing(dynamic_range_db=60, gain_db=-18, noise_db=-70, smoothing_px=0.3),
           label="SONORA 5"),
    _style("low_end", "low", "portable low-end device: narrow band, few lines, noisy, "
           "imperfect TGC", 6.0, 3.0, 2.5, 0.45, 3.0, 96,
           Processing(dynamic_range_db=48, gain_db=-14, tgc_match=0.8, noise_db=-52,
                      gamma=1.25), label="PORTA-S"),
    _style("legacy_sepia", "mid", "older cart system exporting with a sepia grey map",
           7.5, 3.5, 2.5, 0.55, 2.4, 160,
           Processing(dynamic_range_db=55, gain_db=-16, noise_db=-64, gamma=0.9),
           tint="sepia", label="VISTA 3"),
    _style("handheld", "low", "wireless handheld probe with a blue-tinted app display",
           7.0, 3.5, 2.5, 0.5, 2.6, 128,
           Processing(dynamic_range_db=52, gain_db=-15, tgc_match=0.9, noise_db=-58,
                      smoothing_px=0.4), tint="blue", label="POCKET"),
    _style("cardiac_lab", "high", "echocardiography system tuned for the heart "
           "(harmonic-like narrow PSF, high frame rate)", 10.0, 4.0, 2.8, 0.75, 1.9, 192,
           Processing(dynamic_range_db=55, gain_db=-17, noise_db=-68, smoothing_px=0.5),
           label="CARDIA 7"),
]}


def device_style(name: str) -> DeviceStyle:
    try:
        return DEVICE_STYLES[name]
    except KeyError:
        raise KeyError(f"Unknown device style {name!r}; choose one of {list(DEVICE_STYLES)}") from None


# Written by hand: a tint is a three-curve grey map, too small for a colour library.
_TINTS = {
    "gray": (1.0, 1.0, 1.0),
    "sepia": (1.0, 0.86, 0.66),
    "blue": (0.80, 0.92, 1.0),
    "green": (0.85, 1.0, 0.85),
}


def apply_tint(image: np.ndarray, tint: str) -> np.ndarray:
    """Grey [H, W] in [0, 1] -> RGB [3, H, W] with the device's colour tint."""
    if tint not in _TINTS:
        raise KeyError(f"Unknown tint {tint!r}; choose one of {list(_TINTS)}")
    r, g, b = _TINTS[tint]
    gamma = (0.95, 1.0, 1.1) if tint != "gray" else (1.0, 1.0, 1.0)
    chans = [np.clip(c * image ** gm, 0, 1) for c, gm in zip((r, g, b), gamma)]
    return np.stack(chans).astype(np.float32)
