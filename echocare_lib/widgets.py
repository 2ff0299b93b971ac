"""Teaching widgets: move a slider, see what happens.

Four widgets, each a pure *logic* function (numpy arrays, dicts, matplotlib figures; testable
without a browser) and a thin ``ipywidgets`` *UI* builder around it:

==================  =======================  =========================  ======================
widget              logic                    figure                     UI builder
==================  =======================  =========================  ======================
scanner simulator   :func:`scanner_view`     :func:`scanner_figure`     :func:`show_scanner`
masking and recon.  :func:`masking_view`     :func:`masking_figure`     :func:`show_masking`
hierarchy explorer  :func:`hierarchy_view`   :func:`hierarchy_figure`   :func:`show_hierarchy`
results browser     :func:`results_view`     :func:`results_figure`     :func:`show_results`
==================  =======================  =========================  ======================

Where they belong: the scanner simulator in ``00_overview`` (why speckle exists, why depth
costs resolution, why a cyst enhances and a calcification shadows); masking/reconstruction and
the hierarchy explorer in ``02_pretraining``; the results browser in ``03``-``09`` and ``11``.

**Live or static.** Under Papermill and nbval there is no frontend to move a slider, so every
``show_*`` builder draws the default state once as a static figure (or prints a short message)
and returns; nothing blocks, and the output is a pure function of the arguments. The widgets
are live only when asked: ``show_*(interactive=True)``, or the environment variable
``ECHOCARE_WIDGETS=live`` (the variable a teacher's JupyterLab is launched with, e.g.
``ECHOCARE_WIDGETS=live jupyter lab notebooks``; ``make lab`` sets it).
:func:`is_interactive` is the one place that decides.

The physics, models and metrics are the project's own: the scanner calls the simulator
(:mod:`echocare_lib.sim`), masking and hierarchy call notebook 02's code path
(:func:`echocare_lib.pretraining.evaluate.reconstruct`, ``hierarchy_probabilities``,
``top_path``), and the results browser reads the notebooks' result store and saved trial-0
predictions (:mod:`echocare_lib.downstream.trials`) and draws with their overlay helpers
(:mod:`echocare_lib.downstream.plots`). Written here: only the glue, the caches that keep a
slider responsive, and the figures' layout.
"""
from __future__ import annotations

import os
import textwrap
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .session import OKABE_ITO

__all__ = [
    "SCENES", "is_interactive", "WidgetView",
    "scanner_scene", "scanner_view", "scanner_figure", "show_scanner",
    "example_images", "masking_view", "masking_figure", "show_masking",
    "hierarchy_view", "hierarchy_figure", "show_hierarchy",
    "results_view", "results_figure", "results_metrics_table", "show_results",
]

#: Environment variable that turns the widgets live (any other value, or unset: static).
ENV_VAR = "ECHOCARE_WIDGETS"


# =============================================================================== live or static
def is_interactive(interactive: bool | None = None) -> bool:
    """Whether ``show_*`` builds live widgets (True) or draws one static figure (False).

    ``interactive`` decides when given; otherwise live only if ``$ECHOCARE_WIDGETS`` is
    ``live``. Papermill and nbval set nothing, so notebooks executed headless get the
    static, deterministic rendering."""
    if interactive is not None:
        return bool(interactive)
    return os.environ.get(ENV_VAR, "").strip().lower() == "live"


@dataclass
class WidgetView:
    """What a ``show_*`` call returns: the current logic result, and the live widget (live) or
    the static figure (static). It has already been displayed, so it displays as nothing when
    it is a cell's last value (no second copy of the figure)."""

    name: str
    interactive: bool
    result: dict | None = None
    widget: object | None = None
    figure: object | None = None
    controls: dict = field(default_factory=dict)
    text: str = ""
    #: live views: redraw from the controls' current values
    update: object = field(default=None, repr=False)

    def __repr__(self) -> str:
        mode = "live" if self.interactive else "static"
        return f"<{self.name} ({mode}){': ' + self.text if self.text else ''}>"

    def _ipython_display_(self) -> None:  # shown by show_*, not again as a cell's value
        return None


def _display(*objs) -> None:
    from IPython.display import display

    display(*objs)


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _static(name: str, result: dict, fig, show: bool, extra=(), text: str = "") -> WidgetView:
    """Display a figure (and extra objects, e.g. a metrics table) once; return the view."""
    if show:
        _display(*(o for o in (fig, *extra) if o is not None))
    if fig is not None:
        _close(fig)  # the inline backend would otherwise show it a second time
    return WidgetView(name, False, result, None, fig, text=text)


def _live(name: str, controls: dict, render, show: bool, skip=()) -> WidgetView:
    """Wire ``controls`` (name -> ipywidget) to ``render(**values) -> (result, fig, extra)``,
    drawn into an :class:`ipywidgets.Output`; returns the view (redrawn on every change of a
    control not in ``skip``: those reset other controls first, then call ``view.update``)."""
    import ipywidgets as W

    out = W.Output()
    view = WidgetView(name, True, controls=controls)

    def update(_change=None) -> None:
        values = {k: c.value for k, c in controls.items()}
        try:
            result, fig, extra = render(**values)
        except (ValueError, IndexError, KeyError, FileNotFoundError) as e:  # say why
            with out:
                out.clear_output(wait=True)
                print(f"{type(e).__name__}: {e}")
            return
        if result is None and fig is None and not extra:  # nothing to draw (yet)
            return
        view.result, view.figure = result, fig
        with out:
            out.clear_output(wait=True)
            _display(*(o for o in (fig, *extra) if o is not None))
        if fig is not None:
            _close(fig)

    for k, c in controls.items():
        if k not in skip:
            c.observe(update, names="value")
    view.widget = W.VBox([W.HBox(list(controls.values()),
                                 layout=W.Layout(flex_flow="row wrap")), out])
    view.update = update
    update()
    if show:
        _display(view.widget)
    return view


# =============================================================================== 1. scanner
@dataclass
class ScannerScene:
    """A scene of the simulator with the acquisition a sonographer would choose for it."""

    name: str
    scene: object  # echocare_lib.sim.scene.Scene
    probe: str
    depth_mm: float
    focus_mm: float
    probe_changes: dict = field(default_factory=dict)  # for ``probe`` only (width, sector)
    proc_changes: dict = field(default_factory=dict)   # besides gain and dynamic range
    f0_mhz: float | None = None  # the preset's frequency (None: the device's probe)
    gain_offset_db: float = 0.0  # the preset's gain relative to the device's
    description: str = ""


def _thyroid(rng) -> ScannerScene:
    from .sim.tasks.neck import thyroid_scene

    sc, info = thyroid_scene(rng, depth_mm=40.0, nodule={})
    a = info["acquire"]
    return ScannerScene("thyroid", sc, "linear", 40.0, a["focus_mm"], dict(a["probe_changes"]),
                        description="transverse thyroid lobe with a nodule, trachea and "
                                    "carotid (linear probe)")


def _breast(rng) -> ScannerScene:
    from .sim.tasks.breast import breast_scene

    sc, info = breast_scene(rng, depth_mm=40.0, lesion="random")
    les = info["lesion"]
    return ScannerScene("breast lesion", sc, "linear", 40.0, float(les["cz"]),
                        {"width_mm": 40.0}, gain_offset_db=-5.0,
                        description=f"breast lesion, BI-RADS {les['grade'] + 2}, posterior "
                                    f"features: {les['descriptors']['posterior_features']}")


def _liver(rng) -> ScannerScene:
    from .sim.tasks.abdomen import liver_scene

    sc, info = liver_scene(rng, depth_mm=140.0, lesion={"kind": "cyst", "radius_mm": 12.0})
    a = info["acquire"]
    changes = dict(a["probe_changes"])
    f0 = changes.pop("f0_mhz")
    return ScannerScene("liver", sc, "convex", 140.0, a["focus_mm"], changes, f0_mhz=f0,
                        description="right upper quadrant: liver with a cyst (posterior "
                                    "enhancement), kidney, diaphragm (convex probe)")


