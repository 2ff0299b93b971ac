"""Our B-mode simulator side by side with pymust (the Python port of the MUST toolbox).

Issue target: on the same homogeneous phantom, speckle SNR and axial / lateral speckle size
within 15 % of pymust's (ratio ours / pymust in [0.85, 1.15]), and throughput at least 100x
pymust's at the same image size. A measurement, not a test: it always exits 0 and prints
PASS / FAIL per quantity. pymust is optional (``pip install pymust==0.1.9``); without it the
script says so and exits 0. Run: ``.venv/bin/python benchmarks/bench_simulator_vs_pymust.py``
(4-5 min on one core, most of it pymust at 256 px; ``--sizes 128 64`` takes 1-1.5 min);
results go to ``benchmarks/results/simulator_vs_pymust.json``.

pymust set-up (the reference physics)
-------------------------------------
* Probe ``getparam('L11-5v')`` (Verasonics, 128 elements, pitch 0.3 mm, fc 7.6 MHz, pulse-echo
  -6 dB bandwidth 77 %), a linear array from getparam's list; default 1-cycle excitation,
  c = 1540 m/s, no attenuation, 2-D simulation (``simus(x, z, RC, ...)``).
* Phantom: ``genscat`` over the imaged region padded by the PSF's reach, Rayleigh reflection
  coefficients (genscat's default without an image), density ``DENSITY_PER_MM2`` (about 10
  scatterers per -6 dB resolution cell: fully developed speckle).
* Acquisition: a conventional focused B-mode scan, one FOCUSED transmit per image column,
  focused at the region's centre depth (``txdelay(0, z_focus)``) with a 16-element transmit
  sub-aperture (transmit F# = z_focus / (16 x pitch) = 2), then ``rf2iq`` and delay-and-sum
  (``dasmtx``, receive f-number 2, dynamic receive focusing) of that column.
  Why one transmit per column and not a single transmit for the whole N x N grid: a single
  focused transmit insonifies only its focal beam (-6 dB width ~1.2 lambda F#tx, 0.5 mm here),
  so beyond it the DAS image is dark and not a homogeneous B-mode image; one transmit per
  line is how a focused B-mode image is made, and it is what our simulator models.
* Two shortcuts that only make pymust FASTER (so the throughput ratio is conservative), both
  exact or negligible for the statistics: (1) a linear array scanning a sub-aperture is
  translation invariant, so each line is simulated with a ``SUB_ELEMENTS``-element array
  (covers the transmit and the widest receive aperture) centred on the line, the scatterers
  translated by -x_line, and one DAS matrix serves every line; (2) each line sees only the
  scatterers within +-``STRIP_MM`` (4 lambda F#) of it. Measured once: dropping the
  scatterers beyond +-1.6 mm changes a beamformed line by -23 dB in energy (vs a +-4 mm
  strip), i.e. it removes a weak sidelobe clutter floor and leaves the speckle statistics
  unchanged.
* ``rf2iq(RF, fs, fc)``: the default low-pass cut-off at fc passes the whole echo band
  (passing PARAM.bandwidth would cut it at fc +- B fc / 2 and narrow it further).
* The region is N x N pixels, dx = 0.075 mm laterally, dz = 0.03 mm axially (4-5 pixels per
  speckle in both directions), centred on the focus at ~9.6 mm; N = 64 keeps the pixel size
  (a region half as large).

Our set-up: the same physics, derived once from theory (nothing tuned to the targets)
-----------------------------------------------------------------------------------
* Spectrum: the datasheet, nothing measured. Our probe is given what getparam gives pymust:
  fc 7.6 MHz, pulse-echo bandwidth 0.77 and a 1-cycle excitation (``Probe(f0_mhz=7.6,
  bandwidth=0.77, tx_cycles=1)``). Our echo spectrum is then the transducer's generalised
  normal window (SIMUS/MUST's exponent) times the burst's spectrum
  (``physics.excitation_spectrum``), which is how pymust's pfield/simus build theirs, so the
  two -6 dB bands agree: 4.74-10.11 MHz, centre (mean of the -6 dB frequencies, the IEEE
  definition) 7.42 MHz, fractional bandwidth 0.723 (both printed). This is the comparison.
  A second configuration, ``impulse_matched``, is run as a check and reported beside it: an
  impulse excitation whose transducer band is set to that echo band (f0 7.42 MHz, B 0.723),
  i.e. the flat-topped window alone, without the burst's asymmetry.
  History: before ``tx_cycles`` existed, the datasheet values (7.6 MHz, 0.77) could only be
  given as an impulse excitation, whose echo band is wider than pymust's; its axial speckle
  came out 12-15 % short (0.847 at 128 px), and the band had to be taken from pymust's
  spectrum functions by hand. The band of pymust's speckle echoes (raw element RF of the
  homogeneous phantom) is measured and reported too: it is lower and narrower than the
  point-target band, because in pymust's diffraction model the beams are wider at low
  frequencies (off-axis scatterers echo low frequencies), which a separable PSF with one
  lateral width for all frequencies does not represent (in theory it lengthens pymust's axial
  speckle by only 2 %).
* Focus: the same depth. f-number: pymust's pulse-echo lateral PSF at the focus is the product
  of the transmit and receive beams of two uniform 16-element apertures D = 4.8 mm at
  z_f = 9.6 mm, i.e. sinc^2(pi x D / (lambda z_f)), whose amplitude FWHM is 0.886 lambda z_f / D
  (computed numerically below for the actual apertures, lambda at the echo's centre
  frequency). Our PSF has amplitude FWHM lambda F# (lambda at the same centre frequency), so
  F#_ours = FWHM_pymust / lambda = 0.886 x 2 = 1.77: the same lateral resolution.
  For reference, theory then predicts the speckle-size ratios ours / pymust: lateral 1.06
  (the intensity autocovariance of a sinc^2 PSF is 0.835 lambda F# wide, a Gaussian's equals
  its FWHM) and axial 1.00 (the same echo spectrum; speckle size from
  ``PSF.axial_speckle_mm``); both are printed.
* Why the axial ratio once failed at 128 px (0.834): our axial pulse used to be a Gaussian
  with the same -6 dB band as pymust's, but pymust's spectrum is flat-topped, and a Gaussian
  gives 8 % shorter axial speckle for the same -6 dB band (theory 0.917; 0.1266 vs 0.1380 mm).
  On top of that, this benchmark's pymust number comes from one image, whose axial speckle
  estimate scatters by about 7 % (measured on 4 phantoms at 128 px: 0.144, 0.126, 0.141,
  0.133 mm); the default phantom (seed 0) is the high one at 128 px. Neither the beam grid's
  sampling nor resampling was involved: the statistics are taken on a beam grid with
  pymust's pixel positions, and the speckle size there does not change with the axial
  sampling. The simulator now models the spectrum's shape (``physics.PSF.axial_spectrum``);
  the estimates of both simulators share the same small-ROI bias (the ROI mean is removed),
  which is why measured sizes grow a little with N.
* Measured on a ``BeamGrid`` with the same pixel positions as pymust's grid (envelope before
  log compression, noise and TGC off, no attenuation, homogeneous soft tissue); timed through
  the call a user makes: ``physics.simulate(scene, probe, proc, out_shape=(N, N))`` on the same
  probe and depth, median of many repeats after warm-up (caches built).

Speckle statistics: ``echocare_lib.sim.stats`` (envelope SNR; FWHM of the intensity
autocovariance, in mm) in the same central region of interest (central half in depth around
the focus, central 80 % laterally). pymust's numbers come from one image; ours are the mean
over ``OUR_REALISATIONS`` images, whose standard deviation is also the expected scatter of a
single pymust image's estimate (printed as +-).
"""
from __future__ import annotations

