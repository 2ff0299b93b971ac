"""B-mode image formation: scatterers, point-spread function, attenuation, envelope, log.

The model is the classical convolution model of ultrasound imaging (Bamber & Dickinson 1980;
Meunier & Bertrand 1995), computed in complex baseband (IQ), which is what scanners do after
demodulation:

1. **Scatterers.** Each cell of the beam grid holds the summed echo of the many sub-resolution
   scatterers inside it: a circular complex Gaussian whose power is the tissue's echogenicity
   squared (fully developed speckle). Where a tissue has few scatterers per resolution cell,
   the cell's power is modulated by a Poisson count (pre-Rayleigh, K-distributed speckle).
   Tissue texture is a smooth log-normal modulation of echogenicity; organ boundaries and
   vessel walls add coherent (specular) echoes.
2. **Propagation.** Two-way, frequency-dependent attenuation (dB/cm/MHz), and transmission
   loss below strong reflectors (bone, calcification, gas): acoustic shadows. Fluid
   attenuates little, so tissue behind a cyst comes out brighter after time-gain
   compensation: posterior enhancement. Both are averaged over the rays a focused scan uses,
   the transmit beam converging on its focus and the receive aperture converging on each
   echo (:func:`two_way_transmission`): shadow edges soften with depth, and an obstacle
   narrower than the beam casts a partial shadow. Both arise from the physics, not from
   painted effects; reverberations inside a shadow are painted echoes
   (``Tissue.reverb``).
3. **Point-spread function.** Axially, the probe's pulse-echo spectrum: a generalised normal
   window around f0 whose -6 dB width is the fractional bandwidth B, with the exponent
   p = ln 126 / ln(2 / B) that makes it vanish at DC and 2 f0 (the pulse-echo probe response
   of SIMUS/MUST, e.g. ``pymust.Param.getProbeFunction``; p = 2 would be a Gaussian,
   p ~ 3-6 for B = 0.45-0.85 is flatter-topped), times the spectrum of the transmit burst
   when the probe says how many cycles it fires (``Probe.tx_cycles``; SIMUS's windowed sine),
   which lowers and narrows the echo band. Laterally a Gaussian of FWHM lambda F# at
   the focus (lambda at the echo's centre frequency) that widens away from it like a
   Gaussian beam. In baseband the PSF is
   separable: the axial spectrum is applied as a filter along depth, the lateral width may
   change with depth (row by row), both in the Fourier domain. ``PSF.sigma_axial_mm`` is the
   sigma of the Gaussian pulse with the same -6 dB echo band (sigma_z = c / (4 pi sigma_f),
   sigma_f = B_echo f_c / 2.355): the scale used to sample the grid.
4. **Receiver.** Electronic noise, time-gain compensation of a nominal tissue attenuation,
   envelope detection (magnitude of IQ), spatial compounding (average of independent
   speckle realisations on premium devices), log compression to the dynamic range, gain.

The grid resolves the PSF whenever the display can: samples are no coarser than the PSF's
sigma unless the display itself is coarser (then speckle is as fine as a display pixel, as
on a real scanner whose image is shown downsized); it is never more than 1.5 x finer than
the display.
Written by hand: pymust/Field II compute the same physics per scatterer and element, which
is orders of magnitude slower; ``benchmarks/bench_simulator_vs_pymust.py`` compares the two.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import scipy.fft as sfft
from scipy.ndimage import gaussian_filter

from .geometry import (C_MM_PER_US, BeamGrid, Display, Probe, linear_taps, make_display,
                       scan_convert)
from .scene import Scene

DB_NEPER = np.log(10) / 20  # amplitude dB -> natural log
FWHM = 2 * np.sqrt(2 * np.log(2))  # 2.3548: Gaussian FWHM / sigma
MIN_SIGMA_SAMPLES = 0.75  # the PSF is never narrower than this many grid samples
# Scanners focus on receive dynamically, so the pulse-echo beam widens away from the transmit
# focus much more slowly than a single fixed-focus Gaussian beam: we stretch the Gaussian
# beam's Rayleigh range by this factor and cap the widening.
RECEIVE_FOCUS_GAIN = 3.0
MAX_WIDENING = 3.0


@dataclass(frozen=True)
class Processing:
    """Receiver and display settings of a device (see :mod:`echocare_lib.sim.devices`).

    dynamic_range_db: span of echo amplitudes mapped from black to white
    gain_db:          overall gain; reference soft tissue shows at gain_db + 0 dB re white
    tgc_match:        fraction of the nominal tissue attenuation the TGC compensates
    nominal_atten:    attenuation (dB/cm/MHz) the TGC assumes
    noise_db:         electronic noise power relative to reference tissue at the probe face
    compounding:      number of independent speckle realisations averaged (1 = off)
    smoothing_px:     speckle-reduction filter (Gaussian sigma in beam samples, after log)
    gamma:            grey-map curve applied to the [0, 1] display values
    max_tgc_db:       ceiling of the time-gain compensation (receivers have finite gain: deep,
                      strongly attenuating tissue fades into darkness and noise, as on scanners)
    """

    dynamic_range_db: float = 60.0
    gain_db: float = -18.0
    tgc_match: float = 1.0
    nominal_atten: float = 0.6
    noise_db: float = -62.0
    compounding: int = 1
    smoothing_px: float = 0.0
    gamma: float = 1.0
    max_tgc_db: float = 50.0


def spectrum_exponent(bandwidth: float) -> float:
    """Exponent p of the generalised normal pulse-echo spectrum exp(-ln2 |2 (f - f0) / (B f0)|^p):
    SIMUS/MUST's rule p = ln 126 / ln(2 / B) (pymust's probe response), for which the
    spectrum is 2^-126 (nil) at DC and at 2 f0 whatever B. A Gaussian (p = 2) of a broadband
    probe's -6 dB width leaks to DC and is more peaked."""
    return float(np.log(126.0) / np.log(2.0 / bandwidth))


