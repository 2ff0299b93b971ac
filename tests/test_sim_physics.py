"""The simulator's physics against theory: Rayleigh speckle, PSF-sized speckle, attenuation,
shadowing, enhancement, geometry, determinism."""
import numpy as np
import pytest

from echocare_lib.sim import TISSUES, Ellipse, Probe, Processing, Scene, acquire, psf_for, simulate
from echocare_lib.sim.geometry import BeamGrid
from echocare_lib.sim.physics import beamform, log_compress
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
    # Intensity autocovariance of Gaussian-PSF speckle has FWHM 2.355 sigma (Wagner 1983).
    assert axial_mm == pytest.approx(2.355 * psf.sigma_axial_mm, rel=0.15)
    assert lateral_mm == pytest.approx(2.355 * psf.sigma_lateral_focus_mm, rel=0.15)


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
