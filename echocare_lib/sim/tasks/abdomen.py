"""Abdominal scenes (convex probe): multi-organ segmentation and reusable liver/kidney views.

Task (EchoCare Table 1, section 4.2): ``abdomen_organ_seg``, mimicking **AbdomenUS** (BGI,
5 organs: 1 liver, 2 kidney, 3 pancreas, 4 bladder, 5 spleen; every image shows at least
one of them). Standard views are drawn at random per sample:

* ``ruq``: right upper quadrant, liver + right kidney (hepatorenal interface / Morison's
  pouch), portal veins with bright walls, hepatic veins without, diaphragm deep, sometimes
  the gallbladder and rib shadows;
* ``luq``: left upper quadrant (intercostal coronal), spleen + left kidney, diaphragm, bowel
  gas, rib shadows;
* ``epigastric``: transverse, left liver lobe anteriorly, pancreas draped over the splenic
  vein, SMA with its fat collar, aorta, IVC, vertebral body (shadow) deep;
* ``suprapubic``: bladder (anechoic, posterior enhancement), prostate or uterus behind it,
  bowel loops and iliac bones laterally.

Reusable builders (documented below) for the enhancement and report generators:
:func:`liver_scene` (optionally with a focal lesion) and :func:`kidney_scene`, each returning
``(Scene, info)`` where ``info["acquire"]`` holds :func:`~echocare_lib.sim.acquire` keyword
arguments. Geometry is placed in probe polar coordinates (beam angle, depth) so organs sit
where a convex sector shows them; the abdominal wall follows the curved probe face.
"""
from __future__ import annotations

import numpy as np

from ..devices import device_style
from ..render import acquire, as_image, frame_meta
from ..scene import TISSUES, Scene, Tissue
from .neck import (GEL, AirColumn, Local, blob, class_map, ell, harmonics, structures,
                   visible_labels)

ORGANS = ("liver", "kidney", "pancreas", "bladder", "spleen")
#: class id -> structure labels that belong to it (lesions and sinus are part of the organ)
GROUPS = [("liver", "liver lesion"), ("kidney",), ("pancreas",), ("bladder",), ("spleen",)]
VIEWS = ("ruq", "luq", "epigastric", "suprapubic")
CONVEX_DEVICES = ("mid_range", "high_end", "low_end", "handheld")
PROBE_RADIUS = 50.0  # mm, the devices' convex probes (kept fixed: the wall follows it)

LIVER = TISSUES["liver"]
RETRO = TISSUES["muscle"].with_(name="retroperitoneum", echo=0.7, atten=0.6, texture=(0.5, 2.0))
MIRROR = LIVER.with_(name="mirror", echo=0.7, texture=(0.45, 2.5))  # supradiaphragmatic mirror
DIAPHRAGM = TISSUES["fascia"].with_(name="diaphragm", echo=2.4, texture=(0.2, 1.0))
PERIRENAL = TISSUES["fat"].with_(name="perirenal fat", echo=1.5, density=30)
PYRAMID = TISSUES["kidney_cortex"].with_(name="pyramid", echo=0.3, texture=(0.1, 1.0))
PORTAL = TISSUES["blood"].with_(wall=(1.6, 0.7))  # portal triads: echogenic walls
HEPATIC = TISSUES["blood"].with_(wall=(0.3, 0.3))
BOWEL = TISSUES["soft"].with_(name="bowel", echo=0.9, texture=(0.6, 2.0), density=25)
GAS = Tissue("gas", echo=0.6, atten=0.6, transmit=0.03, density=6, wall=(4.0, 1.2))  # see AIR
FLUID = TISSUES["fluid"].with_(wall=(1.2, 0.8))
#: Urine in a full bladder. Its attenuation is set above water's (~0) to stand in for the
#: far-gain reduction every sonographer applies behind a full bladder; with 0 the posterior
#: enhancement (+25-30 dB at 4 MHz over 6 cm) saturates the pelvis.
URINE = FLUID.with_(name="urine", atten=0.3)
ECHO_FAT = TISSUES["fat"].with_(name="echogenic fat", echo=1.7, density=30)
AORTA_WALL = TISSUES["vessel_wall"].with_(echo=1.6)


