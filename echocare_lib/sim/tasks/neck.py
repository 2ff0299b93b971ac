"""Neck and limb-vessel scenes (linear probe): thyroid nodules and artery/vein pairs.

Tasks (EchoCare Table 1, section 4.2/4.5):

* ``thyroid_nodule_seg``: thyroid nodule segmentation, mimicking **DDTI** (transverse thyroid
  views, one or two nodules of varied composition, mask = all nodules).
* ``vessel_seg``: artery/vein segmentation, mimicking **Mus-V** (transverse carotid/jugular or
  femoral artery/vein views; labels 0 background, 1 vein, 2 artery as in Mus-V).
* ``thyroid_nodule_cine_cls``: benign/malignant classification of a cine clip sweeping through
  one nodule, mimicking the **Stanford AIMI thyroid ultrasound cine-clip** data set.

Reusable scene builders for other generators (enhancement pairs, reports):
:func:`thyroid_scene` and :func:`carotid_scene`, each returning ``(Scene, info)`` where
``info["acquire"]`` holds the keyword arguments to pass to :func:`~echocare_lib.sim.acquire`.

Anatomy is drawn in millimetres (x lateral, z depth). Every visible object carries a plain
structure name as its label; masks are built from the *visible* label map (later objects
occlude earlier ones, as in the image), so e.g. the trachea cuts the thyroid mask.
Malignancy evidence follows ACR TI-RADS descriptors (composition, echogenicity, shape,
margin, echogenic foci, halo), each drawn with class-dependent but overlapping probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..devices import device_style
from ..physics import Frame, decorrelate
from ..render import acquire, as_image, frame_meta
from ..scene import (TISSUES, Blob, Ellipse, Float32Rho, Layer, Scene, Shape, Tissue,
                     _rotate, box_window, row_and_column)

# --------------------------------------------------------------------------- tissues
# Gas reflects nearly all the sound (tissue/gas amplitude reflection coefficient ~0.999): the
# shadow behind it is made by the physics (aperture-averaged, so its edges soften with depth);
# what shows inside it are reverberations of the interface, painted as unshadowed echoes.
AIR = Tissue("air", echo=0.4, atten=0.6, transmit=0.03, density=8, wall=(5.0, 0.7))
REVERB = AIR.with_(name="reverberation", transmit=1.0, reverb=True)
CARTILAGE = Tissue("cartilage", 0.25, 0.6, texture=(0.15, 1.0))
LUMEN = TISSUES["blood"].with_(wall=(0.8, 0.25))  # arterial lumen; intima echo at its edge
ADVENTITIA = TISSUES["vessel_wall"].with_(echo=1.3, wall=(0.9, 0.3))
MUSCLE = TISSUES["muscle"].with_(echo=0.55, wall=(0.25, 0.3))  # faint perimysium line
NERVE = Tissue("nerve", 1.1, 0.7, texture=(0.9, 0.5), density=12, wall=(0.8, 0.3))
MICROCALC = TISSUES["calcification"].with_(echo=8.0, transmit=0.7, wall=(5.0, 0.3))
MACROCALC = TISSUES["calcification"].with_(echo=6.0, transmit=0.12, wall=(5.0, 0.5))
RIMCALC = TISSUES["calcification"].with_(echo=6.0, transmit=0.3, wall=(5.0, 0.5))
COMET = Tissue("comet", 3.0, 0.6, wall=(2.0, 0.2))
INNER_CYST = TISSUES["cyst"].with_(wall=(0.8, 0.3))
#: Coupling gel above the probe face. Why: the physics pads the beam grid above the face and
#: its FFT convolution leaks a little of the (unattenuated) near field into the far field,
#: which TGC then amplifies; an anechoic layer there keeps the far field clean.
GEL = Tissue("gel", echo=0.0, atten=0.0)

LINEAR_DEVICES = {
    "thyroid_nodule_seg": ("mid_range", "legacy_sepia", "low_end", "high_end"),
    "vessel_seg": ("mid_range", "high_end", "handheld"),
    "thyroid_nodule_cine_cls": ("high_end", "mid_range"),
}


# --------------------------------------------------------------------------- shared helpers
FAR = 1e3  # rho of points skipped by Local: far outside
_EXTENTS: dict = {}  # identity cache: (x, z) arrays -> per-row z and per-column x extents


def _extents(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-row z range and per-column x range of a 2-D point grid, cached while the same
    arrays are in use (the beam grid is cached by the physics; the pixel grid is reused for
    every object of one label map)."""
    key = (id(x), id(z))
    hit = _EXTENTS.get(key)
    if hit is not None and hit[0] is x and hit[1] is z:
        return hit[2]
    ext = (z.min(axis=1), z.max(axis=1), x.min(axis=0), x.max(axis=0))
    if len(_EXTENTS) > 8:
        _EXTENTS.clear()
    _EXTENTS[key] = (x, z, ext)
    return ext


@dataclass(frozen=True)
class Local(Shape):
    """Evaluate ``inner`` only in the grid window covering its bounding box padded by ``pad``
    mm (rho = FAR elsewhere, so no wall or halo echo leaks there, however small the shape).

    Why: Scene.properties evaluates every shape on the whole beam grid; a Blob costs an
    arctan2 plus one cosine per harmonic everywhere, which dominates small objects' cost."""

    inner: Shape
    pad: float = 2.0

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return self.inner.scale_mm

    def bbox(self):
        return self.inner.bbox()

    def near(self, pad: float) -> Shape:
        # Scene already evaluates only within bbox +- pad: no need to window again there
        return Float32Rho(self.inner) if pad <= self.pad else self

    def rho(self, x, z):
        x, z = np.asarray(x), np.asarray(z)
        x0, x1, z0, z1 = self.inner.bbox()
        p = self.pad
        if row_and_column(x, z):  # axis-aligned grid (Scene passes x as a row, z as a column)
            return box_window(x, z, (x0 - p, x1 + p, z0 - p, z1 + p), self.inner.rho, FAR)
        if x.ndim != 2 or x.shape != z.shape:
            x, z = np.broadcast_arrays(x, z)
            sel = (x >= x0 - p) & (x <= x1 + p) & (z >= z0 - p) & (z <= z1 + p)
            out = np.full(x.shape, FAR, np.float32)
            if sel.any():
                out[sel] = self.inner.rho(x[sel], z[sel])
            return out
        zlo, zhi, xlo, xhi = _extents(x, z)
        rows = np.flatnonzero((zhi >= z0 - p) & (zlo <= z1 + p))
        cols = np.flatnonzero((xhi >= x0 - p) & (xlo <= x1 + p))
        out = np.full(x.shape, FAR, np.float32)
        if rows.size and cols.size:
            # the window of a sector grid also holds points outside the padded box: FAR there
            win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            xw, zw = x[win], z[win]
            near = (xw >= x0 - p) & (xw <= x1 + p) & (zw >= z0 - p) & (zw <= z1 + p)
            out[win] = np.where(near, self.inner.rho(xw, zw), FAR)
        return out