def _fetal_heart(rng) -> ScannerScene:
    from .sim.devices import device_style
    from .sim.tasks.fetal import fetal_thorax_scene

    sector = {"sector_deg": 55.0}
    sc, info = fetal_thorax_scene(rng, device_style("mid_range").probe("convex", **sector))
    th = info["thorax"]
    # the sonographer lowers the TGC through the amniotic fluid (as fetal._acquire_ob does)
    tgc = float(np.clip(info["fluid_top"] / th.cz, 0.3, 0.9))
    return ScannerScene("fetal heart", sc, "convex", float(info["depth_mm"]), float(th.cz),
                        sector, {"tgc_match": tgc}, gain_offset_db=-3.0,
                        description="fetal thorax, four-chamber view of the heart, in "
                                    "amniotic fluid (convex probe)")


def _apical_4ch(rng) -> ScannerScene:
    from .sim.tasks.cardiac import _draw_params, heart_scene

    p = _draw_params(rng)
    sc = heart_scene(p, 0.0, 0.0, 0.0)  # end-diastole, valves closed
    base_z = p.apex[1] + p.lv_len * p.axis[1]
    depth = float(np.clip(base_z + p.la_len * 0.95, 140.0, 160.0))
    focus = float(p.apex[1] + p.lv_len * 0.55)
    # cardiac presets under-compensate attenuation: most of the path is blood
    return ScannerScene("apical four-chamber", sc, "phased", depth, focus, {"sector_deg": 78.0},
                        {"tgc_match": 0.7}, description="adult heart, apical four-chamber "
                                                        "view at end-diastole (phased probe)")


def _phantom_scene(rng) -> ScannerScene:
    from .sim.gallery import _phantom

    return ScannerScene("phantom", _phantom(rng), "linear", 40.0, 20.0, {"width_mm": 40.0},
                        gain_offset_db=-6.0,
                        description="test phantom: a cyst (enhancement behind it), a "
                                    "hypoechoic nodule with a calcification (shadow)")


_SCENE_BUILDERS = {"thyroid": _thyroid, "breast lesion": _breast, "liver": _liver,
                   "fetal heart": _fetal_heart, "apical four-chamber": _apical_4ch,
                   "phantom": _phantom_scene}
#: Scenes of the scanner simulator (the names :func:`scanner_view` accepts).
SCENES = tuple(_SCENE_BUILDERS)

#: Depth-slider ranges per probe kind (mm).
DEPTH_RANGE = {"linear": (15.0, 80.0), "convex": (50.0, 200.0), "phased": (60.0, 200.0)}
#: Half-width of the PSF panel per probe kind (mm, lateral; axial is half of it): fixed, so
#: the PSF can be compared by eye across settings.
_PSF_WINDOW = {"linear": 3.0, "convex": 8.0, "phased": 8.0}


@lru_cache(maxsize=16)
def scanner_scene(name: str, seed: int = 0) -> ScannerScene:
    """The scene ``name`` (one of :data:`SCENES`) drawn with ``seed`` (the same seed gives the
    same anatomy); cached, so moving a slider never rebuilds it."""
    from .sim.render import sample_rng

    if name not in _SCENE_BUILDERS:
        raise ValueError(f"unknown scene {name!r}; choose one of {list(SCENES)}")
    return _SCENE_BUILDERS[name](sample_rng(seed, f"widget-{name}", "test", 0))


def _fwhm(profile: np.ndarray, step: float) -> float:
    """Full width at half maximum of a single-peaked profile sampled every ``step``."""
    p = np.asarray(profile, float)
    k = int(np.argmax(p))
    half = p[k] / 2.0
    left = k
    while left > 0 and p[left - 1] >= half:
        left -= 1
    right = k
    while right < len(p) - 1 and p[right + 1] >= half:
        right += 1
    # linear interpolation of the two crossings
    xl = left - (p[left] - half) / max(p[left] - p[left - 1], 1e-12) if left > 0 else left
    xr = right + (p[right] - half) / max(p[right] - p[right + 1], 1e-12) \
        if right < len(p) - 1 else right
    return float((xr - xl) * step)