# --------------------------------------------------------------------------- geometry helpers
def polar(theta_deg: float, depth: float, radius: float = PROBE_RADIUS) -> tuple[float, float]:
    """(x, z) in mm of the point ``depth`` mm along the convex probe's beam at ``theta_deg``
    (positive = image right)."""
    t = np.deg2rad(theta_deg)
    return float((radius + depth) * np.sin(t)), float((radius + depth) * np.cos(t) - radius)


def add_abdominal_wall(sc: Scene, rng, *, skin: float, fat: float, muscle: float,
                       radius: float = PROBE_RADIUS) -> float:
    """Skin, subcutaneous fat and the muscle layer as arcs concentric with the probe face,
    with the echogenic peritoneal line at the bottom; painted last so they lie on top.
    Returns the wall thickness (depth of the peritoneum)."""
    c = (0.0, -radius)
    w = skin + fat + muscle
    sc.add(ell(*c, radius + w + 1.2, radius + w + 1.2), TISSUES["fascia"].with_(echo=1.8),
           "abdominal wall")
    sc.add(ell(*c, radius + w, radius + w), TISSUES["muscle"].with_(texture=(0.5, 0.8)),
           "abdominal wall")
    sc.add(ell(*c, radius + skin + fat + 0.6, radius + skin + fat + 0.6),
           TISSUES["fascia"].with_(echo=1.4), "abdominal wall")
    sc.add(ell(*c, radius + skin + fat, radius + skin + fat), TISSUES["fat"], "abdominal wall")
    sc.add(ell(*c, radius + skin, radius + skin), TISSUES["skin"], "abdominal wall")
    sc.add(ell(*c, radius, radius), GEL)  # above the probe face (see neck.GEL)
    return w + 1.2


def draw_wall(rng, obese: float = 1.0) -> dict:
    return {"skin": float(rng.uniform(1.5, 2.5)), "fat": float(rng.uniform(5, 18) * obese),
            "muscle": float(rng.uniform(6, 12))}


def add_kidney(sc: Scene, rng, cx: float, cz: float, *, length: float | None = None,
               angle: float | None = None) -> dict:
    """A kidney in long axis: echogenic perirenal fat, hypoechoic cortex (capsule line),
    darker medullary pyramids, and the bright central sinus fat (all labelled "kidney",
    except the perirenal fat)."""
    a = (length or rng.uniform(95, 120)) / 2
    b = a * rng.uniform(0.42, 0.55)
    ang = rng.uniform(-25, 25) if angle is None else angle
    cortex = TISSUES["kidney_cortex"].with_(echo=float(rng.uniform(0.55, 0.9)), wall=(1.0, 0.6))
    fat = rng.uniform(3, 8)
    sc.add(ell(cx, cz, a + fat, b + fat * 0.8, ang), PERIRENAL, "perirenal fat")
    sc.add(ell(cx, cz, a, b, ang), cortex, "kidney")
    t = np.deg2rad(ang)
    for k in np.linspace(-0.65, 0.65, int(rng.integers(4, 7))):  # pyramids around the sinus
        for side in (-1, 1):
            u, v = k * a * 0.85, side * b * (0.55 - 0.25 * k * k)
            px, pz = cx + u * np.cos(t) - v * np.sin(t), cz + u * np.sin(t) + v * np.cos(t)
            if rng.random() < 0.7:
                sc.add(ell(px, pz, b * 0.18, b * 0.13, ang + side * 90 * (1 - abs(k))), PYRAMID,
                       "kidney")
    sc.add(blob(cx, cz, a * rng.uniform(0.5, 0.62), harmonics(rng, (2, 3, 5), (0.05, 0.15)),
                rng.uniform(0.3, 0.45) * b / a * 2, ang),
           TISSUES["kidney_sinus"].with_(echo=float(rng.uniform(2.2, 3.0))), "kidney")
    return {"cx": cx, "cz": cz, "a": a, "b": b, "angle": ang}


