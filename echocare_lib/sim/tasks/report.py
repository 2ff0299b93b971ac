"""Liver ultrasound report generation (paper: USData / USreport Liver, sections 4.2 and 4.3).

USreport pairs two clinician-selected images of one examination with the expert report
(PLA General Hospital; 1,118 / 279 liver cases). The paper scores generated reports with
NLG metrics and with clinical-efficacy (CE) metrics on 14 key entities (liver, capsule,
echogenicity, vein, kidney, intrahepatic duct, bile duct, gallbladder, margin, pancreas,
pancreatic duct, lesion, spleen, nodule): an entity is 1 when the report mentions it.

Each simulated case is one patient: structured findings are drawn first (normal, fatty or
cirrhotic parenchyma; portal vein calibre; biliary dilatation; gallbladder stones, wall
thickening or polyp; focal liver lesion: cyst, haemangioma, hypoechoic nodule or mass;
pancreatic duct; spleen; right kidney), then two convex-probe views are rendered from
them (always a right-lobe subcostal oblique view, plus a gallbladder, hepatorenal or
epigastric-transverse view chosen by what there is to show), and an English report is
written from the same findings with varied templates, synonyms, sentence order and the
scene's measurements. Every sentence template declares the entities it mentions, so the
``entities`` vector comes from the structured plan, not from string matching;
:func:`entity_vector` is the keyword rule set the CE metric applies to any report text
(generated or reference), tested to agree with the structured vector.

Scenes are built here (not imported from the abdomen module) so the two can evolve apart.
"""
from __future__ import annotations

import re

import numpy as np

from ..devices import device_style
from ..render import acquire, as_image, frame_meta
from ..scene import TISSUES, Blob, Ellipse, Layer, Scene, Tissue, Tube

ENTITIES = ["liver", "capsule", "echogenicity", "vein", "kidney", "intrahepatic duct",
            "bile duct", "gallbladder", "margin", "pancreas", "pancreatic duct", "lesion",
            "spleen", "nodule"]
DEVICES = ("high_end", "mid_range", "low_end")
#: The first image is always the right-lobe oblique view; the second is one of the others.
VIEWS = ("right lobe oblique", "gallbladder", "hepatorenal", "epigastric transverse")

# --------------------------------------------------------------------------- CE keyword rules
#: Keyword / synonym rules of the clinical-efficacy metric (case-insensitive regular
#: expressions). Choices: "hepatic" alone does not count as "liver" (it is in "hepatic
#: vein"); "nodular" (a cirrhotic surface) is not "nodule"; "intrahepatic bile duct" counts
#: for "intrahepatic duct" only; "pancreatic duct" counts for "pancreatic duct" only;
#: vessels and vasculature count as "vein"; a cyst, polyp or stone is not a "lesion" unless
#: called a lesion, mass or space-occupying lesion; "echogenic"/"-echoic" lesion descriptors
#: are not "echogenicity" (which means the parenchymal echo pattern).
ENTITY_PATTERNS: dict[str, str] = {
    "liver": r"\bliver\b|\bhepatomegaly\b",
    "capsule": r"\bcapsul(e|ar)\b|\b(liver|hepatic) surface\b|\bsurface of the liver\b",
    "echogenicity": r"\bechogenicity\b|\becho ?texture\b|\becho pattern\b",
    "vein": r"\bveins?\b|\bvenous\b|\bvessels?\b|\bvascula(r|ture)\b",
    "kidney": r"\bkidneys?\b|\brenal\b",
    "intrahepatic duct": r"\bintrahepatic (bile ducts?|biliary|ducts?)\b",
    "bile duct": r"(?<!intrahepatic )\bbile ducts?\b|\bcbd\b|\bcommon (hepatic )?duct\b|"
                 r"\bcholedoch",
    "gallbladder": r"\bgall ?bladder\b|\bgallstones?\b|\bcholecyst|\bcholelithiasis\b",
    "margin": r"\bmargins?\b|\bborders?\b|\bboundar(y|ies)\b|\b(well|ill|poorly)[- ]defined\b|"
              r"\bcircumscribed\b",
    "pancreas": r"\bpancreas\b|\bpancreatic (?!duct)",
    "pancreatic duct": r"\bpancreatic ducts?\b|\bwirsung",
    "lesion": r"\blesions?\b|\bmass(es)?\b|\bspace[- ]occupying\b",
    "spleen": r"\bspleen\b|\bsplenic\b|\bsplenomegaly\b",
    "nodule": r"\bnodules?\b",
}
_COMPILED = {k: re.compile(v, re.IGNORECASE) for k, v in ENTITY_PATTERNS.items()}


def entity_vector(text: str) -> np.ndarray:
    """0/1 vector over :data:`ENTITIES`: does ``text`` mention each entity (keyword rules in
    :data:`ENTITY_PATTERNS`; negated mentions count, as in the paper's definition)."""
    return np.array([1 if _COMPILED[e].search(text) else 0 for e in ENTITIES], np.uint8)


# --------------------------------------------------------------------------- findings
def _r1(x: float) -> float:
    return float(np.round(x, 1))


