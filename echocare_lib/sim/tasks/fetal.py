"""Obstetric scenes: fetal four-chamber view (FOCUS) and fetal brain landmarks (BrainBenchmark).

Two of the paper's applications (Table 1, sections 4.5.3-4.5.4), both with a convex
abdominal probe through the maternal wall and amniotic fluid:

* ``fetal_4ch_detection`` mimics FOCUS (Wu et al. 2025; 300 four-chamber images, 217
  subjects): ellipse annotations of the fetal thorax and heart, from which the
  cardiothoracic ratio (CTR) is measured. The thorax shows its skin line, ribs (bright arcs
  whose shadows cross the chest), the spine (three ossification centres with a shadow) and
  the descending aorta posteriorly, homogeneous lungs either side, and the heart with four
  anechoic chambers, septum and atrioventricular valves, apex pointing anterior-left.
* ``fetal_brain_landmarks`` mimics the 24-landmark fetal brain benchmark (104 images at
  20-20.6 weeks, Voluson E10): an axial transthalamic/transcerebellar plane with the skull
  ring, midline falx, cavum septi pellucidi, thalami, cerebellum (hemispheres and vermis),
  cisterna magna and the Sylvian fissure of the distal hemisphere.

All labels (ellipses, masks, landmarks) are computed from the scene geometry in mm and
converted to pixel-index coordinates with :func:`to_pixel_index`, so they match the image
exactly. Ellipse angles: degrees from the image's +column axis towards +row (image y points
down), i.e. the scene's (x, z) angle, since pixels are a scaled and shifted copy of (x, z).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..devices import device_style
from ..geometry import Probe
from ..render import acquire, as_image, frame_meta, to_pixel_index
from ..scene import TISSUES, Ellipse, Layer, Scene, Shape, _rotate
from .breast import Boxed, EllipseUnion, Union, _choice

DEVICES = (["high_end", "mid_range", "legacy_sepia"], [0.3, 0.45, 0.25])
FOCUS_CLASSES = ["background", "thorax", "cardiac"]
LANDMARK_NAMES = [
    "skull_anterior", "skull_posterior", "skull_proximal", "skull_distal",
    "thalamus_proximal", "thalamus_distal", "thalami_centre",
    "cerebellum_proximal_lateral", "cerebellum_distal_lateral",
    "cerebellum_proximal_anterior", "cerebellum_proximal_posterior",
    "cerebellum_distal_anterior", "cerebellum_distal_posterior",
    "vermis_anterior", "vermis_posterior",
    "csp_anterior_proximal", "csp_anterior_distal", "csp_posterior_proximal",
    "csp_posterior_distal",
    "sylvian_posterior", "sylvian_middle", "sylvian_anterior",
    "midline_anterior", "midline_posterior",
]


# --------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class EllipseBand(Shape):
    """A band of ``thickness`` mm along an ellipse's outline (skull, rib, fissure), optionally
    only the arc of parametric angles t0..t1 (radians, counter-clockwise from the a axis in
    the ellipse's own frame, like :class:`Ellipse`)."""

    cx: float
    cz: float
    a: float
    b: float
    angle: float
    thickness: float
    t0: float = -np.pi
    t1: float = np.pi

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return self.thickness / 2

    def rho(self, x, z):
        u, v = _rotate(x, z, self.cx, self.cz, self.angle)
        r = np.sqrt((u / self.a) ** 2 + (v / self.b) ** 2) + 1e-9
        # distance to the outline along the ray through the centre: |r - 1| * R(ray)
        dist = np.abs(r - 1.0) * np.hypot(u, v) / r
        rho = dist / (self.thickness / 2)
        span = (self.t1 - self.t0) % (2 * np.pi)
        if 0 < span < 2 * np.pi - 1e-6:
            t = np.arctan2(v / self.b, u / self.a)
            rho = np.where((t - self.t0) % (2 * np.pi) <= span, rho, 10.0)
        return rho

    def point(self, t: float) -> tuple[float, float]:
        """(x, z) of the outline at parametric angle t (shape frame)."""
        c, s = np.cos(np.deg2rad(self.angle)), np.sin(np.deg2rad(self.angle))
        u, v = self.a * np.cos(t), self.b * np.sin(t)
        return float(self.cx + c * u - s * v), float(self.cz + s * u + c * v)

    def bbox(self):
        r = max(self.a, self.b) + self.thickness
        return self.cx - r, self.cx + r, self.cz - r, self.cz + r


@dataclass(frozen=True)
class RoundedBox(Shape):
    """Rotated rectangle with rounded corners (superellipse of order 6), half-sizes hu, hv."""

    cx: float
    cz: float
    hu: float
    hv: float
    angle: float = 0.0

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return min(self.hu, self.hv)

    def rho(self, x, z):
        u, v = _rotate(x, z, self.cx, self.cz, self.angle)
        return ((u / self.hu) ** 6 + (v / self.hv) ** 6) ** (1 / 6)

    def bbox(self):
        r = np.hypot(self.hu, self.hv)
        return self.cx - r, self.cx + r, self.cz - r, self.cz + r


@dataclass(frozen=True)
class Local:
    """A body-fixed frame: origin (cx, cz) mm, unit axes eu, ev in the (x, z) plane. It may be
    mirrored (the fetus lies either way round), which flips arcs' parametric angles."""

    cx: float
    cz: float
    eu: tuple[float, float]
    ev: tuple[float, float]

    @property
    def mirrored(self) -> bool:
        return self.eu[0] * self.ev[1] - self.eu[1] * self.ev[0] < 0

    def pt(self, u: float, v: float) -> tuple[float, float]:
        return (float(self.cx + u * self.eu[0] + v * self.ev[0]),
                float(self.cz + u * self.eu[1] + v * self.ev[1]))

    def angle(self, alpha_deg: float = 0.0) -> float:
        """Scene angle (deg) of the local direction at alpha_deg from eu towards ev."""
        t = np.deg2rad(alpha_deg)
        d = (np.cos(t) * self.eu[0] + np.sin(t) * self.ev[0],
             np.cos(t) * self.eu[1] + np.sin(t) * self.ev[1])
        return float(np.rad2deg(np.arctan2(d[1], d[0])))

    def ellipse(self, u, v, a, b, alpha_deg=0.0) -> Ellipse:
        return Ellipse(*self.pt(u, v), float(a), float(b), self.angle(alpha_deg))

    def band(self, u, v, a, b, thickness, t0=-np.pi, t1=np.pi, alpha_deg=0.0) -> EllipseBand:
        if self.mirrored:
            t0, t1 = -t1, -t0
        return EllipseBand(*self.pt(u, v), float(a), float(b), self.angle(alpha_deg),
                           float(thickness), float(t0), float(t1))


def _rand_frame(rng: np.random.Generator, cx: float, cz: float, psi_deg: float) -> Local:
    """Local frame with eu at psi_deg, ev on a random side (proper or mirrored)."""
    t = np.deg2rad(psi_deg)
    eu = (float(np.cos(t)), float(np.sin(t)))
    side = 1.0 if rng.random() < 0.5 else -1.0
    return Local(cx, cz, eu, (-side * eu[1], side * eu[0]))


def _in_fov(probe: Probe, depth_mm: float, x, z, margin_mm: float) -> bool:
    """Are all points inside the probe's sector by at least margin_mm?"""
    d, u = probe.from_xz(np.asarray(x, float), np.asarray(z, float))
    lo, hi = probe.lateral_extent()
    r = d + (probe.radius_mm if probe.kind == "convex" else 0.0)
    lateral = r * np.sin(np.minimum(u - lo, hi - u))
    return bool(np.all((d > margin_mm) & (d < depth_mm - margin_mm) & (lateral > margin_mm)))


def _fit_in_fov(probe: Probe, depth: float, e: Ellipse, margin: float
                ) -> tuple[float, float, float]:
    """Move ellipse ``e`` towards the sector's centre line, then deeper (growing the depth),
    until it lies inside the field of view; returns (cx, cz, depth)."""
    cx, cz = e.cx, e.cz
    for k in range(40):
        if _in_fov(probe, depth, *_ellipse_points(Ellipse(cx, cz, e.a, e.b, e.angle)), margin):
            break
        if k < 3:
            cx *= 0.5
        else:
            cx, cz = 0.0, cz + 2.0
            depth = max(depth, cz + max(e.a, e.b) + margin + 1)
    return float(cx), float(cz), float(depth)


def _ellipse_points(e: Ellipse, n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(np.deg2rad(e.angle)), np.sin(np.deg2rad(e.angle))
    u, v = e.a * np.cos(t), e.b * np.sin(t)
    return e.cx + c * u - s * v, e.cz + s * u + c * v


def _maternal_wall(scene: Scene, rng: np.random.Generator, *, placenta: bool) -> float:
    """Maternal skin, fat, rectus muscle, myometrium and optionally an anterior placenta
    (top of the image); returns the depth (mm) where amniotic fluid starts."""
    wave = dict(amp=float(rng.uniform(0, 3)), period=float(rng.uniform(60, 150)),
                phase=float(rng.uniform(0, 2 * np.pi)))
    z = 0.0
    for name, lo, hi in (("skin", 1.5, 2.5), ("fat", 4, 15), ("muscle", 3, 6),
                         ("muscle", 4, 8)):
        th = float(rng.uniform(lo, hi))
        t = TISSUES[name] if z < 20 or name != "muscle" else TISSUES["muscle"].with_(
            echo=0.75, texture=(0.3, 1.5))
        scene.add(Layer(z, z + th, **wave), t)
        z += th
    if placenta:
        th = float(rng.uniform(15, 28))
        scene.add(Layer(z, z + th, **wave), TISSUES["placenta"].with_(wall=(1.0, 0.5)))
        z += th
    return z + 2 * wave["amp"]


def _convex_setup(rng: np.random.Generator) -> tuple[str, dict, float]:
    device = _choice(rng, *DEVICES)
    return device, {"sector_deg": float(rng.uniform(46, 62))}, float(rng.uniform(-6, 0))


def _acquire_ob(scene: Scene, rng: np.random.Generator, setup: tuple[str, dict, float], *,
                depth: float, size: int, target_z: float, fluid_top: float):
    """Acquire an obstetric frame. The sonographer lowers the time-gain compensation through
    the fluid-filled uterus (fluid hardly attenuates), so the TGC matches only the tissue
    fraction of the path to the target; otherwise the fetus would be washed out."""
    device, changes, gain = setup
    tgc = float(np.clip(fluid_top / target_z * rng.uniform(0.8, 1.1), 0.3, 0.9))
    return acquire(scene, rng, device=device, probe="convex", depth_mm=depth, size=size,
                   focus_mm=float(target_z), probe_changes=changes,
                   proc_changes={"gain_db": device_style(device).proc.gain_db + gain,
                                 "tgc_match": tgc})


# --------------------------------------------------------------------------- FOCUS 4CH
def _heart(scene: Scene, rng: np.random.Generator, heart: Ellipse, anterior: np.ndarray) -> None:
    """Cardiac ellipse (label "cardiac"), four chambers, septum and AV valves."""
    scene.add(Boxed(heart), TISSUES["myocardium"].with_(echo=float(rng.uniform(0.7, 1.05)),
                                                 wall=(1.2, 0.5)), label="cardiac")
    a, b = heart.a, heart.b
    t = np.deg2rad(heart.angle)
    perp = np.array([-np.sin(t), np.cos(t)])
    rv_side = 1.0 if perp @ anterior > 0 else -1.0  # right ventricle lies anteriorly
    hf = Local(heart.cx, heart.cz, (float(np.cos(t)), float(np.sin(t))),
               (float(perp[0]), float(perp[1])))
    chambers = []
    for side, (pv, sv, pa, sa) in ((rv_side, (0.26, 0.42, 0.40, 0.40)),  # RV, RA
                                   (-rv_side, (0.20, 0.46, 0.36, 0.36))):  # LV, LA
        j = rng.uniform(0.93, 1.07, 4)  # ventricles converge towards the apex
        chambers.append((*hf.pt(pv * a, side * 0.42 * b), sv * a * j[0], sa * b * j[1],
                         hf.angle(-side * float(rng.uniform(8, 16)))))
        chambers.append((*hf.pt(-0.52 * a, side * 0.42 * b), 0.30 * a * j[2], 0.34 * b * j[3],
                         hf.angle()))
    scene.add(EllipseUnion(tuple(chambers)), TISSUES["blood"])
    bright = TISSUES["myocardium"].with_(echo=float(rng.uniform(1.4, 2.0)))
    scene.add(Union((hf.ellipse(-0.23 * a, 0.0, 0.05 * a, 0.80 * b, 0.0),  # AV valves
                     hf.ellipse(0.05 * a, 0.0, 0.55 * a, 0.07 * b))), bright)  # septum


def _place_heart(rng: np.random.Generator, th: Local, a_t: float, b_t: float,
                 wall: float, ctr: float) -> Ellipse:
    """Heart ellipse inside the lungs: anterior-left, long axis 30-60 deg off the AP axis."""
    b_c = ctr * b_t
    a_c = max(min(b_c * (rng.uniform(1.1, 1.35) if ctr < 0.58 else rng.uniform(1.03, 1.18)),
                  0.82 * (b_t - wall)), b_c * 1.01)  # b stays the minor half-axis
    alpha = float(rng.uniform(30, 60))  # from anterior (ev) towards the left (eu)
    shift = np.array([rng.uniform(0.06, 0.2) * a_t, rng.uniform(0.08, 0.25) * b_t])
    thorax_in = Ellipse(th.cx, th.cz, a_t - wall, b_t - wall, th.angle())
    for _ in range(8):
        heart = th.ellipse(shift[0], shift[1], a_c, b_c, 90.0 - alpha)
        xs, zs = _ellipse_points(heart)
        if np.all(thorax_in.rho(xs, zs) < 0.97):
            return heart
        shift *= 0.6
    return th.ellipse(0.0, 0.0, a_c, b_c, 90.0 - alpha)


def fetal_thorax_scene(rng: np.random.Generator, probe: Probe) -> tuple[Scene, dict]:
    """Four-chamber view of a fetal thorax in amniotic fluid; returns (scene, info) with the
    thorax and cardiac ellipses (mm), the CTR, depth and structures."""
    scene = Scene(background=TISSUES["fluid"].with_(echo=0.0), name="fetal_4ch")
    placenta = rng.random() < 0.45
    fluid_top = _maternal_wall(scene, rng, placenta=placenta)
    r = float(rng.uniform(17, 30))  # thorax radius ~ 20-36 weeks
    a_t, b_t = r * rng.uniform(1.0, 1.1), r * rng.uniform(0.86, 0.98)
    cz = fluid_top + rng.uniform(3, 15) + a_t
    depth = float(np.clip(cz + a_t + rng.uniform(10, 35), 80, 140))
    depth = max(depth, cz + a_t + 6)
    psi = float(rng.uniform(0, 360))
    lateral_room = (probe.radius_mm + cz) * np.sin(np.deg2rad(probe.sector_deg / 2)) - a_t - 4
    cx = float(rng.uniform(-1, 1) * max(lateral_room, 0.0) * 0.7)
    cx, cz, depth = _fit_in_fov(probe, depth, Ellipse(cx, float(cz), a_t, b_t, psi), 3.0)
    th = _rand_frame(rng, cx, cz, psi)  # eu: fetal left, ev: anterior
    if th.ev[1] > 0.7 and rng.random() < 0.7:  # spine towards the probe shadows the heart:
        th = Local(cx, cz, (-th.eu[0], -th.eu[1]), (-th.ev[0], -th.ev[1]))  # usually re-scanned
    thorax = th.ellipse(0, 0, a_t, b_t)
    wall = float(rng.uniform(2.5, 4.0))
    arm = bool(rng.random() < 0.5)
    if arm:  # a fetal arm next to the chest, under the thorax in paint order
        side = rng.choice([-1, 1])
        limb = th.ellipse(side * (a_t + 6), rng.uniform(-0.5, 0.5) * b_t, 6, 16,
                          float(rng.uniform(-30, 30)))
        scene.add(Boxed(limb), TISSUES["soft"].with_(echo=0.9, wall=(1.0, 0.5)))
        scene.add(Boxed(Ellipse(limb.cx, limb.cz, 1.2, 10, limb.angle)),
                  TISSUES["bone"].with_(atten=6.0, transmit=0.3))
    if rng.random() < 0.6:  # posterior uterine wall at the bottom of the image
        scene.add(Layer(float(depth - rng.uniform(3, 10)), depth + 30, 3.0, 120.0,
                        float(rng.uniform(0, 6))), TISSUES["muscle"].with_(echo=0.7))
    scene.add(Boxed(thorax), TISSUES["soft"].with_(echo=0.85, texture=(0.3, 1.0), wall=(1.3, 0.6)),
              label="thorax")
    lung_echo = float(rng.uniform(1.3, 1.8))
    scene.add(Boxed(th.ellipse(0, 0, a_t - wall, b_t - wall)),
              TISSUES["soft"].with_(echo=lung_echo, texture=(0.12, 2.0)))
    bone = TISSUES["bone"].with_(atten=5.0, transmit=float(rng.uniform(0.3, 0.55)),
                                 wall=(3.0, 0.5))
    ribs = []
    for _ in range(int(rng.integers(2, 5))):  # rib arcs on the lateral chest walls
        mid = float(rng.choice([0.0, np.pi]) + rng.uniform(-0.9, 0.9))
        span = float(rng.uniform(0.35, 0.9))
        rr = 1 - (wall * 0.45) / b_t
        ribs.append(th.band(0, 0, a_t * rr, b_t * rr, rng.uniform(0.9, 1.5), mid - span / 2,
                            mid + span / 2))
    scene.add(Union(tuple(ribs)), bone)
    ctr = float(rng.uniform(0.42, 0.56) if rng.random() < 0.8 else rng.uniform(0.58, 0.72))
    heart = _place_heart(rng, th, a_t, b_t, wall, ctr)
    vb = b_t - wall - 0.12 * r  # vertebral body centre, posterior (-ev)
    spine = [(*th.pt(0, -vb), 0.13 * r, 0.11 * r, th.angle()),
             (*th.pt(-0.12 * r, -vb - 0.14 * r), 0.07 * r, 0.05 * r, th.angle(60)),
             (*th.pt(0.12 * r, -vb - 0.14 * r), 0.07 * r, 0.05 * r, th.angle(-60))]
    scene.add(Boxed(th.ellipse(0.1 * r, -vb + 0.2 * r, 0.07 * r, 0.07 * r)), TISSUES["blood"])
    scene.add(EllipseUnion(tuple(spine)), TISSUES["bone"].with_(transmit=0.12))
    anterior = np.array(th.ev)
    _heart(scene, rng, heart, anterior)
    # ontology names (lungs, ribs, aorta, fluid and uterine wall are drawn, not listed)
    structures = ["fetal thorax", "fetal thoracic cavity", "fetal heart", "fetal spine"]
    structures += ["fetal limb"] * arm + ["placenta"] * placenta
    return scene, {"thorax": thorax, "cardiac": heart, "ctr": ctr, "depth_mm": depth,
                   "fluid_top": fluid_top, "structures": structures}


def _pixel_ellipse(frame, e: Ellipse, label: str) -> dict:
    """Scene ellipse (mm) -> pixel-index ellipse; angle kept (pixels scale (x, z) uniformly)."""
    cx, cy = to_pixel_index(frame, e.cx, e.cz)
    sp = frame.pixel_spacing_mm
    return {"label": label, "cx": float(cx), "cy": float(cy), "a": float(e.a / sp),
            "b": float(e.b / sp), "angle": float(e.angle % 180.0)}


def sample_fetal_4ch(rng: np.random.Generator, *, size: int, index: int, split: str) -> dict:
    """One FOCUS-like four-chamber image with thorax/cardiac ellipses and the CTR.

    CTR = minor half-axis of the cardiac ellipse / minor half-axis of the thorax ellipse
    (FOCUS measures the cardiothoracic diameter ratio from the ellipses' minor axes; both
    ellipses here have b <= a, so this equals b_cardiac / b_thorax)."""
    setup = _convex_setup(rng)
    device = setup[0]
    scene, info = fetal_thorax_scene(rng, device_style(device).probe("convex", **setup[1]))
    th: Ellipse = info["thorax"]
    frame = _acquire_ob(scene, rng, setup, depth=info["depth_mm"], size=size, target_z=th.cz,
                        fluid_top=info["fluid_top"])
    case = f"focus-sim-{split}-{index:06d}"
    return {
        "image": as_image(frame.image),
        "mask": frame.label_map(scene, ["thorax", "cardiac"]),
        "ellipses": [_pixel_ellipse(frame, th, "thorax"),
                     _pixel_ellipse(frame, info["cardiac"], "cardiac")],
        "ctr": info["ctr"],
        "structures": info["structures"],
        "meta": frame_meta(frame, device, dataset="FOCUS", task="fetal_4ch_detection",
                           case_id=case, patient_id=case, split=split),
    }


# --------------------------------------------------------------------------- brain
def fetal_head_scene(rng: np.random.Generator, probe: Probe, depth_mm: float
                     ) -> tuple[Scene, dict]:
    """Axial transthalamic/transcerebellar plane at 20 weeks; returns (scene, info) with the
    24 landmarks in mm (``landmarks_mm`` [24, 2] as (x, z)) and structures."""
    scene = Scene(background=TISSUES["fluid"].with_(echo=0.0), name="fetal_brain")
    placenta = bool(rng.random() < 0.35)
    fluid_top = _maternal_wall(scene, rng, placenta=placenta)
    s = float(rng.uniform(0.93, 1.07))  # head size scatter around 20 weeks
    a_s, b_s = 30.5 * s, 24.0 * s * rng.uniform(0.95, 1.05)  # skull centre line (OFD/2, BPD/2)
    bone_th = float(rng.uniform(1.5, 2.4))
    a_in, b_in = a_s - bone_th / 2, b_s - bone_th / 2
    psi = float(rng.choice([0.0, 180.0]) + rng.uniform(-35, 35))  # anterior direction
    reach = max(a_s, b_s) + 4.0  # skull plus scalp
    cz = fluid_top + rng.uniform(3, 12) + reach
    depth_mm = max(depth_mm, cz + reach + 3)
    cx = float(rng.uniform(-12, 12))
    cx, cz, depth_mm = _fit_in_fov(probe, depth_mm, Ellipse(cx, cz, a_s + 4, b_s + 4, psi), 2.0)
    eu = (float(np.cos(np.deg2rad(psi))), float(np.sin(np.deg2rad(psi))))
    ev = (-eu[1], eu[0]) if eu[0] >= 0 else (eu[1], -eu[0])  # +v: distal hemisphere (deeper)
    hd = Local(cx, cz, eu, ev)
    head = hd.ellipse(0, 0, a_s + bone_th / 2, b_s + bone_th / 2)
    scene.add(hd.ellipse(0, 0, a_s + bone_th / 2 + 1.5, b_s + bone_th / 2 + 1.5),
              TISSUES["soft"].with_(echo=0.5))  # scalp
    scene.add(head, TISSUES["brain"].with_(echo=float(rng.uniform(0.55, 0.8)),
                                           texture=(0.15, 2.0)), label="head")
    bright = TISSUES["fascia"].with_(echo=float(rng.uniform(1.6, 2.2)))
    # midline falx, choroid plexus of the distal atrium, Sylvian fissures
    scene.add(Boxed(hd.ellipse(0, 0, a_in * 0.99, 0.35)), bright)
    choroid = bool(rng.random() < 0.7)
    if choroid:  # choroid plexus in the atrium of the distal lateral ventricle
        scene.add(Boxed(hd.ellipse(-0.33 * a_in, 0.42 * b_in, 5.5 * s, 2.4 * s, 15)),
                  TISSUES["fascia"].with_(echo=1.4, texture=(0.3, 1.0)))
    syl = (0.12 * a_in * rng.uniform(0.8, 1.2), 0.95 * b_in, 0.24 * a_in * rng.uniform(0.9, 1.1),
           0.30 * b_in * rng.uniform(0.9, 1.1))
    t_syl = (-np.pi / 2 - 1.15, -np.pi / 2, -np.pi / 2 + 1.15)
    scene.add(Boxed(hd.band(*syl, 0.8, t_syl[0], t_syl[2])), bright)
    scene.add(Boxed(hd.band(syl[0], -syl[1], syl[2], syl[3], 0.6, np.pi / 2 - 1.0,
                            np.pi / 2 + 1.0)), bright.with_(echo=1.0))
    # posterior fossa: cisterna magna, cerebellar hemispheres, vermis
    cm = float(rng.uniform(3.0, 6.5))
    tcd = float(rng.uniform(19, 22) * s)
    hu = float(rng.uniform(4.0, 5.2) * s)  # hemisphere half-length (anterior-posterior)
    uc = -a_in + 0.6 + cm + hu
    hv = tcd / 4 * 1.02
    scene.add(Boxed(hd.ellipse(-a_in + 0.6 + cm / 2 + 0.5, 0, cm / 2 + 1.0, tcd * 0.32)),
              TISSUES["fluid"].with_(echo=0.02))
    cereb = TISSUES["brain"].with_(echo=float(rng.uniform(0.9, 1.2)), texture=(0.3, 0.8),
                                   wall=(0.8, 0.4))
    for sv in (-1, 1):
        scene.add(Boxed(hd.ellipse(uc, sv * tcd / 4, hu, hv)), cereb)
    vu, vv = hu * 0.85, tcd * 0.12
    scene.add(Boxed(hd.ellipse(uc, 0, vu, vv)), TISSUES["fascia"].with_(echo=2.0))
    # thalami (hypoechoic, slightly heart-shaped pair) and the cavum septi pellucidi
    tu, tsep = float(rng.uniform(-0.06, 0.06) * a_in), float(rng.uniform(3.0, 4.2) * s)
    thu, thv = 6.0 * s * rng.uniform(0.9, 1.1), 3.6 * s * rng.uniform(0.9, 1.1)
    thal = TISSUES["brain"].with_(echo=float(rng.uniform(0.15, 0.25)), texture=(0.1, 1.0))
    for sv in (-1, 1):
        scene.add(Boxed(hd.ellipse(tu, sv * tsep, thu, thv, sv * 18)), thal)
    cu = tu + thu + rng.uniform(3.5, 6.0) * s + 4.5 * s
    csp_u, csp_v = float(rng.uniform(3.5, 5.5) * s), float(rng.uniform(1.6, 2.6) * s)
    scene.add(Boxed(RoundedBox(*hd.pt(cu, 0), csp_u, csp_v, hd.angle())),
              TISSUES["fluid"].with_(echo=0.02, wall=(1.2, 0.35)))
    scene.add(hd.band(0, 0, a_s, b_s, bone_th),
              TISSUES["bone"].with_(echo=float(rng.uniform(2.5, 3.5)), atten=2.0, wall=(0.0, 0.0),
                                    transmit=float(rng.uniform(0.65, 0.85))))

    # 24 landmarks from the geometry (local (u, v) mm)
    t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    al = np.deg2rad(18)  # lateral-most point of the (rotated) thalamus ellipse
    tu_pts = tu + thu * np.cos(t) * np.cos(al) - thv * np.sin(t) * np.sin(al)
    tv_pts = tsep + thu * np.cos(t) * np.sin(al) + thv * np.sin(t) * np.cos(al)
    k = int(np.argmax(tv_pts))
    syl_pts = [(syl[0] + syl[2] * np.cos(t), syl[1] + syl[3] * np.sin(t)) for t in t_syl]
    local = [(a_s, 0), (-a_s, 0), (0, -b_s), (0, b_s),
             (tu_pts[k], -tv_pts[k]), (tu_pts[k], tv_pts[k]), (tu, 0),
             (uc, -(tcd / 4 + hv)), (uc, tcd / 4 + hv),
             (uc + hu, -tcd / 4), (uc - hu, -tcd / 4), (uc + hu, tcd / 4), (uc - hu, tcd / 4),
             (uc + vu, 0), (uc - vu, 0),
             (cu + csp_u, -csp_v), (cu + csp_u, csp_v), (cu - csp_u, -csp_v),
             (cu - csp_u, csp_v),
             *syl_pts,
             (a_in, 0), (-a_in, 0)]
    pts = np.array([hd.pt(u, v) for u, v in local], np.float64)
    structures = ["fetal head", "fetal brain", "skull", "midline", "cavum septi pellucidi",
                  "thalamus", "cerebellum", "sylvian fissure"]  # ontology names
    structures += ["lateral ventricle"] * choroid + ["placenta"] * placenta
    return scene, {"landmarks_mm": pts, "structures": structures, "head": head,
                   "depth_mm": depth_mm, "fluid_top": fluid_top}


def sample_fetal_brain(rng: np.random.Generator, *, size: int, index: int, split: str) -> dict:
    """One fetal brain axial image with 24 landmarks (pixel-index x=col, y=row)."""
    setup = _convex_setup(rng)
    device = setup[0]
    scene, info = fetal_head_scene(rng, device_style(device).probe("convex", **setup[1]),
                                   float(rng.uniform(85, 115)))
    lm = info["landmarks_mm"]
    frame = _acquire_ob(scene, rng, setup, depth=info["depth_mm"], size=size,
                        target_z=info["head"].cz, fluid_top=info["fluid_top"])
    col, row = to_pixel_index(frame, lm[:, 0], lm[:, 1])
    case = f"fetalbrain-sim-{split}-{index:06d}"
    return {
        "image": as_image(frame.image),
        "landmarks": np.stack([col, row], axis=1).astype(np.float32),
        "landmark_names": list(LANDMARK_NAMES),
        "mask": frame.mask(scene, "head").astype(np.uint8),
        "structures": info["structures"],
        "meta": frame_meta(frame, device, dataset="BrainBenchmark (fetal brain landmarks)",
                           task="fetal_brain_landmarks", case_id=case, patient_id=case,
                           split=split, gestational_age_weeks=20.3),
    }


TASKS = {
    "fetal_4ch_detection": {
        "kind": "detection",
        "classes": list(FOCUS_CLASSES),
        "sample": sample_fetal_4ch,
        "description": "fetal thorax and heart ellipses in the four-chamber view, with the "
                       "cardiothoracic ratio (minor axes)",
        "paper_dataset": "FOCUS",
    },
    "fetal_brain_landmarks": {
        "kind": "landmarks",
        "classes": list(LANDMARK_NAMES),
        "sample": sample_fetal_brain,
        "description": "24 fetal brain landmarks (skull, thalami, cerebellum, cavum septi "
                       "pellucidi, Sylvian fissure, midline) in the axial plane",
        "paper_dataset": "BrainBenchmark (fetal brain, 24 landmarks)",
    },
}
