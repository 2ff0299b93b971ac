"""The simulator's physics against theory: Rayleigh speckle, PSF-sized speckle, attenuation,
shadowing, enhancement, geometry, determinism."""
from dataclasses import replace

import numpy as np
import pytest

from echocare_lib.sim import TISSUES, Ellipse, Probe, Processing, Scene, acquire, psf_for, simulate
from echocare_lib.sim.geometry import BeamGrid
from echocare_lib.sim.physics import _pads, beamform, log_compress
from echocare_lib.sim.stats import RAYLEIGH_SNR, envelope_snr, speckle_size

QUIET = Processing(noise_db=-300, tgc_match=0.0)  # no noise, no TGC: pure speckle


def homogeneous(**tissue):
    return Scene(background=TISSUES["soft"].with_(atten=0.0, **tissue))


def fine_grid(probe, depth=20.0, samples_per_sigma=2.5):
    psf = psf_for(probe)
    n_depth = int(depth / (psf.sigma_axial_mm / samples_per_sigma))
    n_lines = int(probe.width_mm / (psf.sigma_lateral_focus_mm / samples_per_sigma))
    return BeamGrid(probe, depth, n_depth, n_lines)


def test_fully_developed_speckle_is_rayleigh():
    probe = Probe("linear", f0_mhz=5.0, bandwidth=0.6, width_mm=20, focus_mm=10, f_number=2)
    grid = fine_grid(probe)
    snrs = [envelope_snr(beamform(homogeneous(), grid, QUIET, np.random.default_rng(s)).envelope)
            for s in range(3)]
    assert abs(np.mean(snrs) / RAYLEIGH_SNR - 1) < 0.05, snrs
    assert RAYLEIGH_SNR == pytest.approx(1.913, abs=1e-3)


def test_few_scatterers_give_pre_rayleigh_speckle():
    probe = Probe("linear", f0_mhz=5.0, bandwidth=0.6, width_mm=20, focus_mm=10, f_number=2)
    grid = fine_grid(probe)
    env = beamform(homogeneous(density=0.5), grid, QUIET, np.random.default_rng(0)).envelope
    assert envelope_snr(env) < 0.9 * RAYLEIGH_SNR


@pytest.mark.parametrize("f0,f_number", [(5.0, 2.0), (3.0, 1.5), (7.5, 3.0)])
def test_speckle_size_follows_the_psf(f0, f_number):
    probe = Probe("linear", f0_mhz=f0, bandwidth=0.6, width_mm=20, focus_mm=10, f_number=f_number)
    psf = psf_for(probe)
    grid = fine_grid(probe)
    env = beamform(homogeneous(), grid, QUIET, np.random.default_rng(1)).envelope
    band = env[int(8 / grid.dz): int(12 / grid.dz), 10:-10]  # around the focus
    axial_mm = speckle_size(band, 0, intensity=True) * grid.dz
    lateral_mm = speckle_size(band, 1, intensity=True) * probe.width_mm / (grid.n_lines - 1)
    # Speckle size = FWHM of the intensity autocovariance (Wagner 1983): axially that of the
    # pulse-echo spectrum, laterally 2.355 sigma of the Gaussian beam.
    assert axial_mm == pytest.approx(psf.axial_speckle_mm, rel=0.15)
    assert lateral_mm == pytest.approx(2.355 * psf.sigma_lateral_focus_mm, rel=0.15)


def test_pulse_echo_spectrum_is_a_generalised_normal_window():
    from echocare_lib.sim.physics import spectrum_exponent

    psf = psf_for(Probe("linear", f0_mhz=5.0, bandwidth=0.6))
    half = 0.6 * 5.0 / 2
    assert psf.axial_spectrum(np.array([0.0, half, -half])) == pytest.approx([1.0, 0.5, 0.5])
    # SIMUS/MUST's exponent: nothing at DC (or 2 f0) whatever the bandwidth
    for b in (0.45, 0.6, 0.85):
        p = psf_for(Probe("linear", f0_mhz=5.0, bandwidth=b))
        assert p.axial_spectrum(np.array([-5.0, 5.0])).max() < 1e-30
        assert spectrum_exponent(b) == pytest.approx(np.log(126) / np.log(2 / b))
    # flatter-topped than a Gaussian of the same -6 dB band: longer axial speckle (~9 %)
    assert 1.05 < psf.axial_speckle_mm / (2.355 * psf.sigma_axial_mm) < 1.12