def draw_findings(rng: np.random.Generator) -> dict:
    """Patient-level ground truth (sizes in cm unless named *_mm)."""
    par = str(rng.choice(["normal", "fatty", "cirrhotic"], p=[0.4, 0.38, 0.22]))
    grade = str(rng.choice(["mild", "moderate", "severe"], p=[0.45, 0.35, 0.2])) \
        if par == "fatty" else None
    size = {"normal": "normal", "fatty": "enlarged" if rng.random() < 0.45 else "normal",
            "cirrhotic": "small" if rng.random() < 0.6 else "normal"}[par]
    rl = {"normal": rng.uniform(11.0, 14.0), "enlarged": rng.uniform(15.2, 18.0),
          "small": rng.uniform(8.5, 10.8)}[size]
    cirr = par == "cirrhotic"
    pv = rng.uniform(1.35, 1.7) if cirr and rng.random() < 0.7 else rng.uniform(0.9, 1.28)
    biliary = rng.random() < 0.12
    ihd = biliary
    cbd = rng.uniform(0.8, 1.5) if biliary else rng.uniform(0.3, 0.6)
    gb_state = str(rng.choice(["normal", "stones", "wall", "polyp"], p=[0.55, 0.22, 0.11, 0.12]))
    gb = {"state": gb_state, "length_cm": _r1(rng.uniform(5.5, 8.5)),
          "stone_cm": _r1(rng.uniform(0.5, 2.2)) if gb_state == "stones" else None,
          "n_stones": int(rng.integers(1, 4)) if gb_state == "stones" else 0,
          "wall_mm": _r1(rng.uniform(4.5, 8.0)) if gb_state == "wall" else _r1(
              rng.uniform(1.5, 2.8)),
          "polyp_cm": _r1(rng.uniform(0.3, 0.9)) if gb_state == "polyp" else None}
    lesion = None
    if rng.random() < 0.4:
        kind = str(rng.choice(["cyst", "hemangioma", "nodule", "mass"],
                              p=[0.32, 0.32, 0.22, 0.14]))
        if cirr and kind in ("cyst", "hemangioma") and rng.random() < 0.5:
            kind = "nodule"
        lo, hi = {"cyst": (0.8, 4.5), "hemangioma": (0.8, 3.5), "nodule": (1.0, 2.9),
                  "mass": (3.0, 6.0)}[kind]
        lobe = "left" if rng.random() < 0.25 else "right"
        a = rng.uniform(lo, min(hi, 4.0) if lobe == "left" else hi)
        b = a * rng.uniform(0.7, 1.0)
        ill = kind == "mass" and rng.random() < 0.8 or kind == "nodule" and rng.random() < 0.45
        seg = str(rng.choice(["II", "III"] if lobe == "left" else ["V", "VI", "VII", "VIII"]))
        lesion = {"type": kind, "size_cm": [_r1(a), _r1(b)], "lobe": lobe, "segment": seg,
                  "margin": "ill-defined" if ill else "well-defined",
                  "halo": bool(kind in ("nodule", "mass") and rng.random() < 0.5)}
    spleen_big = cirr and rng.random() < 0.7 or rng.random() < 0.05
    pd_dil = rng.random() < 0.1
    return {
        "liver": {"size": size, "right_lobe_cm": _r1(rl), "parenchyma": par,
                  "fatty_grade": grade, "capsule": "irregular" if cirr else "smooth",
                  "regenerative_nodules": bool(cirr and rng.random() < 0.5),
                  "ascites": bool(cirr and rng.random() < 0.35)},
        "portal_vein_cm": _r1(pv), "portal_vein_dilated": bool(pv >= 1.3),
        "ihd_dilated": bool(ihd), "cbd_cm": _r1(cbd), "cbd_dilated": bool(cbd >= 0.75),
        "gallbladder": gb, "lesion": lesion,
        "pancreas": {"duct_mm": _r1(rng.uniform(3.5, 7.0) if pd_dil else rng.uniform(1.0, 2.4)),
                     "duct_dilated": bool(pd_dil)},
        "spleen": {"thickness_cm": _r1(rng.uniform(4.6, 6.5) if spleen_big else
                                       rng.uniform(2.8, 4.0)), "enlarged": bool(spleen_big)},
        "kidney": {"length_cm": _r1(rng.uniform(9.5, 11.8)),
                   "cyst_cm": _r1(rng.uniform(0.8, 3.0)) if rng.random() < 0.12 else None},
    }


# --------------------------------------------------------------------------- anatomy
_BILE = TISSUES["fluid"].with_(wall=(1.2, 0.5))
_PV = TISSUES["blood"].with_(wall=(2.0, 0.8))  # portal veins: echogenic walls
_HV = TISSUES["blood"]  # hepatic veins: no visible wall
_DIAPHRAGM = Tissue("diaphragm", 2.6, 0.8)
_BELOW_DIAPHRAGM = Tissue("lung_mirror", 0.7, 1.2, texture=(0.5, 3.0))
_BOWEL = Tissue("bowel", 0.9, 0.7, texture=(0.7, 2.5), density=20)
_RETRO = Tissue("retroperitoneal_fat", 1.2, 0.6, texture=(0.5, 2.0))


def liver_tissue(f: dict, rng: np.random.Generator) -> Tissue:
    """Parenchyma: fatty = brighter and more attenuating; cirrhotic = coarse, heterogeneous."""
    par = f["liver"]["parenchyma"]
    if par == "fatty":
        k = {"mild": 0.0, "moderate": 0.5, "severe": 1.0}[f["liver"]["fatty_grade"]]
        k = float(np.clip(k + rng.normal(0, 0.2), -0.2, 1.2))
        return TISSUES["liver"].with_(echo=1.25 + 0.55 * k, atten=0.72 + 0.3 * k,
                                      texture=(0.22, 1.2), wall=(0.8, 0.6))
    if par == "cirrhotic":
        return TISSUES["liver"].with_(echo=float(rng.uniform(1.0, 1.3)), atten=0.7,
                                      texture=(float(rng.uniform(0.55, 0.8)),
                                               float(rng.uniform(3.0, 4.0))), wall=(2.4, 0.9))
    return TISSUES["liver"].with_(echo=float(rng.uniform(0.9, 1.1)),
                                  texture=(float(rng.uniform(0.2, 0.32)), 2.0), wall=(1.8, 0.7))


def abdominal_wall(sc: Scene, rng: np.random.Generator) -> float:
    """Skin, subcutaneous fat, muscle and peritoneum; returns the depth of the peritoneum."""
    fat = float(rng.uniform(4, 18))
    mus = float(rng.uniform(5, 11))
    ph = float(rng.uniform(0, 2 * np.pi))
    sc.add(Layer(0.0, 2.0), "skin")
    sc.add(Layer(2.0, 2.0 + fat, amp=1.0, period=60.0, phase=ph), "fat")
    sc.add(Layer(2.0 + fat, 2.0 + fat + mus, amp=1.0, period=60.0, phase=ph), "muscle")
    sc.add(Layer(2.0 + fat + mus, 3.2 + fat + mus, amp=1.0, period=60.0, phase=ph), "fascia")
    # preperitoneal fat fills whatever lies between the wall and the organs
    sc.add(Layer(3.2 + fat + mus, 3.2 + fat + mus + 25.0), "fat")
    return 3.2 + fat + mus + 1.0


def liver_body(sc: Scene, f: dict, tissue: Tissue, rng: np.random.Generator, top: float,
               bottom: float, xc: float, width: float, diaphragm: bool) -> "Blob | Ellipse":
    """The liver from ``top`` to ``bottom`` (mm): an ellipse with a smooth capsule, or a blob
    with a nodular capsule (many small high harmonics) in cirrhosis; ascites and the
    diaphragm around it."""
    r0 = width / 2
    aspect = (bottom - top) / width
    cz = (top + bottom) / 2
    if f["liver"]["capsule"] == "irregular":
        harm = tuple((int(k), float(rng.uniform(0.006, 0.012)), float(rng.uniform(0, 6.3)))
                     for k in rng.integers(18, 40, 3))

        def shape(dz: float, grow: float) -> "Blob | Ellipse":
            return Blob(xc, cz + dz, r0 + grow, harm, (r0 * aspect + grow) / (r0 + grow))
    else:
        tilt = float(rng.uniform(-4, 4))

        def shape(dz: float, grow: float) -> "Blob | Ellipse":
            return Ellipse(xc, cz + dz, r0 + grow, r0 * aspect + grow, tilt)
    if diaphragm:  # bright band under the liver's deep surface
        sc.add(shape(5.0, 0.0), _DIAPHRAGM)
    if f["liver"]["ascites"]:
        sc.add(shape(-2.0, 9.0), "fluid", label="ascites")
    liver = shape(0.0, 0.0)
    # the capsule echo's thickness is scaled by the long radius: correct by the aspect
    sc.add(liver, tissue.with_(wall=(tissue.wall[0], tissue.wall[1] * aspect)), label="liver")
    return liver


