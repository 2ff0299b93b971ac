"""Apical four-chamber cines for ejection-fraction regression (paper: CAMUS, section 4.2).

CAMUS (University Hospital of St Etienne, GE Vivid E95, M5S phased-array probe) gives 2D
apical 4CH and 2CH sequences from end-diastole (ED) to end-systole (ES) with manual labels
0 background, 1 LV cavity, 2 LV myocardium, 3 left atrium, and the LV ejection fraction from
the ED and ES volumes. The paper regresses LVEF from the 4CH frame sequence (MAE).

Each sample here is one beating heart seen from the apex with a phased-array probe: LV as a
truncated ellipse (apex at the top, mitral plane at the bottom) wrapped in myocardium whose
area stays constant while it thickens in systole, RV to the image left, both atria below,
bright pericardium, interventricular and interatrial septa, mitral and tricuspid leaflets
opening and closing with the cycle, a papillary muscle and sometimes the descending aorta
behind the left atrium. T frames (10 at size <= 64, 16 otherwise) cover one cycle from ED
through ES and back; speckle decorrelates between frames (``physics.decorrelate``, 0.85)
while the tissue texture field is kept from frame to frame (it would flicker otherwise).

Ground truth EF: EDV and ESV by the single-plane method of discs (Simpson's rule, 20 discs
perpendicular to the LV long axis, V = pi/4 sum d_i^2 L/20) applied to the scene's LV cavity
mask (``scene.mask(x, z, "left ventricle")``) rasterised in millimetres (every 0.05 mm along
each disc line) with the analytic long axis (apex to the mid-point of the mitral annulus).
The label is thus exact and the same at every output size; :func:`simpson_volume_ml` on the
displayed masks at 128 px (principal axis) agrees within a few EF points (tested). Target
EFs are drawn uniformly in 20-75 %; reduced EF comes with dilated, more spherical,
thinner-walled, hypokinetic ventricles (with overlap: size alone does not give the EF away).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import map_coordinates

from ..devices import device_style
from ..physics import decorrelate
from ..render import acquire, as_image, frame_meta
from ..scene import TISSUES, Ellipse, Layer, Scene, Shape, Tissue

CLASSES = ["background", "lv", "myocardium", "la"]
LABEL_NAMES = ["left ventricle", "myocardium", "left atrium"]  # CAMUS ids 1, 2, 3
DEVICES = ("cardiac_lab", "mid_range", "low_end")
N_DISCS = 20
STRUCTURES = ["left ventricle", "myocardium", "left atrium", "right ventricle", "right atrium",
              "interventricular septum", "mitral valve", "tricuspid valve", "pericardium"]

_BLOOD = TISSUES["blood"].with_(echo=0.02)
_MYO = TISSUES["myocardium"]
_PERI = Tissue("pericardium", 2.0, 0.7, texture=(0.4, 1.0))
_ATRIAL_WALL = Tissue("atrial_wall", 1.0, 0.7, texture=(0.3, 1.0))
_VALVE = Tissue("valve", 2.6, 0.7)
_MEDIASTINUM = Tissue("mediastinum", 0.28, 0.6, texture=(0.6, 3.0))
_CLUTTER = Tissue("apical_clutter", 0.12, 0.2, texture=(0.5, 2.0))


# --------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class TruncatedEllipse(Shape):
    """Ellipse cut by a plane perpendicular to its long axis: a cardiac chamber.

    ``tip`` (x, z) is the far pole (the apex for a ventricle), ``axis`` the unit vector from
    the tip towards the cut (the valve plane), ``length`` the tip-to-plane distance, ``a`` the
    half-width and ``t`` where the plane cuts the half-axis b (0: at the centre, 1: no cut).
    """

    tip: tuple[float, float]
    axis: tuple[float, float]
    length: float
    a: float
    t: float

    @property
    def b(self) -> float:
        return self.length / (1.0 + self.t)

    @cached_property
    def centre(self) -> np.ndarray:  # cached: every evaluation of the shape needs it
        c = np.asarray(self.tip) + np.asarray(self.axis) * self.b
        c.setflags(write=False)
        return c

    @property
    def plane_mid(self) -> np.ndarray:
        return np.asarray(self.tip) + np.asarray(self.axis) * self.length

    @property
    def plane_half_width(self) -> float:
        return self.a * float(np.sqrt(max(1.0 - self.t ** 2, 0.0)))

    @property
    def scale_mm(self) -> float:  # type: ignore[override]
        return float(np.sqrt(self.a * self.b))

    def area(self) -> float:
        """Area (mm^2): the ellipse part below the plane, a b (pi/2 + asin t + t sqrt(1-t^2))."""
        t = self.t
        return self.a * self.b * (np.pi / 2 + np.arcsin(t) + t * np.sqrt(1 - t * t))

    @cached_property
    def _frame(self) -> tuple[float, float, float, float]:
        ex, ez = (float(v) for v in self.axis)
        cx, cz = (float(v) for v in self.centre)
        return ex, ez, cx, cz

    def local(self, x, z) -> tuple[np.ndarray, np.ndarray]:
        ex, ez, cx, cz = self._frame
        dx, dz = x - cx, z - cz
        return dx * ez - dz * ex, dx * ex + dz * ez  # (lateral u, axial v)

    def rho(self, x, z):
        u, v = self.local(x, z)
        b = self.b
        r = np.sqrt((u / self.a) ** 2 + (v / b) ** 2)
        return np.maximum(r, v / max(self.t * b, 1e-3))

    def bbox(self):
        # the whole (untruncated) ellipse's box, rotated: x = cx + u ez + v ex and
        # z = cz - u ex + v ez with (u / a)^2 + (v / b)^2 <= 1; 1e-4 mm spare for rounding
        ex, ez, cx, cz = self._frame
        hx = float(np.hypot(self.a * ez, self.b * ex)) + 1e-4
        hz = float(np.hypot(self.a * ex, self.b * ez)) + 1e-4
        return cx - hx, cx + hx, cz - hz, cz + hz

    def grown(self, w: float) -> "TruncatedEllipse":
        """Same centre and cut plane, half-axes grown by ``w`` mm (a wall of thickness ~w)."""
        b_new = self.b + w
        cut = self.t * self.b
        tip = self.centre - np.asarray(self.axis) * b_new
        return TruncatedEllipse((float(tip[0]), float(tip[1])), self.axis, b_new + cut,
                                self.a + w, cut / b_new)


def _wall_for_area(inner: TruncatedEllipse, area: float) -> float:
    """Wall thickness w such that grown(w) minus inner has the given area (bisection)."""
    lo, hi = 0.5, 40.0
    base = inner.area()
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        if _grown_area(inner, mid) - base < area:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _grown_area(inner: TruncatedEllipse, w: float) -> float:
    """``inner.grown(w).area()`` with the same float operations, without building the shape
    (the bisection above runs for every cine frame)."""
    b_new = inner.b + w
    cut = inner.t * inner.b
    a, length, t = inner.a + w, b_new + cut, cut / b_new
    b = length / (1.0 + t)
    return a * b * (np.pi / 2 + np.arcsin(t) + t * np.sqrt(1 - t * t))


def _leaflet(hinge: np.ndarray, direction: np.ndarray, length: float) -> Ellipse:
    centre = hinge + direction * length / 2
    angle = float(np.degrees(np.arctan2(direction[1], direction[0])))
    return Ellipse(float(centre[0]), float(centre[1]), length / 2, 0.9, angle)


def _valve(scene: Scene, chamber: TruncatedEllipse, open_frac: float, septal_frac: float,
           septal_sign: float) -> None:
    """Two leaflets hinged on the annulus, pointing into the ventricle when open."""
    e = np.asarray(chamber.axis)
    n = np.array([e[1], -e[0]])
    mid, half = chamber.plane_mid, chamber.plane_half_width
    beta = np.deg2rad(18 + 62 * open_frac)  # angle from the annular plane
    total = 2 * half * 1.12 / np.cos(np.deg2rad(18))
    for side, frac in ((septal_sign, septal_frac), (-septal_sign, 1 - septal_frac)):
        hinge = mid + side * n * half
        d = -side * n * np.cos(beta) - e * np.sin(beta)
        scene.add(_leaflet(hinge, d, total * frac), _VALVE)


@dataclass(frozen=True)
class HeartParams:
    """Patient-level anatomy and motion (ED geometry plus systolic fractions)."""

    apex: tuple[float, float]
    axis: tuple[float, float]
    lv_len: float
    lv_a: float
    lv_t: float
    myo_area: float
    s_long: float
    s_short: float
    rv_tip: tuple[float, float]
    rv_a: float
    rv_t: float
    s_rv: float
    tv_offset: float
    crux: float
    la_len: float
    la_a: float
    la_shift: float
    ra_len: float
    ra_a: float
    s_atria: float
    rim: float
    pap: bool
    aorta: tuple[float, float] | None
    clutter: float


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.hypot(*v)), 1e-9)


def _draw_params(rng: np.random.Generator) -> HeartParams:
    """Sample one patient: the target EF sets contraction; low EF -> dilated, spherical,
    thinner-walled LV (with wide overlap: size alone does not give the EF away)."""
    ef = float(rng.uniform(20, 75)) / 100
    sev = float(np.clip((0.55 - ef) / 0.35, 0, 1))  # 0 normal ... 1 severely reduced
    s_long = ef * float(rng.uniform(0.2, 0.3))
    s_short = 1 - np.sqrt((1 - ef) / (1 - s_long))  # (1-s_a)^2 (1-s_L) = 1 - EF
    lv_len = float(rng.uniform(72, 90) * (1 + 0.15 * sev * rng.uniform(0.2, 1.2)))
    lv_a = float(rng.uniform(21, 26) * (1 + 0.3 * sev * rng.uniform(0.2, 1.2)))
    wall = float(rng.uniform(7.5, 11) * (1 - 0.2 * sev))
    if rng.random() < 0.15:
        wall *= 1.3  # concentric hypertrophy
    lv_t = float(rng.uniform(0.55, 0.72))
    # The chambers fan out from the apex under the probe: LV base to the right, RV to the left.
    theta = np.deg2rad(rng.uniform(-2, 14))
    axis = (float(np.sin(theta)), float(np.cos(theta)))
    apex = (float(rng.uniform(-3, 7) - (lv_a - 23) * 0.5), float(rng.uniform(20, 32)))
    inner = TruncatedEllipse(apex, axis, lv_len, lv_a, lv_t)
    myo = inner.grown(wall)
    # RV apex on the septum's outer surface, a quarter to 40 % of the LV length from the apex.
    e, n = np.asarray(axis), np.array([axis[1], -axis[0]])
    level = np.asarray(apex) + e * lv_len * float(rng.uniform(0.25, 0.4))
    v = float(np.dot(level - myo.centre, e))
    half = myo.a * np.sqrt(max(1 - (v / myo.b) ** 2, 0.0))
    rv_tip = level - n * (half + 1.0)
    aorta = ((float(rng.uniform(0.2, 0.9)), float(rng.uniform(8, 12)))
             if rng.random() < 0.5 else None)
    return HeartParams(
        apex=apex, axis=axis, lv_len=lv_len, lv_a=lv_a, lv_t=lv_t,
        myo_area=myo.area() - inner.area(), s_long=float(s_long), s_short=float(s_short),
        rv_tip=(float(rv_tip[0]), float(rv_tip[1])), rv_a=float(rng.uniform(17, 23)),
        rv_t=float(rng.uniform(0.45, 0.6)),
        s_rv=float(rng.uniform(0.12, 0.25) * (1 - 0.5 * sev)),
        tv_offset=float(rng.uniform(4, 10)), crux=float(rng.uniform(6, 10)),
        la_len=float(rng.uniform(36, 50) * (1 + 0.2 * sev)), la_a=float(rng.uniform(17, 22)),
        la_shift=float(rng.uniform(-3, 4)), ra_len=float(rng.uniform(34, 46)),
        ra_a=float(rng.uniform(16, 21)), s_atria=float(rng.uniform(0.08, 0.18)),
        rim=float(rng.uniform(1.5, 2.8)), pap=bool(rng.random() < 0.7), aorta=aorta,
        clutter=float(rng.uniform(0.0, 1.0)))


def _atrium(plane_mid: np.ndarray, axis: np.ndarray, far: np.ndarray, a: float,
            neck: float) -> TruncatedEllipse:
    """An atrium hanging below a valve plane (its far pole fixed, its cut at the annulus)."""
    length = float(np.dot(far - plane_mid, axis))
    t = float(np.clip(np.sqrt(max(1 - (neck / a) ** 2, 0.0)), 0.2, 0.8))
    return TruncatedEllipse((float(far[0]), float(far[1])), (float(-axis[0]), float(-axis[1])),
                            length, a, t)


def _tricuspid(p: HeartParams, lv: TruncatedEllipse, c: float) -> np.ndarray:
    """Tricuspid annulus mid-point: beside the mitral annulus across the crux, a little
    apical of it, descending further than the mitral annulus in systole (TAPSE > MAPSE)."""
    e, n = np.asarray(p.axis), np.array([p.axis[1], -p.axis[0]])
    half = p.rv_a * (1 - p.s_rv * c) * np.sqrt(1 - p.rv_t ** 2)
    return (lv.plane_mid - n * (lv.plane_half_width + p.crux + half)
            - e * (p.tv_offset + 30 * p.s_rv * c))


def _chambers(p: HeartParams, c: float) -> dict[str, TruncatedEllipse]:
    """Chamber geometry at contraction c (0 = end-diastole, 1 = end-systole)."""
    e = np.asarray(p.axis)
    n = np.array([e[1], -e[0]])  # lateral, towards the LV free wall (image right)
    lv = TruncatedEllipse(p.apex, p.axis, p.lv_len * (1 - p.s_long * c),
                          p.lv_a * (1 - p.s_short * c), p.lv_t)
    myo = lv.grown(_wall_for_area(lv, p.myo_area))
    lv_ed = TruncatedEllipse(p.apex, p.axis, p.lv_len, p.lv_a, p.lv_t)
    tri, tri_ed = _tricuspid(p, lv, c), _tricuspid(p, lv_ed, 0.0)
    rv_axis_ed = _unit(tri_ed - np.asarray(p.rv_tip))
    rv_axis = _unit(tri - np.asarray(p.rv_tip))
    rv = TruncatedEllipse(p.rv_tip, (float(rv_axis[0]), float(rv_axis[1])),
                          float(np.hypot(*(tri - np.asarray(p.rv_tip)))),
                          p.rv_a * (1 - p.s_rv * c), p.rv_t)
    # Atria: far poles fixed at their end-diastolic place; the valve planes move towards the
    # apex in systole while the atria fill and widen.
    la_far = lv_ed.plane_mid + e * p.la_len + n * p.la_shift
    la = _atrium(lv.plane_mid, e, la_far, p.la_a * (1 + p.s_atria * c),
                 lv.plane_half_width * 1.1)
    ra_far = tri_ed + rv_axis_ed * p.ra_len
    ra = _atrium(tri, rv_axis_ed, ra_far, p.ra_a * (1 + p.s_atria * c), rv.plane_half_width)
    return {"lv": lv, "myo": myo, "rv": rv, "la": la, "ra": ra}


def heart_scene(p: HeartParams, c: float, mitral_open: float, tricuspid_open: float) -> Scene:
    """The apical 4CH scene at contraction ``c``, with the two valves' opening fractions.

    Every chamber and wall carries a label so that later structures occlude earlier ones in
    the label map exactly as in the image (the CAMUS classes are picked out afterwards)."""
    ch = _chambers(p, c)
    lv, myo, rv, la, ra = ch["lv"], ch["myo"], ch["rv"], ch["la"], ch["ra"]
    e = np.asarray(p.axis)
    n = np.array([e[1], -e[0]])
    sc = Scene(background=_MEDIASTINUM, name="apical_4ch")
    sc.add(Layer(0.0, 3.0, amp=0.6, period=50.0), "skin")
    sc.add(Layer(3.0, 11.0, amp=1.0, period=35.0), "muscle")
    if p.aorta is not None:  # descending aorta behind the left atrium
        frac, r = p.aorta
        centre = la.tip + e * (r + 6) + n * (la.a * frac)
        sc.add(Ellipse(float(centre[0]), float(centre[1]), r + 1.5, r + 1.5), _PERI)
        sc.add(Ellipse(float(centre[0]), float(centre[1]), r, r), _BLOOD.with_(wall=(1.5, 0.8)),
               label="descending aorta")
    # pericardium, outermost first; then walls and cavities, left heart last
    sc.add(ra.grown(2.0 + 0.6 * p.rim), _PERI, label="pericardium")
    sc.add(la.grown(2.0 + 0.6 * p.rim), _PERI, label="pericardium")
    sc.add(rv.grown(4.0 + p.rim), _PERI, label="pericardium")
    sc.add(myo.grown(p.rim), _PERI, label="pericardium")
    sc.add(la.grown(2.0), _ATRIAL_WALL, label="atrial wall")
    sc.add(la, _BLOOD, label="left atrium")
    sc.add(ra.grown(2.0), _ATRIAL_WALL, label="atrial wall")  # interatrial septum
    sc.add(ra, _BLOOD, label="right atrium")
    sc.add(rv.grown(4.0), _MYO, label="right ventricular wall")
    sc.add(rv, _BLOOD, label="right ventricle")
    sc.add(myo, _MYO, label="myocardium")
    sc.add(lv, _BLOOD, label="left ventricle")
    if p.clutter > 0.4:  # near-field reverberation haze in the apex
        apex_c = np.asarray(p.apex) + e * 10
        sc.add(Ellipse(float(apex_c[0]), float(apex_c[1]), lv.a * 0.7, 10.0,
                       float(np.degrees(np.arctan2(n[1], n[0])))),
               _CLUTTER.with_(echo=0.08 + 0.15 * p.clutter))
    if p.pap:  # anterolateral papillary muscle (inside the CAMUS LV label)
        pc = lv.centre + e * lv.b * 0.25 + n * lv.a * 0.8
        sc.add(Ellipse(float(pc[0]), float(pc[1]), lv.b * 0.28, 3.5,
                       float(np.degrees(np.arctan2(e[1], e[0])) - 12)), _MYO)
    _valve(sc, lv, mitral_open, septal_frac=0.58, septal_sign=-1.0)
    _valve(sc, rv, tricuspid_open, septal_frac=0.45, septal_sign=1.0)
    return sc


def camus_labels(frame, scene: Scene) -> np.ndarray:
    """CAMUS label map (0 bg, 1 LV, 2 myocardium, 3 LA) with the image's occlusion order."""
    names = scene.label_names()
    # Objects before the first CAMUS structure can only leave labels that map to background
    # or be painted over: the map is the same without them (and cheaper, every frame).
    first = next((i for i, o in enumerate(scene.objects) if o.label in LABEL_NAMES),
                 len(scene.objects))
    full = frame.label_map(Scene(scene.background, scene.objects[first:], scene.name), names)
    lut = np.zeros(len(names) + 1, np.uint8)
    for k, name in enumerate(LABEL_NAMES, start=1):
        if name in names:
            lut[names.index(name) + 1] = k
    return lut[full]


