"""Breast ultrasound with BI-RADS-graded lesions (paper: BI-RADS grading on BUS-BRA).

BUS-BRA (Gomez-Flores et al., Med. Phys. 2023) holds linear-probe breast images of 1,064
patients with lesion masks and BI-RADS categories 2-5; the paper grades them into 4 classes.
Here a linear probe images layered breast anatomy: skin, subcutaneous fat lobules framed by
Cooper's ligaments (echogenic septa = the lobules' walls), heterogeneous fibroglandular
tissue, retromammary fat, pectoralis muscle with its fascia, and ribs (a bright arc with an
acoustic shadow) above the pleura when the depth reaches them.

One lesion carries the class evidence. Its ACR BI-RADS lexicon descriptors (shape,
orientation, margin, echo pattern, posterior features, calcifications, echogenic halo) are
drawn from grade-conditional distributions that overlap between neighbouring grades, then
rendered physically: the margin is a harmonic outline (:class:`Blob`), posterior enhancement
and shadowing come from the lesion's attenuation, calcifications are punctate reflectors. No
single descriptor decides the grade, as in the lexicon's own use.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..devices import device_style
from ..render import acquire, as_image, frame_meta
from ..scene import (TISSUES, Blob, Ellipse, Float32Rho, Layer, Scene, Shape, Tissue,
                     box_window, row_and_column)

CLASSES = ["BI-RADS 2", "BI-RADS 3", "BI-RADS 4", "BI-RADS 5"]
DEVICES = (["high_end", "mid_range", "legacy_sepia", "low_end"], [0.15, 0.4, 0.25, 0.2])

#: descriptor -> (options, P(option | grade) rows for BI-RADS 2, 3, 4, 5). Neighbouring rows
#: overlap on purpose: a BI-RADS 3 fibroadenoma and a BI-RADS 4 mass can look alike.
LEXICON: dict[str, tuple[list[str], list[list[float]]]] = {
    "shape": (["oval", "round", "irregular"],
              [[.75, .25, .00], [.78, .14, .08], [.35, .22, .43], [.06, .12, .82]]),
    "orientation": (["parallel", "not parallel"],
                    [[.95, .05], [.88, .12], [.62, .38], [.32, .68]]),
    "margin": (["circumscribed", "indistinct", "angular", "microlobulated", "spiculated"],
               [[.88, .08, .00, .04, .00], [.72, .13, .03, .12, .00],
                [.20, .30, .20, .20, .10], [.04, .22, .24, .14, .36]]),
    "echo_pattern": (["anechoic", "hyperechoic", "complex cystic and solid", "hypoechoic",
                      "isoechoic", "heterogeneous"],
                     [[.58, .15, .02, .08, .17, .00], [.10, .05, .05, .50, .20, .10],
                      [.04, .03, .18, .45, .10, .20], [.00, .02, .08, .56, .04, .30]]),
    "posterior_features": (["none", "enhancement", "shadowing", "combined"],
                           [[.35, .55, .10, .00], [.45, .40, .08, .07],
                            [.42, .18, .28, .12], [.25, .10, .50, .15]]),
}
P_CALCIFICATIONS = [0.02, 0.05, 0.25, 0.50]
P_HALO = [0.00, 0.03, 0.15, 0.50]
SIZE_MEDIAN_MM = [9.0, 12.0, 14.0, 17.0]  # lesion diameter, log-normal with sigma 0.35


@dataclass
class LesionSpec:
    """A breast lesion: BI-RADS descriptors plus the geometry that renders them."""

    grade: int  # class index 0..3 (BI-RADS 2..5)
    descriptors: dict[str, str | bool]
    cx: float = 0.0
    cz: float = 15.0
    diameter_mm: float = 10.0
    aspect: float = 0.7  # height / width before rotation (> 1: taller than wide)
    angle: float = 0.0
    harmonics: tuple[tuple[int, float, float], ...] = ()
    seed: int = 0  # for the internal details (calcifications, spicules, solid component)
    extras: dict = field(default_factory=dict)


def _choice(rng: np.random.Generator, options: list[str], p: list[float]) -> str:
    p = np.asarray(p, float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def sample_descriptors(rng: np.random.Generator, grade: int) -> dict[str, str | bool]:
    """Draw BI-RADS descriptors given the grade (0..3) from :data:`LEXICON`."""
    d: dict[str, str | bool] = {k: _choice(rng, opts, rows[grade])
                                for k, (opts, rows) in LEXICON.items()}
    if d["echo_pattern"] == "anechoic":  # fluid: through-transmission unless thick walls/debris
        d["posterior_features"] = "enhancement" if rng.random() < 0.85 else "none"
        if grade <= 1 and d["margin"] not in ("circumscribed", "microlobulated"):
            d["margin"] = "circumscribed"
    d["calcifications"] = bool(rng.random() < P_CALCIFICATIONS[grade]
                               and d["echo_pattern"] != "anechoic")
    d["echogenic_halo"] = bool(rng.random() < P_HALO[grade])
    return d


def _outline(rng: np.random.Generator, d: dict) -> tuple[float, list[tuple[int, float, float]]]:
    """Aspect ratio and outline harmonics realising shape, orientation and margin."""
    ph = lambda: float(rng.uniform(0, 2 * np.pi))  # noqa: E731
    h: list[tuple[int, float, float]] = []
    if d["shape"] == "oval":
        aspect = rng.uniform(0.45, 0.78)
        h.append((2, float(rng.uniform(0, 0.04)), ph()))
    elif d["shape"] == "round":
        aspect = rng.uniform(0.85, 1.0)
    else:
        aspect = rng.uniform(0.65, 1.0)
        for k in rng.choice([2, 3, 4, 5], size=3, replace=False):
            h.append((int(k), float(rng.uniform(0.08, 0.18)), ph()))
    if d["orientation"] == "not parallel":
        aspect = rng.uniform(1.1, 1.6) if d["shape"] != "round" else rng.uniform(1.05, 1.25)
    margin = d["margin"]
    if margin == "circumscribed" and rng.random() < 0.3:  # gentle macrolobulation
        h.append((int(rng.integers(2, 4)), float(rng.uniform(0.04, 0.08)), ph()))
    elif margin == "angular":
        for k in rng.choice([3, 4, 5, 6], size=2, replace=False):
            h.append((int(k), float(rng.uniform(0.08, 0.16)), ph()))
    elif margin == "microlobulated":
        for k in rng.choice(np.arange(8, 15), size=3, replace=False):
            h.append((int(k), float(rng.uniform(0.03, 0.06)), ph()))
    elif margin == "spiculated":  # fine irregularity here; the spicules are drawn as lines
        for k in rng.choice(np.arange(9, 20), size=3, replace=False):
            h.append((int(k), float(rng.uniform(0.02, 0.045)), ph()))
    return float(aspect), h


def sample_lesion(rng: np.random.Generator, grade: int, *, cx: float, cz: float,
                  max_diameter_mm: float) -> LesionSpec:
    """A lesion of BI-RADS class ``grade`` (0..3) centred at (cx, cz) mm."""
    d = sample_descriptors(rng, grade)
    diam = float(np.clip(SIZE_MEDIAN_MM[grade] * np.exp(0.35 * rng.standard_normal()), 4.0,
                         max_diameter_mm))
    aspect, harmonics = _outline(rng, d)
    return LesionSpec(grade, d, cx, cz, diam, aspect, float(rng.uniform(-12, 12)),
                      tuple(harmonics), int(rng.integers(2 ** 31)))


# --------------------------------------------------------------------------- shapes
# Generic shapes shared with the other task modules (liver_ceus, fetal); candidates for scene.py.
@dataclass(frozen=True)
class Boxed(Shape):
    """Evaluate a small shape only inside its bounding box (plus ``margin_mm``): a scene is
    sampled on the whole beam grid for every object, so small objects dominate the cost."""

    shape: Shape
    margin_mm: float = 3.0

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return self.shape.scale_mm

    def bbox(self):
        return self.shape.bbox()

    def near(self, pad: float) -> Shape:
        # Scene already evaluates only within bbox +- pad: no need to window again there
        return Float32Rho(self.shape, float32_inputs=True) if pad <= self.margin_mm else self

    def rho(self, x, z):
        x, z = np.asarray(x, np.float32), np.asarray(z, np.float32)
        x0, x1, z0, z1 = self.shape.bbox()
        m = self.margin_mm
        if row_and_column(x, z):  # axis-aligned grid: x a row, z a column
            return box_window(x, z, (x0 - m, x1 + m, z0 - m, z1 + m), self.shape.rho, 10.0)
        x, z = np.broadcast_arrays(x, z)
        sel = (x >= x0 - m) & (x <= x1 + m) & (z >= z0 - m) & (z <= z1 + m)
        out = np.full(x.shape, 10.0, np.float32)
        if sel.any():
            out[sel] = self.shape.rho(x[sel], z[sel])
        return out


@dataclass(frozen=True)
class Union(Shape):
    """Several shapes of one tissue as a single scene object (rho = min of the shapes' rho,
    each evaluated only near itself): one object instead of many keeps scenes fast."""

    shapes: tuple[Shape, ...]
    margin_mm: float = 2.0

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return float(np.median([s.scale_mm for s in self.shapes])) if self.shapes else 1.0

    def bbox(self):
        if not self.shapes:  # empty union: an empty box
            return np.inf, -np.inf, np.inf, -np.inf
        b = np.array([s.bbox() for s in self.shapes])
        return (float(b[:, 0].min()), float(b[:, 1].max()), float(b[:, 2].min()),
                float(b[:, 3].max()))

    def rho(self, x, z):
        x, z = np.asarray(x, np.float32), np.asarray(z, np.float32)
        out = np.full(np.broadcast_shapes(x.shape, z.shape), 10.0, np.float32)
        for s in self.shapes:
            out = np.minimum(out, Boxed(s, self.margin_mm).rho(x, z))
        return out


def EllipseUnion(rows, margin_mm: float = 2.0) -> Union:  # noqa: N802 - reads like a shape
    """Union of ellipses given as rows (cx, cz, a, b, angle)."""
    return Union(tuple(Ellipse(*map(float, r)) for r in rows), margin_mm)


# --------------------------------------------------------------------------- anatomy
def _lesion_tissue(rng: np.random.Generator, d: dict, height_mm: float) -> Tissue:
    """Echo pattern and posterior features -> the lesion's acoustic properties. Posterior
    features are set as an extra two-way loss (shadowing) or gain (enhancement) in dB across
    the lesion at a nominal 9 MHz, so their strength does not scale with lesion size."""
    pat = d["echo_pattern"]
    if pat in ("anechoic", "complex cystic and solid"):
        t = TISSUES["cyst"].with_(echo=float(rng.uniform(0.0, 0.06)),
                                  wall=(float(rng.uniform(0.6, 1.4)), 0.3))
    elif pat == "hyperechoic":
        t = TISSUES["lesion_hyper"].with_(echo=float(rng.uniform(1.5, 2.2)))
    elif pat == "hypoechoic":
        t = TISSUES["lesion_hypo"].with_(echo=float(rng.uniform(0.15, 0.4)))
    elif pat == "isoechoic":
        t = TISSUES["lesion_iso"].with_(echo=float(rng.uniform(0.4, 0.6)))
    else:  # heterogeneous: coarse mixture of brighter and darker areas
        t = TISSUES["lesion_iso"].with_(echo=float(rng.uniform(0.35, 0.75)),
                                        texture=(float(rng.uniform(0.7, 1.0)), 1.8))
    extra_db = {"none": rng.uniform(-2, 2), "enhancement": rng.uniform(-12, -5),
                "shadowing": rng.uniform(10, 22), "combined": rng.uniform(8, 16)}
    per_cm = 2 * 9.0 * max(height_mm, 2.0) / 10  # dB per (dB/cm/MHz) across the lesion
    atten = max(0.6 + extra_db[d["posterior_features"]] / per_cm, 0.002)
    return t.with_(atten=float(atten))


def _radial_lines(rng: np.random.Generator, blob: Blob, n: int, length: tuple[float, float],
                  width: float) -> list[tuple[float, float, float, float, float]]:
    """Thin ellipses radiating outwards from random points of a blob's outline (spicules)."""
    out = []
    ca, sa = np.cos(np.deg2rad(blob.angle)), np.sin(np.deg2rad(blob.angle))
    for t in rng.uniform(0, 2 * np.pi, n):
        rr = float(blob.radius(np.array([t]))[0])
        u, v = np.cos(t) * rr, np.sin(t) * rr * blob.aspect
        bx, bz = blob.cx + ca * u - sa * v, blob.cz + sa * u + ca * v
        phi = np.arctan2(bz - blob.cz, bx - blob.cx) + rng.normal(0, 0.2)
        ln = float(rng.uniform(*length))
        out.append((float(bx + np.cos(phi) * ln * 0.7), float(bz + np.sin(phi) * ln * 0.7), ln,
                    width, float(np.rad2deg(phi))))
    return out