def test_transmit_burst_lowers_and_narrows_the_echo_band():
    from echocare_lib.sim.physics import excitation_spectrum

    impulse = psf_for(Probe("linear", f0_mhz=7.6, bandwidth=0.77))
    assert impulse.echo_band_mhz == pytest.approx((7.6 * (1 - 0.385), 7.6 * (1 + 0.385)))
    assert (impulse.fc_mhz, impulse.echo_bandwidth) == (7.6, 0.77)
    one = psf_for(Probe("linear", f0_mhz=7.6, bandwidth=0.77, tx_cycles=1))
    # a one-cycle burst weights low frequencies: centre 7.42 MHz, band 0.723 (the values
    # pymust's own spectrum functions give for its L11-5v; checked against pymust below)
    assert one.fc_mhz == pytest.approx(7.423, abs=0.01)
    assert one.echo_bandwidth == pytest.approx(0.7233, abs=0.003)
    assert one.axial_speckle_mm > impulse.axial_speckle_mm
    assert one.sigma_axial_mm > impulse.sigma_axial_mm
    assert one.sigma_lateral_focus_mm > impulse.sigma_lateral_focus_mm  # lower centre freq.
    long = psf_for(Probe("linear", f0_mhz=5.0, bandwidth=0.6, tx_cycles=20))
    assert long.echo_bandwidth < 0.1 and long.fc_mhz == pytest.approx(5.0, rel=0.01)
    # the burst's spectrum: nil at DC and 2 f0, positive between, for one cycle
    f = np.linspace(0.0, 2 * 5.0, 201)
    spec = excitation_spectrum(f, 5.0, 1)
    assert spec[0] < 1e-12 and spec[-1] < 1e-12 and (spec[1:-1] > 0).all()
    with pytest.raises(ValueError, match="tx_cycles"):
        Probe("linear", tx_cycles=0.2)


def test_echo_band_matches_pymust_spectrum_functions():
    pymust = pytest.importorskip("pymust")  # optional: pip install -e .[bench]
    param = pymust.getparam("L11-5v")
    f = np.linspace(1e3, 2 * param.fc, 40001)
    w = 2 * np.pi * f
    amp = np.abs(param.getPulseSpectrumFunction(None)(w) * param.getProbeFunction()(w) ** 2)
    band = f[amp >= amp.max() / 2] / 1e6
    ours = psf_for(Probe("linear", f0_mhz=param.fc / 1e6, bandwidth=param.bandwidth / 100,
                         tx_cycles=float(param.TXnow)))
    assert ours.echo_band_mhz == pytest.approx((band[0], band[-1]), abs=0.002)


def test_psf_scales_with_wavelength_bandwidth_and_f_number():
    a = psf_for(Probe("linear", f0_mhz=5.0, bandwidth=0.6, f_number=2.0))
    b = psf_for(Probe("linear", f0_mhz=10.0, bandwidth=0.6, f_number=2.0))
    c = psf_for(Probe("linear", f0_mhz=5.0, bandwidth=0.6, f_number=4.0))
    assert b.sigma_axial_mm == pytest.approx(a.sigma_axial_mm / 2)
    assert b.sigma_lateral_focus_mm == pytest.approx(a.sigma_lateral_focus_mm / 2)
    assert c.sigma_lateral_focus_mm == pytest.approx(2 * a.sigma_lateral_focus_mm)
    assert a.sigma_lateral_mm(np.array([10.0 + 3 * a.rayleigh_mm]))[0] > \
        2 * a.sigma_lateral_focus_mm