@dataclass(frozen=True)
class AirColumn(Shape):
    """Gas behind a curved wall (trachea, bowel): inside = the band from the upper arc of a
    circle (centre cx, cz, radius r), within ``frac`` of its width, down to ``depth`` mm below
    the arc (``inf``: everything below it). Only the arc carries a wall echo (the sides and
    bottom are never seen through gas). The tissue below a finite band is drawn by the objects
    there and shadowed by the gas's transmission loss (``physics.two_way_transmission``: soft
    edges that widen with depth); an infinite band paints the shadow itself (a dirty shadow of
    reverberation clutter). Shift ``cz`` down and give a thin ``depth`` to draw a
    reverberation of the arc."""

    cx: float
    cz: float
    r: float
    frac: float = 0.8
    depth: float = np.inf

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return self.r

    def bbox(self):
        return self.cx - self.r, self.cx + self.r, self.cz - self.r, self.cz + self.depth

    def rho(self, x, z):
        u = np.abs(np.asarray(x, np.float32) - self.cx)
        half = self.frac * self.r
        top = self.cz - np.sqrt(np.clip(self.r ** 2 - np.minimum(u, half) ** 2, 0, None))
        rho = 1.0 - (z - top) / self.r
        # outside the band: far from 1 so the sides and the bottom carry no wall echo
        outside = (u >= half) | (z > top + self.depth)
        return np.where(outside, FAR, np.clip(rho, 0.0, None)).astype(np.float32)


@dataclass(frozen=True)
class FastBlob(Blob):
    """:class:`Blob` with the same contour, evaluated without arctan2 and per-harmonic
    cosines: cos(k t + p) comes from powers of the unit complex number e^{it}."""

    def rho(self, x, z):
        u, v = _rotate(np.asarray(x, np.float32), np.asarray(z, np.float32), self.cx, self.cz,
                       self.angle)
        v = v / self.aspect
        dist = np.hypot(u, v)
        if not self.harmonics:
            return dist / self.r0
        e1 = (u + 1j * v) / np.maximum(dist, 1e-9)
        r = np.ones(dist.shape, np.float32)
        ek, k_now = np.ones_like(e1), 0
        for k, amp, phase in sorted(self.harmonics):
            while k_now < k:
                ek, k_now = ek * e1, k_now + 1
            r += amp * (ek.real * np.cos(phase) - ek.imag * np.sin(phase))
        return dist / (self.r0 * np.maximum(r, 0.2))


def blob(cx, cz, r0, harmonics=(), aspect=1.0, angle=0.0) -> Local:
    """A bounding-box-limited :class:`Blob` (fast evaluation, same contour)."""
    return Local(FastBlob(float(cx), float(cz), float(r0), tuple(harmonics), float(aspect),
                          float(angle)))


def ell(cx, cz, a, b, angle=0.0) -> Local:
    """A bounding-box-limited :class:`Ellipse`."""
    return Local(Ellipse(float(cx), float(cz), float(a), float(b), float(angle)))


def harmonics(rng, ks, amp: tuple[float, float]) -> tuple[tuple[int, float, float], ...]:
    """Random Fourier perturbation of a contour: one (k, amplitude, phase) per k."""
    return tuple((int(k), float(rng.uniform(*amp)), float(rng.uniform(0, 2 * np.pi)))
                 for k in ks)


def visible_labels(frame: Frame, scene: Scene) -> tuple[np.ndarray, list[str]]:
    """Visible label map over *all* labels of the scene (occlusion as in the image)."""
    names = scene.label_names()
    return frame.label_map(scene, names), names


def class_map(lm: np.ndarray, names: list[str], groups: list[tuple[str, ...]]) -> np.ndarray:
    """Map a visible label map to class ids: class k+1 = any structure in ``groups[k]``;
    every other structure (including occluders) is background."""
    lut = np.zeros(len(names) + 1, np.uint8)
    for cid, group in enumerate(groups, 1):
        for n in group:
            if n in names:
                lut[names.index(n) + 1] = cid
    return lut[lm]


def structures(lm: np.ndarray, names: list[str], min_px: int = 4) -> list[str]:
    """Names of the structures with at least ``min_px`` visible pixels."""
    counts = np.bincount(lm.ravel(), minlength=len(names) + 1)
    return [n for i, n in enumerate(names, 1) if counts[i] >= min_px]


def pick_device(rng, task: str, *, cine: bool = False) -> tuple[str, dict]:
    """A plausible device for the task and small gain / dynamic-range variation.

    Cine clips switch spatial compounding off: it re-draws speckle inside the physics and
    would defeat the controlled frame-to-frame decorrelation (and doubles the cost)."""
    name = str(rng.choice(LINEAR_DEVICES.get(task, ("mid_range",))))
    proc = device_style(name).proc
    changes = {"gain_db": proc.gain_db + float(rng.uniform(-8, 0)),
               "dynamic_range_db": proc.dynamic_range_db + float(rng.uniform(-4, 4))}
    if cine:
        changes["compounding"] = 1
    return name, changes


def add_wall(scene: Scene, rng, *, skin: float, fat: float, fascia: bool = True) -> float:
    """Skin, subcutaneous fat and the superficial fascia as gently undulating layers
    (painted last so they lie on top). Returns the depth of the fat's lower border."""
    ph = rng.uniform(0, 2 * np.pi)
    per = rng.uniform(30, 70)
    amp = rng.uniform(0.0, 0.4)
    if fascia:
        scene.add(Layer(skin + fat - 0.2, skin + fat + 0.3, amp, per, ph),
                  TISSUES["fascia"].with_(echo=1.6), "fascia")
    scene.add(Layer(skin, skin + fat, amp, per, ph), TISSUES["fat"], "subcutaneous fat")
    scene.add(Layer(0.0, skin, amp * 0.3, per, ph), TISSUES["skin"], "skin")
    scene.add(Layer(-30.0, 0.0), GEL)
    return skin + fat