def tube(sc: Scene, p0: np.ndarray, p1: np.ndarray, radius: float, tissue: Tissue,
         label: str | None = None, end_radius: float | None = None) -> None:
    """A straight vessel or duct segment from p0 to p1 (mm), its radius tapering from
    ``radius`` to ``end_radius`` (default: no taper), with rounded ends."""
    sc.add(Tube(float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1]), float(radius),
                float(radius if end_radius is None else end_radius)), tissue, label=label)


def portal_branches(sc: Scene, f: dict, rng: np.random.Generator, centre: np.ndarray,
                    n: int, fade: float) -> None:
    """Portal branches (bright walls) fanning from ``centre``; dilated intrahepatic ducts
    run alongside them (the parallel-channel sign)."""
    r_main = f["portal_vein_cm"] * 10 / 2
    wall = _PV.with_(wall=(2.0 * fade, 0.8))
    for k in range(n):
        ang = np.deg2rad(rng.uniform(-170, -10) if k else rng.uniform(-20, 20) + 180 * (
            rng.random() < 0.5))
        d = np.array([np.cos(ang), np.sin(ang)])
        length = float(rng.uniform(18, 38))
        r = r_main * (0.75 if k == 0 else float(rng.uniform(0.35, 0.55)))
        start = centre + d * (r_main if k else 0)
        tube(sc, start, start + d * length, r, wall, label="portal vein",
             end_radius=r * float(rng.uniform(0.5, 0.7)))
        if f["ihd_dilated"]:
            perp = np.array([-d[1], d[0]]) * (r + 2.6 + 1.0)
            rd = float(rng.uniform(1.6, 2.8))
            tube(sc, start + perp, start + perp + d * length * 0.9, rd, _BILE,
                 label="intrahepatic duct", end_radius=rd * 0.7)


def hepatic_veins(sc: Scene, rng: np.random.Generator, confluence: np.ndarray,
                  n: int) -> None:
    """Hepatic veins (anechoic, wall-less) converging on the IVC."""
    sc.add(Ellipse(float(confluence[0]), float(confluence[1]), float(rng.uniform(8, 12)),
                   float(rng.uniform(6, 9)), float(rng.uniform(-15, 15))), _HV,
           label="inferior vena cava")
    for ang in np.sort(rng.uniform(-160, -20, n)):
        # widest where it drains into the IVC, tapering towards the periphery
        d = np.array([np.cos(np.deg2rad(ang)), np.sin(np.deg2rad(ang))])
        length = float(rng.uniform(40, 75))
        r0 = float(rng.uniform(4.5, 7.0))
        tube(sc, confluence + d * 3, confluence + d * length, r0, _HV, label="hepatic vein",
             end_radius=r0 * float(rng.uniform(0.4, 0.55)))


def focal_lesion(sc: Scene, lesion: dict, centre: np.ndarray, rng: np.random.Generator) -> None:
    """Cyst (anechoic, thin wall, posterior enhancement), haemangioma (hyperechoic, well
    defined), hypoechoic nodule / mass (optional halo; ill-defined margins lobulated)."""
    a, b = lesion["size_cm"]
    r0 = a * 10 / 2
    aspect = b / a
    kind = lesion["type"]
    if lesion["margin"] == "ill-defined":
        harm = tuple((int(k), float(rng.uniform(0.06, 0.14)), float(rng.uniform(0, 6.3)))
                     for k in (3, 5, 7))
    else:
        harm = ((2, float(rng.uniform(0, 0.05)), float(rng.uniform(0, 6.3))),)
    tissue = {"cyst": TISSUES["cyst"],
              "hemangioma": TISSUES["lesion_hyper"].with_(echo=float(rng.uniform(1.6, 2.3))),
              "nodule": TISSUES["lesion_hypo"].with_(echo=float(rng.uniform(0.4, 0.7))),
              "mass": TISSUES["lesion_hypo"].with_(echo=float(rng.uniform(0.5, 0.8)),
                                                  texture=(0.5, 2.0))}[kind]
    halo = (-0.6, float(rng.uniform(1.5, 3.0))) if lesion.get("halo") else (0.0, 0.0)
    sc.add(Blob(float(centre[0]), float(centre[1]), r0, harm, aspect,
                float(rng.uniform(-20, 20))), tissue, label=f"liver {kind}", halo=halo)


def regenerative_nodules(sc: Scene, liver: "Blob | Ellipse", rng: np.random.Generator,
                         tissue: Tissue,
                         box: tuple[float, float, float, float]) -> None:
    """Small, subtle iso- to slightly hypo-echoic nodules of a cirrhotic liver."""
    x0, x1, z0, z1 = box
    for _ in range(int(rng.integers(2, 5))):
        c = (float(rng.uniform(x0, x1)), float(rng.uniform(z0, z1)))
        if liver.rho(np.float32(c[0]), np.float32(c[1])) < 0.85:
            sc.add(Ellipse(c[0], c[1], float(rng.uniform(3, 6)), float(rng.uniform(3, 5))),
                   tissue.with_(echo=tissue.echo * float(rng.uniform(0.7, 0.85)),
                                wall=(0.0, 0.0)), label="regenerative nodule")


