"""Contrast-enhanced ultrasound (CEUS) of focal liver lesions (paper: SYSU-FLL-CEUS).

SYSU-FLL-CEUS (Liang et al., IEEE TMI 2016; First Affiliated Hospital of Sun Yat-sen
University, Toshiba Aplio SSA-770A) holds CEUS cines of 186 hepatocellular carcinomas (HCC),
109 haemangiomas (HEM) and 58 focal nodular hyperplasias (FNH); the paper classifies them
into these 3 classes.

CEUS at low mechanical index suppresses the tissue signal: what the scanner shows is the
echo of microbubbles, proportional to local blood volume, so the "echo" map of each frame is
a perfusion map that changes over the contrast phases (arterial ~10-30 s, portal venous
30-120 s, late > 120 s). Time-intensity curves (a smooth wash-in, a decay to a plateau) drive
every compartment: abdominal wall (weak), hepatic arteries (early), portal and hepatic veins,
the dual-supply parenchyma, and the lesion with its class pattern (EFSUMB/ACR CEUS LI-RADS):

* HCC: arterial hyperenhancement, often heterogeneous (mosaic, necrotic spots), then washout
  (usually late and mild, sometimes early, sometimes none).
* HEM: peripheral nodular (globular) arterial enhancement, centripetal fill-in over seconds
  to minutes (sometimes flash filling, sometimes incomplete), sustained enhancement.
* FNH: centrifugal filling from a central feeding artery with spoke-wheel vessels in the
  early arterial phase, sustained iso/hyperenhancement, sometimes an unenhanced central scar
  and occasionally mild late washout.

Timings, intensities, sizes and depths are jittered and atypical variants are drawn, so the
classes overlap. A fundamental B-mode image of the same plane (``image_bmode``) comes with
the cine, as CEUS scanners show both side by side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..devices import device_style
from ..render import acquire, as_image, frame_meta
from ..scene import TISSUES, Blob, Ellipse, Layer, Scene, Shape, Tissue
from .breast import Boxed, EllipseUnion, _choice
from .fetal import _ellipse_points, _in_fov

CLASSES = ["HCC", "HEM", "FNH"]
DEVICES = (["high_end", "mid_range"], [0.6, 0.4])


# --------------------------------------------------------------------------- kinetics
@dataclass(frozen=True)
class TIC:
    """Time-intensity curve: smooth wash-in from ``onset`` over ``rise`` s to ``peak``, then
    exponential decay (time constant ``tau`` s) towards ``plateau`` x peak."""

    onset: float
    rise: float
    peak: float
    plateau: float
    tau: float

    def __call__(self, t: float) -> float:
        s = max(t - self.onset, 0.0)
        up = 1.0 - np.exp(-(s / self.rise) ** 2)
        return float(self.peak * up * (self.plateau + (1 - self.plateau) * np.exp(-s / self.tau)))


@dataclass
class Kinetics:
    """Curves of the normal compartments (arterial onset t_art, portal onset t_pv)."""

    wall: TIC
    artery: TIC
    portal: TIC
    hepatic_vein: TIC
    par_art: TIC
    par_pv: TIC

    def parenchyma(self, t: float) -> float:
        return self.par_art(t) + self.par_pv(t)


def _kinetics(rng: np.random.Generator) -> Kinetics:
    t_art = float(rng.uniform(8, 14))
    t_pv = t_art + float(rng.uniform(5, 10))
    return Kinetics(
        wall=TIC(t_art + 3, 10, float(rng.uniform(0.08, 0.18)), 0.6, 150),
        artery=TIC(t_art, 2, 2.5, 0.25, 25),
        portal=TIC(t_pv, 5, float(rng.uniform(1.8, 2.4)), 0.5, 80),
        hepatic_vein=TIC(t_pv + float(rng.uniform(8, 15)), 8, 1.8, 0.5, 100),
        par_art=TIC(t_art, 4, float(rng.uniform(0.2, 0.3)), 0.4, 30),
        par_pv=TIC(t_pv, 12, float(rng.uniform(0.8, 0.95)), float(rng.uniform(0.65, 0.85)),
                   250),
    )


def _fill(t: float, onset: float, duration: float, power: float = 0.8) -> float:
    """Fraction 0..1 of a progressive filling that starts at onset and lasts duration s."""
    return float(np.clip((t - onset) / duration, 0.0, 1.0) ** power)


# --------------------------------------------------------------------------- geometry
@dataclass
class Lesion:
    """Class, outline and the class-specific sub-structures and curves of one lesion."""

    label: int
    blob: Blob
    curve: TIC  # main enhancement curve (HCC tumour, HEM fill, FNH body)
    params: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)  # name -> Shape

    @property
    def name(self) -> str:
        return CLASSES[self.label]

    def scaled(self, f: float) -> Blob:
        b = self.blob
        return Blob(b.cx, b.cz, float(b.r0 * max(f, 1e-3)), b.harmonics, b.aspect, b.angle)


def _hcc(rng, blob: Blob, k: Kinetics) -> Lesion:
    r = rng.random()
    if r < 0.7:  # typical: late, mild washout
        tau, plateau = rng.uniform(25, 70), rng.uniform(0.1, 0.35)
    elif r < 0.85:  # early, marked washout (poorly differentiated)
        tau, plateau = rng.uniform(10, 25), rng.uniform(0.05, 0.2)
    else:  # no washout within the exam
        tau, plateau = rng.uniform(150, 400), rng.uniform(0.5, 0.7)
    peak = rng.uniform(1.6, 2.8) if rng.random() < 0.85 else rng.uniform(1.0, 1.4)
    curve = TIC(k.artery.onset + float(rng.uniform(-1, 2)), float(rng.uniform(2.5, 5)),
                float(peak), float(plateau), float(tau))
    parts = {}
    if rng.random() < 0.4:  # necrotic, non-enhancing areas
        spots = [(blob.cx + rng.uniform(-0.45, 0.45) * blob.r0,
                  blob.cz + rng.uniform(-0.45, 0.45) * blob.r0 * blob.aspect,
                  rng.uniform(0.12, 0.3) * blob.r0, rng.uniform(0.1, 0.25) * blob.r0,
                  rng.uniform(0, 180)) for _ in range(int(rng.integers(1, 4)))]
        parts["necrosis"] = EllipseUnion(spots)
    return Lesion(0, blob, curve, {"heterogeneity": float(rng.uniform(0.3, 0.7))}, parts)


def _hem(rng, blob: Blob, k: Kinetics) -> Lesion:
    onset = k.artery.onset + float(rng.uniform(0, 4))
    r = rng.random()
    t_fill = rng.uniform(6, 15) if r < 0.12 else float(np.clip(
        60 * np.exp(0.6 * rng.standard_normal()), 25, 260))
    complete = 1.0 if rng.random() < 0.7 else float(rng.uniform(0.55, 0.85))
    n = int(rng.integers(4, 10))
    nod = []
    for t in np.sort(rng.uniform(0, 2 * np.pi, n)):
        rr = float(blob.radius(np.array([t]))[0]) * 0.82
        c, s = np.cos(np.deg2rad(blob.angle)), np.sin(np.deg2rad(blob.angle))
        u, v = np.cos(t) * rr, np.sin(t) * rr * blob.aspect
        size = rng.uniform(0.12, 0.25) * blob.r0
        nod.append((blob.cx + c * u - s * v, blob.cz + s * u + c * v, size,
                    size * rng.uniform(0.6, 1.0), rng.uniform(0, 180)))
    curve = TIC(onset + 2, float(rng.uniform(3, 6)), float(rng.uniform(1.1, 1.6)),
                float(rng.uniform(0.75, 0.95)), 300.0)
    return Lesion(1, blob, curve,
                  {"onset": onset, "t_fill": float(t_fill), "complete": complete,
                   "nodule": TIC(onset, 3, float(rng.uniform(1.6, 2.6)),
                                 float(rng.uniform(0.75, 0.95)), 200)},
                  {"nodules": EllipseUnion(nod)})


def _fnh(rng, blob: Blob, k: Kinetics) -> Lesion:
    onset = k.artery.onset + float(rng.uniform(-2, 1))
    if rng.random() < 0.88:  # sustained iso/hyperenhancement
        tau, plateau = rng.uniform(60, 200), rng.uniform(0.45, 0.7)
    else:  # mild late washout
        tau, plateau = rng.uniform(50, 90), rng.uniform(0.2, 0.35)
    curve = TIC(onset, float(rng.uniform(2, 4)), float(rng.uniform(1.7, 2.8)), float(plateau),
                float(tau))
    parts: dict[str, Shape] = {}
    if rng.random() < 0.8:  # spoke-wheel arteries radiating from the centre
        n = int(rng.integers(4, 9))
        spokes = []
        for t in rng.uniform(0, np.pi, n):
            ln = blob.r0 * rng.uniform(0.5, 0.85)
            spokes.append((blob.cx, blob.cz, ln, rng.uniform(0.6, 1.0), np.rad2deg(t)))
        parts["spokes"] = EllipseUnion(spokes)
    if rng.random() < 0.45:  # central scar (stellate, unenhanced late)
        parts["scar"] = Blob(blob.cx, blob.cz, float(blob.r0 * rng.uniform(0.1, 0.2)),
                             ((5, 0.3, float(rng.uniform(0, 6))),), 1.0)
    return Lesion(2, blob, curve, {"spread_s": float(rng.uniform(3, 10)), "onset": onset},
                  parts)


@dataclass
class LiverGeometry:
    wall_mm: float
    liver_bottom: Layer | None
    portal: Shape
    hepatic: Shape
    lesion: Lesion
    depth_mm: float


def _vessels(rng, lesion: Blob, top: float, depth: float, n: int, width: tuple[float, float]
             ) -> Shape:
    """Elongated vessel segments in the liver, kept clear of the lesion."""
    out = []
    for _ in range(40):
        if len(out) == n:
            break
        cx, cz = rng.uniform(-45, 45), rng.uniform(top + 10, depth - 10)
        a, b, ang = rng.uniform(8, 22), rng.uniform(*width), rng.uniform(-60, 60)
        d = np.hypot(cx - lesion.cx, cz - lesion.cz)
        if d > a + lesion.r0 * 1.6 + 4:
            out.append((cx, cz, a, b, ang))
    return EllipseUnion(out or [(0.0, depth + 50, 1.0, 1.0, 0.0)])


def liver_geometry(rng: np.random.Generator, label: int, probe, depth: float) -> LiverGeometry:
    """Abdominal wall, liver, vessels and one lesion of class ``label`` inside the sector."""
    wall = float(rng.uniform(1.5, 2.5) + rng.uniform(5, 20) + rng.uniform(5, 12))
    diam = float(np.clip([28, 22, 25][label] * np.exp(0.35 * rng.standard_normal()), 12, 50))
    aspect = float(rng.uniform(0.8, 1.1))
    r0 = diam / 2 / np.sqrt(aspect)
    harm = tuple((int(kk), float(rng.uniform(0.02, 0.08)), float(rng.uniform(0, 6.3)))
                 for kk in rng.choice([2, 3, 4], size=2, replace=False))
    for k in range(30):
        cz = float(rng.uniform(wall + r0 + 8, max(depth * 0.75, wall + r0 + 9)))
        cx = float(rng.uniform(-0.6, 0.6) * (probe.radius_mm + cz) *
                   np.sin(np.deg2rad(probe.sector_deg / 2)) * 0.5 ** (k // 10))
        blob = Blob(cx, cz, float(r0), harm, aspect, float(rng.uniform(-30, 30)))
        if _in_fov(probe, depth, *_ellipse_points(Ellipse(cx, cz, r0 * 1.15, r0 * 1.15)), 3.0):
            break
    k_ = _kinetics(rng)
    lesion = [_hcc, _hem, _fnh][label](rng, blob, k_)
    lesion.params["kinetics"] = k_
    bottom = None
    if rng.random() < 0.6:  # diaphragm / liver edge near the bottom of the image
        zb = float(rng.uniform(0.85, 1.0) * depth)
        bottom = Layer(zb, depth + 40, float(rng.uniform(2, 8)), float(rng.uniform(80, 200)),
                       float(rng.uniform(0, 6.3)))
    return LiverGeometry(wall, bottom,
                         _vessels(rng, blob, wall, depth, int(rng.integers(2, 4)), (2.0, 5.0)),
                         _vessels(rng, blob, wall, depth, int(rng.integers(1, 3)), (2.0, 4.5)),
                         lesion, depth)


# --------------------------------------------------------------------------- scenes
def _perfused(p: float, base: Tissue, texture: tuple[float, float] = (0.0, 2.0)) -> Tissue:
    """Tissue whose CEUS echo is its perfusion ``p``; sparse bubbles where p is low."""
    return base.with_(echo=float(max(p, 0.0)), density=float(np.clip(8 + 60 * p, 8, 80)),
                      texture=texture, wall=(0.0, 0.0), transmit=1.0)


def ceus_scene(g: LiverGeometry, t: float) -> Scene:
    """The perfusion map at time t (s) as a scene."""
    k: Kinetics = g.lesion.params["kinetics"]
    les = g.lesion
    par = k.parenchyma(t)
    sc = Scene(background=_perfused(k.wall(t), TISSUES["muscle"]), name="liver_ceus")
    sc.add(Layer(g.wall_mm, g.depth_mm + 40), _perfused(par, TISSUES["liver"]))
    if g.liver_bottom is not None:
        sc.add(g.liver_bottom, _perfused(0.0, TISSUES["soft"]))
    sc.add(g.portal, _perfused(k.portal(t) + k.artery(t) * 0.3, TISSUES["blood"]))
    sc.add(g.hepatic, _perfused(k.hepatic_vein(t), TISSUES["blood"]))
    liver_t = TISSUES["liver"]
    if les.label == 0:  # HCC: (heterogeneous) arterial hyperenhancement, then washout
        het = les.params["heterogeneity"] * (1.0 if t < 45 else 0.4)
        sc.add(Boxed(les.blob), _perfused(les.curve(t), liver_t, (het, 1.5)), label="lesion")
        if "necrosis" in les.parts:
            sc.add(les.parts["necrosis"], _perfused(0.02, liver_t))
    elif les.label == 1:  # HEM: peripheral nodules, centripetal fill-in
        p = les.params
        f = _fill(t, p["onset"], p["t_fill"]) * p["complete"]
        sc.add(Boxed(les.blob), _perfused(les.curve(t), liver_t), label="lesion")
        if f < 0.97:
            sc.add(Boxed(les.scaled(1.0 - f)), _perfused(0.02, liver_t))
        sc.add(les.parts["nodules"], _perfused(p["nodule"](t), liver_t))
    else:  # FNH: centrifugal fill from a central artery, spoke wheel, sustained
        p = les.params
        g_ = _fill(t, p["onset"], p["spread_s"], 0.7)
        sc.add(Boxed(les.blob), _perfused(0.5 * par, liver_t), label="lesion")
        if g_ > 0:
            sc.add(Boxed(les.scaled(g_)), _perfused(les.curve(t), liver_t))
        if "spokes" in les.parts:
            spoke = les.curve(t) + 1.5 * TIC(p["onset"] - 1, 1.5, 1.0, 0.0, 12)(t)
            sc.add(les.parts["spokes"], _perfused(spoke, liver_t))
        if "scar" in les.parts:
            sc.add(Boxed(les.parts["scar"]), _perfused(0.15 * par, liver_t))
    return sc


def bmode_scene(g: LiverGeometry, rng: np.random.Generator) -> Scene:
    """Fundamental B-mode of the same plane: wall layers, liver texture, vessels, lesion."""
    sc = Scene(background=TISSUES["soft"], name="liver_bmode")
    z = 0.0
    for name, th in (("skin", 2.0), ("fat", (g.wall_mm - 2) * 0.55), ("muscle", None)):
        bot = g.wall_mm if th is None else z + th
        sc.add(Layer(z, bot), TISSUES[name])
        z = bot
    sc.add(Layer(g.wall_mm, g.depth_mm + 40), TISSUES["liver"].with_(wall=(1.2, 0.5)))
    if g.liver_bottom is not None:
        b = g.liver_bottom
        sc.add(b, TISSUES["soft"].with_(echo=0.6))
        sc.add(Layer(b.top - 0.8, b.top + 0.8, b.amp, b.period, b.phase),
               TISSUES["fascia"].with_(echo=2.5))  # diaphragm
    sc.add(g.portal, TISSUES["blood"].with_(wall=(1.6, 0.5)))
    sc.add(g.hepatic, TISSUES["blood"])
    les = g.lesion
    u = rng.random()
    halo = (0.0, 0.0)
    if les.label == 0:  # HCC: hypo / iso / hyper / mosaic, hypoechoic rim (capsule)
        echo, tex = ((rng.uniform(0.45, 0.7), 0.3) if u < 0.45 else
                     (rng.uniform(0.85, 1.1), 0.35) if u < 0.65 else
                     (rng.uniform(1.3, 1.7), 0.35) if u < 0.8 else (rng.uniform(0.6, 1.2), 0.75))
        if rng.random() < 0.45:
            halo = (-float(rng.uniform(0.4, 0.7)), float(rng.uniform(1.0, 2.0)))
    elif les.label == 1:  # HEM: mostly hyperechoic and homogeneous
        echo, tex = ((rng.uniform(1.5, 2.2), 0.3) if u < 0.6 else
                     (rng.uniform(0.85, 1.1), 0.3) if u < 0.8 else (rng.uniform(0.6, 0.9), 0.55))
        if 0.6 <= u < 0.8:
            halo = (float(rng.uniform(0.5, 0.9)), float(rng.uniform(0.8, 1.5)))
    else:  # FNH: iso or slightly hypo, subtle
        echo, tex = ((rng.uniform(0.85, 1.1), 0.3) if u < 0.5 else
                     (rng.uniform(0.6, 0.85), 0.3) if u < 0.85 else (rng.uniform(1.2, 1.4), 0.3))
    atten = float(rng.uniform(0.3, 0.5) if les.label == 1 else rng.uniform(0.5, 0.7))
    sc.add(Boxed(les.blob), TISSUES["liver"].with_(echo=float(echo), texture=(float(tex), 1.5),
                                                  atten=atten), label="lesion", halo=halo)
    if les.label == 2 and "scar" in les.parts and rng.random() < 0.4:
        sc.add(Boxed(les.parts["scar"]), TISSUES["fascia"].with_(echo=1.6))
    return sc


# --------------------------------------------------------------------------- task
def _frame_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """Acquisition times spanning arterial, portal venous and late phases (log-spaced)."""
    t = np.geomspace(11.0, 200.0, n) * rng.uniform(0.92, 1.08, n)
    return np.sort(np.maximum(t, 8.0)).astype(np.float32)


def _phase(t: float) -> str:
    return "arterial" if t <= 30 else "portal venous" if t <= 120 else "late"


def _lesion_mean(scene: Scene, blob: Blob) -> float:
    """Mean displayed perfusion inside the lesion (on a coarse grid of interior points)."""
    x, z, inside = _lesion_grid(blob)
    return float(scene.properties(x, z)["echo"][inside].mean())


@lru_cache(maxsize=8)
def _lesion_grid(blob: Blob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coarse grid over a lesion and its interior points; read-only and cached, so the
    scene sampling reuses its work on the static shapes from frame to frame."""
    u = np.linspace(-0.8, 0.8, 9)
    x, z = np.meshgrid(blob.cx + u * blob.r0, blob.cz + u * blob.r0 * blob.aspect)
    inside = blob.inside(x, z)
    for a in (x, z, inside):
        a.setflags(write=False)
    return x, z, inside