def test_lateral_speckle_widens_away_from_focus():
    probe = Probe("linear", f0_mhz=5.0, bandwidth=0.6, width_mm=20, focus_mm=8, f_number=2.5)
    grid = fine_grid(probe, depth=30.0)
    env = beamform(homogeneous(), grid, QUIET, np.random.default_rng(2)).envelope
    focal = env[int(6 / grid.dz): int(10 / grid.dz)]
    deep = env[int(24 / grid.dz): int(28 / grid.dz)]
    assert speckle_size(deep, 1, intensity=True) > 1.5 * speckle_size(focal, 1, intensity=True)


def _column_db(frame, x_mm, z0, z1):
    col, _ = frame.display.to_pixel(x_mm, 0)
    _, r0 = frame.display.to_pixel(0, z0)
    _, r1 = frame.display.to_pixel(0, z1)
    c = int(col)
    return float(frame.image[int(r0):int(r1), c - 2:c + 3].mean())


def test_shadowing_behind_calcification_and_enhancement_behind_cyst():
    scene = Scene(background=TISSUES["soft"])
    scene.add(Ellipse(-8, 12, 1.5, 1.5), "calcification")
    scene.add(Ellipse(8, 12, 4, 4), "cyst")
    frame = acquire(scene, np.random.default_rng(0), device="mid_range", depth_mm=40,
                    size=256, probe_changes={"width_mm": 40})
    beside = _column_db(frame, 0, 22, 34)
    assert _column_db(frame, -8, 22, 34) < 0.6 * beside  # acoustic shadow
    assert _column_db(frame, 8, 22, 34) > beside + 0.03  # posterior enhancement
    assert _column_db(frame, 8, 10, 14) < 0.3 * beside  # anechoic fluid


def _transmission(scene, probe, depth=40.0, n_depth=300):
    from echocare_lib.sim.physics import _extended_xz, two_way_transmission

    grid = BeamGrid(probe, depth, n_depth, probe.n_lines)
    pad_z, pad_x = _pads(grid)
    x, z = _extended_xz(grid, pad_z, pad_x)
    props = scene.properties(x, z)
    t = two_way_transmission(props["atten"], props["transmit"], grid, pad_z)
    return t[pad_z: pad_z + n_depth, pad_x: pad_x + probe.n_lines], grid, props


def test_shadows_are_averaged_over_the_beam_and_the_aperture():
    linear = Probe("linear", f0_mhz=7.5, width_mm=40, n_lines=201, f_number=2.0, focus_mm=25)
    # nothing varies laterally: exactly the line-by-line two-way attenuation
    flat, grid, props = _transmission(Scene(background=TISSUES["soft"]), linear)
    tau = 0.6 * 7.5 * grid.dz / 10 * np.log(10) / 20  # one-way Np per sample
    ref = np.exp(-2 * tau * (np.arange(grid.n_depth) + _pads(grid)[0] + 1))
    assert flat[:, 100] == pytest.approx(ref, rel=1e-4)
    # a 12 mm wide bone at 8 mm: dense shadow whose edge softens with depth
    rib = Scene(background=TISSUES["soft"].with_(atten=0.0))
    rib.add(Ellipse(-6, 10, 6, 2), "bone")
    t, grid, _ = _transmission(rib, linear)
    x = grid.u

    def edge_width(z_mm):  # lateral distance over which the shadow edge goes 20 % -> 80 %
        row = t[int(z_mm / grid.dz)]
        right = x > -6
        lo = x[right][np.argmax(row[right] > 0.2)]
        hi = x[right][np.argmax(row[right] > 0.8)]
        return hi - lo

    assert t[int(16 / grid.dz), np.argmin(np.abs(x + 6))] < 0.05  # dense under the bone
    assert t[int(16 / grid.dz), np.argmin(np.abs(x - 14))] > 0.99  # untouched far beside
    assert edge_width(36) > 1.5 * edge_width(16) > 0  # 4.2 vs 2.2 mm
    # a 1 mm calcification: a dense shadow with the transmit focus at its depth, a faint one
    # with the focus far below it (the beam is wide there)
    calc = Scene(background=TISSUES["soft"].with_(atten=0.0))
    calc.add(Ellipse(0, 10, 0.5, 0.5), "calcification")
    near, grid, _ = _transmission(calc, replace(linear, focus_mm=10.0))
    far, _, _ = _transmission(calc, replace(linear, focus_mm=35.0))
    below = (int(20 / grid.dz), 100)
    assert near[below] < 0.2 and far[below] > 0.5  # 0.04 vs 0.67