import os

# Single-threaded timing: set before numpy / scipy are imported anywhere.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

try:
    import pymust  # noqa: E402
except ImportError:  # optional dependency
    pymust = None

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from echocare_lib.sim import TISSUES, Probe, Processing, Scene  # noqa: E402
from echocare_lib.sim.geometry import BeamGrid  # noqa: E402
from echocare_lib.sim.physics import beamform, psf_for, simulate  # noqa: E402
from echocare_lib.sim.stats import RAYLEIGH_SNR, envelope_snr, speckle_size  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "simulator_vs_pymust.json"

PROBE_NAME = "L11-5v"
C = 1540.0  # m/s, pymust's default
F_NUMBER = 2.0  # transmit (z_focus / D_tx) and receive (dasmtx) f-number
TX_ELEMENTS = 16  # transmit sub-aperture: D_tx = 16 x 0.3 mm = 4.8 mm
SUB_ELEMENTS = 24  # array simulated per line (>= widest receive aperture, 6 mm at 11.5 mm)
FOCUS_MM = TX_ELEMENTS * 0.3 * F_NUMBER  # 9.6 mm: F#tx = 2 exactly
DX_MM, DZ_MM = 0.075, 0.03  # pixel size (lateral, axial)
STRIP_MM = 1.6  # scatterers seen by a line: within +-4 lambda F#
PAD_Z_MM = 0.5  # phantom padding above / below the region (> 3 axial PSF widths)
DENSITY_PER_MM2 = 200.0  # ~10 scatterers per -6 dB resolution cell (0.14 x 0.36 mm)
OUR_REALISATIONS = 20
TARGET_LO, TARGET_HI, TARGET_SPEED = 0.85, 1.15, 100.0
QUIET = Processing(noise_db=-300.0, tgc_match=0.0)  # no noise, no TGC
SCENE = Scene(background=TISSUES["soft"].with_(atten=0.0))  # homogeneous, no texture


