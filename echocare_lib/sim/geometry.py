"""Probe geometries, the acquisition (beam) grid, and scan conversion to a display image.

Three probe kinds, as on real scanners:

* ``linear``: parallel beam lines across a flat aperture; rectangular field of view.
* ``convex``: beam lines fanning out from a curved face of radius R; sector with a curved top.
* ``phased``: beam lines steered from a point-like aperture; a pie-slice sector (cardiac).

The simulator forms echoes on the beam grid (depth sample x beam line), where the
point-spread function is separable, then scan-converts to square display pixels with
bilinear interpolation; pixels outside the field of view are black, as on a scanner.
Written by hand: scan conversion is a few lines of geometry around scipy's
``map_coordinates``; no maintained library offers it for these three probe kinds.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import map_coordinates

C_MM_PER_US = 1.54  # speed of sound in soft tissue, mm/us

KINDS = ("linear", "convex", "phased")


@dataclass(frozen=True)
class Probe:
    """A transducer and its imaging set-up.

    f0_mhz:     centre frequency
    bandwidth:  fractional -6 dB pulse-echo bandwidth of the transducer (0.4 narrow-band ...
                0.9 broadband)
    tx_cycles:  transmit excitation: 0 = ``bandwidth`` is the whole echo spectrum (an ideal
                impulse); n > 0 = a windowed sine of n cycles at f0 (SIMUS/MUST's ``TXnow``),
                whose spectrum multiplies the transducer's (lower, narrower echo band)
    width_mm:   linear aperture footprint (linear probes)
    radius_mm:  radius of curvature of the face (convex probes)
    sector_deg: opening angle of the field of view (convex and phased probes)
    focus_mm:   transmit focal depth
    f_number:   effective pulse-echo f-number at the focus (lateral resolution ~ lambda F#)
    n_lines:    number of beam lines (line density limits lateral sampling on cheap devices)
    """

    kind: str = "linear"
    f0_mhz: float = 7.5
    bandwidth: float = 0.6
    width_mm: float = 38.0
    radius_mm: float = 50.0
    sector_deg: float = 70.0
    focus_mm: float = 20.0
    f_number: float = 2.0
    n_lines: int = 192
    tx_cycles: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"probe kind must be one of {KINDS}, got {self.kind!r}")
        if not (0.5 <= self.f0_mhz <= 30):
            raise ValueError(f"f0_mhz={self.f0_mhz} is outside 0.5-30 MHz")
        if not (0.1 <= self.bandwidth <= 1.5):
            raise ValueError(f"bandwidth={self.bandwidth} (fractional) is outside 0.1-1.5")
        if not (self.tx_cycles == 0 or 0.5 <= self.tx_cycles <= 50):
            raise ValueError(f"tx_cycles={self.tx_cycles} must be 0 (impulse excitation) or "
                             "0.5-50 cycles")

    @property
    def wavelength_mm(self) -> float:
        return C_MM_PER_US / self.f0_mhz

    def lateral_extent(self) -> tuple[float, float]:
        """Line coordinate range: mm for linear probes, radians for convex and phased."""
        if self.kind == "linear":
            return -self.width_mm / 2, self.width_mm / 2
        half = np.deg2rad(self.sector_deg) / 2
        return -half, half

    def to_xz(self, depth: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Physical (x, z) in mm of the point at ``depth`` along the beam line ``u``."""
        if self.kind == "linear":
            return np.broadcast_to(u, np.broadcast(depth, u).shape), np.broadcast_to(
                depth, np.broadcast(depth, u).shape)
        if self.kind == "convex":
            r = self.radius_mm + depth
            return r * np.sin(u), r * np.cos(u) - self.radius_mm
        return depth * np.sin(u), depth * np.cos(u)

    def from_xz(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`to_xz`: (depth along the line, line coordinate u)."""
        if self.kind == "linear":
            return z, x
        if self.kind == "convex":
            zz = z + self.radius_mm
            return np.hypot(x, zz) - self.radius_mm, np.arctan2(x, zz)
        return np.hypot(x, z), np.arctan2(x, z)

    def line_spacing_mm(self, depth: np.ndarray, n_lines: int) -> np.ndarray:
        """Distance between neighbouring beam lines at each depth, in mm."""
        lo, hi = self.lateral_extent()
        du = (hi - lo) / max(n_lines - 1, 1)
        if self.kind == "linear":
            return np.full_like(depth, du, dtype=np.float64)
        base = self.radius_mm if self.kind == "convex" else 0.0
        return np.maximum((base + depth) * du, 1e-3)

    def fov_box(self, depth_mm: float) -> tuple[float, float, float, float]:
        """(xmin, xmax, zmin, zmax) in mm enclosing the field of view."""
        if self.kind == "linear":
            return -self.width_mm / 2, self.width_mm / 2, 0.0, depth_mm
        half = np.deg2rad(self.sector_deg) / 2
        if self.kind == "convex":
            r = self.radius_mm + depth_mm
            return (-r * np.sin(half), r * np.sin(half),
                    self.radius_mm * np.cos(half) - self.radius_mm, depth_mm)
        return -depth_mm * np.sin(half), depth_mm * np.sin(half), 0.0, depth_mm


@dataclass(frozen=True)
class BeamGrid:
    """Depth samples x beam lines, with their physical coordinates."""

    probe: Probe
    depth_mm: float
    n_depth: int
    n_lines: int

    @property
    def depths(self) -> np.ndarray:
        return np.linspace(0.0, self.depth_mm, self.n_depth)

    @property
    def dz(self) -> float:
        return self.depth_mm / (self.n_depth - 1)

    @property
    def u(self) -> np.ndarray:
        lo, hi = self.probe.lateral_extent()
        return np.linspace(lo, hi, self.n_lines)

    def xz(self) -> tuple[np.ndarray, np.ndarray]:
        return _grid_xz(self)

    def line_spacing_mm(self) -> np.ndarray:
        return self.probe.line_spacing_mm(self.depths, self.n_lines)


@lru_cache(maxsize=64)
def _grid_xz(grid: BeamGrid) -> tuple[np.ndarray, np.ndarray]:
    d = grid.depths[:, None]
    x, z = grid.probe.to_xz(d, grid.u[None, :])
    x, z = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(z, np.float32)
    x.setflags(write=False)
    z.setflags(write=False)
    return x, z


@dataclass(frozen=True)
class Display:
    """Square display pixels covering a physical window; ``fov`` marks the imaged sector."""

    height: int
    width: int
    x0: float  # physical x (mm) of the left edge of pixel column 0
    z0: float  # physical z (mm) of the top edge of pixel row 0
    spacing_mm: float

    def pixel_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, z) of every pixel centre, mm: cached, read-only arrays (shared by the label
        maps of every frame with this display)."""
        return _pixel_centres(self)

    def to_pixel(self, x_mm, z_mm) -> tuple[np.ndarray, np.ndarray]:
        """Physical mm -> continuous pixel coordinates (col, row), pixel centres at k + 0.5."""
        return ((np.asarray(x_mm) - self.x0) / self.spacing_mm,
                (np.asarray(z_mm) - self.z0) / self.spacing_mm)


@lru_cache(maxsize=16)
def _pixel_centres(display: Display) -> tuple[np.ndarray, np.ndarray]:
    xs = display.x0 + (np.arange(display.width) + 0.5) * display.spacing_mm
    zs = display.z0 + (np.arange(display.height) + 0.5) * display.spacing_mm
    x, z = np.meshgrid(xs.astype(np.float32), zs.astype(np.float32))
    x.setflags(write=False)
    z.setflags(write=False)
    return x, z


def make_display(probe: Probe, depth_mm: float, height: int, width: int,
                 margin: float = 0.0) -> Display:
    """Isotropic pixels with the field of view centred; ``margin`` (fraction of the window)
    leaves room around it for a scanner's burnt-in annotations."""
    xmin, xmax, zmin, zmax = probe.fov_box(depth_mm)
    w, h = (xmax - xmin), (zmax - zmin)
    spacing = max(w / (width * (1 - 2 * margin)), h / (height * (1 - 2 * margin)))
    x0 = (xmin + xmax) / 2 - width * spacing / 2
    # The probe face sits at the top, as on a scanner; spare rows go below the image.
    z0 = zmin - margin * height * spacing
    return Display(height, width, float(x0), float(z0), float(spacing))


@lru_cache(maxsize=64)
def _scan_map(grid: BeamGrid, display: Display) -> tuple[np.ndarray, np.ndarray]:
    """For every display pixel: fractional (depth index, line index) and the FOV mask."""
    x, z = display.pixel_centres()
    d, u = grid.probe.from_xz(x, z)
    lo, hi = grid.probe.lateral_extent()
    di = d / grid.dz
    ui = (u - lo) / (hi - lo) * (grid.n_lines - 1)
    fov = (d >= 0) & (d <= grid.depth_mm) & (u >= lo) & (u <= hi)
    coords = np.stack([di, ui]).astype(np.float32)
    coords.setflags(write=False)
    fov.setflags(write=False)
    return coords, fov


def scan_convert(beam_image: np.ndarray, grid: BeamGrid, display: Display,
                 order: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Resample a beam-grid image to display pixels; returns (image, fov mask).

    Bilinear (order 1) uses the display's cached interpolation weights: the same result,
    bit for bit, as ``map_coordinates(order=1, mode="nearest")``, at a fraction of the cost
    (no per-pixel weight computation; only field-of-view pixels)."""
    coords, fov = _scan_map(grid, display)
    if order != 1 or beam_image.shape != (grid.n_depth, grid.n_lines):
        img = map_coordinates(beam_image, coords, order=order, mode="nearest",
                              prefilter=False)
        return np.where(fov, img, 0.0).astype(np.float32), fov.copy()
    pixels, taps = _scan_taps(grid, display)
    img = np.zeros(fov.shape, np.float32)
    img.flat[pixels] = bilinear(np.ravel(beam_image), taps)
    return img, fov.copy()


def linear_taps(cc: np.ndarray, n: int, edge: str) -> tuple:
    """Order-1 spline taps along one axis, as scipy.ndimage computes them: indices
    (i0, i1) and float64 weights (w0 = 1 - x, w1 = 1 - w0 with x = cc - floor(cc)), the
    upper neighbour of the last sample mirrored (``edge="mirror"``, zoom's constant mode)
    or both indices clamped (``edge="nearest"``)."""
    cc = np.asarray(cc, np.float64)
    start = np.floor(cc)
    w0 = 1.0 - (cc - start)
    w1 = 1.0 - w0
    i0 = start.astype(np.intp)
    i1 = i0 + 1
    if edge == "nearest":
        i0, i1 = np.clip(i0, 0, n - 1), np.clip(i1, 0, n - 1)
    else:  # only the last sample has its upper neighbour outside (with weight 0)
        i1 = np.where(i1 >= n, 2 * n - 2 - i1, i1) if n > 1 else np.zeros_like(i1)
    return i0, i1, w0, w1


def bilinear(flat: np.ndarray, taps: tuple) -> np.ndarray:
    """sum of value x row weight x column weight over the 2 x 2 taps, accumulated in
    float64 in scipy.ndimage's order, cast to float32 (its output type here)."""
    i00, i01, i10, i11, wr0, wr1, wc0, wc1 = taps
    t = np.take(flat, i00) * wr0 * wc0 + 0.0  # + 0.0: a sum started from +0.0, as in C
    t += np.take(flat, i01) * wr0 * wc1
    t += np.take(flat, i10) * wr1 * wc0
    t += np.take(flat, i11) * wr1 * wc1
    return t.astype(np.float32)


@lru_cache(maxsize=8)  # ~0.3 MB per 64 px display, ~5 MB at 256 px
def _scan_taps(grid: BeamGrid, display: Display) -> tuple[np.ndarray, tuple]:
    """Flat indices of the field-of-view pixels and their bilinear taps in the beam grid."""
    coords, fov = _scan_map(grid, display)
    pixels = np.flatnonzero(fov)
    r0, r1, wr0, wr1 = linear_taps(coords[0].ravel()[pixels], grid.n_depth, "nearest")
    c0, c1, wc0, wc1 = linear_taps(coords[1].ravel()[pixels], grid.n_lines, "nearest")
    n = grid.n_lines
    taps = (r0 * n + c0, r0 * n + c1, r1 * n + c0, r1 * n + c1, wr0, wr1, wc0, wc1)
    for a in (pixels, *taps):
        a.setflags(write=False)
    return pixels, taps