def add_vessel_tube(sc: Scene, rng, x, z, length, width, angle, tissue: Tissue,
                    label: str | None = None) -> None:
    """A vessel cut obliquely: an elongated anechoic ellipse."""
    sc.add(ell(x, z, length / 2, width / 2, angle), tissue.with_(
        echo=float(rng.uniform(0.01, 0.05))), label)


def add_gas(sc: Scene, rng, x: float, z: float, r: float, label: str = "bowel") -> None:
    """A bowel loop with gas: echogenic wall, bright gas interface, and the gas's shadow, which
    the physics casts along the beams (aperture-averaged: ``physics.two_way_transmission``)."""
    sc.add(ell(x, z, r * 1.4, r * 1.1, rng.uniform(-30, 30)), BOWEL, label)
    sc.add(Local(AirColumn(x, z + r * 0.4, r * 0.8, 0.85, depth=r * 0.8), 1.0), GAS, label)


def add_ribs(sc: Scene, rng, wall: float, n: int, radius: float = PROBE_RADIUS) -> None:
    """Ribs in the intercostal muscles near the sector edges: bright arcs, dense shadows
    fanning along the beams."""
    sides = rng.permutation([-1, 1])[:n]
    for side in sides:
        x, z = polar(side * rng.uniform(20, 30), wall - rng.uniform(3, 6), radius)
        sc.add(ell(x, z, rng.uniform(5, 8), rng.uniform(3, 4.5), side * rng.uniform(5, 20)),
               TISSUES["bone"], "rib")


def place_inside(rng, inside, theta: tuple[float, float], depth: tuple[float, float],
                 tries: int = 40) -> tuple[float, float] | None:
    """A random point in a polar window for which ``inside(x, z)`` holds (or None)."""
    for _ in range(tries):
        x, z = polar(rng.uniform(*theta), rng.uniform(*depth))
        if inside(x, z):
            return x, z
    return None


# --------------------------------------------------------------------------- views
LESIONS = ("hypo", "hyper", "cyst", "target")


def add_liver_lesion(sc: Scene, rng, x: float, z: float, kind: str, radius: float) -> dict:
    """A focal liver lesion labelled "liver lesion": ``hypo`` (metastasis-like, ill-defined),
    ``hyper`` (haemangioma-like, well defined, bright), ``cyst`` (anechoic, thin bright wall,
    posterior enhancement) or ``target`` (bull's eye: echogenic centre, hypoechoic rim)."""
    h = harmonics(rng, (2, 3, 5), (0.02, 0.08))
    if kind == "hypo":
        sc.add(blob(x, z, radius, h + harmonics(rng, (7, 9), (0.02, 0.05))),
               TISSUES["lesion_hypo"].with_(echo=float(rng.uniform(0.25, 0.5))), "liver lesion")
    elif kind == "hyper":
        sc.add(blob(x, z, radius, h, rng.uniform(0.8, 1.1)),
               TISSUES["lesion_hyper"].with_(echo=float(rng.uniform(3.0, 4.5))), "liver lesion")
    elif kind == "cyst":
        sc.add(ell(x, z, radius, radius * rng.uniform(0.8, 1.0), rng.uniform(-30, 30)),
               TISSUES["cyst"], "liver lesion")
    elif kind == "target":
        sc.add(blob(x, z, radius, h), TISSUES["lesion_hypo"].with_(echo=0.3), "liver lesion")
        sc.add(blob(x, z, radius * rng.uniform(0.5, 0.7), h),
               TISSUES["lesion_hyper"].with_(echo=float(rng.uniform(2.0, 3.0))), "liver lesion")
    else:
        raise ValueError(f"lesion kind must be one of {LESIONS}, got {kind!r}")
    return {"kind": kind, "radius_mm": float(radius), "x_mm": float(x), "z_mm": float(z)}


