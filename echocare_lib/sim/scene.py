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
from dataclasses import dataclass, field, replace

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
    """

    name: str
    echo: float = 1.0
    atten: float = 0.6
    transmit: float = 1.0
    density: float = 50.0
    texture: tuple[float, float] = (0.0, 2.0)
    wall: tuple[float, float] = (0.0, 0.0)

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
        return self.rho(x, z) < 1.0

    @abstractmethod
    def bbox(self) -> tuple[float, float, float, float]:
        """(xmin, xmax, zmin, zmax) in mm, conservative."""


def _rotate(x, z, cx, cz, angle_deg):
    t = np.deg2rad(angle_deg)
    c, s = np.cos(t), np.sin(t)
    dx, dz = x - cx, z - cz
    return c * dx + s * dz, -s * dx + c * dz


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

        pts = np.stack([np.ravel(x), np.ravel(z)], axis=1)
        inside = _Path(np.asarray(self.vertices)).contains_points(pts).reshape(np.shape(x))
        return np.where(inside, 0.0, 2.0)

    def bbox(self):
        v = np.asarray(self.vertices)
        return v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()


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
        """Acoustic maps on the points (x, z): echo, atten, density, transmit, wall, texture."""
        shape = np.broadcast(x, z).shape
        bg = self.background
        out = {
            "echo": np.full(shape, bg.echo, np.float32),
            "atten": np.full(shape, bg.atten, np.float32),
            "density": np.full(shape, bg.density, np.float32),
            "transmit": np.ones(shape, np.float32),
            "wall": np.zeros(shape, np.float32),
            "tex_contrast": np.full(shape, bg.texture[0], np.float32),
            "tex_scale": np.full(shape, bg.texture[1], np.float32),
        }
        xf, zf = np.broadcast_arrays(x, z)
        for obj in self.objects:
            # Evaluate each object only inside its bounding box (plus its wall and halo):
            # scenes with many small objects cost little more than empty ones.
            pad = obj.tissue.wall[1] * 2 + obj.halo[1] + 1e-3
            xmin, xmax, zmin, zmax = obj.shape.bbox()
            sel = (xf >= xmin - pad) & (xf <= xmax + pad) & (zf >= zmin - pad) & (zf <= zmax + pad)
            if not sel.any():
                continue
            rho = obj.shape.rho(xf[sel], zf[sel])
            inside = rho < 1.0
            t = obj.tissue
            for key, value in (("echo", t.echo), ("atten", t.atten), ("density", t.density),
                               ("tex_contrast", t.texture[0]), ("tex_scale", t.texture[1])):
                view = out[key][sel]
                view[inside] = value
                out[key][sel] = view
            wall = out["wall"][sel]
            wall[inside] = 0.0  # an object on top hides the boundary echoes beneath it
            tr = out["transmit"][sel]
            tr[inside] = t.transmit  # the object on top decides what passes through here
            out["transmit"][sel] = tr
            dist = np.abs(rho - 1.0) * obj.shape.scale_mm
            amp, thick = t.wall
            if amp > 0 and thick > 0:
                w = np.exp(-0.5 * (dist / (thick / 2)) ** 2) * amp
                wall = np.maximum(wall, w.astype(np.float32))
            out["wall"][sel] = wall
            h_amp, h_width = obj.halo
            if h_amp and h_width > 0:
                ring = (rho >= 1.0) & (dist < h_width)
                echo = out["echo"][sel]
                echo[ring] = echo[ring] * (1 + h_amp)
                out["echo"][sel] = echo
        return out

    def label_map(self, x: np.ndarray, z: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """Integer map: 0 background, k for the k-th name in ``names`` (default: all labels
        in order of appearance). Later labelled objects overwrite earlier ones, as in the
        image; unlabelled objects leave the map unchanged."""
        names = names or self.label_names()
        lut = {n: i + 1 for i, n in enumerate(names)}
        out = np.zeros(np.broadcast(x, z).shape, np.uint8)
        for obj in self.objects:
            if obj.label not in lut:
                continue
            inside = obj.shape.inside(x, z)
            if obj.label in lut:
                out[inside] = lut[obj.label]
        return out

    def mask(self, x, z, label: str) -> np.ndarray:
        """Binary mask of every object with this label (union), regardless of occlusion."""
        m = np.zeros(np.broadcast(x, z).shape, bool)
        for obj in self.objects:
            if obj.label == label:
                m |= obj.shape.inside(x, z)
        return m
