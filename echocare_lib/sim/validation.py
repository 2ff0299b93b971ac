"""Live physics checks of the simulator against theory (shown in the overview notebook,
asserted in tests/test_sim_physics.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .geometry import BeamGrid, Probe
from .physics import Processing, beamform, psf_for
from .scene import TISSUES, Scene
from .stats import RAYLEIGH_SNR, envelope_snr, speckle_size

QUIET = Processing(noise_db=-300, tgc_match=0.0)


def physics_check(seed: int = 0, probes: tuple[tuple[float, float], ...] = ((5.0, 2.0), (3.0, 1.5),
                                                                          (7.5, 3.0))) -> pd.DataFrame:
    """Speckle SNR and speckle size at the focus of a homogeneous phantom, per probe, next to
    the theoretical values (Rayleigh SNR 1.913; speckle size = FWHM of the intensity
    autocovariance: axially that of the pulse-echo spectrum, laterally 2.355 sigma)."""
    rows = []
    scene = Scene(background=TISSUES["soft"].with_(atten=0.0))
    for f0, fnum in probes:
        probe = Probe("linear", f0_mhz=f0, bandwidth=0.6, width_mm=20, focus_mm=10,
                      f_number=fnum)
        psf = psf_for(probe)
        grid = BeamGrid(probe, 20.0, int(20 / (psf.sigma_axial_mm / 2.5)),
                        int(20 / (psf.sigma_lateral_focus_mm / 2.5)))
        env = beamform(scene, grid, QUIET, np.random.default_rng(seed)).envelope
        band = env[int(8 / grid.dz): int(12 / grid.dz), 10:-10]
        ax = speckle_size(band, 0, intensity=True) * grid.dz
        lat = speckle_size(band, 1, intensity=True) * 20 / (grid.n_lines - 1)
        name = f"{f0:g} MHz, F# {fnum:g}"
        for quantity, theory, measured in [
            ("envelope SNR", RAYLEIGH_SNR, envelope_snr(band)),
            ("axial speckle size (mm)", psf.axial_speckle_mm, ax),
            ("lateral speckle size (mm)", 2.355 * psf.sigma_lateral_focus_mm, lat),
        ]:
            rows.append({"probe": name, "quantity": quantity, "theory": theory,
                         "measured": measured, "ratio": measured / theory})
    return pd.DataFrame(rows)
