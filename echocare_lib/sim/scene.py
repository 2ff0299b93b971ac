"""Scenes: tissue maps defined analytically in physical coordinates (millimetres).

A scene is a background tissue plus an ordered list of objects (a shape, a tissue, and an
optional label). It can be evaluated on any grid of points: the simulator samples it on the
acquisition (beam) grid to form the image, and on the display pixel grid to form the labels,
so masks, ellipses and landmarks align with the image exactly.

Coordinates: ``x`` lateral (mm, 0 at the probe centre, positive to the image right), ``z``
depth (mm, 0 at the probe face, positive into the body).
Written by hand: no library describes ultrasound phantoms at this level (pymust places raw
scatterers; we need labelled, parameterised anatomy).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np


# --------------------------------------------------------------------------- tissues
@dataclass(frozen=True)
class Tissue:
    """Acoustic properties of a tissue class.

    echo:     mean backscatter amplitude relative to reference soft tissue (1.0); 0 = anechoic
    atten:    attenuation coefficient in dB/cm/MHz (soft tissue ~0.5-0.7, fluid ~0.002,
              bone ~10-20)
    transmit: fraction of amplitude transmitted through the object's top boundary (bone and
              calcification reflect most energy: shadowing even when thin)
    density:  scatterers per resolution cell; >= 10 gives fully developed (Rayleigh) speckle,
              fewer gives darker, grainier pre-Rayleigh speckle
    texture:  (contrast, scale_mm) of a multiplicative low-frequency echogenicity modulation
    wall:     (amplitude, thickness_mm) of a specular echo at the object's boundary
    reverb:   the wall echo is a reverberation (sound bouncing between the probe and a gas or
              bone interface above, shown at a multiple of that depth): it is painted where it
              appears and is not shadowed by that interface, whose shadow it lies in
    """

    name: str
    echo: float = 1.0
    atten: float = 0.6
    transmit: float = 1.0
    density: float = 50.0
    texture: tuple[float, float] = (0.0, 2.0)
    wall: tuple[float, float] = (0.0, 0.0)
    reverb: bool = False

    def with_(self, **kw) -> "Tissue":
        return replace(self, **kw)


#: Reference tissues (typical values from the ultrasound literature, rounded).
TISSUES: dict[str, Tissue] = {t.name: t for t in [
    Tissue("soft", 1.0, 0.6),
    Tissue("skin", 1.8, 0.8, texture=(0.3, 0.5)),
    Tissue("fat", 0.55, 0.5, texture=(0.5, 1.5), density=20),
    Tissue("muscle", 0.8, 0.9, texture=(0.45, 0.8)),
    Tissue("fascia", 2.2, 0.8),
    Tissue("fluid", 0.0, 0.002, density=50),
    Tissue("blood", 0.03, 0.18),
    Tissue("cyst", 0.02, 0.002, wall=(2.0, 0.4)),
    Tissue("bone", 3.0, 15.0, transmit=0.08, wall=(4.0, 0.6)),
    Tissue("calcification", 4.0, 12.0, transmit=0.15),
    Tissue("thyroid", 1.35, 0.6, texture=(0.2, 1.0)),
    Tissue("liver", 1.0, 0.55, texture=(0.35, 2.5)),
    Tissue("kidney_cortex", 0.75, 0.6, texture=(0.2, 1.5)),
    Tissue("kidney_sinus", 1.9, 0.7, texture=(0.5, 1.5), density=25),
    Tissue("spleen", 1.05, 0.55, texture=(0.15, 2.0)),
    Tissue("pancreas", 1.3, 0.6, texture=(0.45, 1.2)),
    Tissue("myocardium", 0.9, 0.7, texture=(0.35, 1.5)),
    Tissue("breast_glandular", 1.5, 0.75, texture=(0.6, 2.0)),
    Tissue("lesion_hypo", 0.45, 0.8, texture=(0.25, 1.0)),
    Tissue("lesion_iso", 0.95, 0.7, texture=(0.3, 1.0)),
    Tissue("lesion_hyper", 1.7, 0.6, texture=(0.3, 1.0)),
    Tissue("vessel_wall", 1.6, 0.7),
    Tissue("brain", 0.35, 0.6, texture=(0.3, 2.0)),
    Tissue("placenta", 1.2, 0.6, texture=(0.35, 1.5)),
    Tissue("lung", 2.5, 40.0, transmit=0.15, density=6),
]}


# --------------------------------------------------------------------------- shapes
class Shape(ABC):
    """A region with a normalised radial coordinate ``rho`` (< 1 inside, 1 on the boundary)
    and a length scale, so boundaries of any shape can carry a wall echo of fixed thickness."""

    scale_mm: float = 1.0

    @abstractmethod
    def rho(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Normalised radial coordinate of the points (x, z): < 1 inside."""

    def inside(self, x, z) -> np.ndarray:
        """rho < 1 (Scene maps test rho < 1 directly: shapes define rho, not inside)."""
        return self.rho(x, z) < 1.0

    @abstractmethod
    def bbox(self) -> tuple[float, float, float, float]:
        """(xmin, xmax, zmin, zmax) in mm, conservative."""

    def near(self, pad: float) -> "Shape":
        """The shape to evaluate at points within its bounding box grown by ``pad`` mm, which
        is where :class:`Scene` evaluates it. Wrappers whose only job is to restrict the
        evaluation to such a box return their inner shape (see :class:`Float32Rho`)."""
        return self