def _transducer_spectrum(df_mhz: np.ndarray, f0_mhz: float, bandwidth: float) -> np.ndarray:
    """The probe's pulse-echo amplitude response at ``df_mhz`` from f0, peak 1: the
    generalised normal window of -6 dB width ``bandwidth`` x f0 (see :func:`spectrum_exponent`)."""
    half_band = bandwidth * f0_mhz / 2  # -6 dB half-width, MHz
    return np.exp(-np.log(2) * np.abs(df_mhz / half_band) ** spectrum_exponent(bandwidth))


def excitation_spectrum(f_mhz: np.ndarray, f0_mhz: float, cycles: float) -> np.ndarray:
    """Amplitude spectrum of a transmit burst of ``cycles`` cycles of a sine at ``f0_mhz``
    (a rectangular window of length T = cycles / f0), peak near 1: the Fourier transform of
    sin(2 pi f0 t) on [0, T] is proportional to sinc(T (f - f0)) - sinc(T (f + f0)), as in
    SIMUS/MUST (``pymust.Param.getPulseSpectrumFunction``). Non-negative on (0, 2 f0) for
    one cycle; short bursts weight low frequencies more than high ones."""
    f = np.asarray(f_mhz, np.float64)
    return np.abs(np.sinc(cycles * (f - f0_mhz) / f0_mhz) -
                  np.sinc(cycles * (f + f0_mhz) / f0_mhz))


@dataclass(frozen=True)
class PSF:
    """Pulse-echo PSF. Axial: the amplitude spectrum :meth:`axial_spectrum` (``sigma_axial_mm``
    is the Gaussian-equivalent scale used for sampling). Lateral: Gaussian amplitude sigmas."""

    sigma_axial_mm: float
    sigma_lateral_focus_mm: float
    rayleigh_mm: float
    focus_mm: float
    f0_mhz: float = 5.0
    bandwidth: float = 0.6
    tx_cycles: float = 0.0

    def sigma_lateral_mm(self, depth: np.ndarray) -> np.ndarray:
        widen = np.sqrt(1.0 + ((depth - self.focus_mm) / self.rayleigh_mm) ** 2)
        return self.sigma_lateral_focus_mm * np.minimum(widen, MAX_WIDENING)

    def axial_spectrum(self, df_mhz: np.ndarray) -> np.ndarray:
        """Amplitude of the pulse-echo spectrum at ``df_mhz`` from f0 (baseband), peak 1: the
        transducer's generalised normal window, times the transmit burst's spectrum when
        ``tx_cycles`` > 0."""
        df = np.asarray(df_mhz)
        amp = _transducer_spectrum(df, self.f0_mhz, self.bandwidth)
        if self.tx_cycles > 0:
            peak = _echo_band(self.f0_mhz, self.bandwidth, self.tx_cycles)[2]
            amp = amp * excitation_spectrum(self.f0_mhz + df, self.f0_mhz, self.tx_cycles) / peak
        return amp

    @property
    def echo_band_mhz(self) -> tuple[float, float]:
        """-6 dB band of the echo spectrum (MHz)."""
        return _echo_band(self.f0_mhz, self.bandwidth, self.tx_cycles)[:2]

    @property
    def fc_mhz(self) -> float:
        """Centre frequency of the echo: the middle of its -6 dB band (the IEEE definition);
        f0 for an impulse excitation."""
        if self.tx_cycles == 0:
            return self.f0_mhz
        lo, hi = self.echo_band_mhz
        return (lo + hi) / 2

    @property
    def echo_bandwidth(self) -> float:
        """Fractional -6 dB bandwidth of the echo; the transducer's for an impulse excitation."""
        if self.tx_cycles == 0:
            return self.bandwidth
        lo, hi = self.echo_band_mhz
        return (hi - lo) / ((lo + hi) / 2)

    @property
    def axial_speckle_mm(self) -> float:
        """Axial speckle size of this PSF: FWHM of the intensity autocovariance of fully
        developed speckle, |FT(power spectrum)|^2 at lag 2 dz / c (Wagner et al. 1983)."""
        return _axial_speckle_mm(self.f0_mhz, self.bandwidth, self.tx_cycles)


@lru_cache(maxsize=64)
def _echo_band(f0_mhz: float, bandwidth: float, tx_cycles: float) -> tuple[float, float, float]:
    """(-6 dB low edge, high edge, peak amplitude) of transducer x burst spectrum; for an
    impulse excitation the transducer's band f0 (1 -+ B / 2) exactly, peak 1."""
    if tx_cycles == 0:
        return f0_mhz * (1 - bandwidth / 2), f0_mhz * (1 + bandwidth / 2), 1.0
    f = np.linspace(1e-3 * f0_mhz, 2 * f0_mhz, 20001)
    amp = (_transducer_spectrum(f - f0_mhz, f0_mhz, bandwidth) *
           excitation_spectrum(f, f0_mhz, tx_cycles))
    peak = float(amp.max())
    inside = np.nonzero(amp >= peak / 2)[0]
    return float(f[inside[0]]), float(f[inside[-1]]), peak