def gallbladder(sc: Scene, gb: dict, centre: np.ndarray, angle: float, aspect: float,
                rng: np.random.Generator) -> None:
    """Pear-shaped anechoic gallbladder; stones (bright, shadowing) lie in the dependent
    (deep) part, a polyp sticks to the non-dependent wall, a thick wall is a broad echo."""
    half = gb["length_cm"] * 10 / 2
    wall_mm = gb["wall_mm"]
    # Tissue.wall thickness is scaled by the blob's long radius: correct by the aspect ratio
    t = TISSUES["fluid"].with_(wall=(1.3 if wall_mm < 4 else 1.1, max(wall_mm, 1.2) * aspect))
    shape = Blob(float(centre[0]), float(centre[1]), half,
                 ((1, 0.12, float(np.pi)), (2, float(rng.uniform(0, 0.05)), 0.0)), aspect, angle)
    if wall_mm >= 4:  # oedematous thick wall: a hypoechoic-layered rim
        sc.add(Blob(float(centre[0]), float(centre[1]), half + wall_mm * 0.8,
                    shape.harmonics, (half * aspect + wall_mm * 0.8) / (half + wall_mm * 0.8),
                    angle), TISSUES["soft"].with_(echo=1.5, texture=(0.4, 1.0)),
               label="gallbladder wall")
    sc.add(shape, t, label="gallbladder")
    depth_half = half * aspect
    if gb["state"] == "stones":
        s = gb["stone_cm"] * 10 / 2
        for k in range(gb["n_stones"]):
            r = s * (1.0 if k == 0 else float(rng.uniform(0.5, 0.9)))
            c = centre + np.array([float(rng.uniform(-0.4, 0.4)) * half + k * 2 * r,
                                   depth_half - r - 0.8])
            sc.add(Ellipse(float(c[0]), float(c[1]), r, r * 0.85), "calcification",
                   label="gallstone")
    elif gb["state"] == "polyp":
        r = gb["polyp_cm"] * 10 / 2
        c = centre + np.array([float(rng.uniform(-0.4, 0.4)) * half, -depth_half + r + 0.6])
        sc.add(Ellipse(float(c[0]), float(c[1]), r, r * 0.8),
               TISSUES["lesion_hyper"].with_(echo=1.4), label="gallbladder polyp")


def right_kidney(sc: Scene, k: dict, centre: np.ndarray, angle: float,
                 rng: np.random.Generator) -> None:
    """Kidney in long axis: perirenal fat, hypoechoic cortex, echogenic sinus, optional cyst."""
    a = k["length_cm"] * 10 / 2
    b = a * float(rng.uniform(0.42, 0.52))
    cx, cz = float(centre[0]), float(centre[1])
    sc.add(Ellipse(cx, cz, a + 5, b + 5, angle), _RETRO)
    sc.add(Ellipse(cx, cz, a, b, angle), TISSUES["kidney_cortex"].with_(echo=0.6), label="kidney")
    sc.add(Ellipse(cx, cz, a * 0.62, b * 0.42, angle), "kidney_sinus", label="kidney")
    if k["cyst_cm"]:
        r = k["cyst_cm"] * 10 / 2
        t = np.deg2rad(angle)
        c = centre + np.array([np.cos(t), np.sin(t)]) * a * 0.55 * float(rng.choice([-1, 1]))
        sc.add(Ellipse(float(c[0]), float(c[1]), r, r * 0.9), "cyst", label="renal cyst")


# --------------------------------------------------------------------------- views
def _lateral_room(z: float) -> float:
    """Half-width (mm) of the convex field of view at depth z (radius 50 mm, 65 deg)."""
    return (50.0 + z) * np.sin(np.deg2rad(32.5)) * 0.8


def _half_height(a: float, b: float, angle_deg: float) -> float:
    """Vertical half-extent (mm) of an ellipse with half-axes a, b rotated by angle."""
    t = np.deg2rad(angle_deg)
    return float(np.hypot(a * np.sin(t), b * np.cos(t)))


def _surface_below(liver: "Blob | Ellipse", x0: float, x1: float) -> float:
    """Shallowest depth of the liver's posterior surface between x0 and x1 (mm)."""
    x = np.linspace(x0, x1, 9, dtype=np.float32)[:, None]
    z = np.arange(0, 260, 0.5, dtype=np.float32)[None, :]
    inside = liver.rho(np.broadcast_to(x, (9, z.size)), np.broadcast_to(z, (9, z.size))) < 1
    deepest = np.where(inside.any(1), z[0, ::-1][np.argmax(inside[:, ::-1], 1)], 0.0)
    return float(deepest.min())


def _lesion_site(liver: "Blob | Ellipse", rng: np.random.Generator, zmin: float, zmax: float,
                 r: float) -> np.ndarray:
    for _ in range(40):
        z = float(rng.uniform(zmin + r, max(zmax - r, zmin + r + 1)))
        room = max(_lateral_room(z) - r, 5.0)
        x = float(rng.uniform(-room, room))
        if liver.rho(np.float32(x), np.float32(z)) < 0.75:
            return np.array([x, z])
    return np.array([0.0, (zmin + zmax) / 2])


def view_right_lobe(f: dict, rng: np.random.Generator, tissue: Tissue) -> tuple[Scene, float, list]:
    """Right-lobe subcostal oblique: liver to the diaphragm, hepatic veins converging on the
    IVC, portal branches, lesion (if in the right lobe), regenerative nodules."""
    depth = float(rng.uniform(130, 160))
    sc = Scene(background=_BELOW_DIAPHRAGM, name="liver_right_lobe")
    top = abdominal_wall(sc, rng) + (6.0 if f["liver"]["ascites"] else float(rng.uniform(0, 1)))
    scale = f["liver"]["right_lobe_cm"] / 13.0
    bottom = min(top + float(rng.uniform(95, 115)) * scale, depth - 8)
    liver = liver_body(sc, f, tissue, rng, top, bottom, float(rng.uniform(-15, 15)),
                       float(rng.uniform(240, 300)), diaphragm=True)
    fade = 0.45 if f["liver"]["parenchyma"] == "fatty" else 1.0
    conf = np.array([float(rng.uniform(-15, 15)), bottom - float(rng.uniform(12, 22))])
    hepatic_veins(sc, rng, conf, int(rng.integers(2, 4)))
    pc = np.array([float(rng.uniform(-25, 25)),
                   top + (bottom - top) * float(rng.uniform(0.4, 0.6))])
    portal_branches(sc, f, rng, pc, int(rng.integers(2, 4)), fade)
    if f["liver"]["regenerative_nodules"]:
        regenerative_nodules(sc, liver, rng, tissue, (-50, 50, top + 10, bottom - 10))
    les = f["lesion"]
    if les and les["lobe"] == "right":
        focal_lesion(sc, les, _lesion_site(liver, rng, top + 8, bottom - 8,
                                           les["size_cm"][0] * 5), rng)
    structures = ["liver", "hepatic vein", "portal vein", "inferior vena cava", "diaphragm"]
    return sc, depth, structures