def _impulse(spectrum: np.ndarray, up: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """|impulse response| of a filter given on ``fftfreq`` frequencies, sampled ``up`` times
    finer by zero-padding its spectrum; returns (offsets in samples, amplitude, peak 1)."""
    n = len(spectrum)
    s = np.fft.fftshift(np.asarray(spectrum, np.complex128))
    pad = (up - 1) * n
    s = np.pad(s, (pad // 2, pad - pad // 2))
    imp = np.abs(np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(s))))
    offsets = (np.arange(up * n) - up * n // 2) / up
    return offsets, imp / imp.max()


@lru_cache(maxsize=32)
def _psf_used(grid, focus_mm: float) -> dict:
    """The PSF the simulator applied on ``grid`` (its Fourier-domain filters,
    ``physics._filters``), measured: 2-D amplitude at the focus and at the deepest row, and
    the lateral FWHM along depth; next to it the probe's own PSF (``psf_for``), which the
    simulator widens to at least ``MIN_SIGMA_SAMPLES`` grid samples when the display is
    coarser (speckle then is as fine as a display pixel)."""
    from .sim.physics import FWHM, _filters, _pads, psf_for

    pad_z, pad_x = _pads(grid)
    hz, hx, _ = _filters(grid, pad_z, pad_x)
    probe = grid.probe
    psf = psf_for(probe)
    off_z, amp_z = _impulse(hz[:, 0])
    axial_fwhm = _fwhm(amp_z, grid.dz / 8)
    half = _PSF_WINDOW[probe.kind]
    lat_mm = np.linspace(-half, half, 161)
    ax_mm = np.linspace(-half / 2, half / 2, 81)
    axial_profile = np.interp(ax_mm, off_z * grid.dz, amp_z)

    def lateral_at(depth: float) -> tuple[float, np.ndarray, np.ndarray, float]:
        d = float(np.clip(depth, 0.0, grid.depth_mm))
        row = pad_z + int(round(d / grid.dz))  # hx rows: pad_z above the face, then depths
        spacing = float(probe.line_spacing_mm(np.array([d]), grid.n_lines)[0])
        off_x, amp_x = _impulse(hx[row])
        return d, off_x * spacing, amp_x, _fwhm(amp_x, spacing / 8)

    def at(depth: float) -> dict:
        d, x_mm, amp_x, fwhm = lateral_at(depth)
        lateral = np.interp(lat_mm, x_mm, amp_x, left=0.0, right=0.0)
        return {"depth_mm": d, "image": np.outer(axial_profile, lateral).astype(np.float32),
                "axial_mm": ax_mm, "lateral_mm": lat_mm,
                "axial_fwhm_mm": axial_fwhm, "lateral_fwhm_mm": fwhm,
                "probe_lateral_fwhm_mm": float(FWHM * psf.sigma_lateral_mm(np.array(d)))}

    depths = np.linspace(0.02 * grid.depth_mm, grid.depth_mm, 41)  # (sector apex: no width)
    out = {"focus": at(focus_mm), "deepest": at(grid.depth_mm),
           "depths_mm": depths, "lateral_fwhm_mm": np.array([lateral_at(d)[3] for d in depths]),
           "probe_lateral_fwhm_mm": FWHM * psf.sigma_lateral_mm(depths),
           "axial_fwhm_mm": axial_fwhm, "probe_axial_fwhm_mm": float(FWHM * psf.sigma_axial_mm)}
    for a in (ax_mm, lat_mm, out["focus"]["image"], out["deepest"]["image"], depths,
              out["lateral_fwhm_mm"], out["probe_lateral_fwhm_mm"]):
        a.setflags(write=False)  # cached: shared by every call on this grid
    return out


#: Beam-grid frames of recent acquisitions, keyed by everything but gain and dynamic range
#: (those only re-map the envelope to grey levels: a gain slider costs milliseconds).
_FRAMES: dict = {}
_MAX_FRAMES = 8


def _acquisition(setup: ScannerScene, seed: int, key: tuple, kwargs: dict, proc):
    """(frame, echogenicity, attenuation) from the cache or a new acquisition."""
    from .sim.physics import simulate

    hit = _FRAMES.get(key)
    if hit is not None:
        return hit
    rng = np.random.default_rng([int(seed), zlib.crc32(b"echocare-widget-scanner")])
    frame = simulate(setup.scene, kwargs["probe"], proc, depth_mm=kwargs["depth_mm"],
                     out_shape=kwargs["out_shape"], rng=rng)
    x, z = frame.display.pixel_centres()
    props = setup.scene.properties(x, z)
    echo = np.where(frame.fov, props["echo"], 0.0).astype(np.float32)
    atten = np.where(frame.fov, props["atten"], 0.0).astype(np.float32)
    for a in (echo, atten):
        a.setflags(write=False)  # shared by every gain / dynamic range of this frame
    if len(_FRAMES) >= _MAX_FRAMES:
        _FRAMES.pop(next(iter(_FRAMES)))
    _FRAMES[key] = (frame, echo, atten)
    return _FRAMES[key]


def _display_image(frame, proc) -> np.ndarray:
    """The frame's grey image under other receiver settings: the last steps of
    ``physics.beamform`` (log compression, speckle-reduction filter) and scan conversion,
    applied to the frame's envelope. Identical, bit for bit, to a new acquisition with the
    same seed (``tests/test_widgets.py`` checks it)."""
    from scipy.ndimage import gaussian_filter

    from .sim.geometry import scan_convert
    from .sim.physics import log_compress

    display = log_compress(frame.beam.envelope, proc)
    if proc.smoothing_px > 0:
        display = gaussian_filter(display, proc.smoothing_px)
    return scan_convert(display, frame.grid, frame.display)[0]


def _resolve(scene, probe, frequency_mhz, depth_mm, focus_mm, device_style, seed):
    """(scene setup, device style, probe, depth): every None replaced by the preset."""
    from .sim.devices import device_style as get_style

    setup = scanner_scene(scene, int(seed))
    style = get_style(device_style)
    kind = probe or setup.probe
    if kind not in DEPTH_RANGE:
        raise ValueError(f"probe must be one of {list(DEPTH_RANGE)}, got {kind!r}")
    own = kind == setup.probe
    f0 = float(frequency_mhz) if frequency_mhz else (
        setup.f0_mhz if own and setup.f0_mhz else style.probe(kind).f0_mhz)
    depth = float(depth_mm) if depth_mm else setup.depth_mm
    if depth <= 0:
        raise ValueError(f"depth_mm must be > 0, got {depth}")
    focus = float(focus_mm) if focus_mm is not None else setup.focus_mm
    changes = {**(setup.probe_changes if own else {}), "f0_mhz": f0, "focus_mm": focus}
    return setup, style, style.probe(kind, **changes), depth  # Probe checks 0.5-30 MHz


def scanner_view(scene: str = "thyroid", probe: str | None = None,
                 frequency_mhz: float | None = None, depth_mm: float | None = None,
                 gain_db: float = 0.0, dynamic_range_db: float | None = None,
                 device_style: str = "mid_range", seed: int = 0, size: int = 192, *,
                 focus_mm: float | None = None) -> dict:
    """One B-mode frame of a simulated scene under the given scanner settings.

    scene:            one of :data:`SCENES` (thyroid, breast lesion, liver, fetal heart,
                      apical four-chamber, phantom)
    probe:            "linear", "convex" or "phased" (None: the scene's usual probe)
    frequency_mhz:    centre frequency (None: the preset's); higher = finer speckle and
                      resolution, but more attenuation (less penetration)
    depth_mm:         imaging depth (None: the preset's)
    gain_db:          receiver gain *relative to the preset* (0 = preset; + brighter)
    dynamic_range_db: echo amplitudes mapped black to white (None: the device's)
    device_style:     a style of :data:`echocare_lib.sim.devices.DEVICE_STYLES`
    seed:             same seed, same anatomy and speckle (bit for bit)
    size:             display pixels (square)
    focus_mm:         transmit focus (None: the preset's, at the structure of interest)

    Returns a dict: ``image`` (float32 [size, size] in [0, 1]), ``fov`` (bool),
    ``echogenicity`` (mean backscatter amplitude re soft tissue, 0 outside the field of view)
    and ``attenuation`` (dB/cm/MHz) maps on the same pixels, ``psf`` (the point-spread
    function the simulator applied, measured: see ``_psf_used``), ``extent_mm`` (left, right,
    bottom, top, for ``imshow``), ``pixel_spacing_mm``, ``settings`` (what was used, every
    preset resolved) and ``notes`` (what a student should notice).
    """
    from .sim.physics import Processing

    setup, style, pr, depth = _resolve(scene, probe, frequency_mhz, depth_mm, focus_mm,
                                       device_style, seed)
    kind, f0, focus = pr.kind, pr.f0_mhz, pr.focus_mm
    base = replace(style.proc, **setup.proc_changes)
    gain = float(style.proc.gain_db + setup.gain_offset_db + gain_db)
    dr = float(dynamic_range_db) if dynamic_range_db else float(base.dynamic_range_db)
    if dr <= 0:
        raise ValueError(f"dynamic_range_db must be > 0, got {dr}")
    proc: Processing = replace(base, gain_db=gain, dynamic_range_db=dr)
    size = int(size)
    key = (scene, int(seed), pr, depth, size, base)
    frame, echo, atten = _acquisition(setup, seed, key, {"probe": pr, "depth_mm": depth,
                                                         "out_shape": (size, size)}, proc)
    image = _display_image(frame, proc)
    d = frame.display
    psf = _psf_used(frame.grid, focus)
    notes = []
    if psf["focus"]["lateral_fwhm_mm"] > 1.1 * psf["focus"]["probe_lateral_fwhm_mm"] or \
            psf["axial_fwhm_mm"] > 1.1 * psf["probe_axial_fwhm_mm"]:
        notes.append(f"At {size} px the display grid ({d.spacing_mm:.2f} mm/px) is coarser than "
                     "the probe's PSF: speckle is as fine as the pixels, as on a scanner "
                     "showing a downsized image. Raise size to see the probe's own PSF.")
    notes.append(f"Lateral resolution (FWHM) {psf['focus']['lateral_fwhm_mm']:.2f} mm at the "
                 f"focus ({focus:.0f} mm), {psf['deepest']['lateral_fwhm_mm']:.2f} mm at "
                 f"{depth:.0f} mm depth; axial {psf['axial_fwhm_mm']:.2f} mm.")
    return {
        "image": image, "fov": frame.fov.copy(), "echogenicity": echo, "attenuation": atten,
        "psf": psf,
        "extent_mm": (d.x0, d.x0 + d.width * d.spacing_mm, d.z0 + d.height * d.spacing_mm, d.z0),
        "pixel_spacing_mm": float(d.spacing_mm),
        "settings": {"scene": scene, "description": setup.description, "probe": kind,
                     "frequency_mhz": f0, "depth_mm": depth, "focus_mm": focus,
                     "gain_db": float(gain_db), "receiver_gain_db": gain,
                     "dynamic_range_db": dr, "device_style": device_style, "seed": int(seed),
                     "size": size, "wavelength_mm": float(pr.wavelength_mm)},
        "notes": notes,
    }


def scanner_figure(result: dict):
    """B-mode image, echogenicity map, the PSF at the focus and at depth, FWHM vs depth."""
    import matplotlib.pyplot as plt

    s, psf = result["settings"], result["psf"]
    # fixed positions, no layout engine: redrawing on every slider move stays fast
    fig = plt.figure(figsize=(13, 5.0))
    left = fig.add_gridspec(1, 2, left=0.05, right=0.52, bottom=0.1, top=0.83, wspace=0.3)
    right = fig.add_gridspec(2, 2, left=0.63, right=0.99, bottom=0.1, top=0.86, wspace=0.4,
                             hspace=0.55, height_ratios=[1, 1.25])
    ax_img, ax_echo = fig.add_subplot(left[0, 0]), fig.add_subplot(left[0, 1])
    ax_pf, ax_pd = fig.add_subplot(right[0, 0]), fig.add_subplot(right[0, 1])
    ax_curve = fig.add_subplot(right[1, :])
    ext = result["extent_mm"]
    ax_img.imshow(result["image"], cmap="gray", vmin=0, vmax=1, extent=ext)
    ax_img.set_title(f"B-mode: {s['probe']} probe, {s['frequency_mhz']:.1f} MHz\n"
                     f"gain {s['gain_db']:+.0f} dB, dynamic range {s['dynamic_range_db']:.0f} dB",
                     fontsize=9)
    ax_img.annotate("focus", xy=(ext[1], s["focus_mm"]), xytext=(4, 0),
                    textcoords="offset points", color=OKABE_ITO[1], fontsize=7, va="center",
                    annotation_clip=False)
    ax_img.plot([ext[1]], [s["focus_mm"]], marker="<", color=OKABE_ITO[1], clip_on=False)
    echo_db = np.where(result["fov"], 20 * np.log10(np.maximum(result["echogenicity"], 1e-3)),
                       np.nan)
    im = ax_echo.imshow(echo_db, cmap="cividis", vmin=-40, vmax=15, extent=ext)
    fig.colorbar(im, ax=ax_echo, fraction=0.05, pad=0.03,
                 label="backscatter re soft tissue (dB)")
    ax_echo.set_title("what is there: tissue echogenicity\n(no speckle, no PSF, no "
                      "attenuation)", fontsize=9)
    for ax in (ax_img, ax_echo):
        ax.set_xlabel("lateral position (mm)")
        ax.set_ylabel("depth (mm)")
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
    for ax, where, name in ((ax_pf, psf["focus"], "at the focus"),
                            (ax_pd, psf["deepest"], "deepest row")):
        lat, axl = where["lateral_mm"], where["axial_mm"]
        ax.imshow(where["image"], cmap="magma", vmin=0, vmax=1,
                  extent=(lat[0], lat[-1], axl[-1], axl[0]))
        ax.set_title(f"PSF {name} ({where['depth_mm']:.0f} mm)\nFWHM "
                     f"{where['lateral_fwhm_mm']:.2f} x {where['axial_fwhm_mm']:.2f} mm",
                     fontsize=8)
        ax.set_xlabel("lateral (mm)", fontsize=8)
        ax.set_ylabel("axial (mm)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.locator_params(nbins=4)
    ax_curve.plot(psf["depths_mm"], psf["lateral_fwhm_mm"], color=OKABE_ITO[0], lw=2,
                  label="lateral, as imaged")
    ax_curve.plot(psf["depths_mm"], psf["probe_lateral_fwhm_mm"], color=OKABE_ITO[1], ls="--",
                  label="lateral, probe alone")
    ax_curve.axhline(psf["axial_fwhm_mm"], color=OKABE_ITO[2], lw=1.5, label="axial, as imaged")
    ax_curve.axhline(result["pixel_spacing_mm"], color="#777777", ls=":", lw=1,
                     label="display pixel")
    ax_curve.axvline(s["focus_mm"], color=OKABE_ITO[1], lw=0.8, alpha=0.6)
    ax_curve.set_xlabel("depth (mm)")
    ax_curve.set_ylabel("resolution, FWHM (mm)")
    ax_curve.set_ylim(bottom=0)
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize=7, loc="best", ncol=2)
    fig.suptitle(f"{s['scene']} ({s['description']}); device style {s['device_style']}, "
                 f"seed {s['seed']}", fontsize=9)
    return fig


def show_scanner(scene: str = "thyroid", *, interactive: bool | None = None, show: bool = True,
                 **settings) -> WidgetView:
    """The scanner simulator (notebook 00): sliders for frequency, depth, gain and dynamic
    range, drop-downs for scene, probe and device style. Static (default state as one
    figure) unless live (see :func:`is_interactive`). ``settings`` are
    :func:`scanner_view`'s keyword arguments."""
    if not is_interactive(interactive):
        result = scanner_view(scene, **settings)
        s = result["settings"]
        return _static("scanner simulator", result, scanner_figure(result), show,
                       text=f"{s['scene']}, {s['frequency_mhz']:.1f} MHz, {s['depth_mm']:.0f} mm")
    import ipywidgets as W
    from .sim.devices import DEVICE_STYLES

    first = scanner_view(scene, **settings)["settings"]
    lo, hi = DEPTH_RANGE[first["probe"]]
    style = {"description_width": "initial"}
    slider = dict(continuous_update=False, style=style)
    controls = {
        "scene": W.Dropdown(options=list(SCENES), value=scene, description="scene"),
        "probe": W.Dropdown(options=list(DEPTH_RANGE), value=first["probe"],
                            description="probe"),
        "device_style": W.Dropdown(options=list(DEVICE_STYLES), value=first["device_style"],
                                   description="device"),
        "frequency_mhz": W.FloatSlider(value=first["frequency_mhz"], min=1.0, max=15.0,
                                       step=0.5, description="frequency (MHz)", **slider),
        "depth_mm": W.FloatSlider(value=first["depth_mm"], min=lo, max=hi, step=5.0,
                                  description="depth (mm)", **slider),
        "gain_db": W.FloatSlider(value=first["gain_db"], min=-20.0, max=20.0, step=1.0,
                                 description="gain (dB re preset)", **slider),
        "dynamic_range_db": W.FloatSlider(value=first["dynamic_range_db"], min=20.0,
                                          max=90.0, step=2.0,
                                          description="dynamic range (dB)", **slider),
        "seed": W.BoundedIntText(value=first["seed"], min=0, max=10_000, description="seed",
                                 style=style),
    }
    fixed = {k: v for k, v in settings.items() if k not in controls}  # size, focus_mm
    busy = {"on": False}

    def render(**v):
        if busy["on"]:  # a preset is being loaded: draw once, at the end
            return None, None, ()
        result = scanner_view(**v, **fixed)
        return result, scanner_figure(result), ()

    view = _live("scanner simulator", controls, render, show, skip=("scene", "probe"))

    def load_preset(change) -> None:
        """A new scene or probe: its preset frequency and depth, then one redraw."""
        if busy["on"]:  # set by load_preset itself
            return
        kind = controls["probe"].value if change["owner"] is controls["probe"] else None
        _, _, pr, depth = _resolve(controls["scene"].value, kind, None, None, None,
                                   controls["device_style"].value, controls["seed"].value)
        busy["on"] = True
        try:
            lo_, hi_ = DEPTH_RANGE[pr.kind]
            d = controls["depth_mm"]
            d.min, d.max = min(lo_, d.min), max(hi_, d.max)
            d.value = float(np.clip(depth, lo_, hi_))
            d.min, d.max = lo_, hi_
            controls["probe"].value = pr.kind
            controls["frequency_mhz"].value = pr.f0_mhz
        finally:
            busy["on"] = False
        view.update()

    controls["scene"].observe(load_preset, names="value")
    controls["probe"].observe(load_preset, names="value")
    return view


# =============================================================================== checkpoints
def _find_checkpoint(encoder_checkpoint, profile, run_seed: int) -> tuple[Path | None, str]:
    """(folder, message): an explicit folder, else the profile's finished ``echocare``
    checkpoint (:func:`echocare_lib.downstream.zoo.checkpoint_folder`); the message says
    why there is none and which notebook makes one."""
    from .downstream.zoo import checkpoint_folder
    from .profiles import get_profile

    if encoder_checkpoint is not None:
        folder = Path(encoder_checkpoint)
        if not folder.exists():
            raise FileNotFoundError(f"checkpoint folder {folder} does not exist")
        return folder, ""
    prof = get_profile(profile)
    folder = checkpoint_folder("echocare", prof.name, run_seed)
    if folder is None:
        return None, (f"No pretrained EchoCare model for the '{prof.name}' profile (seed "
                      f"{run_seed}) under build/{prof.name}/pretrain/: run notebook "
                      f"02_pretraining (make figures ONLY=02 PROFILE={prof.name}) to train one.")
    return folder, ""


@lru_cache(maxsize=2)
def _pretrainer(folder: str, mtime: float):
    """The whole pretraining model (encoder, decoder, classifier) of a checkpoint folder."""
    import torch

    from .pretraining.checkpoint import load_checkpoint, read_checkpoint_meta
    from .pretraining.config import PretrainConfig
    from .pretraining.train import build_model

    meta = read_checkpoint_meta(folder)
    cfg = PretrainConfig.from_dict(meta["config"])
    with torch.random.fork_rng(devices=[]):  # the random init must not move the caller's RNG
        model = build_model(cfg)
    load_checkpoint(folder, model=model)
    return model.eval(), cfg


def _load_model(folder: Path):
    from .pretraining.checkpoint import CheckpointError

    if not (folder / "checkpoint.json").exists():
        raise CheckpointError(f"{folder} holds no checkpoint.json: an encoder-only export has "
                              "no decoder or classifier; pass a folder written by pretraining "
                              "(notebook 02_pretraining)")
    return _pretrainer(str(folder), (folder / "checkpoint.json").stat().st_mtime)


# =============================================================================== 2. masking
@lru_cache(maxsize=1)
def _dicom_frames() -> dict[str, np.ndarray]:
    """pydicom-data's ultrasound frames cropped to their field of view (notebook 02's code)."""
    from .curation.deid import crop_to_fov, find_fov
    from .examples import load_pydicom_ultrasound

    return {f"real: {us.description} ({us.name})": crop_to_fov(us.image, find_fov(us.image))
            for us in load_pydicom_ultrasound()}


def example_images(real: bool = True) -> dict[str, np.ndarray]:
    """Images for the masking widget by name: simulated frames of the scanner's scenes, and
    (``real``) the real scanner frames of ``pydicom-data`` (uint8, any size)."""
    out = {}
    for name in SCENES:
        img = scanner_view(name, size=128)["image"]
        out[f"simulated: {name}"] = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if real:
        try:
            out.update(_dicom_frames())
        except (ImportError, FileNotFoundError):  # pydicom-data missing: simulated only
            pass
    return out


def _square_uint8(image, size: int) -> np.ndarray:
    """Any image (uint8 or float in [0, 1]; [H, W], [1, H, W] or [H, W, 3]) -> uint8
    [size, size]: grayscale, centre crop, area resize (``pretraining.data.square_resize``)."""
    from PIL import Image

    from .pretraining.data import square_resize

    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.dtype != np.uint8:
        a = np.clip(a.astype(np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if a.ndim not in (2, 3):
        raise ValueError(f"image must be [H, W], [1, H, W] or [H, W, 3], got shape {a.shape}")
    return square_resize(Image.fromarray(a), size)


class _MaskUnit:
    """Temporarily give the model's encoder another masking unit (it only sets how a unit
    mask is upsampled to tokens and pixels: no weights depend on it)."""

    def __init__(self, model, unit: int) -> None:
        self.enc, self.unit = model.encoder, unit

    def __enter__(self):
        self.saved = self.enc.config
        self.enc.config = self.saved.replace(mask_patch_size=self.unit)

    def __exit__(self, *exc):
        self.enc.config = self.saved


def masking_view(image, mask_ratio: float = 0.5, mask_patch_size: int = 8,
                 encoder_checkpoint=None, seed: int = 0, *, profile=None, run_seed: int = 0,
                 size: int | None = None) -> dict:
    """Random patch masking of an image and, with a pretrained model, its reconstruction.

    image:              an array (uint8, or float in [0, 1]; grayscale or RGB) or a name of
                        :func:`example_images` (simulated, or a real pydicom-data frame)
    mask_ratio:         fraction of masking units hidden, in [0, 1)
    mask_patch_size:    side of a masking unit in pixels (must divide the image size; with a
                        model, a multiple of its 4-px patch)
    encoder_checkpoint: a pretraining checkpoint folder; None: the profile's finished
                        ``echocare`` checkpoint of notebook 02, if any
    seed:               the mask's random seed
    size:               image side without a model (default 128); with a model its input size

    The mask and the reconstruction come from notebook 02's code path
    (``masking.random_mask``, ``evaluate.reconstruct``: visible pixels pasted back). Returns
    ``masked``, ``reconstruction`` (None without a model), ``target`` (float [S, S]),
    ``unit_mask`` [S / unit, S / unit] and ``pixel_mask`` [S, S] (1 = hidden),
    ``masked_fraction`` (of units), ``n_units``, ``n_masked``, ``masked_mae`` (mean
    absolute error on hidden pixels, or None), ``checkpoint`` and ``message``.
    """
    import torch

    from .models.masking import pixel_mask, random_mask
    from .pretraining import evaluate

    name = image if isinstance(image, str) else "image"
    if isinstance(image, str):
        images = example_images(real=image.startswith("real"))
        if image not in images:
            raise KeyError(f"no example image {image!r}; choose one of {list(images)}")
        image = images[image]
    folder, message = _find_checkpoint(encoder_checkpoint, profile, run_seed)
    model = cfg = None
    if folder is not None:
        model, cfg = _load_model(folder)
        if not model.use_mim:
            message = (f"{folder.name} is a '{model.variant}' checkpoint: it has no image "
                       "decoder, so it cannot reconstruct (use an 'echocare' or 'mim-only' one).")
            model = None
    side = cfg.image_size if model is not None else int(size or 128)
    unit = int(mask_patch_size)
    if unit < 1 or side % unit:
        raise ValueError(f"mask_patch_size {unit} must divide the image size {side}")
    if model is not None and unit % model.encoder.config.patch_size:
        raise ValueError(f"mask_patch_size {unit} must be a multiple of the model's patch "
                         f"size ({model.encoder.config.patch_size} px)")
    x = torch.from_numpy(np.array(_square_uint8(image, side))).float().div(255.0)[None, None]
    mask = random_mask(1, side, unit, mask_ratio, generator=torch.Generator().manual_seed(seed))
    rec = mae = None
    if model is not None:
        with _MaskUnit(model, unit):  # reconstruct draws the same mask (same seed, same call)
            masked, rec, target, pm = evaluate.reconstruct(model, x, mask_ratio, seed=seed)
        masked, rec, target, pm = masked[0], rec[0], target[0], pm[0]
        mae = float(np.abs(rec - target)[pm > 0].mean()) if pm.any() else float("nan")
    else:
        pm = pixel_mask(mask, unit)[0, 0].numpy()
        target = x[0, 0].numpy()
        masked = target * (1 - pm)
        message += " Showing the masked input and the target only."
    unit_mask = mask[0].numpy()
    trained = cfg.encoder_config().mask_patch_size if cfg is not None else None
    if model is not None and unit != trained:
        message = (f"The model was trained with {trained}-px masking units; {unit}-px units "
                   "are new to it.")
    return {"name": name, "masked": masked, "reconstruction": rec, "target": target,
            "unit_mask": unit_mask, "pixel_mask": pm, "mask_ratio": float(mask_ratio),
            "mask_patch_size": unit, "n_units": int(unit_mask.size),
            "n_masked": int(unit_mask.sum()), "masked_fraction": float(unit_mask.mean()),
            "masked_mae": mae, "checkpoint": str(folder) if model is not None else None,
            "message": message.strip(), "seed": int(seed)}


def masking_figure(result: dict):
    """Masked input | reconstruction | target (``pretraining.plots.reconstruction_grid``)."""
    from .pretraining.plots import reconstruction_grid

    rec = result["reconstruction"]
    shown = rec if rec is not None else np.zeros_like(result["target"])
    mae = [result["masked_mae"]] if rec is not None else None
    label = textwrap.fill(result["name"], 24)
    fig = reconstruction_grid([(label, result["masked"], shown, result["target"])],
                              title=f"{result['n_masked']} of {result['n_units']} units of "
                                    f"{result['mask_patch_size']} px hidden (seed "
                                    f"{result['seed']})", mae=mae)
    ax_in, ax_rec, ax_t = fig.axes[:3]
    ax_in.set_title(f"masked input ({result['masked_fraction']:.0%})", fontsize=9)
    ax_t.set_title("target (original)", fontsize=9)
    if rec is None:
        ax_rec.set_title("reconstruction", fontsize=9)
        ax_rec.text(0.5, 0.5, "no pretrained model:\nrun notebook\n02_pretraining",
                    ha="center", va="center", color="white", fontsize=8,
                    transform=ax_rec.transAxes)
    if result["message"]:
        fig.text(0.5, 0.005, result["message"], ha="center", va="bottom", fontsize=6.5,
                 wrap=True)
        fig.subplots_adjust(bottom=0.16)
    return fig


def show_masking(image="simulated: thyroid", *, interactive: bool | None = None,
                 show: bool = True, **settings) -> WidgetView:
    """Masking and reconstruction (notebook 02): image, mask ratio, masking unit, seed."""
    if not is_interactive(interactive):
        result = masking_view(image, **settings)
        return _static("masking and reconstruction", result, masking_figure(result), show,
                       text=result["message"])
    import ipywidgets as W

    first = masking_view(image, **settings)
    names = list(example_images())
    if isinstance(image, str) and image not in names:
        names.insert(0, image)
    fixed = {k: v for k, v in settings.items()
             if k not in ("mask_ratio", "mask_patch_size", "seed")}
    style = {"description_width": "initial"}
    controls = {
        "image": W.Dropdown(options=names if isinstance(image, str) else ["image"],
                            value=image if isinstance(image, str) else "image",
                            description="image", style=style),
        "mask_ratio": W.FloatSlider(value=first["mask_ratio"], min=0.0, max=0.95, step=0.05,
                                    description="mask ratio", continuous_update=False,
                                    style=style),
        "mask_patch_size": W.Dropdown(options=[4, 8, 16, 32], value=first["mask_patch_size"],
                                      description="unit (px)", style=style),
        "seed": W.BoundedIntText(value=first["seed"], min=0, max=10_000, description="seed",
                                 style=style),
    }
    source = image

    def render(image, **v):
        result = masking_view(image if isinstance(source, str) else source, **v, **fixed)
        return result, masking_figure(result), ()

    return _live("masking and reconstruction", controls, render, show)


# =============================================================================== 3. hierarchy
@lru_cache(maxsize=64)
def _held_out(size: int, seed: int, index: int) -> dict:
    """Image ``index`` of notebook 02's held-out probe set (``simulated_images(n, size,
    seed + 1, split="test")``: every image has its own random stream, so one is made alone)."""
    from .sim.corpus import FAMILIES, _pretraining_one

    fams = list(FAMILIES)
    s = _pretraining_one((fams[index % len(fams)], seed, "test", index, size))
    s["image8"] = np.clip(s["image"][0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return s


def hierarchy_view(image_index: int = 0, *, encoder_checkpoint=None, profile=None,
                   run_seed: int = 0, n_images: int | None = None) -> dict:
    """The classifier's coherent probabilities down the anatomy tree for one held-out image.

    image_index:        an image of notebook 02's held-out simulated set (0 .. n_images - 1)
    encoder_checkpoint: a pretraining checkpoint folder; None: the profile's ``echocare`` one
    n_images:           size of that set (default as notebook 02: 4 x the profile's
                        ``sim_test_size``)

    Returns ``image`` (float [S, S]), ``family``, ``truth`` (ontology ids of the image's
    labels), ``probabilities`` ([N] in the ontology's class order, None without a model),
    ``path`` (the most probable region -> meta type -> anatomical type, as
    ``evaluate.top_path``: (id, name, probability)), ``levels`` (per level: the candidates
    under the chosen parent, their names, probabilities and whether they are true),
    ``coherent`` (no child above its parent), ``checkpoint`` and ``message``.
    """
    import torch

    from .ontology import LEVELS, load_ontology
    from .pretraining import evaluate
    from .profiles import get_profile

    prof = get_profile(profile)
    onto = load_ontology()
    folder, message = _find_checkpoint(encoder_checkpoint, prof, run_seed)
    model = cfg = None
    if folder is not None:
        model, cfg = _load_model(folder)
        if not model.use_hie:
            message = (f"{folder.name} is a '{model.variant}' checkpoint: it has no anatomy "
                       "classifier (use an 'echocare' or 'hie-only' one).")
            model = None
    n = int(n_images or max(4 * prof.sim_test_size, 8))
    if not 0 <= int(image_index) < n:
        raise IndexError(f"image_index {image_index} is outside the held-out set (0..{n - 1})")
    size = cfg.image_size if model is not None else prof.image_size
    s = _held_out(int(size), int(run_seed) + 1, int(image_index))
    image = s["image8"] / 255.0
    truth = onto.decode(s["hierarchy"])
    probs = path = None
    coherent = None
    if model is not None:
        x = torch.as_tensor(s["image8"]).float().div(255.0)[None, None]
        probs = evaluate.hierarchy_probabilities(model, x)[0]
        path = [(i, onto.node(i).name, p) for i, p in evaluate.top_path(onto, probs)]
        coherent = bool(onto.is_coherent(probs))
    else:
        message += " Showing the image's true labels only."
    # the tree under the chosen path (the model's, else the truth's)
    chosen = [i for i, _, _ in path] if path else [i for i in truth]
    levels, parent = [], None
    for level in LEVELS:
        sl = onto.level_slice(level)
        idx = [j for j in range(sl.start, sl.stop)
               if parent is None or onto.parent_index[j] == onto.index[parent]]
        if not idx:
            break
        levels.append({"level": level, "parent": parent, "ids": [onto.ids[j] for j in idx],
                       "names": [onto.nodes[j].name for j in idx],
                       "probabilities": None if probs is None else probs[idx].astype(float),
                       "true": [onto.ids[j] in truth for j in idx]})
        nxt = [i for i in chosen if onto.node(i).level == level]
        if not nxt:
            break
        parent = nxt[0]
    return {"index": int(image_index), "n_images": n, "image": image,
            "family": s["meta"]["family"], "structures": list(s["meta"].get("structures", [])),
            "truth": truth, "truth_names": [onto.node(i).name for i in truth],
            "probabilities": probs, "ids": list(onto.ids), "path": path, "levels": levels,
            "coherent": coherent, "checkpoint": str(folder) if model is not None else None,
            "message": message.strip()}


def hierarchy_figure(result: dict, top: int = 8):
    """The image with its true labels, and one bar chart per level under the chosen path
    (true classes in green, others in blue; as notebook 02's panel, + marks the truth)."""
    import matplotlib.pyplot as plt

    from .ontology import load_ontology

    onto = load_ontology()
    levels = result["levels"]
    fig, axes = plt.subplots(1, 1 + max(len(levels), 1), figsize=(3.0 + 3.3 * len(levels), 3.6),
                             gridspec_kw={"width_ratios": [1.1] + [1.0] * max(len(levels), 1)})
    ax = axes[0]
    ax.imshow(result["image"], cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(f"held-out image {result['index']} ({result['family']})", fontsize=8)
    ax.set_xlabel(textwrap.fill("true: " + (", ".join(result["truth_names"]) or
                                            "(unlabelled)"), 40), fontsize=7)
    for ax, lev in zip(axes[1:], levels):
        p = lev["probabilities"]
        values = np.asarray(p if p is not None else np.asarray(lev["true"], float))
        order = np.argsort(-values, kind="stable")[:top][::-1]
        names = [("+ " if lev["true"][k] else "  ") + lev["names"][k] for k in order]
        colours = [OKABE_ITO[2] if lev["true"][k] else OKABE_ITO[0] for k in order]
        ax.barh(range(len(order)), values[order], color=colours)
        ax.set_yticks(range(len(order)), names, fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability" if p is not None else "true label (no model)", fontsize=8)
        under = f"\nunder '{onto.node(lev['parent']).name}'" if lev["parent"] else ""
        ax.set_title(f"{lev['level']}{under}", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    note = ("coherent: each level <= its parent" if result["coherent"] else
            "NOT coherent" if result["coherent"] is False else result["message"])
    fig.suptitle(f"Anatomy tree, top candidates per level (+ = true class). {note}",
                 fontsize=8, wrap=True)
    fig.tight_layout()
    return fig


def show_hierarchy(image_index: int = 0, *, interactive: bool | None = None,
                   show: bool = True, **settings) -> WidgetView:
    """Hierarchy explorer (notebook 02): pick a held-out image, see the tree's probabilities."""
    if not is_interactive(interactive):
        result = hierarchy_view(image_index, **settings)
        return _static("hierarchy explorer", result, hierarchy_figure(result), show,
                       text=result["message"])
    import ipywidgets as W

    first = hierarchy_view(image_index, **settings)
    controls = {"image_index": W.IntSlider(value=first["index"], min=0,
                                           max=first["n_images"] - 1,
                                           description="held-out image",
                                           continuous_update=False,
                                           style={"description_width": "initial"})}

    def render(image_index):
        result = hierarchy_view(image_index, **settings)
        return result, hierarchy_figure(result), ()

    return _live("hierarchy explorer", controls, render, show)


# =============================================================================== 4. results
def _results_root(results_dir, prof) -> Path:
    from .paths import build_dir

    return Path(results_dir) if results_dir is not None else build_dir() / prof.name / "results"


def _read_rows(root: Path, task: str):
    import pandas as pd

    from .downstream.finetune import ResultStore

    path = root / f"{task}.csv"  # ResultStore's file (read here without creating folders)
    if not path.is_file():
        return pd.DataFrame(columns=ResultStore.COLUMNS)
    # hashes are hex strings: one of digits only (or like "12e4...") must stay a string
    return pd.read_csv(path, dtype={"config_hash": str, "model": str, "metric": str})


@lru_cache(maxsize=4)
def _task_data(task: str, profile_name: str, seed: int, data_dir):
    from .downstream.trials import task_data

    return task_data(task, profile=profile_name, seed=seed, data_dir=data_dir, progress=False)


def _current_hash(task, encoder, prof, seed, data, root, fraction):
    """The configuration hash of this profile's current runs (as notebook 11 finds them:
    ``run_trials(..., cached_only=True)``), or None when the store has none of it."""
    from .downstream.trials import run_trials

    rows = run_trials(task, [encoder], profile=prof, seed=seed, data=data,
                      train_fractions=(fraction,), n_trials=1, results_dir=root,
                      progress=False, cached_only=True)
    return None if rows.empty else str(rows.config_hash.iloc[0])


def _ellipse_dicts(row: np.ndarray, classes) -> list[dict]:
    """Saved detection rows [n_fg, 6] -> ellipse dicts (classes without one are left out)."""
    from .downstream.trials import ELLIPSE_COLUMNS

    return [dict(zip(ELLIPSE_COLUMNS, map(float, r)), label=c)
            for c, r in zip(classes, row) if np.isfinite(r[0])]


def _case_view(task, sample: dict, pred) -> tuple[dict, dict | None, dict]:
    """(truth, prediction, per-case scores) of one test case, per task kind."""
    from .downstream import geometry as G
    from .downstream import metrics as M

    kind, classes = task.kind, list(task.classes)
    truth: dict = {}
    out = None
    score: dict = {}
    if kind == "classification":
        truth = {"class": classes[int(sample["label"])], "label": int(sample["label"])}
        if pred is not None:
            p = np.asarray(pred, float)
            out = {"class": classes[int(p.argmax())], "label": int(p.argmax()),
                   "probabilities": dict(zip(classes, p.tolist()))}
            score = {"correct": float(out["label"] == truth["label"])}
    elif kind == "segmentation":
        truth = {"mask": np.asarray(sample["mask"])}
        if pred is not None:
            out = {"mask": np.asarray(pred)}
            score = {"mDSC": float(M.segmentation_metrics(out["mask"], truth["mask"], classes,
                                                          1.0).mDSC)}
    elif kind == "detection":
        truth = {"ellipses": [dict(e) for e in sample["ellipses"]],
                 "ctr": float(sample["ctr"]) if sample.get("ctr") is not None else None}
        if pred is not None:
            ell = _ellipse_dicts(np.asarray(pred), classes[1:])
            out = {"ellipses": ell, "ctr": G.ctr(ell) if len(ell) == len(classes) - 1
                   else float("nan")}
            shape = np.asarray(sample["image"]).shape[-2:]
            dsc = G.object_dsc([ell], [truth["ellipses"]], shape, classes)
            score = {"DSC": float(dsc.dsc.mean()) if len(dsc) else float("nan")}
    elif kind == "landmarks":
        truth = {"landmarks": np.asarray(sample["landmarks"], float)}
        if pred is not None:
            out = {"landmarks": np.asarray(pred, float)}
            score = {"MRE (px)": float(np.linalg.norm(out["landmarks"] - truth["landmarks"],
                                                      axis=-1).mean())}
    elif kind == "regression":
        truth = {"ef": float(sample["ef"]), "mask": np.asarray(sample.get("mask"))}
        if pred is not None:
            out = {"ef": float(pred)}
            score = {"absolute error (EF %)": abs(out["ef"] - truth["ef"])}
    elif kind == "enhancement":
        target = sample.get("target")
        truth = {"target": None if target is None else np.asarray(target, np.float32)[0],
                 "organ": sample.get("organ", sample["meta"].get("organ", ""))}
        if pred is not None:
            out = {"image": np.asarray(pred, np.float32).squeeze()}
    elif kind == "report":
        truth = {"report": str(sample["report"])}
        if pred is not None:
            out = {"report": str(pred)}
    return truth, out, score


def results_view(task: str, encoder: str, trial: int = 0, case: int = 0, profile=None, *,
                 run_seed: int = 0, fraction: float = 1.0, results_dir=None, data=None,
                 data_dir=None) -> dict:
    """One test case of one application: the prediction of an encoder's trial against the
    ground truth, and that trial's metrics.

    task, encoder: an application of :data:`echocare_lib.downstream.TASKS` and an encoder
                   of its result store (``echocare``, ``scratch``, ``imagenet``, ...)
    trial, case:   the trial, and the test case (index into the test split)
    profile:       whose results (``build/<profile>/results/<task>.csv``); None: current
    run_seed:      the notebooks' seed; fraction: the train fraction (1.0: full set)
    results_dir:   another result store folder; data: the notebook's ``(train, test,
                   source)`` (default :func:`~echocare_lib.downstream.trials.task_data`)

    Rows are those of the profile's current configuration (found as notebook 11 finds them);
    when the store holds only other configurations, the most recently written one, with a
    note. Predictions are saved for trial 0 only: another trial shows its metrics and the
    case's ground truth, and says so. Returns ``available`` (False with a ``message`` naming
    the notebook to run when there are no results), ``metrics`` ({name: value} of the
    trial), ``trials``, ``encoders``, ``n_cases``, ``image`` [H, W], ``truth``,
    ``prediction`` (None when not stored), ``case_scores`` and ``notes``.
    """
    from .downstream.plots import _order
    from .downstream.registry import get_task
    from .downstream.trials import load_predictions, predictions_path
    from .profiles import get_profile

    t = get_task(task)
    prof = get_profile(profile)
    root = _results_root(results_dir, prof)
    out = {"available": False, "task": task, "title": t.title, "kind": t.kind,
           "notebook": t.notebook, "encoder": encoder, "trial": int(trial), "case": int(case),
           "profile": prof.name, "encoders": [], "trials": [], "notes": []}
    rows = _read_rows(root, task)
    rows = rows[rows.task == task] if len(rows) else rows
    run = f"run notebook {t.notebook} (make figures ONLY={t.notebook[:2]} PROFILE={prof.name})"
    if rows.empty:
        out["message"] = f"No results for {task} ({t.title}) in {root / (task + '.csv')}: {run}."
        return out
    out["encoders"] = _order(rows.model.unique())
    sel = rows[(rows.model == encoder) & np.isclose(rows.train_fraction.astype(float), fraction)]
    if sel.empty:
        out["message"] = (f"No {encoder!r} results for {task} at train fraction {fraction:g}; "
                          f"encoders with results: {out['encoders']}. To add it, {run} with "
                          f"{encoder!r} among its encoders.")
        return out
    data = data if data is not None else _task_data(task, prof.name, int(run_seed), data_dir)
    h = _current_hash(task, encoder, prof, int(run_seed), data, root, fraction)
    if h is None or h not in set(sel.config_hash):
        h = str(sel.config_hash.iloc[-1])
        out["notes"].append(f"These rows come from an earlier configuration (hash {h}), not "
                            f"the current '{prof.name}' one: {run} to refresh them.")
    cur = sel[sel.config_hash == h]
    out["trials"] = sorted(int(k) for k in cur.trial.unique())
    out["config_hash"] = h
    if int(trial) not in out["trials"]:
        out["message"] = f"Trial {trial} has no results; trials with results: {out['trials']}."
        return out
    tr = cur[cur.trial == int(trial)]
    out["metrics"] = dict(zip(tr.metric, tr.value.astype(float)))
    out["primary"] = t.primary
    test = data[1]
    out["n_cases"] = len(test)
    if not 0 <= int(case) < len(test):
        raise IndexError(f"case {case} is outside the test split (0..{len(test) - 1})")
    sample = test[int(case)]
    pred = None
    if int(trial) != 0:
        out["notes"].append(f"Predictions are saved for trial 0 only: trial {trial}'s metrics "
                            "are shown, its per-case predictions are not stored.")
    elif not predictions_path(root, task, encoder, fraction, h).is_file():
        out["notes"].append("Trial 0's predictions file is missing: " + run + ".")
    else:
        arr = load_predictions(cur, task, encoder, fraction, results_dir=root)
        if len(arr) != len(test):
            out["notes"].append(f"The saved predictions cover {len(arr)} cases, the test split "
                                f"has {len(test)}: they belong to other data; {run}.")
        else:
            pred = arr[int(case)]
    truth, prediction, scores = _case_view(t, sample, pred)
    img = np.asarray(sample["image"], np.float32)
    out.update(available=True, message="", image=img.reshape(img.shape[-2:]),
               sample=sample, truth=truth, prediction=prediction, case_scores=scores,
               case_id=sample["meta"].get("case_id", str(case)),
               predictions_available=prediction is not None)
    return out


def results_metrics_table(result: dict):
    """The trial's metrics as a small table (primary metric first)."""
    import pandas as pd

    m = result.get("metrics") or {}
    training = ("val_", "train_", "best_", "loss_")  # training records after test metrics
    order = sorted(m, key=lambda k: (k != result.get("primary"), k.startswith(training)))
    return pd.DataFrame({"metric": order, "value": [m[k] for k in order]}).set_index("metric")


def results_figure(result: dict):
    """The case drawn with the downstream notebooks' helpers (``downstream.plots``):
    prediction against ground truth, or the ground truth alone when no prediction is stored;
    None when there are no results."""
    import matplotlib.pyplot as plt

    from .downstream import plots as P
    from .downstream.registry import get_task
    from .sim.gallery import draw_labels

    if not result.get("available"):
        return None
    t = get_task(result["task"])
    img, truth, pred = result["image"], result["truth"], result["prediction"]
    enc, score = result["encoder"], result["case_scores"]
    title = (f"{t.title}\ntest case {result['case']} ({result['case_id']}), {enc}, trial "
             f"{result['trial']} ({result['profile']})")
    cap = ", ".join(f"{k} {v:.2f}" for k, v in score.items())
    if pred is None:  # ground truth only
        fig, ax = plt.subplots(figsize=(3.6, 3.9))
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        if t.kind in ("segmentation", "detection", "landmarks"):
            draw_labels(ax, result["sample"])
        ax.axis("off")
        facts = [f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}"[:60]
                 for k, v in truth.items() if isinstance(v, (str, float)) and k != "report"]
        ax.set_title("\n".join(["ground truth", *facts, "(no stored prediction: see the "
                                                         "notes)"]), fontsize=7)
        fig.suptitle(title, fontsize=8, wrap=True)
        fig.tight_layout()
        return fig
    if t.kind == "segmentation":
        return P.segmentation_examples([(t.dataset, list(t.classes), img, truth["mask"],
                                         pred["mask"], score["mDSC"])], title=title, model=enc)
    if t.kind == "detection":
        ctr = f"; CTR true {truth['ctr']:.2f}, predicted {pred['ctr']:.2f}" \
            if truth.get("ctr") is not None else ""
        fig = P.ellipse_examples([(img, truth["ellipses"], pred["ellipses"], cap + ctr)],
                                 title=title, classes=tuple(t.classes[1:]))
        fig.set_size_inches(5.4, 5.0)  # the helper sizes panels for a row of several
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        return fig
    if t.kind == "landmarks":
        fig = P.landmark_examples([(img, truth["landmarks"], pred["landmarks"], cap)],
                                  title=title)
        fig.set_size_inches(5.0, 5.0)
        fig.tight_layout()
        return fig
    if t.kind == "enhancement":
        high = truth["target"] if truth["target"] is not None else np.zeros_like(img)
        return P.enhancement_examples(img[None], {enc: pred["image"][None]}, high[None],
                                      [truth["organ"] or "case"], title=title)
    if t.kind == "report":
        from .downstream.report_text import plot_report_examples

        return plot_report_examples([{"case_id": result["case_id"],
                                      "reference": truth["report"],
                                      "predictions": {enc: pred["report"]}}], title=title)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.4),
                                  gridspec_kw={"width_ratios": [1, 1.3]})
    ax.imshow(img, cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    if t.kind == "classification":
        probs = pred["probabilities"]
        names = list(probs)
        colours = [OKABE_ITO[2] if n == truth["class"] else OKABE_ITO[0] for n in names]
        ax2.barh(range(len(names)), list(probs.values()), color=colours)
        ax2.set_yticks(range(len(names)), names, fontsize=8)
        ax2.set_xlim(0, 1)
        ax2.set_xlabel("predicted probability")
        ax2.set_title(f"true class: {truth['class']} (green)\npredicted: {pred['class']}",
                      fontsize=8)
        ax2.grid(axis="x", alpha=0.3)
    else:  # regression: LVEF
        m = truth.get("mask")
        if m is not None and m.ndim == 2 and m.max() > 0:
            ax.contour(m == 1, levels=[0.5], colors=[OKABE_ITO[1]], linewidths=0.9)
        ax.set_title("first frame, LV outline (truth)", fontsize=8)
        ax2.bar([0, 1], [truth["ef"], pred["ef"]], color=[OKABE_ITO[2], OKABE_ITO[0]])
        ax2.set_xticks([0, 1], ["ground truth", f"predicted ({enc})"])
        ax2.set_ylabel("LVEF (%)")
        ax2.set_ylim(min(0.0, truth["ef"], pred["ef"]) - 5, max(100.0, pred["ef"] + 5))
        ax2.axhline(0, color="black", lw=0.6)
        ax2.set_title(f"LVEF true {truth['ef']:.1f} %, predicted {pred['ef']:.1f} %", fontsize=8)
        ax2.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=8, wrap=True)
    fig.tight_layout()
    return fig


class _Note:
    """Plain text that displays without quotes (``display("text")`` shows a str's repr)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _results_extra(result: dict) -> tuple:
    if not result.get("available"):
        return ()
    table = results_metrics_table(result)
    return (table, _Note("\n".join(result["notes"]))) if result["notes"] else (table,)


def show_results(task: str = "breast_birads", encoder: str = "echocare", *,
                 interactive: bool | None = None, show: bool = True, **settings) -> WidgetView:
    """Results browser (notebooks 03-09, 11): application, encoder, trial and test case."""
    if not is_interactive(interactive):
        result = results_view(task, encoder, **settings)
        if not result["available"]:
            if show:
                print(result["message"])
            return WidgetView("results browser", False, result, text=result["message"])
        return _static("results browser", result, results_figure(result), show,
                       extra=_results_extra(result),
                       text=f"{task}, {encoder}, trial {result['trial']}, case {result['case']}")
    import ipywidgets as W

    from .downstream.registry import TASKS

    trial0, case0 = settings.pop("trial", 0), settings.pop("case", 0)
    first = results_view(task, encoder, trial0, case0, **settings)
    style = {"description_width": "initial"}
    controls = {
        "task": W.Dropdown(options=list(TASKS), value=task, description="application"),
        "encoder": W.Dropdown(options=first["encoders"] or [encoder],
                              value=encoder if encoder in (first["encoders"] or [encoder])
                              else first["encoders"][0], description="encoder"),
        "trial": W.IntSlider(value=trial0, min=0, max=max(first["trials"] or [0]),
                             description="trial", continuous_update=False, style=style),
        "case": W.IntSlider(value=case0, min=0, max=max(first.get("n_cases", 1) - 1, 0),
                            description="test case", continuous_update=False, style=style),
    }
    busy = {"on": False}

    def render(task, encoder, trial, case):
        if busy["on"]:
            return None, None, ()
        result = results_view(task, encoder, trial, case, **settings)
        if not result["available"]:
            return result, None, (_Note(result["message"]),)
        return result, results_figure(result), _results_extra(result)

    view = _live("results browser", controls, render, show, skip=("task",))

    def new_task(_change) -> None:
        """Another application: its encoders, trials and cases, then one redraw."""
        if busy["on"]:
            return
        busy["on"] = True
        try:
            probe = results_view(controls["task"].value, controls["encoder"].value, 0, 0,
                                 **settings)
            encs = probe["encoders"] or [controls["encoder"].value]
            keep = controls["encoder"].value if controls["encoder"].value in encs else encs[0]
            controls["encoder"].options = encs
            controls["encoder"].value = keep
            if keep != probe["encoder"]:
                probe = results_view(controls["task"].value, keep, 0, 0, **settings)
            controls["trial"].max = max(probe["trials"] or [0])
            controls["trial"].value = 0
            controls["case"].max = max(probe.get("n_cases", 1) - 1, 0)
            controls["case"].value = min(controls["case"].value, controls["case"].max)
        finally:
            busy["on"] = False
        view.update()

    controls["task"].observe(new_task, names="value")
    return view