@dataclass(frozen=True)
class Float32Rho(Shape):
    """``shape`` with its rho returned as float32 (optionally of float32 inputs): what a
    box-restricting wrapper computes inside its box, without the wrapper's own windowing."""

    shape: Shape
    float32_inputs: bool = False

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return self.shape.scale_mm

    def rho(self, x, z):
        if self.float32_inputs:
            x, z = np.asarray(x, np.float32), np.asarray(z, np.float32)
        return np.asarray(self.shape.rho(x, z), np.float32)

    def bbox(self):
        return self.shape.bbox()


def _rotate(x, z, cx, cz, angle_deg):
    """Coordinates relative to (cx, cz) in the frame rotated by ``angle_deg`` (float64 for
    a Python angle). The result broadcasts to the points' shape (for an x row and a z column
    an unrotated frame stays a row and a column: shapes then do most work on vectors)."""
    dx, dz = x - cx, z - cz
    if angle_deg == 0 and isinstance(angle_deg, (float, int)):
        # cos 0 = 1, sin 0 = 0: c dx + s dz is exactly dx (in float64, like the product)
        return np.asarray(dx, np.float64), np.asarray(dz, np.float64)
    c, s = _cos_sin(angle_deg)
    return c * dx + s * dz, -s * dx + c * dz


@lru_cache(maxsize=4096, typed=True)
def _cos_sin(angle_deg):
    t = np.deg2rad(angle_deg)
    return np.cos(t), np.sin(t)


@dataclass(frozen=True)
class Ellipse(Shape):
    """Ellipse with centre (cx, cz), half-axes a (along the rotated x) and b, angle in degrees
    (counter-clockwise from the x axis, as in the FOCUS annotation convention)."""

    cx: float
    cz: float
    a: float
    b: float
    angle: float = 0.0

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return float(np.sqrt(self.a * self.b))

    def rho(self, x, z):
        u, v = _rotate(x, z, self.cx, self.cz, self.angle)
        return np.sqrt((u / self.a) ** 2 + (v / self.b) ** 2)

    def bbox(self):
        r = max(self.a, self.b)
        return self.cx - r, self.cx + r, self.cz - r, self.cz + r