def add_artery(scene: Scene, x, z, r, label: str, *, wall=1.0, rng=None,
               plaque: bool = False) -> None:
    """Round artery: echogenic adventitia ring (double-line wall) around an anechoic lumen,
    optionally with a calcified plaque (bright arc, acoustic shadow)."""
    scene.add(ell(x, z, r + wall, r + wall), ADVENTITIA, label)
    scene.add(ell(x, z, r, r), LUMEN, label)
    if plaque and rng is not None:
        th = rng.uniform(-np.pi, 0.0)  # upper or side wall
        px, pz = x + (r - 0.4) * np.cos(th), z + (r - 0.4) * np.sin(th)
        scene.add(ell(px, pz, rng.uniform(1.0, 2.2), rng.uniform(0.4, 0.8),
                      np.rad2deg(th) + 90), MACROCALC, label)


def add_vein(scene: Scene, x, z, a, b, label: str, *, angle=0.0, rng=None) -> None:
    """Oval vein with a thin wall and anechoic lumen or faint slow-flow echoes."""
    echo = rng.uniform(0.02, 0.12) if rng is not None else 0.03
    lumen = TISSUES["blood"].with_(echo=echo, density=float(rng.uniform(4, 20)) if rng is not None
                                   else 20.0, wall=(0.9, 0.22))
    scene.add(ell(x, z, a, b, angle), lumen, label)


def add_planes(scene: Scene, rng, n: int, *, x: tuple[float, float], z: tuple[float, float]
               ) -> None:
    """Decorative fascial planes (thin echogenic streaks) in deep soft tissue, unlabelled."""
    for _ in range(n):
        shape = ell(rng.uniform(*x), rng.uniform(*z), rng.uniform(6, 18), rng.uniform(0.25, 0.5),
                    rng.uniform(-25, 25))
        scene.add(shape, TISSUES["fascia"].with_(echo=float(rng.uniform(1.2, 1.8))))


def beside(r: float, dz: float, a: float, b: float, angle: float, direction: float,
           gap: float = 0.3) -> float:
    """Lateral offset from a circle's centre (radius r) to the centre of an ellipse (half-axes
    a, b, angle; centre ``dz`` deeper) on side ``direction`` so that they just do not overlap
    (vessels in one cross-section abut, they never overlap)."""
    t = np.linspace(0, 2 * np.pi, 64)
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    px = a * np.cos(t) * c - b * np.sin(t) * s
    pz = a * np.cos(t) * s + b * np.sin(t) * c + dz
    off = 0.0
    while np.min(np.hypot(px + direction * off, pz)) < r + gap:
        off += 0.25
    return off


def add_muscle(scene: Scene, shape: Shape, label: str, rng, echo_jitter=0.2) -> None:
    """Hypoechoic striated muscle with a faint perimysium line at its border."""
    scene.add(shape, MUSCLE.with_(echo=MUSCLE.echo * float(rng.uniform(1 - echo_jitter,
                                                                      1 + echo_jitter))), label)


# --------------------------------------------------------------------------- nodules
COMPOSITIONS = ("solid", "mixed", "cystic", "spongiform")
ECHOGENICITIES = ("marked_hypo", "hypo", "iso", "hyper")
MARGINS = ("smooth", "lobulated", "irregular", "spiculated")
FOCI = ("none", "micro", "macro", "rim", "comet")

#: P(feature | class): malignant rows favour TI-RADS high-suspicion features; never exclusive.
_P = {
    "composition": {0: (0.45, 0.27, 0.12, 0.16), 1: (0.85, 0.13, 0.02, 0.0),
                    None: (0.62, 0.2, 0.08, 0.1)},
    "echo": {0: (0.05, 0.3, 0.45, 0.2), 1: (0.35, 0.45, 0.15, 0.05),
             None: (0.15, 0.4, 0.3, 0.15)},
    "margin": {0: (0.72, 0.2, 0.06, 0.02), 1: (0.3, 0.3, 0.25, 0.15),
               None: (0.5, 0.25, 0.15, 0.1)},
    "foci": {0: (0.68, 0.06, 0.12, 0.06, 0.08), 1: (0.4, 0.42, 0.12, 0.06, 0.0),
             None: (0.6, 0.18, 0.1, 0.06, 0.06)},
    "taller": {0: 0.08, 1: 0.42, None: 0.2},
    "halo": {0: 0.45, 1: 0.15, None: 0.3},
}


def nodule_features(rng, malignant: bool | None = None, **fixed) -> dict:
    """Draw TI-RADS-style descriptors for one nodule (``malignant`` None: the mixed
    population of a segmentation data set). Keyword arguments fix features."""
    k = None if malignant is None else int(malignant)
    f = {
        "composition": str(rng.choice(COMPOSITIONS, p=_P["composition"][k])),
        "echogenicity": str(rng.choice(ECHOGENICITIES, p=_P["echo"][k])),
        "margin": str(rng.choice(MARGINS, p=_P["margin"][k])),
        "foci": str(rng.choice(FOCI, p=_P["foci"][k])),
        "taller_than_wide": bool(rng.random() < _P["taller"][k]),
        "halo": bool(rng.random() < _P["halo"][k]),
        "radius_mm": float(np.clip(rng.lognormal(np.log(5.0), 0.35), 2.5, 10.0)),
    }
    f.update(fixed)
    if f["composition"] == "cystic":  # a cyst has no solid echogenicity, margin is smooth
        f["margin"] = "smooth" if f["margin"] in ("irregular", "spiculated") else f["margin"]
        f["foci"] = f["foci"] if f["foci"] in ("none", "comet") else "comet"
    elif f["foci"] == "comet":
        f["foci"] = "none" if f["composition"] == "solid" else "comet"
    if f["composition"] == "spongiform":
        f["echogenicity"] = "iso"
    return f