def test_reverberations_are_painted_in_the_shadow_not_shadowed():
    gas = TISSUES["soft"].with_(name="gas", transmit=0.03)
    echo = TISSUES["soft"].with_(name="reverberation", wall=(3.0, 0.5), reverb=True)
    probe = Probe("linear", f0_mhz=7.5, width_mm=30, n_lines=128, focus_mm=15)
    frames = {}
    for reverb in (True, False):
        sc = Scene(background=TISSUES["soft"])
        sc.add(Ellipse(0, 8, 6, 1.5), gas)
        sc.add(Ellipse(0, 24, 4, 0.6), echo.with_(reverb=reverb))
        frames[reverb] = simulate(sc, probe, Processing(noise_db=-300), depth_mm=35,
                                  out_shape=(140, 128), rng=np.random.default_rng(0))
    assert "reverb" in frames[True].beam.props and "reverb" not in frames[False].beam.props
    r0, r1 = (int(z / frames[True].grid.dz) for z in (23.5, 24.5))
    line = frames[True].grid.n_lines // 2
    shown = frames[True].beam.envelope[r0:r1, line - 3: line + 4].mean()
    hidden = frames[False].beam.envelope[r0:r1, line - 3: line + 4].mean()
    assert shown > 30 * hidden  # the shadow (-60 dB two-way) does not dim the reverberation


def test_tgc_compensates_attenuation():
    scene = Scene(background=TISSUES["soft"].with_(atten=0.6, texture=(0, 1)))
    probe = Probe("linear", f0_mhz=5.0, width_mm=30, n_lines=128)
    on = simulate(scene, probe, Processing(noise_db=-300, tgc_match=1.0, nominal_atten=0.6),
                  depth_mm=60, out_shape=(128, 128), rng=np.random.default_rng(0))
    off = simulate(scene, probe, Processing(noise_db=-300, tgc_match=0.0),
                   depth_mm=60, out_shape=(128, 128), rng=np.random.default_rng(0))

    def db(env, z):
        i = int(z / on.grid.dz)
        return 20 * np.log10(env[i - 5:i + 5].mean())

    flat = db(on.beam.envelope, 50) - db(on.beam.envelope, 10)
    fall = db(off.beam.envelope, 50) - db(off.beam.envelope, 10)
    assert abs(flat) < 1.5
    # two-way attenuation 0.6 dB/cm/MHz x 5 MHz x 2 x 4 cm = 24 dB
    assert fall == pytest.approx(-24, abs=2.0)


@pytest.mark.parametrize("kind", ["linear", "convex", "phased"])
def test_geometry_and_labels_align(kind):
    scene = Scene()
    scene.add(Ellipse(4, 35, 8, 8), "cyst", label="cyst")
    frame = acquire(scene, np.random.default_rng(0), probe=kind, depth_mm=60, size=128)
    mask = frame.mask(scene, "cyst")
    rows, cols = np.nonzero(mask)
    cx, cz = frame.display.to_pixel(4, 35)
    assert abs(cols.mean() + 0.5 - cx) < 1 and abs(rows.mean() + 0.5 - cz) < 1
    area_mm2 = mask.sum() * frame.pixel_spacing_mm ** 2
    assert area_mm2 == pytest.approx(np.pi * 64, rel=0.1)
    # the cyst is dark in the image exactly where its mask is (core, away from its bright wall)
    x, z = frame.pixel_xz()
    core = Ellipse(4, 35, 5, 5).inside(x, z) & frame.fov
    assert frame.image[core].mean() < 0.5 * frame.image[frame.fov & ~mask].mean()
    if kind == "linear":
        assert frame.fov[:, 10:-10].all() or frame.fov.mean() > 0.5
    else:  # sectors leave black corners, as on a scanner
        assert not frame.fov[0, 0] and not frame.fov[0, -1] and frame.fov.mean() < 0.9