# --------------------------------------------------------------------------- theory
def _fwhm(x: np.ndarray, y: np.ndarray) -> float:
    """FWHM of a peak sampled at x >= 0 with its maximum at x[0]."""
    y = y / y[0]
    k = int(np.nonzero(y < 0.5)[0][0])
    return float(2 * (x[k - 1] + (y[k - 1] - 0.5) / (y[k - 1] - y[k]) * (x[k] - x[k - 1])))


def pymust_echo_spectrum(param) -> dict:
    """pymust's pulse-echo echo spectrum (excitation x probe response, as in pfield/simus):
    its -6 dB band, and the axial speckle size it implies (intensity autocovariance FWHM)."""
    f = np.linspace(1.0, 2 * param.fc, 4001)
    w = 2 * np.pi * f
    amp = np.abs(param.getPulseSpectrumFunction(None)(w) * param.getProbeFunction()(w) ** 2)
    amp /= amp.max()
    band = f[amp >= 0.5]
    f_lo, f_hi = float(band[0]), float(band[-1])
    fc_eff = (f_lo + f_hi) / 2
    # intensity autocovariance in depth = |FT(power spectrum)|^2 at lag t = 2 dz / c
    dz = np.linspace(0.0, 0.5e-3, 1001)
    t = 2 * dz / C
    power = amp ** 2
    acf = np.abs(np.exp(2j * np.pi * np.outer(t, f - fc_eff)) @ power)
    return {"f_lo_mhz": f_lo / 1e6, "f_hi_mhz": f_hi / 1e6, "fc_eff_mhz": fc_eff / 1e6,
            "bandwidth_eff": (f_hi - f_lo) / fc_eff,
            "peak_mhz": float(f[np.argmax(amp)]) / 1e6,
            "axial_speckle_mm": _fwhm(dz * 1e3, acf ** 2)}