def _upper_quadrant(rng, depth: float, organ: str, *, lesion: dict | None = None,
                    kidney: bool = True, kidney_focus: bool = False) -> tuple[Scene, dict]:
    """Right (liver) or left (spleen) upper-quadrant view: the organ under the wall with the
    diaphragm curving deep-left (cranial) and the mirror image of the organ above it, the
    kidney posterior-inferior (image right), bowel beyond the organ's inferior tip."""
    is_liver = organ == "liver"
    sc = Scene(background=RETRO, name=organ)
    wall_p = draw_wall(rng, 1.0 if is_liver else 0.7)
    w = sum(wall_p.values()) + 1.2
    # thorax beyond the diaphragm (deep left, cranial): mirror image of the organ
    sc.add(ell(*polar(-50, w + rng.uniform(150, 180)), 130, 110, -30),
           MIRROR if is_liver else MIRROR.with_(echo=0.55))
    # the organ: a large blob whose deep-left boundary is the diaphragm
    if is_liver:
        ox, oz = polar(rng.uniform(-15, -5), w + rng.uniform(38, 50))
        r0, asp, ang = rng.uniform(60, 78), rng.uniform(0.62, 0.8), rng.uniform(12, 30)
        tissue = LIVER.with_(echo=float(rng.uniform(0.85, 1.3)),
                             texture=(float(rng.uniform(0.25, 0.45)), 2.5))
        if rng.random() < 0.2:  # steatosis: bright liver, strong attenuation
            tissue = tissue.with_(echo=float(rng.uniform(1.5, 1.9)), atten=0.9)
    else:
        ox, oz = polar(rng.uniform(-20, -8), w + rng.uniform(28, 38))
        r0, asp, ang = rng.uniform(50, 66), rng.uniform(0.42, 0.58), rng.uniform(18, 35)
        tissue = TISSUES["spleen"].with_(echo=float(rng.uniform(0.95, 1.35)))
    # bean/crescent-like outline (spleen: concave hilum), gentle for the liver
    hm = harmonics(rng, (1, 2, 3), (0.03, 0.08) if is_liver else (0.06, 0.14))
    # diaphragm: the same outline shifted cranially and deep (image left, down), so the band
    # lies along the organ's dome only
    t = np.deg2rad(rng.uniform(120, 150))
    sc.add(blob(ox + 5 * np.cos(t), oz + 5 * np.sin(t), r0 + 2.5, hm, asp, ang), DIAPHRAGM,
           "diaphragm")
    sc.add(blob(ox, oz, r0, hm, asp, ang), tissue, organ)
    organ_idx = len(sc.objects) - 1
    organ_shape = sc.objects[organ_idx].shape
    info: dict = {"view": "ruq" if is_liver else "luq", "organ_center": (ox, oz)}
    if is_liver:  # intrahepatic vessels (unlabelled: part of the liver mask)
        for _ in range(int(rng.integers(3, 7))):
            p = place_inside(rng, lambda x, z: organ_shape.inside(x, z), (-30, 15),
                             (w + 15, w + 90))
            if p is None:
                continue
            portal = rng.random() < 0.5
            width = rng.uniform(2.5, 7.0)
            add_vessel_tube(sc, rng, *p, width * rng.uniform(1.0, 4.0), width,
                            rng.uniform(-60, 60), PORTAL if portal else HEPATIC)
    # bowel / retroperitoneum beyond the organ's inferior tip: sets the liver's lower edge
    bx, bz = polar(rng.uniform(30, 42), w + rng.uniform(95, 120))
    sc.add(blob(bx, bz, rng.uniform(65, 85), harmonics(rng, (2, 3), (0.03, 0.08)), 0.9),
           BOWEL, "bowel")
    if rng.random() < (0.5 if is_liver else 0.7):
        add_gas(sc, rng, *polar(rng.uniform(22, 30), w + rng.uniform(20, 45)), rng.uniform(6, 10))
    if kidney:
        if kidney_focus:
            kx, kz = polar(rng.uniform(-6, 6), w + rng.uniform(45, 60))
        else:
            kx, kz = polar(rng.uniform(5, 18), w + rng.uniform(55, 80) * (1 if is_liver else 0.9))
        info["kidney"] = add_kidney(sc, rng, kx, kz, angle=rng.uniform(-30, 5) if is_liver
                                    else rng.uniform(-5, 30))
    if is_liver and not kidney_focus and rng.random() < 0.35:  # gallbladder (+ stone)
        gx, gz = polar(rng.uniform(0, 14), w + rng.uniform(25, 45))
        gr = rng.uniform(18, 32)
        sc.add(blob(gx, gz, gr, harmonics(rng, (1, 2), (0.1, 0.2)), rng.uniform(0.3, 0.45),
                    rng.uniform(-25, 15)), FLUID, "gallbladder")
        if rng.random() < 0.3:
            sc.add(ell(gx + rng.uniform(-5, 5), gz + gr * 0.25, 3.5, 3.0),
                   TISSUES["calcification"].with_(transmit=0.1), "gallbladder")
    if is_liver and lesion is not None:
        kind = lesion.get("kind") or str(rng.choice(LESIONS))
        rad = float(lesion.get("radius_mm") or rng.uniform(6, 20))
        kid = info.get("kidney")

        def ok(x, z):  # inside the visible liver, clear of the kidney
            if not organ_shape.inside(x, z) or covered_after(sc, organ_idx, x, z):
                return False
            return kid is None or np.hypot(x - kid["cx"], z - kid["cz"]) > kid["a"] + rad + 8
        p = place_inside(rng, ok, (-25, 10), (w + rad + 5, w + 80))
        if p is None:
            p = polar(-15, w + rad + 20)
        info["lesion"] = add_liver_lesion(sc, rng, *p, kind, rad)
    add_abdominal_wall(sc, rng, **wall_p)
    if rng.random() < (0.3 if is_liver else 0.5):
        add_ribs(sc, rng, w, int(rng.integers(1, 3)))
    focus = (info["kidney"]["cz"] if kidney_focus else oz + rng.uniform(-10, 20))
    info["acquire"] = _acquire_args(rng, depth, focus)
    return sc, info