_ECHO_RANGE = {"marked_hypo": (0.28, 0.5), "hypo": (0.55, 0.9), "iso": (1.1, 1.45),
               "hyper": (1.6, 2.1)}
_MARGIN_H = {"smooth": ((2, 3), (0.01, 0.06)), "lobulated": ((3, 4, 5), (0.05, 0.12)),
             "irregular": ((2, 5, 7, 9), (0.04, 0.09)),
             "spiculated": ((3, 8, 11, 14, 19), (0.02, 0.06))}


def nodule_geometry(rng, f: dict, cx: float, cz: float) -> dict:
    """Turn descriptors into a 3-D nodule: contour, internal cysts and echogenic foci, each
    with an elevational position ``s`` in [-1, 1] so a sweep shows them come and go."""
    ks, amp = _MARGIN_H[f["margin"]]
    if f["margin"] == "spiculated":  # irregular spacing of the spicules
        ks = tuple(sorted(set(int(k + rng.integers(-1, 2)) for k in ks)))
    aspect = rng.uniform(1.08, 1.5) if f["taller_than_wide"] else rng.uniform(0.6, 1.02)
    r0 = f["radius_mm"] / np.sqrt(aspect)  # same area whatever the orientation: no size cue
    lo, hi = _ECHO_RANGE[f["echogenicity"]]
    solid = TISSUES["lesion_iso"].with_(
        echo=float(rng.uniform(lo, hi)), texture=(float(rng.uniform(0.15, 0.5)), 1.0),
        density=float(rng.uniform(8, 50)))
    g = {"cx": cx, "cz": cz, "r0": r0, "aspect": float(aspect),
         "angle": float(rng.uniform(-12, 12)), "harm": harmonics(rng, ks, amp),
         "solid": solid, "halo": (float(rng.uniform(-0.75, -0.5)), float(rng.uniform(0.5, 1.1)))
         if f["halo"] else (0.0, 0.0), "cysts": [], "foci": [], "mural": None,
         "composition": f["composition"]}

    def inside(n, rmax):  # random normalised positions (u, v, s) inside the unit ball
        out = []
        while len(out) < n:
            p = rng.uniform(-1, 1, 3)
            if np.linalg.norm(p) < rmax:
                out.append(p)
        return out

    comp = f["composition"]
    if comp == "mixed":
        for u, v, s in inside(int(rng.integers(1, 4)), 0.5):
            g["cysts"].append((u, v, s, float(rng.uniform(0.2, 0.45))))
    elif comp == "spongiform":
        g["solid"] = solid.with_(echo=float(rng.uniform(1.0, 1.4)), density=3.0,
                                 texture=(0.9, 0.5))
        for u, v, s in inside(int(rng.integers(5, 9)), 0.75):
            g["cysts"].append((u, v, s, float(rng.uniform(0.08, 0.16))))
    elif comp == "cystic":
        g["solid"] = TISSUES["cyst"].with_(echo=float(rng.uniform(0.0, 0.08)))
        if rng.random() < 0.5:  # mural solid component
            th = rng.uniform(0, 2 * np.pi)
            g["mural"] = (0.55 * np.cos(th), 0.55 * np.sin(th), float(rng.uniform(0.3, 0.45)),
                          solid, harmonics(rng, (3, 5), (0.1, 0.2)))
    foci = f["foci"]
    if foci == "micro":
        for u, v, s in inside(int(rng.integers(3, 10)), 0.8):
            g["foci"].append(("micro", u, v, s, float(rng.uniform(0.2, 0.35))))
    elif foci == "macro":
        for u, v, s in inside(int(rng.integers(1, 3)), 0.5):
            g["foci"].append(("macro", u, v, s, float(rng.uniform(0.8, 1.8))))
    elif foci == "rim":  # eggshell: a contiguous arc on the near wall (continuous shadow)
        span = rng.uniform(0.8, 2.0)
        th0 = -np.pi / 2 + rng.uniform(-0.5, 0.5) - span / 2
        n = int(rng.integers(5, 9))
        for th in np.linspace(th0, th0 + span, n):
            g["foci"].append(("rim", float(np.cos(th)), float(np.sin(th)), 0.0,
                              float(0.75 * span / n)))
    elif foci == "comet":
        for u, v, s in inside(int(rng.integers(1, 4)), 0.6):
            g["foci"].append(("comet", u, v, s, 0.25))
    return g


def paint_nodule(scene: Scene, g: dict, s: float = 0.0, label: str = "thyroid nodule") -> None:
    """Paint the nodule's cross-section at elevational position ``s`` (0 = its centre):
    a sphere-like section whose size, contour phase and contents change with ``s``."""
    c = float(np.sqrt(max(1.0 - s * s, 0.05)))
    r = g["r0"] * c
    hv = tuple((k, a, p + 0.6 * s * (k > 3)) for k, a, p in g["harm"])
    sx, sz = r, r * g["aspect"]  # half-width and half-height of the section

    def at(u, v):
        return g["cx"] + u * sx, g["cz"] + v * sz

    scene.add(blob(g["cx"], g["cz"], r, hv, g["aspect"], g["angle"]), g["solid"], label,
              halo=g["halo"])
    if g["mural"] is not None:
        u, v, rr, tis, hm = g["mural"]
        scene.add(blob(*at(u, v), rr * r, hm), tis, label)
    for u, v, s0, rr in g["cysts"]:
        d = (s - s0) / max(rr, 1e-3)
        if abs(d) < 1:
            k = rr * g["r0"] * np.sqrt(1 - d * d)
            scene.add(ell(*at(u, v), k * 1.2, k * 0.9), INNER_CYST, label)
    for kind, u, v, s0, rr in g["foci"]:
        if kind == "rim":
            x, z = at(u * 0.98, v * 0.98)
            ang = np.rad2deg(np.arctan2(v * sz, u * sx)) + 90
            scene.add(ell(x, z, rr * r + 0.3, 0.45, ang), RIMCALC, label)
            continue
        if abs(s - s0) > (0.22 if kind != "macro" else 0.4):
            continue
        x, z = at(u, v)
        if kind == "micro":
            scene.add(ell(x, z, rr, rr * 0.8), MICROCALC, label)
        elif kind == "macro":
            scene.add(ell(x, z, rr * 1.2, rr * 0.8, _angle_of(u, v)), MACROCALC, label)
        else:  # comet tail: bright focus with a short reverberation tail below
            for j, e in enumerate((3.5, 2.2, 1.4, 0.8)):
                scene.add(ell(x, z + 0.45 * j, 0.3 * (1 - 0.18 * j), 0.15), COMET.with_(echo=e),
                          label)