def lateral_theory(d_tx: float, d_rx: float, z: float, lam: float) -> dict:
    """Pulse-echo lateral PSF at the focus of two uniform apertures (narrow band):
    sinc(pi x D_tx / (lam z)) sinc(pi x D_rx / (lam z)); its amplitude FWHM and the FWHM of the
    intensity autocovariance (speckle size) it implies. All lengths in mm."""
    x = np.linspace(0.0, 4 * lam * z / min(d_tx, d_rx), 2001)
    psf = np.sinc(x * d_tx / (lam * z)) * np.sinc(x * d_rx / (lam * z))
    # spectrum = convolution of two rects; intensity acf = |FT(|spectrum|^2)|^2
    k = np.linspace(-(d_tx + d_rx) / 2, (d_tx + d_rx) / 2, 2001) / (lam * z)
    spec = np.clip(np.minimum.reduce([np.full_like(k, min(d_tx, d_rx)),
                                      (d_tx + d_rx) / 2 - np.abs(k) * lam * z]), 0, None)
    acf = np.abs(np.exp(2j * np.pi * np.outer(x, k)) @ spec ** 2)
    return {"psf_fwhm_mm": _fwhm(x, np.abs(psf)), "speckle_mm": _fwhm(x, acf ** 2)}


def our_theory(probe: Probe) -> dict:
    """Our PSF's speckle size: axially from its pulse-echo spectrum (intensity autocovariance
    FWHM); laterally the Gaussian's amplitude FWHM (which the autocovariance FWHM equals)."""
    from echocare_lib.sim.physics import FWHM, psf_for

    psf = psf_for(probe)
    return {"axial_speckle_mm": psf.axial_speckle_mm,
            "lateral_speckle_mm": FWHM * psf.sigma_lateral_focus_mm}


# --------------------------------------------------------------------------- geometry
def region(n: int) -> dict:
    """N x N pixel grid centred on the focus; z1 is a whole number of dz so that our beam
    grid (which starts at depth 0) has rows at exactly the same depths."""
    w, h = (n - 1) * DX_MM, (n - 1) * DZ_MM
    k1 = int(round((FOCUS_MM + h / 2) / DZ_MM))
    z1 = k1 * DZ_MM
    z0 = z1 - h
    return {"n": n, "width_mm": w, "height_mm": h, "z0_mm": z0, "z1_mm": z1, "k1": k1,
            "x_mm": np.linspace(-w / 2, w / 2, n), "z_mm": z0 + DZ_MM * np.arange(n),
            "focus_mm": (z0 + z1) / 2}