def sample_liver_ceus(rng: np.random.Generator, *, size: int, index: int, split: str) -> dict:
    """One CEUS cine (T frames) of a focal liver lesion with its B-mode reference and mask."""
    label = index % len(CLASSES)  # stratified: balanced classes in every block of 3 indices
    device = _choice(rng, *DEVICES)
    depth = float(rng.uniform(100, 140))
    changes = {"sector_deg": float(rng.uniform(60, 72))}
    probe = device_style(device).probe("convex", **changes)
    g = liver_geometry(rng, label, probe, depth)
    focus = float(g.lesion.blob.cz)
    base = device_style(device).proc
    # contrast mode: low transmit frequency, fewer lines (multi-pulse), low dynamic range
    ceus_probe = {**changes, "f0_mhz": float(rng.uniform(2.5, 3.5)), "n_lines": 128}
    ceus_proc = {"dynamic_range_db": float(rng.uniform(35, 45)), "compounding": 1,
                 "smoothing_px": 0.5, "gamma": 1.0, "tgc_match": 1.0}
    ceus_proc["gain_db"] = float(-0.45 * ceus_proc["dynamic_range_db"] + rng.uniform(-3, 3))
    times = _frame_times(rng, 8 if size <= 64 else 12)
    frames, means = [], []
    for t in times:
        sc = ceus_scene(g, float(t))
        fr = acquire(sc, rng, device=device, probe="convex", depth_mm=depth, size=size,
                     focus_mm=focus, probe_changes=ceus_probe, proc_changes=ceus_proc)
        frames.append(fr.image)
        means.append(_lesion_mean(sc, g.lesion.blob))
    art = np.flatnonzero(times <= 32.0)
    k_img = int(art[np.argmax(np.asarray(means)[art])]) if len(art) else 0
    bscene = bmode_scene(g, rng)
    bmode = acquire(bscene, rng, device=device, probe="convex", depth_mm=depth, size=size,
                    focus_mm=focus, probe_changes=changes,
                    proc_changes={"gain_db": base.gain_db - float(rng.uniform(4, 9))})
    case = f"sysu-fll-ceus-sim-{split}-{index:06d}"
    return {
        "image": as_image(frames[k_img]),
        "frames": np.stack(frames)[:, None].astype(np.float32),
        "times_s": times,
        "phases": [_phase(float(t)) for t in times],
        "image_bmode": as_image(bmode.image),
        "label": label,
        "label_name": CLASSES[label],
        "mask": bmode.mask(bscene, "lesion").astype(np.uint8),
        "structures": ["liver", "liver parenchyma", "liver lesion", "portal vein",
                       "hepatic vein"] + (["diaphragm"] if g.liver_bottom is not None else []),
        "meta": frame_meta(bmode, device, dataset="SYSU-FLL-CEUS", task="liver_lesion_ceus",
                           case_id=case, patient_id=case, split=split, modality="CEUS",
                           image_frame=k_img, lesion_diameter_mm=round(
                               2 * g.lesion.blob.r0 * np.sqrt(g.lesion.blob.aspect), 1)),
    }


TASKS = {
    "liver_lesion_ceus": {
        "kind": "classification",
        "classes": list(CLASSES),
        "sample": sample_liver_ceus,
        "description": "HCC / haemangioma / FNH from a CEUS cine over the arterial, portal "
                       "venous and late phases (plus a B-mode reference and lesion mask)",
        "paper_dataset": "SYSU-FLL-CEUS",
    },
}