def _angle_of(u: float, v: float) -> float:
    """Deterministic orientation from a position (keeps painting free of extra draws)."""
    return float(np.rad2deg(np.arctan2(v, u)))


# --------------------------------------------------------------------------- thyroid anatomy
def _draw_thyroid(rng, depth: float, view: str, nodules: list[dict]) -> dict:
    """Draw the anatomy of a transverse thyroid view once; :func:`_paint_thyroid` renders it at
    any elevational sweep position. ``view``: ``lobe`` (one lobe, the trachea at the medial
    edge, carotid and jugular laterally) or ``isthmus`` (trachea centred, both lobes)."""
    skin, fat, strap = rng.uniform(0.9, 1.5), rng.uniform(1.0, 3.5), rng.uniform(1.8, 3.5)
    lobe_top = skin + fat + strap + rng.uniform(0.3, 1.0)
    gland = TISSUES["thyroid"].with_(echo=float(rng.uniform(1.4, 1.9)),
                                     texture=(float(rng.uniform(0.12, 0.3)), 1.0))
    if rng.random() < 0.15:  # thyroiditis: coarse, less echogenic parenchyma
        gland = gland.with_(echo=float(rng.uniform(0.9, 1.2)), texture=(0.55, 1.6))
    a = {"depth": depth, "view": view, "skin": skin, "fat": fat, "strap": strap,
         "lobe_top": lobe_top, "isthmus": rng.uniform(1.5, 3.5), "r_t": rng.uniform(7.0, 9.0),
         "gland": gland, "drift": float(rng.uniform(-2.0, 2.0)), "lobes": [], "nodules": [],
         "vertebra": bool(rng.random() < 0.4 and depth > 38)}
    meds = [1.0, -1.0] if view == "isthmus" else [float(rng.choice([-1.0, 1.0]))]
    for med in meds:  # med: image direction from the lobe towards the trachea
        a["lobes"].append({"med": med, "a": rng.uniform(7.0, 10.0), "b": rng.uniform(5.0, 7.5),
                           "harm": harmonics(rng, (2, 3), (0.03, 0.1)),
                           "esophagus": bool(rng.random() < 0.5 and med < 0)})
    for f in nodules:  # each nodule in a random lobe, which grows to hold it
        lobe = a["lobes"][int(rng.integers(len(a["lobes"])))]
        g = nodule_geometry(rng, f, 0.0, 0.0)
        half_w, half_h = g["r0"] * 1.15, g["r0"] * g["aspect"] * 1.15
        lobe["a"] = max(lobe["a"], half_w * 1.25 + 1.0)
        lobe["b"] = max(lobe["b"], half_h * 1.15 + 0.6)
        g["lobe"] = lobe
        g["off"] = (rng.uniform(-1, 1) * max(lobe["a"] - half_w - 0.8, 0) * 0.6,
                    rng.uniform(-1, 1) * max(lobe["b"] - half_h - 0.6, 0) * 0.6)
        a["nodules"].append(g)
    r_t = a["r_t"]
    xt = rng.uniform(-3, 3) if view == "isthmus" else 0.0
    a["trachea"] = (xt, lobe_top + a["isthmus"] + 0.8 + r_t * rng.uniform(0.85, 1.0))
    for lobe in a["lobes"]:
        med = lobe["med"]
        lobe["x"] = xt - med * (lobe["a"] * 0.95 + r_t * 0.5)
        lobe["z"] = lobe_top + lobe["b"]
        r_c = rng.uniform(2.8, 4.0)
        lobe["carotid"] = (lobe["x"] - med * (lobe["a"] * 0.9 + r_c + rng.uniform(0.5, 2.0)),
                           lobe["z"] + lobe["b"] * rng.uniform(0.1, 0.5), r_c)
        ja = rng.uniform(3.5, 7.0)
        jb, jdz = ja * rng.uniform(0.35, 0.9), -r_c * rng.uniform(-0.2, 0.9)
        cx, cz, _ = lobe["carotid"]
        lobe["jugular"] = (cx - med * (beside(r_c + 0.8, jdz, ja, jb, 0.0, -med) +
                                       rng.uniform(0, 1.5)), cz + jdz, ja, jb)
        lobe["longus"] = (cx + med * rng.uniform(1, 5), lobe["z"] + lobe["b"] +
                          rng.uniform(3, 6), rng.uniform(5, 8), rng.uniform(2.5, 4))
        lobe["scm"] = (cx - med * rng.uniform(1, 5), rng.uniform(2.5, 4.0), rng.uniform(10, 14))
    if view == "lobe":  # lobe near the centre, trachea at the medial edge
        lobe = a["lobes"][0]
        a["shift"] = float(-lobe["x"] + lobe["med"] * rng.uniform(0.5, 5.0))
    else:
        a["shift"] = 0.0
    a["paint_seed"] = int(rng.integers(2 ** 31))  # decorative draws: same in every cine frame
    return a