def view_gallbladder(f: dict, rng: np.random.Generator, tissue: Tissue,
                     with_kidney: bool) -> tuple[Scene, float, list]:
    """Subcostal long axis of the gallbladder under the liver, the main portal vein with the
    common bile duct in front of it at the porta hepatis; the right kidney behind when
    ``with_kidney`` (hepatorenal view)."""
    depth = float(rng.uniform(120, 150))
    sc = Scene(background=_BOWEL, name="liver_gallbladder")
    top = abdominal_wall(sc, rng) + (6.0 if f["liver"]["ascites"] else float(rng.uniform(0, 1)))
    bottom = top + (float(rng.uniform(36, 50)) if with_kidney else float(rng.uniform(70, 95)))
    liver = liver_body(sc, f, tissue, rng, top, bottom, float(rng.uniform(-10, 10)),
                       float(rng.uniform(230, 280)), diaphragm=False)
    structures = ["liver"]
    if with_kidney:  # the kidney indents the liver's posterior surface (Morison's pouch)
        # below the liver's posterior surface: earlier objects' boundary echoes are not
        # occluded by later ones, so organs must not straddle the liver outline
        kx, ang = float(rng.uniform(0, 20)), float(rng.uniform(-20, 0))
        a = f["kidney"]["length_cm"] * 5
        kz = _surface_below(liver, kx - a, kx + a) + _half_height(a + 5, a * 0.5 + 5, ang) + 1
        right_kidney(sc, f["kidney"], np.array([kx, kz]), ang, rng)
        structures.append("kidney")
    pv_c = np.array([float(rng.uniform(-45, -30)), top + (bottom - top) * 0.5])
    pv_r = f["portal_vein_cm"] * 10 / 2
    ang = np.deg2rad(float(rng.uniform(-30, -10)))
    d = np.array([np.cos(ang), np.sin(ang)])
    tube(sc, pv_c - d * 22, pv_c + d * 22, pv_r, _PV, label="portal vein")
    cbd_r = f["cbd_cm"] * 10 / 2
    off = np.array([d[1], -d[0]]) * (pv_r + cbd_r + 1.5)  # anterior to the portal vein
    tube(sc, pv_c + off - d * 20, pv_c + off + d * 14, cbd_r, _BILE, label="common bile duct")
    structures += ["portal vein", "common bile duct"]
    if f["ihd_dilated"]:
        portal_branches(sc, f, rng, pv_c + d * 25, 2, 1.0)
        structures.append("intrahepatic duct")
    if not with_kidney:
        gb = f["gallbladder"]
        half, aspect = gb["length_cm"] * 5, float(rng.uniform(0.3, 0.42))
        gx, ang = float(rng.uniform(12, 28)), float(rng.uniform(-25, 10))
        ext = _half_height(half * 1.12, half * aspect + max(gb["wall_mm"], 2), ang)
        gz = min(_surface_below(liver, gx - half, gx + half) - ext - 2,
                 bottom - ext - float(rng.uniform(2, 10)))
        gallbladder(sc, gb, np.array([gx, gz]), ang, aspect, rng)
        structures.append("gallbladder")
        structures += {"stones": ["gallstone"], "polyp": ["gallbladder polyp"]}.get(gb["state"], [])
    if f["liver"]["regenerative_nodules"]:
        regenerative_nodules(sc, liver, rng, tissue, (-50, 50, top + 8, bottom - 25))
    return sc, depth, structures


def view_epigastric(f: dict, rng: np.random.Generator, tissue: Tissue) -> tuple[Scene, float, list]:
    """Epigastric transverse: left lobe in front, the pancreas draped over the splenic vein,
    the pancreatic duct in the body, aorta and IVC behind; a left-lobe lesion shows here."""
    depth = float(rng.uniform(120, 150))
    sc = Scene(background=_RETRO, name="liver_epigastric")
    top = abdominal_wall(sc, rng) + (5.0 if f["liver"]["ascites"] else 0.0)
    les = f["lesion"]
    room = les["size_cm"][0] * 10 + 12 if les and les["lobe"] == "left" else 0.0
    bottom = top + max(float(rng.uniform(35, 55)), room)
    liver = liver_body(sc, f, tissue, rng, top, bottom, float(rng.uniform(-30, -5)),
                       float(rng.uniform(150, 200)), diaphragm=False)
    pz = bottom + float(rng.uniform(12, 20))
    ptis = TISSUES["pancreas"].with_(echo=float(rng.uniform(1.1, 1.5)))
    sc.add(Blob(0.0, pz, float(rng.uniform(50, 65)), ((2, 0.05, float(rng.uniform(0, 6.3))),),
                float(rng.uniform(0.14, 0.2))), ptis, label="pancreas")
    r_pd = f["pancreas"]["duct_mm"] / 2
    tube(sc, np.array([-35.0, pz - 1]), np.array([35.0, pz + 1]), r_pd,
         _BILE.with_(wall=(0.9, 0.4)), label="pancreatic duct")
    sv_z = pz + float(rng.uniform(10, 14))
    tube(sc, np.array([-10.0, sv_z]), np.array([45.0, sv_z - 3]), float(rng.uniform(3, 4.5)),
         _HV, label="splenic vein")
    az = sv_z + float(rng.uniform(18, 26))
    sc.add(Ellipse(float(rng.uniform(5, 15)), az, 10.0, 9.0),
           TISSUES["blood"].with_(wall=(2.2, 1.0)), label="aorta")
    sc.add(Ellipse(float(rng.uniform(-30, -18)), az - 2, 11.0, 7.0), _HV,
           label="inferior vena cava")
    sc.add(Ellipse(0.0, az + 22, 15.0, 6.0), "bone")  # vertebral body: bright, shadowing
    structures = ["liver", "pancreas", "pancreatic duct", "splenic vein", "aorta",
                  "inferior vena cava"]
    les = f["lesion"]
    if les and les["lobe"] == "left":
        r = les["size_cm"][0] * 5
        focal_lesion(sc, les, _lesion_site(liver, rng, top + 3, bottom - 3, r), rng)
    return sc, depth, structures


# --------------------------------------------------------------------------- report text
# A statement is (text, entities it mentions). Every wording variant of a statement names
# its entities explicitly; the structured entity vector is the union over the statements
# chosen for the report (never derived from the text).
Statement = tuple[str, frozenset]


def _say(rng: np.random.Generator, variants: list, ents: "tuple[str, ...] | None" = None,
         **fmt) -> Statement:
    """Pick one wording. ``variants`` holds strings (sharing ``ents``) or (text, ents) pairs."""
    v = variants[int(rng.integers(len(variants)))]
    text, e = (v, ents) if isinstance(v, str) else v
    return text.format(**fmt), frozenset(e or ())


_ROMAN_LOC = {"right": ["the right lobe", "segment {seg} of the right lobe",
                        "the right hepatic lobe (segment {seg})", "hepatic segment {seg}"],
              "left": ["the left lobe", "segment {seg} of the left lobe",
                       "the left lateral section (segment {seg})"]}