def covered_after(sc: Scene, idx: int, x: float, z: float) -> bool:
    """True if a labelled object painted after object ``idx`` covers the point (x, z)."""
    xa, za = np.array([x], np.float32), np.array([z], np.float32)
    return any(o.label is not None and bool(o.shape.inside(xa, za)[0])
               for o in sc.objects[idx + 1:])


def _epigastric(rng, depth: float) -> tuple[Scene, dict]:
    """Transverse epigastric view: left liver lobe, pancreas, splenic vein, SMA, aorta, IVC,
    vertebral body; sometimes gas in the stomach."""
    sc = Scene(background=BOWEL.with_(echo=0.75), name="epigastric")
    wall_p = draw_wall(rng, 0.8)
    w = sum(wall_p.values()) + 1.2
    # deep structures first
    ax, az = polar(rng.uniform(-3, 6), w + rng.uniform(75, 95))
    ar = rng.uniform(8, 12)
    sc.add(ell(ax * 0.3, az + ar + rng.uniform(18, 26), rng.uniform(22, 28),
               rng.uniform(14, 18)), TISSUES["bone"], "vertebra")
    for side in (-1, 1):  # diaphragmatic crura around the aorta
        sc.add(ell(ax + side * (ar + 4), az + 4, 4.0, ar + 4, side * 15), TISSUES["muscle"],
               "crus")
    sc.add(ell(ax, az, ar + 1.2, ar + 1.2), AORTA_WALL, "aorta")
    sc.add(ell(ax, az, ar, ar), TISSUES["blood"].with_(wall=(0.8, 0.4)), "aorta")
    ix, iz = ax - rng.uniform(28, 40), az + rng.uniform(-8, 4)
    sc.add(ell(ix, iz, rng.uniform(10, 15), rng.uniform(5, 9), rng.uniform(-10, 10)),
           TISSUES["blood"].with_(echo=0.04, wall=(0.5, 0.3)), "inferior vena cava")
    # SMA with its echogenic fat collar, then the splenic vein and the pancreas over it
    sx, sz = ax + rng.uniform(-3, 3), az - ar - rng.uniform(8, 12)
    sc.add(ell(sx, sz, 6.5, 6.0), ECHO_FAT, "superior mesenteric artery")
    sc.add(ell(sx, sz, 3.5, 3.5), TISSUES["blood"].with_(wall=(0.8, 0.3)),
           "superior mesenteric artery")
    p_ang = rng.uniform(-12, 8)
    p_len = rng.uniform(55, 75)
    p_th = rng.uniform(9, 15)
    px, pz = sx + rng.uniform(-5, 8), sz - 4 - p_th * 0.9
    # pancreas: elongated, lobulated, with a larger head on the image left (patient right)
    sc.add(blob(px, pz, p_len, ((1, rng.uniform(0.05, 0.15), np.pi),) +
                harmonics(rng, (2, 3, 4), (0.02, 0.06)), p_th / p_len, p_ang),
           TISSUES["pancreas"].with_(echo=float(rng.uniform(1.1, 1.6))), "pancreas")
    t = np.deg2rad(p_ang)
    vx, vz = sx + 12 * np.cos(t), sz - 4 + 12 * np.sin(t)
    add_vessel_tube(sc, rng, vx, vz, rng.uniform(35, 55), rng.uniform(6, 10), p_ang,
                    TISSUES["blood"].with_(wall=(0.5, 0.3)), "splenic vein")
    sc.add(ell(sx - rng.uniform(2, 8), sz - 5, 6, 5), TISSUES["blood"].with_(echo=0.03),
           "portal confluence")
    # left lobe of the liver over the pancreas, tapering to the image right
    lx, lz = polar(rng.uniform(-22, -10), w + rng.uniform(8, 18))
    l_ang = rng.uniform(8, 22)
    sc.add(blob(lx, lz, rng.uniform(55, 75), harmonics(rng, (1, 2, 3), (0.03, 0.1)),
                rng.uniform(0.35, 0.5), l_ang), LIVER.with_(echo=float(rng.uniform(0.85, 1.25))),
           "liver")
    liver_bottom = lz
    if rng.random() < 0.5:  # ligamentum teres: echogenic fat with faint shadowing
        tx, tz = lx + rng.uniform(-5, 10), liver_bottom + rng.uniform(-5, 5)
        sc.add(ell(tx, tz, 4, 3.5), ECHO_FAT.with_(echo=2.5, transmit=0.7), "liver")
    if rng.random() < 0.4:  # gas in the stomach / transverse colon on the image right
        add_gas(sc, rng, *polar(rng.uniform(18, 28), w + rng.uniform(20, 40)), rng.uniform(7, 12),
                "stomach")
    add_abdominal_wall(sc, rng, **wall_p)
    return sc, {"view": "epigastric",
                "acquire": _acquire_args(rng, depth, pz + rng.uniform(-5, 10))}


