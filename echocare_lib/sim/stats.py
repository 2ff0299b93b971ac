"""Speckle statistics used to validate the simulator against theory and against pymust.

* Envelope SNR (mean / std) of fully developed speckle is sqrt(pi / (4 - pi)) = 1.913
  (Rayleigh statistics; Burckhardt 1978, Wagner et al. 1983).
* Speckle size: full width at half maximum of the normalised autocovariance of the envelope
  along one axis. For a Gaussian amplitude PSF of width sigma the intensity autocovariance is
  exp(-d^2 / (2 sigma^2)), a FWHM of 2.355 sigma (Wagner et al. 1983), so speckle size follows
  the PSF.
Written by hand: these are a few lines of numpy; no library exposes them.
"""
from __future__ import annotations

import numpy as np

RAYLEIGH_SNR = float(np.sqrt(np.pi / (4 - np.pi)))  # 1.9131


def envelope_snr(envelope: np.ndarray) -> float:
    e = np.asarray(envelope, np.float64)
    return float(e.mean() / e.std())


def autocovariance(x: np.ndarray, axis: int) -> np.ndarray:
    """Normalised autocovariance along ``axis``, averaged over the other axis (lags >= 0)."""
    x = np.asarray(x, np.float64)
    x = np.moveaxis(x, axis, 0)
    x = x - x.mean(axis=0, keepdims=True)
    n = x.shape[0]
    f = np.fft.rfft(x, n=2 * n, axis=0)
    ac = np.fft.irfft(f * np.conj(f), axis=0)[:n]
    ac = ac.mean(axis=1)
    ac /= ac[0]
    # unbiased: fewer overlapping samples at larger lags
    return ac * n / (n - np.arange(n))


def fwhm_samples(ac: np.ndarray) -> float:
    """Full width at half maximum (in samples) of a symmetric autocovariance given for lags >= 0,
    interpolating linearly between the lags that straddle 0.5."""
    below = np.nonzero(ac < 0.5)[0]
    if len(below) == 0:
        return float("nan")
    k = below[0]
    frac = (ac[k - 1] - 0.5) / (ac[k - 1] - ac[k])
    return float(2 * (k - 1 + frac))


def speckle_size(envelope: np.ndarray, axis: int, intensity: bool = False) -> float:
    """Speckle size in samples along ``axis`` (0 axial, 1 lateral) of an envelope image."""
    x = np.asarray(envelope, np.float64)
    return fwhm_samples(autocovariance(x ** 2 if intensity else x, axis))