def _liver_statements(f: dict, rng: np.random.Generator) -> list[Statement]:
    lv = f["liver"]
    par, rl = lv["parenchyma"], lv["right_lobe_cm"]
    out: list[Statement] = []
    if lv["size"] == "normal":
        out.append(_say(rng, ["The liver is normal in size and shape.",
                              "Liver size and morphology are within normal limits.",
                              "The liver is of normal size, with a right lobe oblique diameter "
                              "of {rl} cm.", "Normal-sized liver (right lobe {rl} cm)."],
                        ("liver",), rl=rl))
    elif lv["size"] == "enlarged":
        out.append(_say(rng, ["The liver is enlarged, with a right lobe oblique diameter of "
                              "{rl} cm.", "Hepatomegaly: the right lobe measures {rl} cm.",
                              "The liver is increased in size (right lobe {rl} cm)."],
                        ("liver",), rl=rl))
    else:
        out.append(_say(rng, ["The liver is reduced in size (right lobe {rl} cm) with a "
                              "relatively prominent caudate lobe.",
                              "The liver appears shrunken, the right lobe measuring {rl} cm."],
                        ("liver",), rl=rl))
    capsule: list[Statement] = []
    if lv["capsule"] == "smooth":
        if rng.random() < 0.8:
            capsule.append(_say(rng, ["The capsule is smooth.",
                                      "The liver capsule is smooth and intact.",
                                      "The liver surface is smooth.",
                                      "Smooth hepatic surface."], ("capsule",)))
    else:
        capsule.append(_say(rng, ["The capsule is irregular with a nodular, wavy contour.",
                                  "The liver surface is irregular and nodular.",
                                  "The liver capsule appears uneven and bumpy."], ("capsule",)))
    if par == "cirrhotic" and rng.random() < 0.6:
        capsule.append(_say(rng, ["The liver margin is blunted.",
                                  "The inferior margin is rounded and blunt."], ("margin",)))
    elif par == "fatty" and lv["size"] == "enlarged" and rng.random() < 0.5:
        capsule.append(_say(rng, ["The inferior liver margin is rounded."], ("liver", "margin")))
    elif par == "normal" and rng.random() < 0.25:
        capsule.append(_say(rng, ["The liver margins are sharp.",
                                  "Sharp inferior margin."], ("margin",)))
    paren: list[Statement] = []
    if par == "normal":
        if rng.random() < 0.9:
            paren.append(_say(rng, ["The parenchymal echotexture is fine and homogeneous.",
                                    "Hepatic parenchymal echogenicity is normal and uniform.",
                                    "The liver parenchyma shows homogeneous echogenicity.",
                                    "Parenchymal echo pattern is even and fine."],
                              ("echogenicity",)))
    elif par == "fatty":
        g = lv["fatty_grade"]
        paren.append(_say(rng, [
            "The parenchymal echogenicity is diffusely increased ({g}), with attenuation of "
            "the sound beam in the deep liver.",
            "Diffusely increased echogenicity of the liver parenchyma with posterior "
            "attenuation, in keeping with {g} steatosis.",
            "The liver is bright: fine, dense echotexture with {g} far-field attenuation."],
            ("echogenicity",), g=g))
    else:
        paren.append(_say(rng, ["The parenchymal echotexture is coarse and heterogeneous.",
                                "Coarsened, heterogeneous parenchymal echogenicity.",
                                "The liver parenchyma has a coarse, uneven echo pattern."],
                          ("echogenicity",)))
        if lv["regenerative_nodules"]:
            paren.append(_say(rng, ["Multiple small regenerative nodules are scattered "
                                    "through the parenchyma.",
                                    "Several subcentimetre nodules are seen diffusely."],
                              ("nodule",)))
    body = capsule + paren
    if rng.random() < 0.5:
        body = paren + capsule
    out += body
    les = f["lesion"]
    if les:
        out += _lesion_statements(les, rng)
    elif rng.random() < 0.7:
        out.append(_say(rng, ["No focal lesion is seen in the liver.",
                              "No space-occupying lesion is identified.",
                              "No focal hepatic mass is demonstrated.",
                              "There is no focal liver lesion."], ("lesion",)))
    out += _vessel_statements(f, rng)
    if lv["ascites"]:
        out.append(_say(rng, ["A small amount of ascites surrounds the liver.",
                              "Perihepatic free fluid is present."], ("liver",)))
    return out


def _lesion_statements(les: dict, rng: np.random.Generator) -> list[Statement]:
    a, b = les["size_cm"]
    loc = _say(rng, _ROMAN_LOC[les["lobe"]], seg=les["segment"])[0]
    m = les["margin"]
    kw = dict(a=a, b=b, loc=loc, m=m)
    kind = les["type"]
    if kind == "cyst":
        return [_say(rng, [
            "A {a} x {b} cm anechoic lesion with well-defined margins and posterior acoustic "
            "enhancement is seen in {loc}, consistent with a simple cyst.",
            "In {loc} there is a well-circumscribed anechoic lesion measuring {a} x {b} cm with "
            "a thin wall and posterior enhancement.",
            "A cystic lesion of {a} x {b} cm with clear borders is noted in {loc}."],
            ("lesion", "margin"), **kw)]
    if kind == "hemangioma":
        return [_say(rng, [
            "A {a} x {b} cm hyperechoic lesion with well-defined margins in {loc}.",
            "A well-defined, homogeneously hyperechoic lesion measuring {a} x {b} cm is noted "
            "in {loc}, likely a haemangioma.",
            "In {loc} a round hyperechoic lesion of {a} x {b} cm with a sharp border is seen."],
            ("lesion", "margin"), **kw)]
    halo = " and a hypoechoic halo" if les["halo"] else ""
    if kind == "nodule":
        return [_say(rng, [
            "A hypoechoic nodule measuring {a} x {b} cm with {m} margins{h} is seen in {loc}.",
            "In {loc} there is a solid hypoechoic nodule of {a} x {b} cm; its margins are "
            "{m}{h}.", "A {a} x {b} cm hypoechoic solid nodule with {m} borders{h} in {loc}."],
            ("nodule", "margin"), h=halo, **kw)]
    return [_say(rng, [
        "A heterogeneous hypoechoic mass of {a} x {b} cm with {m} margins{h} occupies {loc}.",
        "A solid mass measuring {a} x {b} cm, predominantly hypoechoic with {m} boundaries{h}, "
        "is present in {loc}."], ("lesion", "margin"), h=halo, **kw)]


def _vessel_statements(f: dict, rng: np.random.Generator) -> list[Statement]:
    pv, par = f["portal_vein_cm"], f["liver"]["parenchyma"]
    if f["portal_vein_dilated"]:
        return [_say(rng, ["The portal vein is dilated, measuring {pv} cm.",
                           "Dilated main portal vein ({pv} cm), suggesting portal hypertension.",
                           "The main portal vein is widened to {pv} cm."], ("vein",), pv=pv)]
    if par == "fatty" and rng.random() < 0.6:
        return [_say(rng, ["The intrahepatic vessels are poorly visualised.",
                           "The intrahepatic vascular structures are blurred.",
                           "Visualisation of the hepatic veins is reduced."], ("vein",))]
    if rng.random() < 0.75:
        return [_say(rng, ["The intrahepatic vessels are clearly displayed; the main portal "
                           "vein measures {pv} cm.", "The portal vein is normal in calibre "
                           "({pv} cm).", "Hepatic and portal veins are patent and of normal "
                           "calibre.", "Intrahepatic vasculature is normal; portal vein "
                           "diameter {pv} cm."], ("vein",), pv=pv)]
    return []