def _paint_thyroid(a: dict, s: float = 0.0) -> Scene:
    """Render the drawn thyroid anatomy at sweep position ``s`` (probe moved along the neck:
    structures drift slightly, the lobe and the nodules change their cross-section)."""
    rng = np.random.default_rng(a["paint_seed"])
    sc = Scene(background=TISSUES["soft"].with_(echo=0.5, texture=(0.45, 1.5)), name="thyroid")
    dx = a["shift"] + a["drift"] * s
    xt, zt = a["trachea"]
    xt, r_t, top = xt + dx, a["r_t"], a["skin"] + a["fat"]
    add_planes(sc, rng, 2, x=(-15, 15), z=(a["lobe_top"] + 8, a["depth"]))
    for lobe in a["lobes"]:
        lx, lz, la, lb = lobe["longus"]
        add_muscle(sc, ell(lx + dx, lz, la, lb, 10 * lobe["med"]), "longus colli muscle", rng)
    if a["vertebra"]:
        sc.add(ell(xt, a["depth"] + 4.0, 14, 6.5), TISSUES["bone"], "vertebra")
    shrink = 1.0 - 0.06 * s * s
    for lobe in a["lobes"]:
        sc.add(blob(lobe["x"] + dx, lobe["z"], lobe["a"] * shrink, lobe["harm"],
                    lobe["b"] / lobe["a"]), a["gland"], "thyroid")
    sc.add(ell(xt, a["lobe_top"] + a["isthmus"] / 2 + 0.3, r_t + 5, a["isthmus"] / 2 + 0.4),
           a["gland"], "thyroid")
    for g in a["nodules"]:
        lobe = g["lobe"]
        paint_nodule(sc, dict(g, cx=lobe["x"] + dx + g["off"][0], cz=lobe["z"] + g["off"][1]), s)
    # trachea: hypoechoic cartilage ring, bright air interface, reverberations in the shadow
    sc.add(ell(xt, zt, r_t + 1.5, r_t + 1.3), CARTILAGE, "trachea")
    sc.add(Local(AirColumn(xt, zt, r_t, 0.8, depth=r_t), 1.0), AIR, "trachea")
    wall_depth = zt - r_t
    for k in (1, 2):  # reverberations of the air interface: echoes, no further shadow
        sc.add(Local(AirColumn(xt, zt + k * wall_depth, r_t, 0.8, depth=0.8), 1.0),
               REVERB.with_(wall=(6.0 / k, 0.6)), "trachea")
    for lobe in a["lobes"]:
        med = lobe["med"]
        if lobe["esophagus"]:
            ex, ez = xt - med * r_t * 0.75, zt + r_t * 0.85
            sc.add(ell(ex, ez, 6.0, 3.8), MUSCLE, "esophagus")
            sc.add(ell(ex, ez, 3.5, 1.0), TISSUES["fascia"].with_(echo=1.4), "esophagus")
        jx, jz, ja, jb = lobe["jugular"]
        add_vein(sc, jx + dx, jz, ja, jb, "jugular vein", rng=rng)
        cx, cz, r_c = lobe["carotid"]
        add_artery(sc, cx + dx, cz, r_c, "carotid artery", wall=0.8)
        # sternocleidomastoid over the vessels, strap muscles over the lobe
        sx, sb, sa = lobe["scm"]
        add_muscle(sc, ell(sx + dx, top + sb + 0.2, sa, sb, -8 * med),
                   "sternocleidomastoid muscle", rng)
        add_muscle(sc, ell(lobe["x"] + dx + med * 3, top + a["strap"] / 2 + 0.2, lobe["a"] + 5,
                           a["strap"] / 2 + 0.2), "strap muscles", rng)
    add_wall(sc, rng, skin=a["skin"], fat=a["fat"])
    return sc


def _neck_acquire_args(depth: float, focus: float) -> dict:
    return {"probe": "linear", "depth_mm": float(depth), "focus_mm": float(focus),
            "probe_changes": {"width_mm": float(depth)}}


def thyroid_scene(rng: np.random.Generator, *, depth_mm: float,
                  nodule: "dict | list[dict] | None" = None, view: str | None = None
                  ) -> tuple[Scene, dict]:
    """A transverse thyroid view (linear probe) for reuse by other generators.

    nodule: None (normal gland), a dict of descriptors (missing keys drawn at random, see
            :func:`nodule_features`; ``{}`` = a random nodule; ``"malignant": True/False``
            draws class-conditional descriptors) or a list of such dicts.
    view:   "lobe" or "isthmus" (default: random, mostly "lobe").
    Returns (scene, info): info["acquire"] are acquire() keyword arguments (probe, depth,
    focus at the nodule or gland, square field of view); info["nodules"] the descriptors;
    labels in the scene: "thyroid", "thyroid nodule", "trachea", "carotid artery",
    "jugular vein", muscles, "skin", "subcutaneous fat"."""
    specs = [] if nodule is None else ([nodule] if isinstance(nodule, dict) else list(nodule))
    feats = []
    for sp in specs:
        sp = dict(sp)
        mal = sp.pop("malignant", None)
        feats.append(nodule_features(rng, mal, **sp))
    view = view or ("isthmus" if rng.random() < 0.25 else "lobe")
    a = _draw_thyroid(rng, depth_mm, view, feats)
    focus = (a["nodules"][0]["lobe"]["z"] if a["nodules"] else a["lobes"][0]["z"])
    info = {"view": view, "nodules": feats, "anatomy": a,
            "acquire": _neck_acquire_args(depth_mm, focus + rng.uniform(-2, 2))}
    return _paint_thyroid(a), info