@lru_cache(maxsize=64)
def _axial_speckle_mm(f0_mhz: float, bandwidth: float, tx_cycles: float = 0.0) -> float:
    psf = PSF(1.0, 1.0, 1.0, 0.0, f0_mhz, bandwidth, tx_cycles)
    half_band = bandwidth * f0_mhz / 2
    df = np.linspace(-3 * half_band, 3 * half_band, 2001)
    power = psf.axial_spectrum(df) ** 2
    lag = np.linspace(0.0, 3.0 / half_band * C_MM_PER_US / 2, 3001)  # mm; 2 lag / c in us
    acf = np.abs(np.exp(2j * np.pi * np.outer(2 * lag / C_MM_PER_US, df)) @ power) ** 2
    acf /= acf[0]
    k = int(np.nonzero(acf < 0.5)[0][0])
    return float(2 * (lag[k - 1] + (acf[k - 1] - 0.5) / (acf[k - 1] - acf[k]) *
                      (lag[k] - lag[k - 1])))


def psf_for(probe: Probe) -> PSF:
    """Pulse-echo PSF of a probe (amplitude sigmas, mm; the axial spectrum's parameters).
    Both resolutions follow the echo's band: the transducer's, narrowed by the transmit
    burst when ``probe.tx_cycles`` > 0."""
    psf0 = PSF(1.0, 1.0, 1.0, 0.0, probe.f0_mhz, probe.bandwidth, probe.tx_cycles)
    fc = psf0.fc_mhz
    sigma_f = psf0.echo_bandwidth * fc / FWHM  # MHz
    sigma_t = 1.0 / (2 * np.pi * sigma_f)  # us, envelope of the equivalent Gaussian pulse
    sigma_axial = C_MM_PER_US * sigma_t / 2  # two-way: depth = c t / 2
    wavelength = C_MM_PER_US / fc
    sigma_lat = wavelength * probe.f_number / FWHM
    # Gaussian beam: Rayleigh range pi w0^2 / lambda with w0 the 1/e^2 intensity radius.
    w0 = 2 * sigma_lat
    rayleigh = RECEIVE_FOCUS_GAIN * np.pi * w0 ** 2 / wavelength
    return PSF(float(sigma_axial), float(sigma_lat), float(max(rayleigh, 1e-3)),
               float(probe.focus_mm), float(probe.f0_mhz), float(probe.bandwidth),
               float(probe.tx_cycles))


#: Zero-padding of the axial convolution, in Gaussian-equivalent sigmas: the flat-topped
#: pulse rings longer than a Gaussian (-27 dB at 6 sigma for B = 0.85, below -98 dB at 20).
AXIAL_REACH_SIGMAS = 20.0

#: The beam grid is at most this many times finer than the display (finer detail would be
#: averaged away by scan conversion anyway, and costs time).
MAX_OVERSAMPLING = 1.5


def choose_grid(probe: Probe, depth_mm: float, display: Display) -> BeamGrid:
    """Beam grid fine enough for the PSF, no finer than 1.5 x the display's resolution."""
    psf = psf_for(probe)
    disp_rows = max(int(round(depth_mm / display.spacing_mm)), 8)
    n_depth = int(np.clip(round(depth_mm / psf.sigma_axial_mm), disp_rows,
                          MAX_OVERSAMPLING * disp_rows))
    xmin, xmax, _, _ = probe.fov_box(depth_mm)
    disp_cols = max(int(round((xmax - xmin) / display.spacing_mm)), 8)
    n_lines = int(np.clip(probe.n_lines, 8, MAX_OVERSAMPLING * disp_cols))
    return BeamGrid(probe, float(depth_mm), n_depth, n_lines)