def _biliary_statements(f: dict, rng: np.random.Generator) -> list[Statement]:
    out: list[Statement] = []
    if f["ihd_dilated"]:
        out.append(_say(rng, ["The intrahepatic bile ducts are dilated, running parallel to "
                              "the portal branches.", "Dilated intrahepatic biliary radicles "
                              "are seen (parallel-channel sign).",
                              "Intrahepatic ducts are diffusely dilated."],
                        ("intrahepatic duct",)))
    elif rng.random() < 0.75:
        out.append(_say(rng, ["The intrahepatic bile ducts are not dilated.",
                              "No intrahepatic biliary dilatation.",
                              "Intrahepatic ducts are of normal calibre."],
                        ("intrahepatic duct",)))
    cbd = f["cbd_cm"]
    if f["cbd_dilated"]:
        out.append(_say(rng, ["The common bile duct is dilated to {c} cm.",
                              "Dilated CBD measuring {c} cm; no obstructing stone is seen in "
                              "its visible portion.", "The common duct measures {c} cm "
                              "(dilated)."], ("bile duct",), c=cbd))
    elif rng.random() < 0.65:
        out.append(_say(rng, ["The common bile duct is not dilated ({c} cm).",
                              "CBD measures {c} cm, within normal limits.",
                              "The common bile duct is of normal calibre."], ("bile duct",),
                        c=cbd))
    return out


def _gallbladder_statements(gb: dict, rng: np.random.Generator) -> list[Statement]:
    st = gb["state"]
    if st == "normal":
        if rng.random() < 0.15:
            return []
        return [_say(rng, ["The gallbladder is normal in size with a smooth, thin wall and "
                           "anechoic contents.", "The gallbladder is well distended; its wall "
                           "is smooth and no stones are seen.", "Gallbladder: normal size, "
                           "thin wall, no calculi."], ("gallbladder",))]
    if st == "stones":
        n = gb["n_stones"]
        many = "Multiple echogenic foci" if n > 1 else "An echogenic focus"
        return [_say(rng, [
            "{many} with posterior acoustic shadowing {be} seen in the gallbladder lumen, "
            "{lg}measuring {s} cm, mobile with change in position.",
            "The gallbladder contains {nn} shadowing calculus{es} ({lg}{s} cm).",
            "Gallstones: {nn} mobile echogenic focus{es} with acoustic shadowing, up to {s} cm."],
            ("gallbladder",), many=many, be="are" if n > 1 else "is", s=gb["stone_cm"],
            lg="the largest " if n > 1 else "",
            nn={1: "one", 2: "two", 3: "three"}[n], es="es" if n > 1 else "")]
    if st == "wall":
        return [_say(rng, ["The gallbladder wall is diffusely thickened ({w} mm).",
                           "Diffuse thickening of the gallbladder wall to {w} mm.",
                           "Thick-walled gallbladder (wall {w} mm), no calculi."],
                      ("gallbladder",), w=gb["wall_mm"])]
    return [_say(rng, ["A {p} cm non-shadowing echogenic polyp is attached to the gallbladder "
                       "wall.", "A small polypoid projection ({p} cm), immobile and without "
                       "shadowing, arises from the gallbladder wall.",
                       "Gallbladder polyp measuring {p} cm."], ("gallbladder",),
                 p=gb["polyp_cm"])]


def _other_statements(f: dict, rng: np.random.Generator) -> list[list[Statement]]:
    """Pancreas, spleen and kidney paragraphs (each a list, possibly empty)."""
    pan: list[Statement] = []
    pd = f["pancreas"]
    if pd["duct_dilated"] or rng.random() < 0.6:
        pan.append(_say(rng, ["The pancreas is normal in size and shape.",
                              "The pancreatic head, body and tail are unremarkable.",
                              "The visualised pancreas is unremarkable.",
                              "The pancreas is partly obscured by bowel gas; the visible "
                              "portions are normal."], ("pancreas",)))
        if pd["duct_dilated"]:
            pan.append(_say(rng, ["The main pancreatic duct is dilated to {d} mm.",
                                  "Dilatation of the pancreatic duct ({d} mm)."],
                            ("pancreatic duct",), d=pd["duct_mm"]))
        elif rng.random() < 0.55:
            pan.append(_say(rng, ["The main pancreatic duct is not dilated.",
                                  "Pancreatic duct is of normal calibre."],
                            ("pancreatic duct",)))
    spl: list[Statement] = []
    sp = f["spleen"]
    if sp["enlarged"]:
        spl.append(_say(rng, ["The spleen is enlarged, measuring {t} cm in thickness.",
                              "Splenomegaly (thickness {t} cm).",
                              "The spleen is increased in size ({t} cm thick)."],
                        ("spleen",), t=sp["thickness_cm"]))
    elif rng.random() < 0.55:
        spl.append(_say(rng, ["The spleen is normal in size.", "Spleen measures {t} cm in "
                              "thickness, within normal limits.", "Normal-sized spleen."],
                        ("spleen",), t=sp["thickness_cm"]))
    kid: list[Statement] = []
    k = f["kidney"]
    if k["cyst_cm"]:
        kid.append(_say(rng, ["A simple cyst of {c} cm is noted in the right kidney.",
                              "Right renal cortical cyst measuring {c} cm."], ("kidney",),
                        c=k["cyst_cm"]))
    elif rng.random() < 0.4:
        kid.append(_say(rng, ["The right kidney is unremarkable.",
                              "The right kidney measures {l} cm with preserved corticomedullary "
                              "differentiation."], ("kidney",), l=k["length_cm"]))
    return [pan, spl, kid]