def _suprapubic(rng, depth: float) -> tuple[Scene, dict]:
    """Suprapubic view: bladder (anechoic, thin echogenic wall, posterior enhancement) with
    the prostate or uterus behind it, bowel loops at the sides, iliac bones deep."""
    sc = Scene(background=BOWEL.with_(echo=0.8), name="pelvis")
    wall_p = draw_wall(rng, 0.9)
    w = sum(wall_p.values()) + 1.2
    transverse = rng.random() < 0.5
    r0 = rng.uniform(30, 55) if transverse else rng.uniform(28, 48)
    asp = rng.uniform(0.5, 0.85)
    bx, bz = polar(rng.uniform(-6, 6), w + r0 * asp + rng.uniform(3, 10))
    hm = ((4, rng.uniform(0.04, 0.09), 0.0),) if transverse else \
        ((3, rng.uniform(0.04, 0.1), np.pi / 2),)
    hm = hm + harmonics(rng, (2,), (0.02, 0.06))
    for side in (-1, 1):  # iliac bones, bowel loops
        sc.add(ell(bx + side * rng.uniform(70, 90), bz + rng.uniform(35, 55), 30, 15,
                   side * rng.uniform(20, 40)), TISSUES["bone"], "iliac bone")
        if rng.random() < 0.6:
            add_gas(sc, rng, bx + side * (r0 + rng.uniform(10, 25)), bz - r0 * asp * 0.4,
                    rng.uniform(6, 10))
    male = rng.random() < 0.5
    deep = bz + r0 * asp
    if male:
        pr = rng.uniform(15, 22)
        sc.add(blob(bx + rng.uniform(-5, 5), deep + pr * 0.6, pr,
                    harmonics(rng, (2, 3), (0.03, 0.08)), 0.75),
               TISSUES["lesion_iso"].with_(echo=0.9, texture=(0.4, 1.5)), "prostate")
    else:
        ua, ub = (rng.uniform(22, 30), rng.uniform(16, 22)) if transverse else \
            (rng.uniform(30, 42), rng.uniform(15, 22))
        ux, uz = bx + rng.uniform(-8, 8), deep + ub * 0.8
        ang = 0.0 if transverse else rng.uniform(-25, 0)
        sc.add(ell(ux, uz, ua, ub, ang), TISSUES["myocardium"].with_(echo=1.0), "uterus")
        sc.add(ell(ux, uz, ua * 0.6, 1.5, ang), TISSUES["lesion_hyper"], "uterus")
    if rng.random() < 0.5:
        add_gas(sc, rng, bx + rng.uniform(-10, 10), deep + rng.uniform(40, 55), rng.uniform(8, 12),
                "rectum")
    sc.add(blob(bx, bz, r0 + 3.0, hm, asp), TISSUES["muscle"].with_(echo=1.1), "bladder wall")
    sc.add(blob(bx, bz, r0, hm, asp), URINE, "bladder")
    add_abdominal_wall(sc, rng, **wall_p)
    return sc, {"view": "suprapubic", "transverse": bool(transverse), "male": bool(male),
                "acquire": _acquire_args(rng, depth, bz + rng.uniform(-5, 15))}


