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
2. **Propagation.** Two-way, frequency-dependent attenuation along each beam line
   (dB/cm/MHz), and transmission loss below strong reflectors (bone, calcification, gas):
   acoustic shadows. Fluid attenuates little, so tissue behind a cyst comes out brighter
   after time-gain compensation: posterior enhancement. Both arise from the physics, not
   from painted effects.
3. **Point-spread function.** Axially, the probe's pulse-echo spectrum: a generalised normal
   window around f0 whose -6 dB width is the fractional bandwidth B, with the exponent
   p = ln 126 / ln(2 / B) that makes it vanish at DC and 2 f0 (the pulse-echo probe response
   of SIMUS/MUST, e.g. ``pymust.Param.getProbeFunction``; p = 2 would be a Gaussian,
   p ~ 3-6 for B = 0.45-0.85 is flatter-topped). Laterally a Gaussian of FWHM lambda F# at
   the focus that widens away from it like a Gaussian beam. In baseband the PSF is
   separable: the axial spectrum is applied as a filter along depth, the lateral width may
   change with depth (row by row), both in the Fourier domain. ``PSF.sigma_axial_mm`` is the
   sigma of the Gaussian pulse with the same -6 dB band (sigma_z = c / (4 pi sigma_f),
   sigma_f = B f0 / 2.355): the scale used to sample the grid.
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

    def sigma_lateral_mm(self, depth: np.ndarray) -> np.ndarray:
        widen = np.sqrt(1.0 + ((depth - self.focus_mm) / self.rayleigh_mm) ** 2)
        return self.sigma_lateral_focus_mm * np.minimum(widen, MAX_WIDENING)

    def axial_spectrum(self, df_mhz: np.ndarray) -> np.ndarray:
        """Amplitude of the pulse-echo spectrum at ``df_mhz`` from f0 (baseband), peak 1."""
        half_band = self.bandwidth * self.f0_mhz / 2  # -6 dB half-width, MHz
        p = spectrum_exponent(self.bandwidth)
        return np.exp(-np.log(2) * np.abs(np.asarray(df_mhz) / half_band) ** p)

    @property
    def axial_speckle_mm(self) -> float:
        """Axial speckle size of this PSF: FWHM of the intensity autocovariance of fully
        developed speckle, |FT(power spectrum)|^2 at lag 2 dz / c (Wagner et al. 1983)."""
        return _axial_speckle_mm(self.f0_mhz, self.bandwidth)


@lru_cache(maxsize=64)
def _axial_speckle_mm(f0_mhz: float, bandwidth: float) -> float:
    psf = PSF(1.0, 1.0, 1.0, 0.0, f0_mhz, bandwidth)
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
    """Pulse-echo PSF of a probe (amplitude sigmas, mm; the axial spectrum's parameters)."""
    sigma_f = probe.bandwidth * probe.f0_mhz / FWHM  # MHz
    sigma_t = 1.0 / (2 * np.pi * sigma_f)  # us, envelope of the equivalent Gaussian pulse
    sigma_axial = C_MM_PER_US * sigma_t / 2  # two-way: depth = c t / 2
    sigma_lat = probe.wavelength_mm * probe.f_number / FWHM
    # Gaussian beam: Rayleigh range pi w0^2 / lambda with w0 the 1/e^2 intensity radius.
    w0 = 2 * sigma_lat
    rayleigh = RECEIVE_FOCUS_GAIN * np.pi * w0 ** 2 / probe.wavelength_mm
    return PSF(float(sigma_axial), float(sigma_lat), float(max(rayleigh, 1e-3)),
               float(probe.focus_mm), float(probe.f0_mhz), float(probe.bandwidth))


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

    # 2. propagation: two-way attenuation and transmission loss along each beam line
    dz_cm = grid.dz / 10.0
    f0 = grid.probe.f0_mhz
    att_db = np.cumsum(props["atten"], axis=0) * (2 * f0 * dz_cm)
    transmit = np.minimum.accumulate(props["transmit"], axis=0)
    transmit = np.vstack([np.ones((1, shape[1]), np.float32), transmit[:-1]])
    depth = np.clip((np.arange(shape[0]) - pad_z) * grid.dz, 0, None)[:, None]
    gain_tgc = np.minimum(proc.nominal_atten * proc.tgc_match * 2 * f0 * depth / 10.0,
                          proc.max_tgc_db)  # dB
    field_ = field_ * (np.exp(-DB_NEPER * att_db) * transmit ** 2).astype(np.float32)

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