def roi_slices(n: int) -> tuple[slice, slice]:
    """Central half in depth (around the focus), central 80 % laterally."""
    return slice(n // 4, n - n // 4), slice(n // 10, n - n // 10)


def speckle_stats(env: np.ndarray, n: int) -> dict:
    rows, cols = roi_slices(n)
    roi = np.asarray(env, np.float64)[rows, cols]
    return {"snr": envelope_snr(roi),
            "axial_mm": speckle_size(roi, 0, intensity=True) * DZ_MM,
            "lateral_mm": speckle_size(roi, 1, intensity=True) * DX_MM}


# --------------------------------------------------------------------------- pymust
def pymust_setup():
    param = pymust.getparam(PROBE_NAME)
    param.c = C
    param.fs = 4 * param.fc
    param.Nelements = SUB_ELEMENTS
    xe = (np.arange(SUB_ELEMENTS) - (SUB_ELEMENTS - 1) / 2) * param.pitch
    return param, xe


def pymust_image(n: int, seed: int) -> tuple[np.ndarray, dict]:
    """One N x N envelope image: genscat + (simus + rf2iq + DAS) per column + envelope."""
    reg = region(n)
    param, xe = pymust_setup()
    zf = reg["focus_mm"] * 1e-3
    dels = pymust.txdelay(0.0, zf, param).astype(np.float64)
    active = np.abs(xe) < TX_ELEMENTS * param.pitch / 2
    dels[0, ~active] = np.nan  # transmit sub-aperture (NaN = element off)
    dels -= np.nanmin(dels)
    param.TXdelay = dels
    param.fnumber = F_NUMBER
    opt = pymust.utils.Options()
    opt.ParPool = False
    x_col = np.zeros(n)
    z_col = reg["z_mm"] * 1e-3
    np.random.seed(seed)  # genscat uses numpy's global generator

    timing = {"genscat": 0.0, "simus": 0.0, "rf2iq": 0.0, "dasmtx": 0.0, "das_envelope": 0.0}
    t_all = time.perf_counter()
    t = time.perf_counter()
    width = (reg["width_mm"] + 2 * STRIP_MM) * 1e-3
    height = (reg["height_mm"] + 2 * PAD_Z_MM) * 1e-3
    meandist = float(np.sqrt(2 / 5) / np.sqrt(DENSITY_PER_MM2 * 1e6))  # genscat's grid rule
    xs, _, zs, rc = pymust.genscat(np.array([width, height]), meandist)
    zs = zs + (reg["z0_mm"] - PAD_Z_MM) * 1e-3
    timing["genscat"] = time.perf_counter() - t

    env = np.zeros((n, n), np.float64)
    das, n_rf, per_line = None, None, []
    power, t_diag = 0.0, 0.0  # raw-RF power spectrum (a diagnostic, not timed)
    for j, xl in enumerate(reg["x_mm"] * 1e-3):
        sel = np.abs(xs - xl) <= STRIP_MM * 1e-3
        per_line.append(int(sel.sum()))
        t = time.perf_counter()
        rf, _ = pymust.simus(xs[sel] - xl, zs[sel], rc[sel], dels, param, opt)
        timing["simus"] += time.perf_counter() - t
        if n_rf is None:
            n_rf = rf.shape[0] + 16
        rf = rf[:n_rf] if rf.shape[0] >= n_rf else np.pad(rf, ((0, n_rf - rf.shape[0]), (0, 0)))
        t = time.perf_counter()
        power = power + (np.abs(np.fft.rfft(rf, n=2048, axis=0)) ** 2).sum(axis=1)
        t_diag += time.perf_counter() - t
        t = time.perf_counter()
        iq = pymust.rf2iq(rf, param.fs, param.fc)
        timing["rf2iq"] += time.perf_counter() - t
        if das is None:  # the same DAS matrix serves every line (translation invariance)
            t = time.perf_counter()
            das = pymust.dasmtx(1j * np.array(iq.shape), x_col, z_col, param).tocsr()
            timing["dasmtx"] += time.perf_counter() - t
        t = time.perf_counter()
        env[:, j] = np.abs(das @ iq.flatten(order="F"))
        timing["das_envelope"] += time.perf_counter() - t
    timing["total"] = time.perf_counter() - t_all - t_diag
    f = np.fft.rfftfreq(2048, 1 / param.fs)
    smooth = int(round(0.5e6 / (f[1] - f[0]))) | 1  # 0.5 MHz boxcar: speckle spectra are noisy
    power = np.convolve(power, np.ones(smooth) / smooth, mode="same")
    band = f[np.sqrt(power / power.max()) >= 0.5]
    f_lo, f_hi = float(band[0]) / 1e6, float(band[-1]) / 1e6
    info = {"scatterers": int(xs.size), "scatterers_per_line_mean": float(np.mean(per_line)),
            "speckle_rf_band_mhz": [f_lo, f_hi], "speckle_rf_centre_mhz": (f_lo + f_hi) / 2,
            "speckle_rf_bandwidth": (f_hi - f_lo) / ((f_lo + f_hi) / 2),
            "rf_samples": int(n_rf), "tx_active_elements": int(active.sum()),
            "phantom_mm": [width * 1e3, height * 1e3], "timing_s": timing}
    return env, info


# --------------------------------------------------------------------------- ours
def our_probe(n: int, f0: float, bandwidth: float, f_number: float,
              tx_cycles: float = 0.0) -> Probe:
    reg = region(n)
    return Probe("linear", f0_mhz=f0, bandwidth=bandwidth, width_mm=reg["width_mm"],
                 focus_mm=reg["focus_mm"], f_number=f_number, n_lines=n, tx_cycles=tx_cycles)


def our_stats(n: int, probe: Probe, seed: int) -> dict:
    """Speckle statistics on a beam grid whose last N rows and N lines are pymust's pixels."""
    reg = region(n)
    grid = BeamGrid(probe, reg["z1_mm"], reg["k1"] + 1, n)
    assert abs(grid.dz - DZ_MM) < 1e-9 and abs(grid.depths[-n] - reg["z0_mm"]) < 1e-9
    runs = []
    for r in range(OUR_REALISATIONS):
        env = beamform(SCENE, grid, QUIET, np.random.default_rng(seed + r)).envelope[-n:]
        runs.append(speckle_stats(env, n))
    out = {}
    for key in ("snr", "axial_mm", "lateral_mm"):
        vals = [s[key] for s in runs]
        out[key] = float(np.mean(vals))
        out[key + "_sd"] = float(np.std(vals, ddof=1))
    return out


def our_timing(n: int, probe: Probe, repeats: int, seed: int) -> dict:
    """Median time of ``simulate`` at out_shape (N, N), after warm-up; also the first call."""
    reg = region(n)
    rng = np.random.default_rng(seed)

    def once() -> float:
        t = time.perf_counter()
        simulate(SCENE, probe, QUIET, depth_mm=reg["z1_mm"], out_shape=(n, n), rng=rng)
        return time.perf_counter() - t

    first = once()
    for _ in range(3):
        once()
    times = [once() for _ in range(repeats)]
    frame = simulate(SCENE, probe, QUIET, depth_mm=reg["z1_mm"], out_shape=(n, n), rng=rng)
    return {"median_s": statistics.median(times), "first_call_s": first, "repeats": repeats,
            "beam_grid": [frame.grid.n_depth, frame.grid.n_lines],
            "display_spacing_mm": frame.display.spacing_mm}


# --------------------------------------------------------------------------- report
def verdict(ratio: float, lo: float | None = None, hi: float | None = None) -> str:
    if lo is not None and hi is not None:
        return "PASS" if lo <= ratio <= hi else "FAIL"
    return "PASS" if ratio >= TARGET_SPEED else "FAIL"


def table(n: int, pm: dict, ours: dict, speed: dict) -> list[str]:
    lines = [f"N = {n} ({n} x {n} pixels, {region(n)['width_mm']:.2f} x "
             f"{region(n)['height_mm']:.2f} mm, focus {region(n)['focus_mm']:.2f} mm)",
             f"  {'quantity':<24}{'pymust':>16}{'ours':>16}{'ours/pymust':>13}"
             f"{'target':>16}  result"]
    for key, name in (("snr", "speckle SNR"), ("axial_mm", "axial speckle (mm)"),
                      ("lateral_mm", "lateral speckle (mm)")):
        ratio = ours[key] / pm[key]
        sd = ours[key + "_sd"]
        lines.append(f"  {name:<24}{pm[key]:>9.3f} +-{sd:<5.3f}{ours[key]:>9.3f} +-{sd:<5.3f}"
                     f"{ratio:>13.3f}{'[0.85, 1.15]':>16}  {verdict(ratio, TARGET_LO, TARGET_HI)}")
    r = speed["ratio"]
    lines.append(f"  {'throughput (images/s)':<24}{1 / speed['pymust_s']:>16.4g}"
                 f"{1 / speed['ours_s']:>16.4g}{r:>13.0f}{'>= 100':>16}  {verdict(r)}")
    lines.append(f"  (Rayleigh SNR theory {RAYLEIGH_SNR:.3f}; +- = sd of one image's estimate, "
                 f"from {OUR_REALISATIONS} of our realisations)")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 128, 64])
    ap.add_argument("--repeats", type=int, default=100, help="timed repeats of ours")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if pymust is None:
        print("SKIP: pymust is not installed (optional benchmark dependency); "
              "install it with: pip install pymust==0.1.9")
        return 0
    t_script = time.perf_counter()

    param, _ = pymust_setup()
    spec = pymust_echo_spectrum(param)
    lam_eff = C / (spec["fc_eff_mhz"] * 1e6) * 1e3  # mm
    d = TX_ELEMENTS * param.pitch * 1e3  # transmit and receive aperture at the focus, mm
    lat = lateral_theory(d, d, FOCUS_MM, lam_eff)
    f_ours = lat["psf_fwhm_mm"] / lam_eff  # same lateral amplitude FWHM
    configs = {
        "datasheet": {"f0_mhz": param.fc / 1e6, "bandwidth": param.bandwidth / 100,
                      "tx_cycles": float(param.TXnow), "f_number": f_ours,
                      "why": "getparam's fc, bandwidth and TXnow (the comparison)"},
        "impulse_matched": {"f0_mhz": spec["fc_eff_mhz"], "bandwidth": spec["bandwidth_eff"],
                            "tx_cycles": 0.0, "f_number": f_ours,
                            "why": "impulse excitation, transducer band = pymust's echo band "
                                   "(check)"},
    }
    ds = configs["datasheet"]
    ds_probe = our_probe(128, ds["f0_mhz"], ds["bandwidth"], f_ours, ds["tx_cycles"])
    th_ours = our_theory(ds_probe)
    ds_psf = psf_for(ds_probe)
    theory = {"pymust_axial_speckle_mm": spec["axial_speckle_mm"],
              "pymust_lateral_speckle_mm": lat["speckle_mm"],
              "pymust_lateral_psf_fwhm_mm": lat["psf_fwhm_mm"],
              "ours_echo_band_mhz": list(ds_psf.echo_band_mhz),
              "ours_fc_mhz": ds_psf.fc_mhz, "ours_echo_bandwidth": ds_psf.echo_bandwidth,
              "ours_axial_speckle_mm": th_ours["axial_speckle_mm"],
              "ours_lateral_speckle_mm": th_ours["lateral_speckle_mm"],
              "axial_ratio": th_ours["axial_speckle_mm"] / spec["axial_speckle_mm"],
              "lateral_ratio": th_ours["lateral_speckle_mm"] / lat["speckle_mm"]}
    print(f"pymust {PROBE_NAME}: fc {param.fc / 1e6:.2f} MHz, bandwidth {param.bandwidth} %, "
          f"pitch {param.pitch * 1e3:.2f} mm; echo spectrum -6 dB band "
          f"{spec['f_lo_mhz']:.2f}-{spec['f_hi_mhz']:.2f} MHz (centre "
          f"{spec['fc_eff_mhz']:.2f} MHz, fractional bandwidth {spec['bandwidth_eff']:.3f})")
    lo, hi = ds_psf.echo_band_mhz
    print(f"ours, Probe(f0 {ds['f0_mhz']:.2f} MHz, bandwidth {ds['bandwidth']:.2f}, tx_cycles "
          f"{ds['tx_cycles']:g}): echo spectrum -6 dB band {lo:.2f}-{hi:.2f} MHz (centre "
          f"{ds_psf.fc_mhz:.2f} MHz, fractional bandwidth {ds_psf.echo_bandwidth:.3f})")
    print(f"focused scan: F# {F_NUMBER:g} (tx {TX_ELEMENTS} elements = {d:.1f} mm at "
          f"{FOCUS_MM:.1f} mm, rx dasmtx fnumber {F_NUMBER:g}); pulse-echo lateral FWHM "
          f"{lat['psf_fwhm_mm']:.3f} mm -> our f_number {f_ours:.3f} "
          f"(= {lat['psf_fwhm_mm'] / (lam_eff * F_NUMBER):.3f} x {F_NUMBER:g})")
    print(f"theory, speckle size ours/pymust: axial {theory['axial_ratio']:.3f}, lateral "
          f"{theory['lateral_ratio']:.3f} (same spectrum shape; Gaussian vs sinc^2 lateral PSF)")
    cell = DENSITY_PER_MM2 * lat["psf_fwhm_mm"] * spec["axial_speckle_mm"]
    theory["scatterers_per_resolution_cell"] = cell
    print(f"phantom: {DENSITY_PER_MM2:g} scatterers/mm^2 (genscat, Rayleigh RC) = {cell:.1f} per "
          f"resolution cell; pixels {DX_MM} x {DZ_MM} mm (lateral x axial)")

    results = {}
    for n in args.sizes:
        reg = region(n)
        env, info = pymust_image(n, args.seed)
        pm = speckle_stats(env, n)
        entry = {"region": {k: v for k, v in reg.items() if not isinstance(v, np.ndarray)},
                 "pymust": {**pm, **info}}
        for name, cfg in configs.items():
            probe = our_probe(n, cfg["f0_mhz"], cfg["bandwidth"], cfg["f_number"],
                              cfg["tx_cycles"])
            ours = our_stats(n, probe, args.seed + 1000)
            timing = our_timing(n, probe, args.repeats, args.seed)
            speed = {"pymust_s": info["timing_s"]["total"], "ours_s": timing["median_s"]}
            speed["ratio"] = speed["pymust_s"] / speed["ours_s"]
            ratios = {k: ours[k] / pm[k] for k in ("snr", "axial_mm", "lateral_mm")}
            entry[name] = {"probe": cfg, "stats": ours, "timing": timing, "throughput": speed,
                           "ratios": ratios,
                           "pass": {**{k: TARGET_LO <= v <= TARGET_HI for k, v in ratios.items()},
                                    "throughput": speed["ratio"] >= TARGET_SPEED}}
            if name == "datasheet":
                print()
                print("\n".join(table(n, pm, ours, speed)))
                tm = info["timing_s"]
                print(f"  pymust {tm['total']:.1f} s/image (simus {tm['simus']:.1f}, rf2iq "
                      f"{tm['rf2iq']:.2f}, dasmtx {tm['dasmtx']:.3f}, DAS+envelope "
                      f"{tm['das_envelope']:.3f}, genscat {tm['genscat']:.3f}; "
                      f"{info['scatterers']} scatterers, {n} transmits); ours "
                      f"{timing['median_s'] * 1e3:.2f} ms/image (median of {timing['repeats']}, "
                      f"first call {timing['first_call_s'] * 1e3:.1f} ms)")
                print(f"  pymust speckle echoes (raw RF): -6 dB band "
                      f"{info['speckle_rf_band_mhz'][0]:.2f}-{info['speckle_rf_band_mhz'][1]:.2f}"
                      f" MHz (centre {info['speckle_rf_centre_mhz']:.2f} MHz, fractional "
                      f"bandwidth {info['speckle_rf_bandwidth']:.3f}) vs point target "
                      f"{spec['f_lo_mhz']:.2f}-{spec['f_hi_mhz']:.2f} MHz")
            else:
                print(f"  check, impulse excitation with pymust's echo band "
                      f"({cfg['f0_mhz']:.2f} MHz, {cfg['bandwidth']:.3f}, F# "
                      f"{cfg['f_number']:.3f}): ours/pymust SNR "
                      f"{ratios['snr']:.3f}, axial {ratios['axial_mm']:.3f}, lateral "
                      f"{ratios['lateral_mm']:.3f}")
        results[str(n)] = entry

    runtime = time.perf_counter() - t_script
    print(f"\nscript runtime {runtime:.1f} s")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "benchmark": "simulator_vs_pymust",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "pymust": importlib.metadata.version("pymust"),
                    "threads": 1},
        "targets": {"ratio_range": [TARGET_LO, TARGET_HI], "throughput_ratio_min": TARGET_SPEED,
                    "rayleigh_snr": RAYLEIGH_SNR},
        "config": {"probe": PROBE_NAME, "c_m_per_s": C, "fs_hz": param.fs,
                   "f_number_tx_rx": F_NUMBER, "tx_elements": TX_ELEMENTS,
                   "elements_per_line": SUB_ELEMENTS, "focus_mm": FOCUS_MM,
                   "pixel_mm": {"dx": DX_MM, "dz": DZ_MM}, "strip_half_width_mm": STRIP_MM,
                   "phantom_pad_z_mm": PAD_Z_MM, "density_per_mm2": DENSITY_PER_MM2,
                   "scan": "one focused transmit per image column, dasmtx per column",
                   "rf2iq": "rf2iq(RF, fs, fc): low-pass cut-off at fc",
                   "our_realisations": OUR_REALISATIONS, "roi": "central half in depth, "
                   "central 80 % laterally", "seed": args.seed,
                   "our_processing": "noise_db=-300, tgc_match=0, atten=0, homogeneous soft"},
        "echo_spectrum": spec, "theory": theory, "results": results,
        "runtime_s": runtime,
    }, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