def _lesion_blob(spec: LesionSpec) -> Blob:
    r0 = spec.diameter_mm / 2 / np.sqrt(max(spec.aspect, 1e-3))  # area-preserving radius
    return Blob(spec.cx, spec.cz, float(r0), spec.harmonics, spec.aspect, spec.angle)


def _add_lesion(scene: Scene, spec: LesionSpec) -> Blob:
    """Paint the lesion (label "lesion") and its unlabelled internal/peri-lesional details."""
    rng = np.random.default_rng(spec.seed)
    d = spec.descriptors
    blob = _lesion_blob(spec)
    r0 = blob.r0
    tissue = _lesion_tissue(rng, d, spec.diameter_mm * np.sqrt(spec.aspect))
    if d["margin"] == "indistinct":  # a transition zone blurs the boundary
        zone = Blob(spec.cx, spec.cz, float(r0 * rng.uniform(1.12, 1.28)), spec.harmonics,
                    spec.aspect, spec.angle)
        scene.add(Boxed(zone), TISSUES["lesion_iso"].with_(
            echo=float((tissue.echo + 1.0) / 2), texture=(0.7, 1.0), atten=0.7))
    if d["margin"] == "spiculated":  # radiating lines, mostly hypoechoic
        lines = _radial_lines(rng, blob, int(rng.integers(7, 15)), (2.5, 7.0), 0.45)
        k = int(rng.integers(0, 3))
        scene.add(EllipseUnion(tuple(lines[k:])), TISSUES["lesion_hypo"].with_(echo=0.25))
        if k:
            scene.add(EllipseUnion(tuple(lines[:k])), TISSUES["fascia"].with_(echo=1.8))
    halo = (float(rng.uniform(0.7, 1.5)), float(rng.uniform(0.8, 2.0))) \
        if d["echogenic_halo"] else (0.0, 0.0)
    scene.add(Boxed(blob), tissue, label="lesion", halo=halo)
    if d["echo_pattern"] == "complex cystic and solid":  # mural solid component
        t = rng.uniform(0, 2 * np.pi)
        off = r0 * 0.45
        scene.add(Boxed(Blob(float(spec.cx + off * np.cos(t)),
                             float(spec.cz + off * np.sin(t) * spec.aspect),
                             float(r0 * rng.uniform(0.35, 0.55)),
                             ((3, float(rng.uniform(0.05, 0.15)), float(t)),), 1.0)),
                  TISSUES["lesion_iso"].with_(echo=float(rng.uniform(0.55, 0.9)),
                                              atten=tissue.atten))
    if d["posterior_features"] == "combined":  # one part transmits, the other attenuates
        side = float(rng.choice([-1, 1]))
        scene.add(Boxed(Ellipse(float(spec.cx + side * r0 * 0.45), spec.cz, float(r0 * 0.45),
                                float(r0 * spec.aspect * 0.6))),
                  tissue.with_(atten=0.05, echo=tissue.echo * 0.7, wall=(0.0, 0.0)))
    if d["calcifications"]:  # punctate echogenic foci, too small to shadow
        dots = []
        for _ in range(int(rng.integers(3, 14))):
            t = rng.uniform(0, 2 * np.pi)
            rad = r0 * 0.7 * np.sqrt(rng.random())
            dots.append((float(spec.cx + rad * np.cos(t)),
                         float(spec.cz + rad * np.sin(t) * spec.aspect),
                         float(rng.uniform(0.2, 0.4)), float(rng.uniform(0.2, 0.35)), 0.0))
        scene.add(EllipseUnion(tuple(dots), 1.0),
                  TISSUES["calcification"].with_(atten=1.5, transmit=0.9))
    return blob