# --------------------------------------------------------------------------- vessels
def carotid_scene(rng: np.random.Generator, *, depth_mm: float) -> tuple[Scene, dict]:
    """A transverse mid-neck view centred on the common carotid artery (linear probe):
    sternocleidomastoid anteriorly, the internal jugular vein anterolateral (variably
    compressed by probe pressure), vagus nerve between them, thyroid lobe edge medially,
    longus colli / scalene muscles and a transverse process (bone, shadow) deep.
    Labels: "carotid artery", "jugular vein" (+ decorative structures)."""
    sc = Scene(background=TISSUES["soft"].with_(echo=0.75, texture=(0.45, 1.5)), name="carotid")
    med = float(rng.choice([-1.0, 1.0]))
    skin, fat = rng.uniform(0.9, 1.6), rng.uniform(1.5, 4.5)
    top = skin + fat
    scm_b = rng.uniform(2.5, 5.0)
    r_c = rng.uniform(2.8, 4.5)
    wall = rng.uniform(0.5, 0.9)
    cx = rng.uniform(-4, 4)
    cz = top + 2 * scm_b + r_c + rng.uniform(2, 8)
    ja = rng.uniform(3.5, 8.0)
    jb = ja * rng.uniform(0.2, 0.95)  # probe compression flattens the vein
    jz = max(cz - rng.uniform(0.0, 1.0) * r_c, top + 2 * scm_b + jb + 0.5)
    j_ang = rng.uniform(-15, 15)
    jx = cx - med * (beside(r_c + wall, jz - cz, ja, jb, j_ang, -med) + rng.uniform(0, 2))
    # deep structures first
    add_planes(sc, rng, int(rng.integers(1, 4)), x=(-15, 15), z=(cz, depth_mm))
    add_muscle(sc, ell(cx + med * rng.uniform(3, 8), cz + r_c + rng.uniform(4, 8),
                       rng.uniform(5, 9), rng.uniform(2.5, 4)), "longus colli muscle", rng)
    add_muscle(sc, ell(cx - med * rng.uniform(6, 12), cz + r_c + rng.uniform(3, 7),
                       rng.uniform(4, 7), rng.uniform(2.5, 4), 20 * med), "scalene muscle", rng)
    if rng.random() < 0.5:
        sc.add(ell(cx + med * rng.uniform(-2, 6), cz + r_c + rng.uniform(9, 14),
                   rng.uniform(4, 7), rng.uniform(2, 3.5)), TISSUES["bone"], "vertebra")
    lx = cx + med * (r_c + wall + rng.uniform(8, 11))
    sc.add(blob(lx, cz - rng.uniform(0, 3), rng.uniform(7, 10),
                harmonics(rng, (2, 3), (0.03, 0.08)), 0.8),
           TISSUES["thyroid"].with_(echo=float(rng.uniform(1.2, 1.5))), "thyroid")
    add_vein(sc, jx, jz, ja, jb, "jugular vein", angle=j_ang, rng=rng)
    sc.add(ell(cx - med * r_c * 0.6, cz + r_c * 0.9 + 1.2, 1.2, 0.9), NERVE, "vagus nerve")
    add_artery(sc, cx, cz, r_c, "carotid artery", wall=wall, rng=rng, plaque=rng.random() < 0.15)
    add_muscle(sc, ell(cx - med * rng.uniform(0, 6), top + scm_b + 0.3, rng.uniform(12, 18), scm_b,
                       rng.uniform(-10, 10)), "sternocleidomastoid muscle", rng)
    add_wall(sc, rng, skin=skin, fat=fat)
    return sc, {"view": "carotid",
                "acquire": _neck_acquire_args(depth_mm, cz + rng.uniform(-3, 3))}


def femoral_scene(rng: np.random.Generator, *, depth_mm: float) -> tuple[Scene, dict]:
    """A transverse groin view: common femoral artery laterally, the larger compressible
    femoral vein medially, femoral nerve lateral to the artery, sartorius superficial,
    iliopsoas and pectineus deep, sometimes an inguinal lymph node in the fat.
    Labels: "femoral artery", "femoral vein" (+ decorative structures)."""
    sc = Scene(background=TISSUES["soft"].with_(echo=0.8, texture=(0.45, 1.5)), name="femoral")
    med = float(rng.choice([-1.0, 1.0]))  # image direction towards the patient's midline
    skin, fat = rng.uniform(1.2, 2.2), rng.uniform(3.5, 11.0)
    top = skin + fat
    r_a = rng.uniform(3.3, 5.0)
    wall = rng.uniform(0.6, 1.1)
    ax = rng.uniform(-6, 2) * med
    az = top + r_a + wall + rng.uniform(2.0, 6.0)
    va = rng.uniform(4.5, 7.5)
    vb = va * rng.uniform(0.25, 0.95)
    vz = az + rng.uniform(-0.5, 3.0)
    v_ang = rng.uniform(-15, 15)
    vx = ax + med * (beside(r_a + wall, vz - az, va, vb, v_ang, med) + rng.uniform(0, 2))
    add_planes(sc, rng, int(rng.integers(1, 4)), x=(-15, 15), z=(az, depth_mm))
    add_muscle(sc, ell(ax - med * rng.uniform(6, 12), az + rng.uniform(7, 11), rng.uniform(10, 16),
                       rng.uniform(4, 7), 15 * med), "iliopsoas muscle", rng)
    add_muscle(sc, ell(vx + med * rng.uniform(2, 8), vz + vb + rng.uniform(4, 8),
                       rng.uniform(8, 12), rng.uniform(3, 5), -10 * med), "pectineus muscle", rng)
    if rng.random() < 0.3:
        sc.add(ell(ax - med * 8, depth_mm + rng.uniform(2, 6), 16, 8), TISSUES["bone"],
               "femoral head")
    sc.add(blob(ax - med * (r_a + wall + rng.uniform(2.5, 4.5)), az + rng.uniform(-1, 2),
                rng.uniform(1.8, 2.8), harmonics(rng, (3,), (0.1, 0.2)), 0.6), NERVE,
           "femoral nerve")
    add_vein(sc, vx, vz, va, vb, "femoral vein", angle=v_ang, rng=rng)
    add_artery(sc, ax, az, r_a, "femoral artery", wall=wall, rng=rng, plaque=rng.random() < 0.15)
    add_muscle(sc, ell(ax - med * rng.uniform(10, 16), top + rng.uniform(2.5, 4.5),
                       rng.uniform(8, 12), rng.uniform(2, 3.5), 20 * med), "sartorius muscle", rng)
    if rng.random() < 0.35:  # inguinal lymph node: hypoechoic cortex, echogenic hilum
        nx, nz = vx + med * rng.uniform(4, 10), skin + fat * rng.uniform(0.35, 0.6)
        na = rng.uniform(3, 6)
        sc.add(ell(nx, nz, na, min(na * 0.45, fat * 0.35), rng.uniform(-15, 15)),
               TISSUES["lesion_hypo"].with_(echo=0.5), "lymph node")
        sc.add(ell(nx, nz, na * 0.55, min(na * 0.2, fat * 0.15)), TISSUES["fat"].with_(echo=1.6),
               "lymph node")
    add_wall(sc, rng, skin=skin, fat=fat)
    return sc, {"view": "femoral",
                "acquire": _neck_acquire_args(depth_mm, az + rng.uniform(-3, 3))}


# --------------------------------------------------------------------------- samples
def _finish(frame: Frame, scene: Scene, groups, dev: str, **meta) -> dict:
    lm, names = visible_labels(frame, scene)
    return {"image": as_image(frame.image), "mask": class_map(lm, names, groups),
            "structures": structures(lm, names), "meta": frame_meta(frame, dev, **meta)}


def _patient(index: int, prefix: str, every: int = 3) -> str:
    """Pairs of consecutive indices share a patient for one pair in ``every`` (several
    images/nodules per patient in the real data); the rest are single-sample patients."""
    pair = index // 2
    return f"{prefix}{2 * pair:05d}" if pair % every == 0 else f"{prefix}{index:05d}"