# --------------------------------------------------------------------------- the cycle
def _cycle(rng: np.random.Generator, n_frames: int) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray, int]:
    """Contraction c(frame) (0 ED ... 1 ES ... back), valve openings, and the ES index."""
    es = int(round(rng.uniform(0.32, 0.42) * n_frames))
    ps = es / n_frames
    knots = [0.0, ps, ps + 0.05, ps + 0.27, 0.86, 0.95, 1.0]
    c = PchipInterpolator(knots, [0.0, 1.0, 0.96, 0.32, 0.18, 0.04, 0.0])
    mv = PchipInterpolator([0.0, ps + 0.05, ps + 0.12, 0.72, 0.87, 0.96, 1.0],
                           [0.05, 0.0, 1.0, 0.45, 0.9, 0.2, 0.05])
    phase = np.arange(n_frames) / n_frames
    contraction = np.clip(c(phase), 0, 1)
    m_open = np.clip(mv(phase), 0, 1)
    t_open = np.clip(mv(np.clip(phase - 0.02, 0, 1)), 0, 1)
    return contraction, m_open, t_open, es


# --------------------------------------------------------------------------- volumes
def simpson_volume_ml(mask: np.ndarray, spacing_mm: float, apex: tuple[float, float] | None = None,
                      base: tuple[float, float] | None = None, n_discs: int = N_DISCS) -> float:
    """Single-plane method of discs on a binary LV mask: V = pi/4 sum d_i^2 L / n (mL).

    ``apex`` and ``base`` (mitral-annulus mid-point) are (col, row) pixel-index coordinates;
    without them the long axis is the mask's principal axis and its extent along it. Disc
    diameters are measured perpendicular to the axis at the disc centres (0.25 px steps).
    """
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return 0.0
    pts = np.stack([cols, rows], 1).astype(np.float64)
    if apex is None or base is None:
        mean = pts.mean(0)
        _, vecs = np.linalg.eigh(np.cov((pts - mean).T))
        d = vecs[:, -1]
        proj = (pts - mean) @ d
        a0, b0 = mean + d * (proj.min() - 0.5), mean + d * (proj.max() + 0.5)
    else:
        a0, b0 = np.asarray(apex, float), np.asarray(base, float)
    axis = b0 - a0
    length = float(np.hypot(*axis))
    d = axis / max(length, 1e-9)
    perp = np.array([-d[1], d[0]])
    reach = float(np.abs((pts - a0) @ perp).max()) + 2.0
    s = np.arange(-reach, reach, 0.25)
    centres = a0 + np.outer((np.arange(n_discs) + 0.5) / n_discs * length, d)
    line = centres[:, None, :] + s[None, :, None] * perp  # [n, S, (col, row)]
    vals = map_coordinates(mask.astype(np.float32), [line[..., 1].ravel(), line[..., 0].ravel()],
                           order=0, mode="constant", cval=0.0).reshape(n_discs, -1)
    diam = vals.sum(1) * 0.25 * spacing_mm
    return float(np.pi / 4 * np.sum(diam ** 2) * length * spacing_mm / n_discs / 1000.0)