def _fat_lobules(rng: np.random.Generator, top: float, bottom: float, half_width: float,
                 avoid: tuple[float, float, float, float] | None) -> Union:
    """Hypoechoic fat lobules tiling a band; their echogenic walls are Cooper's ligaments.
    Lobules are left out over the lesion (``avoid`` box) since an earlier object's wall echo
    would otherwise show through the lesion painted on top of it."""
    band = bottom - top
    rows = 1 if band < 7 else 2
    out = []
    for r in range(rows):
        zc = top + band * (r + 0.5) / rows
        x = -half_width - rng.uniform(0, 4)
        while x < half_width + 4:
            a = float(rng.uniform(2.5, 5.5))
            b = float(min(rng.uniform(1.3, 2.6), band / rows * 0.55))
            e = (float(x + a), float(zc + rng.uniform(-0.8, 0.8)), a, b,
                 float(rng.uniform(-25, 25)))
            x += 2 * a * rng.uniform(0.85, 1.0)
            if avoid is None or not (avoid[0] - a < e[0] < avoid[1] + a and
                                     avoid[2] - a < e[1] < avoid[3] + a):
                out.append(e)
    return EllipseUnion(tuple(out))


def breast_scene(rng: np.random.Generator, *, depth_mm: float,
                 lesion: "LesionSpec | int | str | None" = None) -> tuple[Scene, dict]:
    """Layered breast anatomy under a linear probe whose footprint equals ``depth_mm``.

    ``lesion``: None (normal breast), a class index 0..3 (a lesion of that BI-RADS grade
    placed in the fibroglandular layer), "random" (random grade), or a :class:`LesionSpec`.
    Returns (scene, info) with info: layer depths (mm), structures, lesion (spec dict or None).
    """
    hw = depth_mm / 2
    skin = rng.uniform(1.4, 2.4)
    thick = np.array([rng.uniform(3, 10), rng.uniform(6, 16), rng.uniform(1, 3),
                      rng.uniform(4, 9)])  # subcut fat, gland, retromammary fat, muscle
    thick *= min(1.0, (depth_mm * rng.uniform(0.72, 0.95) - skin) / thick.sum())
    fat_b, gland_b, retro_b, muscle_b = skin + np.cumsum(thick)
    if isinstance(lesion, str) and lesion == "random":
        lesion = int(rng.integers(4))
    if isinstance(lesion, (int, np.integer)):
        diam_max = max(min(depth_mm * 0.55, 26.0), 6.0)
        cz = float(np.clip(rng.uniform(fat_b - 1, gland_b + 2), 4 + diam_max * 0.35,
                           depth_mm * 0.62))
        lesion = sample_lesion(rng, int(lesion), cx=float(rng.uniform(-0.3, 0.3) * hw), cz=cz,
                               max_diameter_mm=diam_max)
        _, _, z0, z1 = _lesion_blob(lesion).bbox()  # keep it below the skin, inside the image
        half = (z1 - z0) / 2
        lesion.cz = float(np.clip(lesion.cz, skin + 0.5 + 0.8 * half, depth_mm - half))
    avoid = _lesion_blob(lesion).bbox() if lesion is not None else None
    wave = (float(rng.uniform(0, 2.0)), float(rng.uniform(15, 45)), float(rng.uniform(0, 6.3)))
    fat = TISSUES["fat"].with_(echo=float(rng.uniform(0.35, 0.5)),
                               wall=(float(rng.uniform(0.5, 1.1)), 0.3))
    scene = Scene(background=TISSUES["soft"], name="breast")
    scene.add(Layer(0.0, float(skin)), TISSUES["skin"].with_(wall=(1.0, 0.3)))
    lobules = _fat_lobules(rng, float(skin + 0.3), float(fat_b), hw, avoid)
    if lobules.shapes:
        scene.add(lobules, fat)
    scene.add(Layer(float(fat_b), float(gland_b), *wave), TISSUES["breast_glandular"].with_(
        echo=float(rng.uniform(1.4, 1.9))))
    fat_islands, ducts = [], []
    for _ in range(int(rng.integers(1, 5))):  # fat islands and ducts inside the gland
        zc = rng.uniform(fat_b + 1, gland_b - 1)
        duct = rng.random() < 0.4
        e = (float(rng.uniform(-hw, hw)), float(zc), float(rng.uniform(3, 8) if duct else
                                                         rng.uniform(2, 4)),
             float(rng.uniform(0.4, 0.9) if duct else rng.uniform(1, 2)),
             float(rng.uniform(-20, 20)))
        if avoid is None or not (avoid[0] - 8 < e[0] < avoid[1] + 8 and
                                 avoid[2] - 4 < e[1] < avoid[3] + 4):
            (ducts if duct else fat_islands).append(e)
    if fat_islands:
        scene.add(EllipseUnion(fat_islands), fat.with_(wall=(0.0, 0.0)))
    if ducts:
        scene.add(EllipseUnion(ducts), TISSUES["fluid"].with_(echo=0.05))
    scene.add(Layer(float(gland_b), float(retro_b), wave[0] / 2, wave[1], wave[2]),
              TISSUES["fat"].with_(echo=fat.echo))
    rib_z = muscle_b + rng.uniform(3, 6)
    # Ribs and pleura only below the lesion: their shadows (transmit) would otherwise persist
    # under a lesion painted over them.
    ribs_visible = rib_z < depth_mm - 2 and (avoid is None or avoid[3] < rib_z - 0.5)
    scene.add(Layer(float(retro_b + 0.4), float(depth_mm + 20 if ribs_visible else muscle_b)),
              TISSUES["muscle"])  # pectoralis (and intercostal muscles)
    scene.add(Union((Layer(float(fat_b - 0.2), float(fat_b + 0.2), *wave),  # fascia lines
                     Layer(float(retro_b - 0.1), float(retro_b + 0.4)))),
              TISSUES["fascia"].with_(echo=1.8))
    # structure names as the ontology (data_manifests/ontology.yaml) knows them; fat,
    # Cooper's ligaments and the pectoralis are drawn but have no ontology class
    structures = ["breast", "skin", "fibroglandular tissue"]
    if ribs_visible:  # ribs in the intercostal plane, pleura and lung below
        pleura = rib_z + rng.uniform(4, 7)
        scene.add(Layer(float(pleura), float(depth_mm + 30)), TISSUES["lung"])
        ribs, x = [], rng.uniform(-hw - 10, -hw + 5)
        while x < hw + 10:
            ribs.append((float(x), float(rib_z + 2.0), float(rng.uniform(5, 7.5)),
                         float(rng.uniform(1.6, 2.4)), float(rng.uniform(-8, 8))))
            x += rng.uniform(18, 26)
        scene.add(EllipseUnion(tuple(ribs)), TISSUES["bone"].with_(echo=2.0, wall=(2.5, 0.5)))
        structures.append("pleura")
    if lesion is not None:
        _add_lesion(scene, lesion)
        structures.append("breast lesion")
    info = {"skin_mm": float(skin), "fat_mm": float(fat_b), "gland_mm": float(gland_b),
            "muscle_mm": float(muscle_b), "structures": structures,
            "lesion": asdict(lesion) if lesion is not None else None}
    return scene, info