@lru_cache(maxsize=64)
def _filters(grid: BeamGrid, pad_z: int, pad_x: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Unit-energy Fourier-domain PSF filters: axial (one per column) and lateral (one per row).

    The axial transform is zero-padded by the pulse's reach (AXIAL_REACH_SIGMAS) so that
    circular convolution cannot wrap the strong near field into the deepest rows (where TGC
    would amplify it into a band)."""
    psf = psf_for(grid.probe)
    nz, nx = grid.n_depth + 2 * pad_z, grid.n_lines + 2 * pad_x
    sig_z = max(psf.sigma_axial_mm / grid.dz, MIN_SIGMA_SAMPLES)
    nz_fft = sfft.next_fast_len(nz + int(np.ceil(AXIAL_REACH_SIGMAS * sig_z)))
    # Axial filter = the pulse-echo spectrum, in baseband: a depth sample is a two-way delay of
    # 2 dz / c, so a frequency of k cycles per sample is k c / (2 dz) from f0. On a grid
    # coarser than the PSF the band is narrowed to keep the pulse MIN_SIGMA_SAMPLES long
    # (speckle as fine as a sample, as on a scanner whose display is coarser than its PSF).
    # Why not a Gaussian of the same -6 dB band: broadband responses are flatter-topped; a
    # Gaussian makes axial speckle 8 % shorter than a SIMUS/MUST (pymust) probe of the same
    # -6 dB band (0.127 vs 0.138 mm for the L11-5v; benchmarks/bench_simulator_vs_pymust.py).
    narrow = sig_z * grid.dz / psf.sigma_axial_mm  # 1 unless the grid is coarse
    df_mhz = sfft.fftfreq(nz_fft) * C_MM_PER_US / (2 * grid.dz) * narrow
    hz = psf.axial_spectrum(df_mhz)
    hz /= np.sqrt(np.sum(hz ** 2) / nz_fft)  # Parseval: unit energy in the sample domain
    depths = np.concatenate([np.full(pad_z, 0.0), grid.depths,
                             np.full(pad_z, grid.depth_mm)])
    spacing = grid.probe.line_spacing_mm(depths, grid.n_lines)
    sig_x = np.maximum(psf.sigma_lateral_mm(depths) / spacing, MIN_SIGMA_SAMPLES)
    kx = sfft.fftfreq(nx)
    hx = np.exp(-2 * np.pi ** 2 * (sig_x[:, None] ** 2) * kx[None, :] ** 2)
    hx /= np.sqrt(np.sum(hx ** 2, axis=1, keepdims=True) / nx)
    return hz.astype(np.complex64)[:, None], hx.astype(np.complex64), nz_fft


def _pads(grid: BeamGrid) -> tuple[int, int]:
    psf = psf_for(grid.probe)
    sig_z = max(psf.sigma_axial_mm / grid.dz, MIN_SIGMA_SAMPLES)
    spacing = grid.probe.line_spacing_mm(np.array([grid.depth_mm]), grid.n_lines)[0]
    sig_x = max(float(psf.sigma_lateral_mm(np.array([0.0, grid.depth_mm])).max()) /
                max(spacing, 1e-6), MIN_SIGMA_SAMPLES)
    return int(np.ceil(3 * sig_z)), min(int(np.ceil(3 * sig_x)), grid.n_lines)


@lru_cache(maxsize=64)
def _extended_xz(grid: BeamGrid, pad_z: int, pad_x: int) -> tuple[np.ndarray, np.ndarray]:
    """Physical coordinates of the grid extended by the PSF's reach on every side, so
    scatterers just outside the field of view still blur into its edges."""
    lo, hi = grid.probe.lateral_extent()
    du = (hi - lo) / max(grid.n_lines - 1, 1)
    u = lo + (np.arange(-pad_x, grid.n_lines + pad_x)) * du
    d = (np.arange(-pad_z, grid.n_depth + pad_z)) * grid.dz
    x, z = grid.probe.to_xz(d[:, None], u[None, :])
    x, z = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(z, np.float32)
    x.setflags(write=False)
    z.setflags(write=False)
    return x, z


@lru_cache(maxsize=8)
def _cell_fraction(grid: BeamGrid, pad_z: int, pad_x: int) -> np.ndarray:
    """Scatterers per grid cell from scatterers per resolution cell: the fraction of a
    resolution cell (FWHM x FWHM) that one cell of the extended grid covers."""
    psf = psf_for(grid.probe)
    z = _extended_xz(grid, pad_z, pad_x)[1]
    spacing = grid.probe.line_spacing_mm(np.clip(z, 0, None), grid.n_lines)
    cell = grid.dz * spacing / (FWHM ** 2 * psf.sigma_axial_mm *
                                psf.sigma_lateral_mm(np.clip(z, 0, None)))
    cell.setflags(write=False)
    return cell


def _smooth_noise(shape, scale_samples: tuple[float, float], rng) -> np.ndarray:
    """Unit-variance Gaussian noise correlated over ``scale_samples`` (axial, lateral)."""
    step = (max(int(scale_samples[0] // 2), 1), max(int(scale_samples[1] // 2), 1))
    small = (max(shape[0] // step[0] + 3, 4), max(shape[1] // step[1] + 3, 4))
    g = gaussian_filter(rng.standard_normal(small, dtype=np.float32), 1.0, mode="wrap")
    g = _zoom_linear(g, (shape[0] / small[0] * 1.0001, shape[1] / small[1] * 1.0001))
    g = g[: shape[0], : shape[1]]
    return (g - g.mean()) / (g.std() + 1e-6)


def _zoom_linear(a: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """``scipy.ndimage.zoom(a, factors, order=1)`` (2-D, mode constant) bit for bit: the
    same float64 products and sums, with the taps computed once per shape and applied along
    rows and columns (zoom evaluates the interpolation weights point by point)."""
    out_shape = tuple(int(round(n * f)) for n, f in zip(a.shape, factors))
    (r0, r1, wr0, wr1), (c0, c1, wc0, wc1) = _zoom_taps(a.shape, out_shape)
    a0, a1 = np.take(a, r0, axis=0), np.take(a, r1, axis=0)
    t = np.take(a0, c0, axis=1) * wr0 * wc0 + 0.0  # + 0.0: a sum started from +0.0, as in C
    t += np.take(a0, c1, axis=1) * wr0 * wc1
    t += np.take(a1, c0, axis=1) * wr1 * wc0
    t += np.take(a1, c1, axis=1) * wr1 * wc1
    out = np.zeros(out_shape, a.dtype)  # output points beyond the input: 0 (mode constant)
    out[: len(r0), : len(c0)] = t
    return out


@lru_cache(maxsize=64)
def _zoom_taps(in_shape: tuple[int, int], out_shape: tuple[int, int]) -> tuple:
    """Per axis: zoom maps output k to input k (n_in - 1) / (n_out - 1); the points within
    [0, n_in - 1] (a leading run) and their taps (weights shaped to broadcast)."""
    factor = np.divide(np.array(in_shape) - 1, np.array(out_shape) - 1,
                       out=np.ones(2), where=np.array(out_shape) != 1)
    axes = []
    for axis, (n_out, n_in, f) in enumerate(zip(out_shape, in_shape, factor)):
        cc = np.arange(n_out, dtype=np.float64) * f
        cc = cc[(cc >= 0) & (cc <= n_in - 1)]
        i0, i1, w0, w1 = linear_taps(cc, n_in, "mirror")
        if axis == 0:
            w0, w1 = w0[:, None], w1[:, None]
        for arr in (i0, i1, w0, w1):
            arr.setflags(write=False)
        axes.append((i0, i1, w0, w1))
    return tuple(axes)


def complex_gaussian(shape, rng) -> np.ndarray:
    """Circular complex Gaussian, unit power: the summed echo of many random scatterers."""
    out = rng.standard_normal((2, *shape), dtype=np.float32)
    field_ = np.empty(shape, np.complex64)
    scale = np.float32(np.sqrt(0.5))
    np.multiply(out[0], scale, out=field_.real)  # written in place: no complex temporaries
    np.multiply(out[1], scale, out=field_.imag)
    return field_


@dataclass
class BeamImage:
    """Beam-grid outputs of one acquisition."""

    grid: BeamGrid
    envelope: np.ndarray  # linear envelope after TGC, reference tissue ~ 1
    display: np.ndarray  # [0, 1] after log compression, gain and grey map
    speckle: np.ndarray  # the complex scatterer field used (for cine decorrelation)
    props: dict = field(default_factory=dict)
    texture: np.ndarray | None = None  # the echogenicity texture field (reuse it in cine)


def texture_field(grid: BeamGrid, rng: np.random.Generator) -> np.ndarray:
    """Two smooth unit-variance noise fields (fine ~0.8 mm, coarse ~2.5 mm) on the extended
    grid; tissues blend them by their texture scale. Pass it back to :func:`beamform` to keep
    the texture still across the frames of a cine loop.

    Memoised on (grid, generator state): cine generators keep the texture still by giving
    every frame a fresh generator with the clip's texture seed (it belongs to the tissue,
    while speckle decorrelates), so the same field would be recomputed for every frame.
    The memo returns it and leaves ``rng`` exactly where drawing it would have: frames are
    bit-for-bit the same, and the texture is drawn once per clip."""
    key = _stream_key(rng)
    if key is not None:
        hit = _TEXTURE_MEMO.get((grid, key))
        if hit is not None:
            field_, after = hit
            rng.bit_generator.state = after
            return field_  # read-only: shared by the frames of the clip
    pad_z, pad_x = _pads(grid)
    shape = _extended_xz(grid, pad_z, pad_x)[0].shape
    mean_spacing = float(np.mean(grid.line_spacing_mm()))
    fine = _smooth_noise(shape, (0.8 / grid.dz, 0.8 / mean_spacing), rng)
    coarse = _smooth_noise(shape, (2.5 / grid.dz, 2.5 / mean_spacing), rng)
    field_ = np.stack([fine, coarse])
    if key is not None:
        if len(_TEXTURE_MEMO) >= 4:  # one clip at a time per process; keep a few
            _TEXTURE_MEMO.pop(next(iter(_TEXTURE_MEMO)))
        memo = field_.copy()
        memo.setflags(write=False)
        _TEXTURE_MEMO[(grid, key)] = (memo, rng.bit_generator.state)
    return field_


_TEXTURE_MEMO: dict = {}


def _stream_key(rng: np.random.Generator) -> tuple | None:
    """Hashable state of a PCG64 generator (the numpy default), else None."""
    st = rng.bit_generator.state
    if st.get("bit_generator") != "PCG64":
        return None
    return (st["state"]["state"], st["state"]["inc"], st["has_uint32"], st["uinteger"])


#: Widest receive aperture (mm) a scanner opens: with a constant receive f-number the aperture
#: grows with depth until it reaches this (typical active apertures: 64-128 elements of a
#: linear array, the whole footprint of a phased array).
MAX_APERTURE_MM = 20.0
#: Attenuation (dB/cm/MHz) above which a tissue is an obstacle (bone, calcification, lung) for
#: the aperture averaging of :func:`two_way_transmission`; soft tissues are below 2.
OBSTACLE_ATTEN = 5.0
#: The aperture averaging's correction is computed on rows this many times coarser (it is
#: smooth in depth: see :func:`_cone_correction`).
CONE_DECIMATION = 4
#: Aperture-averaged shadows are computed in this many depth bands on sector grids (whose line
#: spacing grows with depth); one band is exact on linear grids.
SHADOW_BANDS = 4


def two_way_transmission(atten: np.ndarray, transmit: np.ndarray, grid: BeamGrid,
                         pad_z: int) -> np.ndarray:
    """Two-way amplitude transmission to every sample of the extended beam grid: attenuation
    (dB/cm/MHz at the echo's centre frequency) and transmission loss at strong reflectors,
    averaged over the rays of the transmit beam and of the receive aperture.

    A focused scan does not insonify one line, nor listen along one:

    * **transmit**: the pulse leaves an aperture z_f / F# wide and converges on the transmit
      focus z_f; at depth d' the beam is |z_f - d'| / F# wide (at least lambda F#), whatever
      the depth of the echo. What happens at d' is averaged over that width.
    * **receive**: dynamic focusing listens to an echo from depth d with an aperture d / F#
      wide (up to ``MAX_APERTURE_MM``), so its rays cross depth d' over (d - d') / F#. What
      happens at d' is averaged over that width, which grows with the echo's depth.

    Averaged (a uniform aperture's rays; here a Gaussian of the same variance, as for an
    apodised aperture) are the drops of the line-by-line transmission of obstacles
    (transmission loss at bone, calcification and gas, and attenuation stronger than
    ``OBSTACLE_ATTEN``), G_eff = 1 - sum of averaged drops, and the optical depth of tissue
    attenuation (which varies gently). Where nothing varies laterally this is the
    line-by-line model exactly. Where something does, shadows get edges that soften with
    distance below the obstacle and fill in behind obstacles narrower than the beam: a small
    calcification casts a dense shadow only near the transmit focus, where the beam is narrow
    (why sonographers put the focus at a calcification's depth), a rib casts a dense one
    anywhere; posterior enhancement behind fluid softens alike. Written by hand: pymust and
    Field II get this from summing over elements and scatterers.
    """
    inc = np.empty((2,) + np.shape(atten), np.float32)  # [obstacle drops, tissue optical depth]
    inc[1], tau_obstacle = _optical_depth(atten, grid)
    geo = np.minimum.accumulate(np.asarray(transmit, np.float32), axis=0)
    g = np.empty_like(geo)  # line-by-line obstacle transmission, from the row below the top
    g[0], g[1:] = 1.0, geo[:-1]
    if tau_obstacle is not None:
        g *= np.exp(-np.cumsum(tau_obstacle, axis=0))
    inc[0, 0] = 1.0 - g[0]
    np.subtract(g[:-1], g[1:], out=inc[0, 1:])
    line = np.cumsum(inc, axis=1)  # line by line
    resid = inc - inc.mean(axis=2, keepdims=True)  # what varies across lines
    tx, rx = line, line
    if np.abs(resid).max() > 1e-9:
        tx = line + np.cumsum(_beam_correction(resid, grid, pad_z), axis=1)
        rx = line + _cone_correction(resid, grid, pad_z)
    drops = np.clip(1.0 - tx[0], 0.0, 1.0) * np.clip(1.0 - rx[0], 0.0, 1.0)
    return (drops * np.exp(-(tx[1] + rx[1]))).astype(np.float32)


def _neper(grid: BeamGrid) -> float:
    """One-way nepers per sample per dB/cm/MHz at the echo's centre frequency."""
    return psf_for(grid.probe).fc_mhz * (grid.dz / 10.0) * DB_NEPER


def _optical_depth(atten: np.ndarray, grid: BeamGrid) -> tuple[np.ndarray, np.ndarray | None]:
    """One-way optical depth (nepers) per sample at the echo's centre frequency, split into
    tissue and obstacles (attenuation above ``OBSTACLE_ATTEN``; None when there are none)."""
    atten = np.asarray(atten, np.float32)
    tau = atten * np.float32(_neper(grid))
    strong = atten > OBSTACLE_ATTEN
    if not strong.any():
        return tau, None
    tau_obstacle = np.where(strong, tau, np.float32(0.0))
    return tau - tau_obstacle, tau_obstacle


def _beam_correction(resid: np.ndarray, grid: BeamGrid, pad_z: int) -> np.ndarray:
    """What averaging each row of ``resid`` [maps, depth, line] over the transmit beam's
    width at that row's depth changes (averaged minus as is; see
    :func:`two_way_transmission`)."""
    kern, pad = _beam_kernel(grid, pad_z)
    nx = resid.shape[2]
    src = _pad_lines(resid, pad, _padded_width(nx, pad))
    spread = sfft.irfft(sfft.rfft(src, axis=2, workers=1) * kern[None], n=src.shape[2],
                        axis=2, workers=1)[:, :, pad: pad + nx]
    return spread - resid


@lru_cache(maxsize=64)
def _beam_kernel(grid: BeamGrid, pad_z: int) -> tuple[np.ndarray, int]:
    """Per-row lateral rFFT of the transmit beam's averaging kernel (sampled Gaussian with the
    variance of a box as wide as the beam), and the lateral padding it needs."""
    nz, nx = grid.n_depth + 2 * pad_z, grid.n_lines + 2 * _pads(grid)[1]
    pr = grid.probe
    depths = np.clip((np.arange(nz) - pad_z) * grid.dz, 0.0, None)
    f_number = max(pr.f_number, 0.5)
    width_mm = np.clip(np.abs(pr.focus_mm - depths) / f_number,
                       C_MM_PER_US / psf_for(pr).fc_mhz * f_number, MAX_APERTURE_MM)
    sigma = width_mm / np.sqrt(12.0) / pr.line_spacing_mm(depths, grid.n_lines)  # lines
    pad = int(min(np.ceil(3 * sigma.max()), nx - 1))
    kern = _gaussian_spectra(sigma, _padded_width(nx, pad)).astype(np.complex64)
    kern.setflags(write=False)
    return kern, pad


def clear_transmission(atten: np.ndarray, grid: BeamGrid) -> np.ndarray:
    """One-way transmission at each depth through the average tissue of that depth, without
    obstacles: the path of a reverberation (``Tissue.reverb``), which bounces in the tissue
    above the interface that casts the shadow it is seen in. Shape (depth, 1)."""
    atten = np.asarray(atten, np.float64)
    tau = np.where(atten > OBSTACLE_ATTEN, 0.0, atten).mean(axis=1, keepdims=True) * _neper(grid)
    return np.exp(-np.cumsum(tau, axis=0)).astype(np.float32)


def _cone_correction(resid: np.ndarray, grid: BeamGrid, pad_z: int) -> np.ndarray:
    """What averaging over the receive aperture's cone changes in the sum down each line of
    ``resid`` [maps, depth, line]: sum_{d' <= d} (resid(d', .) * (K_{d - d'} - identity))(u)
    (see :func:`two_way_transmission`).

    The correction is nil at lag 0 and changes smoothly with depth (the kernel widens
    linearly with the lag), so it is computed on rows ``CONE_DECIMATION`` times coarser
    (increments summed in blocks) and interpolated back: the sharp start of a shadow right
    below an obstacle comes from the exact line-by-line sum, the widening penumbra from the
    correction (measured on a rib and a calcification: within 0.015 of the full-resolution
    sum, 1 % at the 99th percentile). Convolution by FFT, causal in depth, with one kernel
    per depth band (one band on linear grids)."""
    q = CONE_DECIMATION
    nm, nz, nx = resid.shape
    nzc = -(-nz // q)
    r = np.zeros((nm, nzc * q, nx), np.float32)
    r[:, :nz] = resid
    r = r.reshape(nm, nzc, q, nx).sum(axis=2)  # increments add up in depth
    varies = np.abs(r).max(axis=(0, 2)) > 1e-9
    bands = [(lo, hi) for lo, hi in _bands(grid.probe.kind, nzc) if varies[lo:hi].any()]
    depths = np.clip((np.arange(nzc) * q + (q - 1) / 2 - pad_z) * grid.dz, 0.0, None)
    spacings = tuple(round(float(grid.probe.line_spacing_mm(
        np.array([depths[(lo + hi - 1) // 2]]), grid.n_lines)[0]), 6) for lo, hi in bands)
    kern, pad = _cone_kernel(nzc, q * grid.dz, spacings, grid.probe.f_number, nx)
    # every band's sources at their own rows (the kernel is causal in lag), transformed
    # together; the bands' convolutions add up before the inverse transforms
    src = np.zeros((len(bands), nm, nzc, nx), np.float32)
    for k, (lo, hi) in enumerate(bands):
        src[k, :, lo:hi] = r[:, lo:hi]
    src = _pad_lines(src, pad, _padded_width(nx, pad))
    spec = sfft.fft(sfft.rfft(src, axis=3, workers=1), n=kern.shape[1], axis=2, workers=1)
    spec = np.einsum("bmzk,bzk->mzk", spec, kern)
    conv = sfft.ifft(spec, axis=1, workers=1)[:, :nzc]
    corr = sfft.irfft(conv, n=src.shape[3], axis=2, workers=1)[:, :, pad: pad + nx]
    return _upsample_depth(corr, q, nz)


def _gaussian_spectra(sigma: np.ndarray, m: int) -> np.ndarray:
    """Lateral rFFTs of unit-sum Gaussians of ``sigma`` lines (any shape) sampled on a circle
    of ``m`` lines. Sampled in space, not in frequency: no ringing when sigma is under a line;
    sigma 0 is the identity."""
    j = np.arange(m)
    j = np.minimum(j, m - j)  # circular distance in lines
    kern = np.exp(-0.5 * (j / np.maximum(np.asarray(sigma)[..., None], 1e-3)) ** 2)
    return sfft.rfft(kern / kern.sum(axis=-1, keepdims=True), axis=-1, workers=1)


def _padded_width(nx: int, pad: int) -> int:
    """Lines after padding ``nx`` by at least ``pad`` on each side: a fast FFT length (the
    extra lines go on the right), so that no transform has a large prime factor."""
    return sfft.next_fast_len(nx + 2 * pad, real=True)


def _pad_lines(a: np.ndarray, pad: int, width: int) -> np.ndarray:
    """``a`` padded along its last axis (lines) to ``width``: ``pad`` lines on the left, the
    rest on the right, mirrored (the tissue goes on beyond the field of view)."""
    nx = a.shape[-1]
    right = width - nx - pad
    mode = "reflect" if max(pad, right) < nx else "edge"
    return np.pad(a, [(0, 0)] * (a.ndim - 1) + [(pad, right)], mode=mode)


def _upsample_depth(a: np.ndarray, q: int, n: int) -> np.ndarray:
    """Linear interpolation of [maps, rows, cols] along rows, from blocks of q rows (centres
    at q i + (q - 1) / 2) back to n rows, clamped at the ends."""
    c = np.clip((np.arange(n) - (q - 1) / 2) / q, 0, a.shape[1] - 1)
    i0 = np.floor(c).astype(int)
    i1 = np.minimum(i0 + 1, a.shape[1] - 1)
    w = (c - i0)[None, :, None]
    return np.take(a, i0, axis=1) * (1 - w) + np.take(a, i1, axis=1) * w


def _bands(kind: str, nz: int) -> list[tuple[int, int]]:
    """Row ranges [lo, hi) with one kernel each: all rows on a linear grid (line spacing is
    the same at every depth), ``SHADOW_BANDS`` equal ranges on sector grids."""
    if kind == "linear":
        return [(0, nz)]
    edges = np.linspace(0, nz, SHADOW_BANDS + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


@lru_cache(maxsize=64)
def _cone_kernel(n: int, dz: float, spacings: tuple[float, ...], f_number: float,
                 nx: int) -> tuple[np.ndarray, int]:
    """Spectra (depth-lag FFT x lateral rFFT), one per band, of the aperture-cone kernel minus
    the identity for ``n`` lags of ``dz`` mm and ``nx`` lines ``spacings[band]`` mm apart, and
    the lateral padding they need. At lag L the kernel is a sampled Gaussian (in lines) with
    the variance of a box as wide as the cone, min(L dz / F#, MAX_APERTURE_MM) mm. Sampled in
    space, not in frequency: no ringing when the width is under a line; lag 0 is the
    identity."""
    width_mm = np.minimum(np.arange(n) * dz / max(f_number, 0.5), MAX_APERTURE_MM)
    sigma = width_mm[None, :] / np.sqrt(12.0) / np.asarray(spacings)[:, None]  # in lines
    pad = int(min(np.ceil(3 * sigma.max(initial=0.0)), nx - 1))
    kern = _gaussian_spectra(sigma, _padded_width(nx, pad)) - 1.0
    kern = sfft.fft(kern, n=sfft.next_fast_len(2 * n - 1), axis=1, workers=1)
    kern = kern.astype(np.complex64)
    kern.setflags(write=False)
    return kern, pad


def beamform(scene: Scene, grid: BeamGrid, proc: Processing, rng: np.random.Generator,
             speckle: np.ndarray | None = None, texture: np.ndarray | None = None,
             props: dict | None = None) -> BeamImage:
    """Form the B-mode image of ``scene`` on ``grid`` (see the module docstring).

    ``speckle`` and ``texture`` (from a previous frame's :class:`BeamImage`) keep a cine
    loop's scatterers and texture coherent; ``props`` reuses sampled scene maps."""
    pad_z, pad_x = _pads(grid)
    x, z = _extended_xz(grid, pad_z, pad_x)
    props = props if props is not None else scene.properties(x, z)
    shape = x.shape

    # 1. scatterers: echogenicity x texture x random phasors
    echo = props["echo"]
    contrast = props["tex_contrast"]
    if np.any(contrast > 0):
        if texture is None or texture.shape[1:] != shape:
            texture = texture_field(grid, rng)
        w = np.clip((props["tex_scale"] - 0.8) / 1.7, 0.0, 1.0)
        g = (1 - w) * texture[0] + w * texture[1]
        echo = echo * np.exp(contrast * g - 0.5 * contrast ** 2)
    if speckle is None or speckle.shape != shape:
        speckle = complex_gaussian(shape, rng)
    amp = echo.astype(np.float32)
    sparse = props["density"] < 30
    if np.any(sparse):
        cell = _cell_fraction(grid, pad_z, pad_x)
        lam = np.maximum(props["density"][sparse] * cell[sparse], 1e-3)
        counts = rng.poisson(lam).astype(np.float32)
        amp[sparse] *= np.sqrt(counts / lam)
    field_ = speckle * amp
    # Specular boundary echoes: coherent along the boundary (no random phase).
    field_ = field_ + props["wall"].astype(np.complex64)
    field_[:pad_z] = 0  # nothing scatters above the probe face

    # 2. propagation: attenuation and transmission loss, averaged over each echo's aperture
    f0 = psf_for(grid.probe).fc_mhz  # the echo's centre frequency (f0 unless a burst is set)
    if "_two_way" not in props:  # compounding re-enters with the same maps
        props["_two_way"] = two_way_transmission(props["atten"], props["transmit"], grid,
                                                 pad_z)
    depth = np.clip((np.arange(shape[0]) - pad_z) * grid.dz, 0, None)[:, None]
    gain_tgc = np.minimum(proc.nominal_atten * proc.tgc_match * 2 * f0 * depth / 10.0,
                          proc.max_tgc_db)  # dB
    field_ = field_ * props["_two_way"]
    if "reverb" in props:  # reverberations: in the shadow, not shadowed
        field_ = field_ + props["reverb"] * np.square(clear_transmission(props["atten"], grid))

    # electronic noise enters at the receiver, before TGC
    noise = complex_gaussian(shape, rng) * np.float32(10 ** (proc.noise_db / 20))
    field_ = field_ + noise

    # 3. PSF: lateral (row-dependent width) then axial, in the Fourier domain
    hz, hx, nz_fft = _filters(grid, pad_z, pad_x)
    field_ = sfft.ifft(sfft.fft(field_, axis=1, workers=1) * hx, axis=1, workers=1)
    field_ = sfft.ifft(sfft.fft(field_, n=nz_fft, axis=0, workers=1) * hz, axis=0, workers=1)
    field_ = field_[pad_z: pad_z + grid.n_depth, pad_x: pad_x + grid.n_lines]

    # 4. receiver: TGC, envelope, compounding, log compression
    tgc = np.exp(DB_NEPER * gain_tgc[pad_z: pad_z + grid.n_depth]).astype(np.float32)
    envelope = np.abs(field_).astype(np.float32) * tgc
    if proc.compounding > 1:
        acc = envelope.copy()
        single = Processing(**{**proc.__dict__, "compounding": 1, "smoothing_px": 0.0})
        for _ in range(proc.compounding - 1):
            other = beamform(scene, grid, single, rng, texture=texture, props=props)
            acc += other.envelope
        envelope = acc / proc.compounding
    display = log_compress(envelope, proc)
    if proc.smoothing_px > 0:
        display = gaussian_filter(display, proc.smoothing_px)
    return BeamImage(grid, envelope, display, speckle, props, texture)


def log_compress(envelope: np.ndarray, proc: Processing) -> np.ndarray:
    """Envelope -> [0, 1] display values: 20 log10, gain, dynamic range, grey map."""
    db = 20 * np.log10(np.maximum(envelope, 1e-6)) + proc.gain_db
    out = np.clip((db + proc.dynamic_range_db) / proc.dynamic_range_db, 0.0, 1.0)
    if proc.gamma != 1.0:
        out = out ** proc.gamma
    return out.astype(np.float32)


@dataclass
class Frame:
    """A simulated B-mode frame on display pixels, with what is needed to label it."""

    image: np.ndarray  # float32 [H, W] in [0, 1]
    fov: np.ndarray  # bool [H, W]: inside the imaged field of view
    display: Display
    grid: BeamGrid
    beam: BeamImage

    @property
    def pixel_spacing_mm(self) -> float:
        return self.display.spacing_mm

    def pixel_xz(self) -> tuple[np.ndarray, np.ndarray]:
        return self.display.pixel_centres()

    def label_map(self, scene: Scene, names: list[str] | None = None) -> np.ndarray:
        x, z = self.pixel_xz()
        return np.where(self.fov, scene.label_map(x, z, names), 0).astype(np.uint8)

    def mask(self, scene: Scene, label: str) -> np.ndarray:
        x, z = self.pixel_xz()
        return scene.mask(x, z, label) & self.fov


def simulate(scene: Scene, probe: Probe, proc: Processing, *, depth_mm: float,
             out_shape: tuple[int, int], rng: np.random.Generator, margin: float = 0.0,
             speckle: np.ndarray | None = None, texture: np.ndarray | None = None) -> Frame:
    """Simulate one B-mode frame of ``scene`` and scan-convert it to ``out_shape`` pixels."""
    h, w = out_shape
    display = make_display(probe, depth_mm, h, w, margin)
    grid = choose_grid(probe, depth_mm, display)
    beam = beamform(scene, grid, proc, rng, speckle, texture)
    image, fov = scan_convert(beam.display, grid, display)
    return Frame(image, fov, display, grid, beam)


def decorrelate(speckle: np.ndarray, correlation: float, rng: np.random.Generator) -> np.ndarray:
    """Next frame's scatterer field for a cine loop: keeps ``correlation`` of the previous
    speckle (slow probe or tissue motion decorrelates speckle gradually)."""
    c = float(np.clip(correlation, 0.0, 1.0))
    return (c * speckle + np.sqrt(1 - c * c) * complex_gaussian(speckle.shape, rng)).astype(
        np.complex64)