def _acquire_args(rng, depth: float, focus: float) -> dict:
    """Convex-probe acquisition keywords. The centre frequency is capped at 3-3.8 MHz (the
    abdominal "penetration" preset): at 5 MHz, 15 cm of tissue costs ~90 dB two-way and the
    TGC would lift electronic noise above the far-field echoes."""
    return {"probe": "convex", "depth_mm": float(depth),
            "focus_mm": float(np.clip(focus, 30, depth - 10)),
            "probe_changes": {"sector_deg": float(rng.uniform(60, 75)),
                              "f0_mhz": float(rng.uniform(3.0, 3.8))}}


# --------------------------------------------------------------------------- public builders
def liver_scene(rng: np.random.Generator, *, depth_mm: float, lesion: dict | None = None
                ) -> tuple[Scene, dict]:
    """A right-upper-quadrant liver view (convex probe) for reuse by other generators.

    lesion: optional dict ``{"kind": "hypo"|"hyper"|"cyst"|"target", "radius_mm": float}``
            (missing keys drawn at random) placed inside the visible liver, labelled
            "liver lesion" in the scene.
    Returns (scene, info): info["acquire"] are acquire() keyword arguments (convex probe,
    depth, focus, sector); info["lesion"] the placed lesion (kind, radius_mm, x_mm, z_mm);
    info["kidney"] the kidney geometry when present. Scene labels: "liver", "kidney",
    "gallbladder", "diaphragm", "bowel", "abdominal wall", "rib", "liver lesion"."""
    return _upper_quadrant(rng, depth_mm, "liver", lesion=lesion, kidney=rng.random() < 0.75)