def _impression(f: dict, rng: np.random.Generator) -> list[Statement]:
    lv, out = f["liver"], []
    if lv["parenchyma"] == "fatty":
        out.append(_say(rng, ["Fatty liver ({g}).", "Diffuse hepatic steatosis, {g}.",
                              "Findings consistent with {g} fatty infiltration of the liver."],
                        ("liver",), g=lv["fatty_grade"]))
    elif lv["parenchyma"] == "cirrhotic":
        out.append(_say(rng, ["Cirrhotic liver morphology.", "Sonographic features of liver "
                              "cirrhosis.", "Chronic liver disease with cirrhotic changes."],
                        ("liver",)))
    les = f["lesion"]
    if les:
        out.append(_say(rng, {
            "cyst": ["Simple cyst of the liver.", ("Hepatic cyst.", ())],
            "hemangioma": [("Hyperechoic lesion of the liver, likely haemangioma.",
                            ("liver", "lesion")), ("Probable hepatic haemangioma.", ())],
            "nodule": [("Hypoechoic liver nodule; contrast-enhanced imaging recommended.",
                        ("liver", "nodule")), ("Solid hypoechoic nodule, further evaluation "
                                               "advised.", ("nodule",))],
            "mass": [("Solid liver mass, suspicious for malignancy; CEUS/CT recommended.",
                      ("liver", "lesion")), ("Hepatic space-occupying lesion; further imaging "
                                             "advised.", ("lesion",))],
        }[les["type"]], ("liver",)))
    gb = f["gallbladder"]["state"]
    if gb != "normal":
        out.append(_say(rng, {"stones": ["Cholelithiasis.", "Gallbladder stones."],
                              "wall": ["Gallbladder wall thickening; correlate clinically for "
                                       "cholecystitis."],
                              "polyp": ["Gallbladder polyp.", "Small gallbladder polyp, "
                                        "follow-up advised."]}[gb], ("gallbladder",)))
    if f["ihd_dilated"]:
        out.append(_say(rng, ["Dilatation of the intrahepatic bile ducts and common bile duct; "
                              "distal obstruction to be excluded."],
                        ("intrahepatic duct", "bile duct")))
    if f["pancreas"]["duct_dilated"]:
        out.append(_say(rng, ["Dilated pancreatic duct; further evaluation recommended."],
                        ("pancreatic duct",)))
    if f["spleen"]["enlarged"]:
        out.append(_say(rng, ["Splenomegaly."], ("spleen",)))
    if f["portal_vein_dilated"] and rng.random() < 0.5:
        out.append(_say(rng, ["Signs of portal hypertension."], ()))
    if f["kidney"]["cyst_cm"]:
        out.append(_say(rng, ["Simple right renal cyst."], ("kidney",)))
    if not out:
        out.append(_say(rng, [("No significant abnormality of the liver, gallbladder, pancreas "
                               "or spleen.", ("liver", "gallbladder", "pancreas", "spleen")),
                              ("Normal liver ultrasound.", ("liver",)),
                              ("Unremarkable examination of the liver and biliary system.",
                               ("liver",)),
                              ("No abnormality detected in the liver.", ("liver",))]))
    return out


def write_report(f: dict, rng: np.random.Generator) -> tuple[str, dict[str, int]]:
    """Report text (Findings / Impression) and the structured entity vector it mentions."""
    liver = _liver_statements(f, rng)
    biliary = _biliary_statements(f, rng)
    gb = _gallbladder_statements(f["gallbladder"], rng)
    pan, spl, kid = _other_statements(f, rng)
    blocks = [biliary, gb] if rng.random() < 0.5 else [gb, biliary]
    tail = [pan, spl] if rng.random() < 0.6 else [spl, pan]
    order = [liver, *blocks, *tail]
    order.insert(len(order) if rng.random() < 0.7 else 1, kid)
    findings = [s for block in order for s in block]
    imp = _impression(f, rng)
    header = _say(rng, ["Findings:", "FINDINGS:", "Ultrasound findings:"])[0]
    imp_header = _say(rng, ["Impression:", "IMPRESSION:", "Conclusion:"])[0]
    numbered = rng.random() < 0.5 and len(imp) > 1
    imp_text = " ".join(f"{i + 1}. {t}" if numbered else t for i, (t, _) in enumerate(imp))
    text = f"{header} {' '.join(t for t, _ in findings)}\n{imp_header} {imp_text}"
    mentioned = set().union(*(e for _, e in findings + imp))
    return text, {e: int(e in mentioned) for e in ENTITIES}


# --------------------------------------------------------------------------- the sample
def _second_view(f: dict, rng: np.random.Generator) -> str:
    """The second image shows what there is to show (left-lobe lesion > gallbladder finding
    > pancreatic duct > biliary dilatation > renal cyst), otherwise a random routine view."""
    les = f["lesion"]
    if les and les["lobe"] == "left":
        return "epigastric transverse"
    if f["gallbladder"]["state"] != "normal" or f["cbd_dilated"]:
        return "gallbladder"
    if f["pancreas"]["duct_dilated"]:
        return "epigastric transverse"
    if f["kidney"]["cyst_cm"]:
        return "hepatorenal"
    return str(rng.choice(["gallbladder", "hepatorenal", "epigastric transverse"],
                          p=[0.45, 0.3, 0.25]))


def sample_liver_report(rng: np.random.Generator, *, size: int, index: int, split: str) -> dict:
    """One liver examination: two images of one patient and the report written from the
    same ground truth."""
    f = draw_findings(rng)
    tissue = liver_tissue(f, rng)
    style = DEVICES[int(rng.integers(len(DEVICES)))]
    dev = device_style(style)
    # Abdominal preset: lower frequency for 12-16 cm and higher transmit power (less
    # relative electronic noise), as scanners do for the liver.
    f0 = min(dev.convex.f0_mhz, 4.0) * float(rng.uniform(0.85, 1.0))
    proc = {"gain_db": dev.proc.gain_db + float(rng.uniform(-3, 3)),
            "noise_db": dev.proc.noise_db - 10.0}
    views = [VIEWS[0], _second_view(f, rng)]
    images, structures, frames = [], [], []
    for view in views:
        if view == VIEWS[0]:
            sc, depth, st = view_right_lobe(f, rng, tissue)
        elif view == "epigastric transverse":
            sc, depth, st = view_epigastric(f, rng, tissue)
        else:
            sc, depth, st = view_gallbladder(f, rng, tissue, with_kidney=view == "hepatorenal")
        fr = acquire(sc, rng, device=style, probe="convex", depth_mm=depth, size=size,
                     focus_mm=float(rng.uniform(0.4, 0.65) * depth), proc_changes=proc,
                     probe_changes={"f0_mhz": f0})
        images.append(as_image(fr.image))
        frames.append(fr)
        structures += [s for s in st + [n for n in sc.label_names() if n.startswith("liver ")]
                       if s not in structures]
    text, entities = write_report(f, rng)
    case = f"usreport-liver-sim-{split}-{index:05d}"
    return {
        "image": images[0],
        "images": np.stack(images).astype(np.float32),
        "report": text,
        "entities": entities,
        "findings": {**f, "views": views},
        "structures": structures,
        "meta": frame_meta(frames[0], style, dataset="USData Liver (USreport)",
                           task="liver_report", case_id=case, patient_id=case, split=split,
                           views=views, language="en"),
    }


TASKS = {
    "liver_report": {
        "kind": "report",
        "classes": list(ENTITIES),
        "sample": sample_liver_report,
        "description": "two liver ultrasound images -> free-text report; clinical efficacy "
                       "on 14 key entities",
        "paper_dataset": "USData / USreport (Liver)",
    },
}