@dataclass(frozen=True)
class Blob(Shape):
    """A star-shaped region whose radius varies with angle: r(t) = r0 (1 + sum a_k cos(k t + p_k)).

    Low harmonics give oval or lobulated outlines, high harmonics with larger amplitudes give
    angular or spiculated margins (BI-RADS margin descriptors). ``aspect`` > 1 makes it taller
    than wide ("not parallel" orientation)."""

    cx: float
    cz: float
    r0: float
    harmonics: tuple[tuple[int, float, float], ...] = ()
    aspect: float = 1.0
    angle: float = 0.0

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return self.r0

    def radius(self, t: np.ndarray) -> np.ndarray:
        r = np.ones_like(t)
        for k, amp, phase in self.harmonics:
            r = r + amp * np.cos(k * t + phase)
        return self.r0 * np.maximum(r, 0.2)

    def rho(self, x, z):
        u, v = _rotate(x, z, self.cx, self.cz, self.angle)
        v = v / self.aspect
        t = np.arctan2(v, u)
        return np.hypot(u, v) / self.radius(t)

    def bbox(self):
        extra = 1.0 + sum(abs(a) for _, a, _ in self.harmonics)
        r = self.r0 * extra * max(self.aspect, 1.0)
        return self.cx - r, self.cx + r, self.cz - r, self.cz + r


@dataclass(frozen=True)
class Tube(Shape):
    """A straight vessel or duct from (x0, z0) to (x1, z1) whose radius tapers linearly from
    r0 to r1, with rounded ends.

    rho comes from the true distance to the surface: rho = 1 + (d - r) / scale_mm, with d the
    distance to the axis segment and r the local radius. Walls (drawn where |rho - 1| *
    scale_mm is small) then have the same thickness in mm all along the tube; a long thin
    Ellipse, whose rho scales with its half-axes, draws a wall that thickens towards its tips
    and a body that narrows to a point, which makes vessels look like spikes."""

    x0: float
    z0: float
    x1: float
    z1: float
    r0: float
    r1: float

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return max((self.r0 + self.r1) / 2, 1e-3)

    def rho(self, x, z):
        dx, dz = self.x1 - self.x0, self.z1 - self.z0
        t = np.clip(((x - self.x0) * dx + (z - self.z0) * dz) / max(dx * dx + dz * dz, 1e-12),
                    0.0, 1.0)
        d = np.hypot(x - (self.x0 + t * dx), z - (self.z0 + t * dz))
        return 1.0 + (d - (self.r0 + (self.r1 - self.r0) * t)) / self.scale_mm

    def bbox(self):
        r = max(self.r0, self.r1)
        return (min(self.x0, self.x1) - r, max(self.x0, self.x1) + r,
                min(self.z0, self.z1) - r, max(self.z0, self.z1) + r)


@dataclass(frozen=True)
class Layer(Shape):
    """Tissue between two depths that undulate with x: z_top(x) = top + amp sin(2 pi x / period + phase).

    Used for skin, subcutaneous fat, muscle and fascia. rho is 0 in the middle, 1 on either
    boundary."""

    top: float
    bottom: float
    amp: float = 0.0
    period: float = 40.0
    phase: float = 0.0

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return max((self.bottom - self.top) / 2, 1e-3)

    def rho(self, x, z):
        wave = self.amp * np.sin(2 * np.pi * x / self.period + self.phase)
        mid = (self.top + self.bottom) / 2 + wave
        return np.abs(z - mid) / self.scale_mm

    def bbox(self):
        return -np.inf, np.inf, self.top - abs(self.amp), self.bottom + abs(self.amp)


@dataclass(frozen=True)
class Polygon(Shape):
    """A simple polygon given by vertices (x, z) in mm (used for e.g. the fetal spine)."""

    vertices: tuple[tuple[float, float], ...]

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        v = np.asarray(self.vertices)
        return float(np.sqrt(np.prod(np.ptp(v, axis=0)) + 1e-9) / 2)

    def rho(self, x, z):
        from matplotlib.path import Path as _Path

        x, z = np.broadcast_arrays(x, z)
        pts = np.stack([np.ravel(x), np.ravel(z)], axis=1)
        inside = _Path(np.asarray(self.vertices)).contains_points(pts).reshape(np.shape(x))
        return np.where(inside, 0.0, 2.0)

    def bbox(self):
        v = np.asarray(self.vertices)
        return v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()


def row_and_column(x: np.ndarray, z: np.ndarray) -> bool:
    """True for the points of an axis-aligned grid passed as x (1, n) and z (m, 1), as
    :meth:`Scene.properties` does on such grids: wrappers that evaluate a shape only near
    it can then cut an index window instead of masking every point (see
    :func:`box_window`)."""
    return x.ndim == 2 and z.ndim == 2 and x.shape[0] == 1 and z.shape[1] == 1


