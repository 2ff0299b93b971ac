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
3. **Point-spread function.** The pulse-echo PSF of a Gaussian-modulated pulse at the probe's
   centre frequency: axially a Gaussian envelope set by the bandwidth
   (sigma_z = c / (4 pi sigma_f), sigma_f = B f0 / 2.355), laterally a Gaussian of FWHM
   lambda F# at the focus that widens away from it like a Gaussian beam. In baseband the
   Gaussian-modulated pulse is its envelope, so the convolution is separable; the lateral
   width may change with depth (applied row by row in the Fourier domain).
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
from scipy.ndimage import gaussian_filter, zoom

from .geometry import C_MM_PER_US, BeamGrid, Display, Probe, make_display, scan_convert
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


@dataclass(frozen=True)
class PSF:
    sigma_axial_mm: float
    sigma_lateral_focus_mm: float
    rayleigh_mm: float
    focus_mm: float

    def sigma_lateral_mm(self, depth: np.ndarray) -> np.ndarray:
        widen = np.sqrt(1.0 + ((depth - self.focus_mm) / self.rayleigh_mm) ** 2)
        return self.sigma_lateral_focus_mm * np.minimum(widen, MAX_WIDENING)


def psf_for(probe: Probe) -> PSF:
    """Gaussian pulse-echo PSF of a probe (amplitude sigmas, mm)."""
    sigma_f = probe.bandwidth * probe.f0_mhz / FWHM  # MHz
    sigma_t = 1.0 / (2 * np.pi * sigma_f)  # us, envelope of the pulse-echo waveform
    sigma_axial = C_MM_PER_US * sigma_t / 2  # two-way: depth = c t / 2
    sigma_lat = probe.wavelength_mm * probe.f_number / FWHM
    # Gaussian beam: Rayleigh range pi w0^2 / lambda with w0 the 1/e^2 intensity radius.
    w0 = 2 * sigma_lat
    rayleigh = RECEIVE_FOCUS_GAIN * np.pi * w0 ** 2 / probe.wavelength_mm
    return PSF(float(sigma_axial), float(sigma_lat), float(max(rayleigh, 1e-3)),
               float(probe.focus_mm))


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

    The axial transform is zero-padded by 6 sigma so that circular convolution cannot wrap
    the strong near field into the deepest rows (where TGC would amplify it into a band)."""
    psf = psf_for(grid.probe)
    nz, nx = grid.n_depth + 2 * pad_z, grid.n_lines + 2 * pad_x
    sig_z = max(psf.sigma_axial_mm / grid.dz, MIN_SIGMA_SAMPLES)
    nz_fft = sfft.next_fast_len(nz + int(np.ceil(6 * sig_z)))
    kz = sfft.fftfreq(nz_fft)
    hz = np.exp(-2 * np.pi ** 2 * sig_z ** 2 * kz ** 2)
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


def _smooth_noise(shape, scale_samples: tuple[float, float], rng) -> np.ndarray:
    """Unit-variance Gaussian noise correlated over ``scale_samples`` (axial, lateral)."""
    step = (max(int(scale_samples[0] // 2), 1), max(int(scale_samples[1] // 2), 1))
    small = (max(shape[0] // step[0] + 3, 4), max(shape[1] // step[1] + 3, 4))
    g = gaussian_filter(rng.standard_normal(small, dtype=np.float32), 1.0, mode="wrap")
    g = zoom(g, (shape[0] / small[0] * 1.0001, shape[1] / small[1] * 1.0001), order=1)
    g = g[: shape[0], : shape[1]]
    return (g - g.mean()) / (g.std() + 1e-6)


def complex_gaussian(shape, rng) -> np.ndarray:
    """Circular complex Gaussian, unit power: the summed echo of many random scatterers."""
    out = rng.standard_normal((2, *shape), dtype=np.float32)
    return (out[0] + 1j * out[1]).astype(np.complex64) * np.float32(np.sqrt(0.5))


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
    the texture still across the frames of a cine loop."""
    pad_z, pad_x = _pads(grid)
    shape = _extended_xz(grid, pad_z, pad_x)[0].shape
    mean_spacing = float(np.mean(grid.line_spacing_mm()))
    fine = _smooth_noise(shape, (0.8 / grid.dz, 0.8 / mean_spacing), rng)
    coarse = _smooth_noise(shape, (2.5 / grid.dz, 2.5 / mean_spacing), rng)
    return np.stack([fine, coarse])


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
    psf = psf_for(grid.probe)

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
        # Scatterers per grid cell from scatterers per resolution cell.
        spacing = grid.probe.line_spacing_mm(np.clip(z, 0, None), grid.n_lines)
        cell = grid.dz * spacing / (FWHM ** 2 * psf.sigma_axial_mm *
                                    psf.sigma_lateral_mm(np.clip(z, 0, None)))
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