def lv_volume_ml(scene: Scene, lv: TruncatedEllipse, step_mm: float = 0.05,
                 n_discs: int = N_DISCS) -> float:
    """Ground-truth LV volume by the method of discs along the analytic long axis (apex ->
    mitral mid-point): each disc diameter is the length of the scene's LV mask
    (``scene.mask(x, z, "left ventricle")``) rasterised every ``step_mm`` along the line
    perpendicular to the axis through the disc centre."""
    e = np.asarray(lv.axis)
    perp = np.array([e[1], -e[0]])
    s = np.arange(-(lv.a + 5), lv.a + 5, step_mm)
    centres = np.asarray(lv.tip) + np.outer((np.arange(n_discs) + 0.5) / n_discs * lv.length, e)
    pts = centres[:, None, :] + s[None, :, None] * perp
    inside = scene.mask(pts[..., 0].astype(np.float32), pts[..., 1].astype(np.float32),
                        "left ventricle")
    diam = inside.sum(1) * step_mm
    return float(np.pi / 4 * np.sum(diam ** 2) * lv.length / n_discs / 1000.0)


# --------------------------------------------------------------------------- the sample
def sample_echo_ef(rng: np.random.Generator, *, size: int, index: int, split: str) -> dict:
    """One apical 4CH cine (one patient) with CAMUS masks and the Simpson ejection fraction."""
    n_frames = 10 if size <= 64 else 16
    p = _draw_params(rng)
    contraction, m_open, t_open, es = _cycle(rng, n_frames)
    style = DEVICES[int(rng.integers(len(DEVICES)))]
    base_z = p.apex[1] + p.lv_len * p.axis[1]
    depth = float(np.clip(base_z + p.la_len * rng.uniform(0.75, 1.1), 140, 160))
    focus = float(p.apex[1] + p.lv_len * rng.uniform(0.4, 0.7))
    sector = float(rng.uniform(75, 80))
    # Cardiac presets under-compensate attenuation: most of the path is blood.
    proc = {"gain_db": device_style(style).proc.gain_db + float(rng.uniform(-3, 3)),
            "tgc_match": float(rng.uniform(0.55, 0.8))}
    # Tissue texture must not flicker between frames: every frame re-uses one stream for it
    # (the core draws texture first); speckle then decorrelates frame to frame.
    frame_seed = int(rng.integers(2 ** 63))
    frames, masks, scenes = [], [], []
    speckle = None
    for k in range(n_frames):
        sc = heart_scene(p, float(contraction[k]), float(m_open[k]), float(t_open[k]))
        fr = acquire(sc, np.random.default_rng(frame_seed), device=style, probe="phased",
                     depth_mm=depth, size=size, focus_mm=focus,
                     probe_changes={"sector_deg": sector}, proc_changes=proc,
                     speckle=speckle)
        speckle = decorrelate(fr.beam.speckle, 0.85, rng)
        frames.append(fr.image)
        masks.append(camus_labels(fr, sc))
        scenes.append(sc)
        if k == 0:
            first = fr
    edv = lv_volume_ml(scenes[0], _chambers(p, float(contraction[0]))["lv"])
    esv = lv_volume_ml(scenes[es], _chambers(p, float(contraction[es]))["lv"])
    ef = 100.0 * (edv - esv) / edv
    frames_arr = np.stack([as_image(f) for f in frames]).astype(np.float32)
    masks_arr = np.stack(masks).astype(np.uint8)
    hr = float(rng.uniform(55, 95))
    case = f"camus-sim-{split}-{index:05d}"
    return {
        "image": frames_arr[0],
        "frames": frames_arr,
        "ef": float(ef),
        "edv_ml": float(edv),
        "esv_ml": float(esv),
        "ed_index": 0,
        "es_index": int(es),
        "masks": masks_arr,
        "mask": masks_arr[0],
        "view": "4CH",
        "structures": list(STRUCTURES),
        "meta": frame_meta(first, style, dataset="CAMUS", task="echo_ef", case_id=case,
                           patient_id=case, split=split, view="4CH", n_frames=n_frames,
                           heart_rate_bpm=hr, frame_rate_hz=n_frames * hr / 60.0),
    }


TASKS = {
    "echo_ef": {
        "kind": "regression",
        "classes": list(CLASSES),
        "sample": sample_echo_ef,
        "description": "LV ejection fraction from an apical 4CH cine (ED -> ES -> ED), with "
                       "CAMUS LV / myocardium / LA masks per frame",
        "paper_dataset": "CAMUS",
    },
}