# --------------------------------------------------------------------------- task
def sample_breast_birads(rng: np.random.Generator, *, size: int, index: int, split: str) -> dict:
    """One BUS-BRA-like image: BI-RADS class, lesion mask and the descriptors behind it."""
    grade = index % len(CLASSES)  # stratified: every block of 4 indices holds each grade once
    depth = float(rng.uniform(30, 45))
    scene, info = breast_scene(rng, depth_mm=depth, lesion=grade)
    les = info["lesion"]
    device = _choice(rng, *DEVICES)
    frame = acquire(scene, rng, device=device, probe="linear", depth_mm=depth, size=size,
                    focus_mm=float(les["cz"] + rng.uniform(-3, 3)),
                    probe_changes={"width_mm": depth},
                    proc_changes={"gain_db": device_style(device).proc.gain_db +
                                  float(rng.uniform(-8, -2))})
    case = f"busbra-sim-{split}-{index:06d}"
    return {
        "image": as_image(frame.image),
        "mask": frame.mask(scene, "lesion").astype(np.uint8),
        "label": grade,
        "label_name": CLASSES[grade],
        "descriptors": dict(les["descriptors"]),
        "structures": info["structures"],
        "meta": frame_meta(frame, device, dataset="BUS-BRA", task="breast_birads",
                           case_id=case, patient_id=case, split=split,
                           lesion_diameter_mm=round(les["diameter_mm"], 2)),
    }


TASKS = {
    "breast_birads": {
        "kind": "classification",
        "classes": list(CLASSES),
        "sample": sample_breast_birads,
        "description": "BI-RADS 2-5 grading of a breast lesion (linear probe); lesion mask "
                       "and lexicon descriptors included",
        "paper_dataset": "BUS-BRA",
    },
}