def sample_thyroid_nodule_seg(rng: np.random.Generator, *, size: int, index: int,
                              split: str) -> dict:
    """DDTI-like transverse thyroid image with one (sometimes two) nodules; mask = nodules."""
    depth = rng.uniform(35, 45)
    n = 2 if rng.random() < 0.15 else 1
    scene, info = thyroid_scene(rng, depth_mm=depth, nodule=[{}] * n)
    dev, proc = pick_device(rng, "thyroid_nodule_seg")
    frame = acquire(scene, rng, device=dev, size=size, proc_changes=proc, **info["acquire"])
    out = _finish(frame, scene, [("thyroid nodule",)], dev, dataset="DDTI",
                  task="thyroid_nodule_seg", case_id=f"{split}-{index:05d}",
                  patient_id=_patient(index, f"ddti-{split}-"), split=split, view=info["view"],
                  findings=info["nodules"])
    return out


def sample_vessel_seg(rng: np.random.Generator, *, size: int, index: int, split: str) -> dict:
    """Mus-V-like transverse artery/vein image: 0 background, 1 vein, 2 artery."""
    depth = rng.uniform(30, 40)
    site = "carotid" if rng.random() < 0.5 else "femoral"
    scene, info = (carotid_scene if site == "carotid" else femoral_scene)(rng, depth_mm=depth)
    dev, proc = pick_device(rng, "vessel_seg")
    frame = acquire(scene, rng, device=dev, size=size, proc_changes=proc, **info["acquire"])
    groups = [("jugular vein", "femoral vein"), ("carotid artery", "femoral artery")]
    return _finish(frame, scene, groups, dev, dataset="Mus-V", task="vessel_seg",
                   case_id=f"{split}-{index:05d}", patient_id=f"musv-{split}-{index // 6:04d}",
                   split=split, view=site)


def sample_thyroid_nodule_cine_cls(rng: np.random.Generator, *, size: int, index: int,
                                   split: str) -> dict:
    """AIMI-like cine clip sweeping through one nodule; label 0 benign, 1 malignant.

    The probe moves along the neck: the nodule's section grows then shrinks, internal
    cysts and echogenic foci come and go, structures drift, and speckle decorrelates
    gradually (tissue texture stays, as it belongs to the tissue)."""
    n_t = 8 if size <= 64 else 12
    label = int(rng.integers(2))
    depth = rng.uniform(35, 45)
    feat = nodule_features(rng, bool(label))
    a = _draw_thyroid(rng, depth, "lobe", [feat])
    g = a["nodules"][0]
    dev, proc = pick_device(rng, "thyroid_nodule_cine_cls", cine=True)
    args = _neck_acquire_args(depth, g["lobe"]["z"] + g["off"][1] + rng.uniform(-2, 2))
    corr = float(rng.uniform(0.8, 0.9))
    tex_seed = int(rng.integers(2 ** 31))
    extent = rng.uniform(0.75, 0.9)
    sweep = np.linspace(-extent, extent, n_t) * float(rng.choice([-1.0, 1.0]))
    sweep = np.clip(sweep + rng.normal(0, 0.03, n_t), -0.95, 0.95)
    sweep[n_t // 2] = rng.uniform(-0.05, 0.05)  # the representative frame is near the centre
    frames, masks, speckle = [], [], None
    for s in sweep:
        scene = _paint_thyroid(a, float(s))
        if speckle is not None:
            speckle = decorrelate(speckle, corr, rng)
        fr = acquire(scene, np.random.default_rng(tex_seed), device=dev, size=size,
                     proc_changes=proc, speckle=speckle, **args)
        speckle = fr.beam.speckle
        frames.append(fr.image)
        if len(frames) == n_t // 2 + 1:  # the representative frame: every structure
            lm, names = visible_labels(fr, scene)
            mid_frame, mid_lm, mid_names = fr, lm, names
        else:  # the nodule mask only: objects painted before the nodule cannot change it
            names = scene.label_names()
            first = next((i for i, o in enumerate(scene.objects)
                          if o.label == "thyroid nodule"), len(scene.objects))
            lm = fr.label_map(Scene(scene.background, scene.objects[first:], scene.name), names)
        masks.append(class_map(lm, names, [("thyroid nodule",)]))
    frames_a = np.stack([as_image(f) for f in frames])
    masks_a = np.stack(masks).astype(np.uint8)
    pid = _patient(index, f"aimi-{split}-", every=4)
    return {"image": frames_a[n_t // 2], "frames": frames_a, "mask": masks_a[n_t // 2],
            "masks": masks_a, "label": label, "label_name": ["benign", "malignant"][label],
            "structures": structures(mid_lm, mid_names),
            "meta": frame_meta(mid_frame, dev, dataset="Stanford AIMI thyroid cine-clip",
                               task="thyroid_nodule_cine_cls", case_id=f"{split}-{index:05d}",
                               patient_id=pid, split=split, n_frames=n_t,
                               frame_correlation=corr, findings=feat)}


TASKS: dict[str, dict] = {
    "thyroid_nodule_seg": {
        "kind": "segmentation", "classes": ["background", "nodule"],
        "sample": sample_thyroid_nodule_seg, "paper_dataset": "DDTI",
        "description": "Transverse thyroid view (linear probe): skin, fat, strap and "
                       "sternocleidomastoid muscles, thyroid lobe(s), trachea, carotid and "
                       "jugular; one or two nodules of varied composition; mask = nodules."},
    "vessel_seg": {
        "kind": "segmentation", "classes": ["background", "vein", "artery"],
        "sample": sample_vessel_seg, "paper_dataset": "Mus-V",
        "description": "Transverse carotid/jugular or femoral artery/vein view (linear probe); "
                       "mask 1 vein (variably compressed), 2 artery (round, thick wall)."},
    "thyroid_nodule_cine_cls": {
        "kind": "classification", "classes": ["benign", "malignant"],
        "sample": sample_thyroid_nodule_cine_cls,
        "paper_dataset": "Stanford AIMI thyroid ultrasound cine-clip",
        "description": "Cine sweep (8 frames at <= 64 px, else 12) through one thyroid nodule; "
                       "TI-RADS-like features with overlapping class-conditional probabilities."},
}