def kidney_scene(rng: np.random.Generator, *, depth_mm: float) -> tuple[Scene, dict]:
    """A long-axis right-kidney view through the liver window (convex probe), kidney
    centred. Returns (scene, info) as :func:`liver_scene`; the kidney is labelled
    "kidney" (cortex, pyramids and sinus), its geometry in info["kidney"]."""
    return _upper_quadrant(rng, depth_mm, "liver", kidney=True, kidney_focus=True)


def view_scene(rng: np.random.Generator, view: str, *, depth_mm: float) -> tuple[Scene, dict]:
    """Any of the task's standard views by name (``VIEWS``)."""
    if view == "ruq":
        return _upper_quadrant(rng, depth_mm, "liver", kidney=rng.random() < 0.75,
                               lesion={} if rng.random() < 0.1 else None)
    if view == "luq":
        return _upper_quadrant(rng, depth_mm, "spleen", kidney=rng.random() < 0.8)
    if view == "epigastric":
        return _epigastric(rng, depth_mm)
    if view == "suprapubic":
        return _suprapubic(rng, depth_mm)
    raise ValueError(f"view must be one of {VIEWS}, got {view!r}")


# --------------------------------------------------------------------------- sample
def sample_abdomen_organ_seg(rng: np.random.Generator, *, size: int, index: int,
                             split: str) -> dict:
    """AbdomenUS-like abdominal image from a random standard view; mask 1 liver, 2 kidney,
    3 pancreas, 4 bladder, 5 spleen."""
    view = str(rng.choice(VIEWS, p=[0.32, 0.24, 0.24, 0.2]))
    depth = rng.uniform(120, 160) if view != "suprapubic" else rng.uniform(110, 140)
    scene, info = view_scene(rng, view, depth_mm=depth)
    dev = str(rng.choice(CONVEX_DEVICES))
    proc = device_style(dev).proc
    args = dict(info["acquire"], probe_changes=dict(info["acquire"]["probe_changes"]))
    args["probe_changes"]["f0_mhz"] = min(args["probe_changes"]["f0_mhz"],
                                          device_style(dev).convex.f0_mhz)
    changes = {"gain_db": proc.gain_db + float(rng.uniform(-12, -3)),
               "dynamic_range_db": proc.dynamic_range_db + float(rng.uniform(-4, 4))}
    frame = acquire(scene, rng, device=dev, size=size, proc_changes=changes, **args)
    lm, names = visible_labels(frame, scene)
    return {"image": as_image(frame.image),
            "mask": class_map(lm, names, GROUPS), "structures": structures(lm, names),
            "meta": frame_meta(frame, dev, dataset="AbdomenUS", task="abdomen_organ_seg",
                               case_id=f"{split}-{index:05d}",
                               patient_id=f"abdus-{split}-{index // 12:04d}", split=split,
                               view=view, sector_deg=frame.grid.probe.sector_deg,
                               radius_mm=frame.grid.probe.radius_mm, lesion=info.get("lesion"))}


TASKS: dict[str, dict] = {
    "abdomen_organ_seg": {
        "kind": "segmentation", "classes": ["background", *ORGANS],
        "sample": sample_abdomen_organ_seg, "paper_dataset": "AbdomenUS",
        "description": "Convex abdominal views (RUQ liver+kidney, LUQ spleen+kidney, epigastric "
                       "pancreas, suprapubic bladder); mask 1 liver, 2 kidney, 3 pancreas, "
                       "4 bladder, 5 spleen."},
}