def test_scene_windows_give_the_same_maps_as_point_by_point_sampling():
    """Scene.properties / label_map evaluate objects in index windows of axis-aligned grids
    and on window copies of sector grids; the maps equal those of the plain point list."""
    from echocare_lib.sim.geometry import make_display
    from echocare_lib.sim.physics import _extended_xz, _pads, choose_grid
    from echocare_lib.sim.scene import Layer, Polygon
    from echocare_lib.sim.tasks.neck import ell

    scene = Scene(background=TISSUES["soft"].with_(texture=(0.3, 1.0)))
    scene.add(Layer(0.0, 3.0, 0.5, 30.0), "skin", "skin")
    scene.add(Ellipse(2, 25, 6, 4, 30), "liver", "organ", halo=(0.5, 1.0))
    scene.add(ell(-4, 20, 3, 2, 10), "cyst", "cyst")  # box-limited wrapper
    scene.add(Polygon(((-8, 30), (-2, 30), (-5, 36))), "bone", "bone")
    for kind in ("linear", "convex", "phased"):
        probe = Probe(kind, f0_mhz=5.0, width_mm=30, sector_deg=60)
        display = make_display(probe, 45, 64, 64)
        grid = choose_grid(probe, 45, display)
        x, z = _extended_xz(grid, *_pads(grid))
        grid_maps = scene.properties(x, z)
        point_maps = scene.properties(np.ravel(x), np.ravel(z))
        for key, value in grid_maps.items():
            assert np.array_equal(value, point_maps[key].reshape(x.shape)), (kind, key)
        xp, zp = display.pixel_centres()
        assert np.array_equal(scene.label_map(xp, zp),
                              scene.label_map(xp.ravel(), zp.ravel()).reshape(xp.shape))
        assert np.array_equal(scene.mask(xp, zp, "organ"),
                              Ellipse(2, 25, 6, 4, 30).inside(xp, zp))


def test_cine_texture_is_drawn_once_and_frames_keep_their_bits():
    """A cine loop re-seeds one stream per frame to keep its tissue texture still; the
    texture is then drawn once, and the stream continues exactly as if it had been redrawn."""
    from echocare_lib.sim.geometry import make_display
    from echocare_lib.sim.physics import choose_grid, texture_field

    probe = Probe("linear", f0_mhz=7.0, width_mm=30)
    grid = choose_grid(probe, 30, make_display(probe, 30, 64, 64))
    a_rng, b_rng = np.random.default_rng(11), np.random.default_rng(11)
    a = texture_field(grid, a_rng)
    b = texture_field(grid, b_rng)  # memo hit
    assert np.array_equal(a, b)
    assert np.array_equal(a_rng.standard_normal(5), b_rng.standard_normal(5))
    assert not np.array_equal(a, texture_field(grid, np.random.default_rng(12)))


def test_cached_bilinear_resampling_equals_scipy():
    """Scan conversion and the texture's zoom use precomputed bilinear taps; they give
    scipy.ndimage's order-1 results (bit for bit with scipy 1.17; 1e-6 allowed here)."""
    from scipy.ndimage import map_coordinates, zoom

    from echocare_lib.sim.geometry import _scan_map, make_display, scan_convert
    from echocare_lib.sim.physics import _zoom_linear, choose_grid

    rng = np.random.default_rng(0)
    for kind in ("linear", "convex", "phased"):
        probe = Probe(kind, f0_mhz=5.0, width_mm=30, sector_deg=70)
        display = make_display(probe, 50, 64, 64)
        grid = choose_grid(probe, 50, display)
        beam = rng.random((grid.n_depth, grid.n_lines)).astype(np.float32)
        coords, fov = _scan_map(grid, display)
        ref = np.where(fov, map_coordinates(beam, coords, order=1, mode="nearest",
                                            prefilter=False), 0.0)
        img, mask = scan_convert(beam, grid, display)
        assert np.array_equal(mask, fov) and np.allclose(img, ref, rtol=0, atol=1e-6)
    for shape, factors in (((105, 107), (0.97, 0.98)), ((54, 55), (1.9, 1.9)), ((9, 30), (4, 1))):
        a = rng.standard_normal(shape).astype(np.float32)
        ref = zoom(a, factors, order=1)
        out = _zoom_linear(a, factors)
        assert out.shape == ref.shape and np.allclose(out, ref, rtol=0, atol=1e-6)