def box_window(x: np.ndarray, z: np.ndarray, box: tuple[float, float, float, float],
               inner_rho, outside: float) -> np.ndarray:
    """rho of a shape on the grid x (1, n) x z (m, 1), evaluated (``inner_rho``) only in
    the index window of the points within ``box`` (x0, x1, z0, z1) and ``outside`` for
    every other point, exactly as a point-by-point mask would give."""
    x0, x1, z0, z1 = box
    in_c = (x[0] >= x0) & (x[0] <= x1)
    in_r = (z[:, 0] >= z0) & (z[:, 0] <= z1)
    cols, rows = np.flatnonzero(in_c), np.flatnonzero(in_r)
    out = np.full((z.shape[0], x.shape[1]), outside, np.float32)
    if rows.size and cols.size:
        r, c = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
        rho = inner_rho(x[:, c], z[r])
        if rows.size == r.stop - r.start and cols.size == c.stop - c.start:
            out[r, c] = rho
        else:  # coordinates not monotone: the window holds points outside the box
            out[r, c] = np.where(in_r[r, None] & in_c[None, c], rho, outside)
    return out


# --------------------------------------------------------------------------- scenes
@dataclass
class SceneObject:
    shape: Shape
    tissue: Tissue
    label: str | None = None  # name of the structure for masks (None: unlabelled anatomy)
    #: (rho_outer) echogenicity halo, e.g. an echogenic rim around a malignant mass
    halo: tuple[float, float] = (0.0, 0.0)


@dataclass
class Scene:
    """Background tissue plus objects painted in order (later objects on top)."""

    background: Tissue = field(default_factory=lambda: TISSUES["soft"])
    objects: list[SceneObject] = field(default_factory=list)
    name: str = "scene"

    def add(self, shape: Shape, tissue: "Tissue | str", label: str | None = None,
            halo: tuple[float, float] = (0.0, 0.0)) -> "Scene":
        t = TISSUES[tissue] if isinstance(tissue, str) else tissue
        self.objects.append(SceneObject(shape, t, label, halo))
        return self

    def label_names(self) -> list[str]:
        names: list[str] = []
        for o in self.objects:
            if o.label and o.label not in names:
                names.append(o.label)
        return names

    def properties(self, x: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
        """Acoustic maps on the points (x, z): echo, atten, density, transmit, wall, texture,
        and ``reverb`` (reverberation echoes) when a tissue has them.

        Objects are painted in order into a map of which object is on top at each point;
        the tissue maps are then looked up from it in one go. Boundary echoes and halos are
        painted as they come (a later object hides those beneath it)."""
        win = _windows(x, z)
        top = np.zeros(win.shape, np.uint8 if len(self.objects) < 255 else np.uint16)
        wall = np.zeros(win.shape, np.float32)
        reverb = None  # reverberation echoes (Tissue.reverb), made on the first one
        halo = None  # multiplicative echo factor of halos, made on the first one
        walls = False  # any boundary echo painted so far (to be hidden under later objects)
        for k, obj in enumerate(self.objects, 1):
            # Evaluate each object only inside its bounding box (plus its wall and halo):
            # scenes with many small objects cost little more than empty ones. Bounding
            # boxes are conservative, so only a wall echo or a halo (which extend outside
            # the shape) need the points cut to the padded box exactly.
            t = obj.tissue
            amp, thick = t.wall
            h_amp, h_width = obj.halo
            has_wall, has_halo = amp > 0 and thick > 0, bool(h_amp) and h_width > 0
            pad = thick * 2 + h_width + 1e-3
            shape = obj.shape.near(pad)
            found = win.evaluate(shape, pad, exact=has_wall or has_halo)
            if found is None:
                continue
            box, sel, rho = found
            inside = rho < 1.0
            if inside.any():
                top[box][inside] = k
                if walls:
                    wall[box][inside] = 0.0  # an object on top hides the echoes beneath it
                if reverb is not None:
                    reverb[box][inside] = 0.0
                if halo is not None:
                    halo[box][inside] = 1.0
            if not (has_wall or has_halo):
                continue
            dist = np.abs(rho - 1.0) * shape.scale_mm
            if has_wall:
                w = (np.exp(-0.5 * (dist / (thick / 2)) ** 2) * amp).astype(np.float32)
                if t.reverb and reverb is None:
                    reverb = np.zeros(win.shape, np.float32)
                into = reverb if t.reverb else wall
                np.maximum(into[box], w, out=into[box], where=True if sel is None else sel)
                walls = walls or not t.reverb
            if has_halo:
                ring = (rho >= 1.0) & (dist < h_width)
                if sel is not None:
                    ring &= sel
                if halo is None:
                    halo = np.ones(win.shape, np.float32)
                view = halo[box]
                view[ring] = view[ring] * np.float32(1 + h_amp)
        bg = self.background
        tissues = [bg] + [o.tissue for o in self.objects]

        def lookup(values) -> np.ndarray:  # take: a plain gather, far cheaper than lut[top]
            return np.take(np.asarray(values, np.float32), top).reshape(win.points_shape)

        echo = lookup([t.echo for t in tissues])
        if halo is not None:
            echo = echo * halo.reshape(win.points_shape)
        maps = {
            "echo": echo,
            "atten": lookup([t.atten for t in tissues]),
            "density": lookup([t.density for t in tissues]),
            # nothing above the objects blocks the beam: the background transmits fully
            "transmit": lookup([1.0] + [t.transmit for t in tissues[1:]]),
            "wall": wall.reshape(win.points_shape),
            "tex_contrast": lookup([t.texture[0] for t in tissues]),
            "tex_scale": lookup([t.texture[1] for t in tissues]),
        }
        if reverb is not None:
            maps["reverb"] = reverb.reshape(win.points_shape)
        return maps

    def label_map(self, x: np.ndarray, z: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """Integer map: 0 background, k for the k-th name in ``names`` (default: all labels
        in order of appearance). Later labelled objects overwrite earlier ones, as in the
        image; unlabelled objects leave the map unchanged."""
        names = names or self.label_names()
        lut = {n: i + 1 for i, n in enumerate(names)}
        win = _windows(x, z)
        out = np.zeros(win.shape, np.uint8)
        for obj in self.objects:
            if obj.label not in lut:
                continue
            # a shape lies within its (conservative) bounding box
            found = win.evaluate(obj.shape.near(0.0), 0.0, exact=False)
            if found is not None:
                box, _, rho = found
                view = out[box]
                view[rho < 1.0] = lut[obj.label]
        return out.reshape(win.points_shape)

    def mask(self, x, z, label: str) -> np.ndarray:
        """Binary mask of every object with this label (union), regardless of occlusion."""
        win = _windows(x, z)
        m = np.zeros(win.shape, bool)
        for obj in self.objects:
            if obj.label != label:
                continue
            found = win.evaluate(obj.shape.near(0.0), 0.0, exact=False)
            if found is not None:
                box, _, rho = found
                view = m[box]
                view |= rho < 1.0
        return m.reshape(win.points_shape)


def _nbytes(found) -> int:
    if found is None:
        return 0
    _, sel, rho = found
    return rho.nbytes + (0 if sel is None else sel.nbytes)


def _full(a: np.ndarray, shape: tuple) -> np.ndarray:
    return a if a.shape == shape else np.broadcast_to(a, shape)


def _as_compared(t, cast) -> float:
    """A bound as numpy compares it with coordinates of a float type ``cast`` (None: not a
    float array): a Python scalar takes the array's precision (NEP 50: float32 for the beam
    and pixel grids), a numpy scalar keeps its own. (The coordinates are exact as Python
    floats, so bisect finds the same edges as the comparison would.)"""
    if cast is not None and type(t) in (float, int):
        return float(cast(t))
    return float(t)


def _monotone_extents(lo: np.ndarray, hi: np.ndarray, separable: bool):
    """(lo, hi as lists, float type) for a binary search of a window's edges. Extents that
    decrease somewhere are replaced by monotone envelopes (lo: running minimum from the end,
    hi: running maximum): a window that may hold a few more points, which is exact because
    points outside the box are cut by the mask or lie outside the (conservative) shape. The
    rows and columns of a separable grid must not be widened: None unless monotone there."""
    if not ((lo[1:] >= lo[:-1]).all() and (hi[1:] >= hi[:-1]).all()):
        if separable:
            return None
        lo = np.minimum.accumulate(lo[::-1])[::-1]
        hi = np.maximum.accumulate(hi)
    return lo.tolist(), hi.tolist(), (lo.dtype.type if lo.dtype.kind == "f" else None)


def _edges(search, lo: np.ndarray, hi: np.ndarray, t0, t1):
    """(first, stop, count) of the indices whose extent [lo, hi] meets [t0, t1], or None."""
    if search is not None:
        lo_list, hi_list, cast = search
        first = bisect_left(hi_list, _as_compared(t0, cast))
        stop = bisect_right(lo_list, _as_compared(t1, cast))
        return (first, stop, stop - first) if first < stop else None
    idx = np.flatnonzero((hi >= t0) & (lo <= t1))
    return (int(idx[0]), int(idx[-1]) + 1, idx.size) if idx.size else None


_WINDOWS: dict = {}
_MAX_GRIDS = 4  # cached grids (a cine loop uses two: beam grid and display pixels)
_RHO_CACHE_BYTES = 16 << 20  # per grid: a frame's shapes or more (many at 64-128 px)
_MISS = object()


def _windows(x, z) -> "_Windows":
    """:class:`_Windows` of a grid, cached for read-only coordinate arrays (the cached beam
    and pixel grids): a cine loop samples every frame's scene on the same grids."""
    if not (isinstance(x, np.ndarray) and isinstance(z, np.ndarray)
            and not x.flags.writeable and not z.flags.writeable):
        return _Windows(x, z)
    key = (id(x), id(z))
    hit = _WINDOWS.get(key)
    if hit is not None and hit[0] is x and hit[1] is z:
        return hit[2]
    if len(_WINDOWS) >= _MAX_GRIDS:
        _WINDOWS.clear()
    win = _Windows(x, z, cache=True)
    _WINDOWS[key] = (x, z, win)  # holds x and z: their ids cannot be reused meanwhile
    return win


class _Windows:
    """The points of a grid that can lie in a box: a rectangular index window (slices:
    views, no fancy indexing) and the coordinates to evaluate shapes on there.

    Why: a scene is sampled on the whole beam (or pixel) grid for every object, and with
    ~25 objects on a ~100 x 100 grid numpy's per-call overhead, strided views and full-grid
    masks cost more than the arithmetic. On an axis-aligned grid (the beam grid of linear
    probes, every display pixel grid) x depends only on the column and z only on the row:
    the box is exactly an index window, and shapes get x as a row (1, n) and z as a column
    (m, 1), so their first operations run on vectors and broadcasting yields contiguous
    arrays. Sector grids (convex, phased) get contiguous copies of the window's points.
    Other point sets (lists of points) are treated as a grid of one row."""

    def __init__(self, x, z, cache: bool = False):
        x, z = np.broadcast_arrays(np.asarray(x), np.asarray(z))
        #: rho of shapes evaluated on this (read-only, cached) grid: the frames of a cine
        #: loop repeat most of their shapes (layers, static anatomy, all of a CEUS plane)
        self.cache: dict | None = {} if cache else None
        self.cache_bytes = 0
        self.points_shape = x.shape
        if x.ndim != 2:
            x, z = x.reshape(1, -1), z.reshape(1, -1)
        self.x, self.z, self.shape = x, z, x.shape
        self.grid = x.size > 0
        self.separable = False
        if self.grid:
            self.separable = bool((x == x[:1]).all() and (z == z[:, :1]).all())
            if self.separable:
                self.xs, self.zs = x[0], z[:, 0]
                self.x_lo = self.x_hi = self.xs
                self.z_lo = self.z_hi = self.zs
                self.increasing = bool((self.xs[1:] > self.xs[:-1]).all()
                                       and (self.zs[1:] > self.zs[:-1]).all())
                self.x_list, self.z_list = self.xs.tolist(), self.zs.tolist()
                self.x_cast, self.z_cast = (a.dtype.type if a.dtype.kind == "f" else None
                                            for a in (self.xs, self.zs))
            else:
                self.z_lo, self.z_hi = z.min(axis=1), z.max(axis=1)
                self.x_lo, self.x_hi = x.min(axis=0), x.max(axis=0)
            # per axis, extents that never decrease (sector grids: rows always, columns of
            # convex probes) allow a binary search of the window's edges
            self.row_search = _monotone_extents(self.z_lo, self.z_hi, self.separable)
            self.col_search = _monotone_extents(self.x_lo, self.x_hi, self.separable)

    def evaluate(self, shape: Shape, pad: float, exact: bool = True):
        """(window, mask, rho) of ``shape`` on the points of :meth:`region`, or None.
        rho is read-only: on a cached grid it is shared with later frames."""
        key, hit = None, _MISS
        if self.cache is not None:
            key = (shape, pad, exact)
            try:
                hit = self.cache.get(key, _MISS)
            except TypeError:  # a shape with unhashable fields: not cached
                key = None
            if hit is not _MISS:
                return hit
        out = None
        region = self.region(shape.bbox(), pad, exact)
        if region is not None:
            box, xs, zs, sel = region
            window = (box[0].stop - box[0].start, box[1].stop - box[1].start)
            rho = _full(np.asarray(shape.rho(xs, zs)), window)
            rho.setflags(write=False)
            out = (box, sel, rho)
        if key is not None:
            self.cache[key] = out
            self.cache_bytes += _nbytes(out)
            while self.cache_bytes > _RHO_CACHE_BYTES and len(self.cache) > 1:
                self.cache_bytes -= _nbytes(self.cache.pop(next(iter(self.cache))))  # oldest
        return out

    def region(self, bbox, pad: float, exact: bool = True):
        """(window, x, z, mask) for the points within ``bbox`` grown by ``pad``, or None if
        there are none. mask is None when every point of the window is in the padded box,
        or when ``exact`` is False and the caller accepts extra points around it."""
        xmin, xmax, zmin, zmax = bbox
        x0, x1, z0, z1 = xmin - pad, xmax + pad, zmin - pad, zmax + pad
        if not self.grid:
            return None
        if self.separable and self.increasing:  # binary search of the four edges
            zt, xt = self.z_cast, self.x_cast
            r0 = bisect_left(self.z_list, _as_compared(z0, zt))
            r1 = bisect_right(self.z_list, _as_compared(z1, zt))
            c0 = bisect_left(self.x_list, _as_compared(x0, xt))
            c1 = bisect_right(self.x_list, _as_compared(x1, xt))
            if r0 >= r1 or c0 >= c1:
                return None
            return ((slice(r0, r1), slice(c0, c1)), self.xs[None, c0:c1],
                    self.zs[r0:r1, None], None)
        rows = _edges(self.row_search, self.z_lo, self.z_hi, z0, z1)
        cols = _edges(self.col_search, self.x_lo, self.x_hi, x0, x1)
        if rows is None or cols is None:
            return None
        (r0, r1, n_rows), (c0, c1, n_cols) = rows, cols
        box = (slice(r0, r1), slice(c0, c1))
        if self.separable:
            xs, zs = self.xs[None, c0:c1], self.zs[r0:r1, None]
            if n_rows == r1 - r0 and n_cols == c1 - c0:  # monotone coordinates
                return box, xs, zs, None
            xw, zw = np.broadcast_arrays(xs, zs)
        else:
            xs = xw = np.ascontiguousarray(self.x[box])
            zs = zw = np.ascontiguousarray(self.z[box])
            if not exact:
                return box, xs, zs, None
        sel = (xw >= x0) & (xw <= x1) & (zw >= z0) & (zw <= z1)
        if not sel.any():
            return None
        return box, xs, zs, (None if sel.all() else sel)