def test_same_seed_same_bits_and_new_seed_new_speckle():
    scene = Scene()
    scene.add(Ellipse(0, 20, 5, 3), "lesion_hypo", "lesion")
    a = acquire(scene, np.random.default_rng(5), device="high_end", size=96)
    b = acquire(scene, np.random.default_rng(5), device="high_end", size=96)
    c = acquire(scene, np.random.default_rng(6), device="high_end", size=96)
    assert np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


def test_log_compression_maps_dynamic_range():
    proc = Processing(dynamic_range_db=60, gain_db=0)
    env = np.array([1e-4, 1e-3, 1.0, 10.0])
    out = log_compress(env, proc)
    assert out[0] == 0 and out[2] == pytest.approx(1.0) and out[3] == 1.0
    assert out[1] == pytest.approx(0.0) and 0 <= out.min() <= out.max() <= 1


def test_bad_probe_parameters_are_refused():
    with pytest.raises(ValueError, match="probe kind"):
        Probe("curvilinear")
    with pytest.raises(ValueError, match="f0_mhz"):
        Probe("linear", f0_mhz=100)


def test_parallel_generation_is_bit_identical():
    from echocare_lib.sim.tasks import generate

    a = generate("breast_birads", 4, size=64, seed=2)
    b = generate("breast_birads", 4, size=64, seed=2, n_jobs=2)
    for x, y in zip(a, b):
        assert np.array_equal(x["image"], y["image"]) and np.array_equal(x["mask"], y["mask"])
    with pytest.raises(KeyError, match="known tasks"):
        generate("no_such_task", 1, size=64)
    with pytest.raises(ValueError, match="split"):
        generate("breast_birads", 1, size=64, split="holdout")


def test_tube_tapers_has_round_ends_and_walls_of_even_thickness():
    from echocare_lib.sim import Tube

    t = Tube(0.0, 0.0, 40.0, 0.0, 6.0, 2.0)
    x = np.linspace(-10, 50, 601)[None, :]
    z = np.linspace(-10, 10, 201)[:, None]
    rho = t.rho(x, z)
    # the local radius along the axis: 6 mm at the start, 4 mm halfway, 2 mm at the end
    for x0, r in ((0.0, 6.0), (20.0, 4.0), (40.0, 2.0)):
        col = np.argmin(np.abs(x[0] - x0))
        inside = z[:, 0][rho[:, col] < 1.0]
        assert inside.max() == pytest.approx(r, abs=0.11)
    assert t.rho(np.array(46.0), np.array(0.0)) > 1.0  # rounded end: 2 mm past the tip at most
    assert t.rho(np.array(41.9), np.array(0.0)) < 1.0
    # |rho - 1| * scale_mm is the true distance to the surface, so a wall drawn at a fixed
    # distance has the same thickness in mm at the wide and the narrow end
    for x0, r in ((5.0, 5.5), (35.0, 2.5)):
        d = (t.rho(np.array(x0), np.array(r + 1.0)) - 1.0) * t.scale_mm
        assert d == pytest.approx(1.0, abs=1e-9)
    xmin, xmax, zmin, zmax = t.bbox()
    assert (xmin, xmax, zmin, zmax) == (-6.0, 46.0, -6.0, 6.0)
    assert not (rho[:, (x[0] < xmin) | (x[0] > xmax)] < 1).any()
