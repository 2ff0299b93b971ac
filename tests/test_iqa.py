"""Blind image-quality metrics (echocare_lib/downstream/iqa.py) against their reference
implementations, on a natural image and its degraded copies."""
import pickle
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skimage.data
import torch
from scipy import ndimage

from echocare_lib.downstream import iqa
from echocare_lib.paths import project_root


def _block_mean(img: np.ndarray, f: int) -> np.ndarray:
    """Downsample by f with f x f block means, rounded to 8 bits: the same image in any numpy."""
    h, w = img.shape
    return img.reshape(h // f, f, w // f, f).mean((1, 3)).round() / 255.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


CAMERA = skimage.data.camera()  # 512x512 uint8, public domain
CAM256 = _block_mean(CAMERA, 2)
CAM64 = _block_mean(CAMERA, 8)


def _degraded(img):
    rng = np.random.default_rng(0)
    return {"blur": ndimage.gaussian_filter(img, 1.5),
            "noise": np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)}


# ------------------------------------------------------------------- reference values
def test_niqe_matches_mmagic():
    # mmagic 1.2.0's own niqe(img, crop_border=0, input_order='HW') on the same 8-bit image
    # gives 4.77049 (mmagic works partly in float32; this module in float64).
    assert iqa.niqe(CAM256) == pytest.approx(4.77049, abs=1e-3)


@pytest.mark.parametrize("factor, expected", [(2, 4.067887), (4, 5.642846)])
def test_brisque_matches_the_brisque_package(factor, expected):
    # BRISQUE(url=False).score() of the brisque 0.2.0 package, on numpy 1.26 where it runs
    # unpatched, for the same 8-bit image as a gray RGB array.
    assert iqa.brisque(_block_mean(CAMERA, factor)) == pytest.approx(expected, abs=0.01)


def test_piqe_matches_pypiqe_on_8bit_data():
    from pypiqe import piqe

    levels = np.round(CAM256 * 255)
    assert iqa.piqe(CAM256) == pytest.approx(piqe(levels)[0])
    assert iqa.piqe(CAM256) == pytest.approx(piqe(levels.astype(np.uint8))[0])


def test_matlab_bicubic_resize():
    # The identity at equal size (MATLAB's imresize of magic(4) to 4x4).
    m = np.array([[16, 2, 3, 13], [5, 11, 10, 8], [9, 7, 6, 12], [4, 14, 15, 1]], float)
    np.testing.assert_allclose(iqa._imresize(m, (4, 4)), m, atol=1e-12)
    # Halving a constant or a linear ramp keeps it constant / linear (weights sum to 1).
    ramp = np.tile(np.arange(32.0), (32, 1))
    half = iqa._imresize(ramp, (16, 16))
    np.testing.assert_allclose(np.diff(half[:, 4:-4], axis=1), 2.0, atol=1e-9)
    assert iqa._imresize(np.full((20, 30), 7.0), (60, 90)) == pytest.approx(7.0)


# ----------------------------------------------------------------- degradations
@pytest.mark.parametrize("name", ["NIQE", "BRISQUE", "PIQE"])
def test_degradation_scores_worse(name):
    metric = iqa.METRICS[name]
    clean = metric(CAM256)
    for kind, img in _degraded(CAM256).items():
        assert metric(img) > clean + 1, f"{name}: {kind} did not score worse than the original"
    assert iqa.HIGHER_IS_BETTER[name] is False


def test_usual_ranges():
    assert 2 < iqa.niqe(CAM256) < 8
    assert -10 < iqa.brisque(CAM256) < 30
    assert 0 <= iqa.piqe(CAM256) <= 100


def test_cpu_profile_size_64_works():
    scores = {name: fn(CAM64) for name, fn in iqa.METRICS.items()}
    assert all(np.isfinite(v) for v in scores.values()), scores
    # NIQE upsamples 64 -> 192 (documented); without that it refuses.
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        iqa.niqe(CAM64, min_side=None)


def test_channel_first_and_float32_inputs_agree():
    img = CAM256.astype(np.float32)
    assert iqa.niqe(img[None]) == pytest.approx(iqa.niqe(CAM256))
    assert iqa.piqe(img[None]) == pytest.approx(iqa.piqe(CAM256))


# ---------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("fn", [iqa.niqe, iqa.brisque, iqa.piqe])
def test_bad_inputs_raise(fn):
    with pytest.raises(ValueError, match="shape"):
        fn(np.zeros((2, 64, 64)))
    with pytest.raises(ValueError, match="shape"):
        fn(np.zeros(64))
    with pytest.raises(ValueError, match="smaller"):
        fn(np.zeros((8, 64)))
    bad = CAM64.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad)
    with pytest.raises(ValueError, match="divide 8-bit"):
        fn(CAM64 * 255)


@pytest.mark.parametrize("fn", [iqa.niqe, iqa.brisque])
def test_constant_image_is_undefined(fn):
    with pytest.raises(ValueError, match="constant"):
        fn(np.full((64, 64), 0.5))


def test_piqe_of_a_constant_image_is_100():
    assert iqa.piqe(np.zeros((64, 64))) == 100.0
    assert iqa.piqe(np.full((64, 64), 0.3)) == 100.0


# ------------------------------------------------------------ model files, safely
@pytest.fixture
def fresh_caches():
    iqa._niqe_params.cache_clear()
    iqa._brisque_model.cache_clear()
    yield
    iqa._niqe_params.cache_clear()
    iqa._brisque_model.cache_clear()


def test_niqe_params_come_from_the_mmagic_wheel():
    path = iqa._niqe_params_path()
    assert path.name == "niqe_pris_params.npz" and "mmagic" in path.parts
    params = iqa._niqe_params()
    assert params["mu_pris_param"].shape == (1, 36) and params["cov_pris_param"].shape == (36, 36)
    assert params["gaussian_window"].sum() == pytest.approx(1.0)


def test_niqe_rejects_a_tampered_params_file(tmp_path, monkeypatch, fresh_caches):
    copy = tmp_path / "niqe_pris_params.npz"
    shutil.copy(iqa._niqe_params_path(), copy)
    with copy.open("ab") as f:
        f.write(b"\0")
    monkeypatch.setattr(iqa, "_niqe_params_path", lambda: copy)
    with pytest.raises(ValueError, match=re.escape(str(copy)) + ".*sha256.*mmagic==1.2.0"):
        iqa.niqe(CAM256)
    monkeypatch.setattr(iqa, "_niqe_params_path", lambda: tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz.*mmagic==1.2.0"):
        iqa.niqe(CAM256)


def test_niqe_without_mmagic_says_what_to_do(monkeypatch):
    monkeypatch.setattr(iqa.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="make env"):
        iqa._niqe_params_path()


def test_brisque_never_calls_pickle_load(monkeypatch, fresh_caches):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle.load called")

    monkeypatch.setattr(pickle, "load", refuse)
    assert np.isfinite(iqa.brisque(CAM64))


def test_brisque_scaling_file_is_checked_and_read_as_data_only(tmp_path):
    from brisque.models import MODEL_PATH

    copy = tmp_path / "normalize.pickle"
    shutil.copy(Path(MODEL_PATH) / "normalize.pickle", copy)
    scaling = iqa._brisque_scaling(copy)
    assert len(scaling["min_"]) == len(scaling["max_"]) == 36
    copy.write_bytes(pickle.dumps({"min_": [0.0] * 36, "max_": [1.0] * 36}))
    with pytest.raises(ValueError, match="sha256"):
        iqa._brisque_scaling(copy)
    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        iqa._DataOnlyUnpickler(__import__("io").BytesIO(pickle.dumps(print))).load()


# ------------------------------------------------------------------------------- FD
@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def _crops(img, n=4, size=128):
    step = (img.shape[0] - size) // (n - 1)
    return [img[i * step:i * step + size, j * step:j * step + size] for i, j in
            zip(range(n), range(n - 1, -1, -1))]


def test_frechet_distance_zero_for_same_set_and_grows_with_degradation(no_network):
    real = _crops(CAMERA / 255.0)
    same = iqa.frechet_distance(real, real)
    assert same == pytest.approx(0.0, abs=1e-2)
    assert iqa.frechet_distance(np.stack(real), np.stack(real)[:, None]) == same  # deterministic
    blurred = iqa.frechet_distance(real, [ndimage.gaussian_filter(c, 2.0) for c in real])
    noised = iqa.frechet_distance(real, [_degraded(c)["noise"] for c in real])
    assert blurred > 10 and noised > 10
    assert "not comparable to published FID" in iqa.FD_LABEL


def test_frechet_distance_bad_inputs():
    real = _crops(CAM64, n=2, size=32)
    with pytest.raises(ValueError, match="at least two"):
        iqa.frechet_distance(real[:1], real)
    with pytest.raises(ValueError, match="shape"):
        iqa.frechet_distance(np.zeros((2, 2, 32, 32)), real)
    with pytest.raises(ValueError, match="unknown extractor"):
        iqa.frechet_distance(real, real, extractor="inception-v4")
    with pytest.raises(ValueError, match="never downloaded"):
        iqa.frechet_distance(real, real, extractor="inception")
    with pytest.raises(FileNotFoundError, match="not found"):
        iqa.frechet_distance(real, real, inception_weights="/nonexistent/inception.pth")


@pytest.fixture
def fake_inception_weights(tmp_path, monkeypatch):
    """A state dict with the layout of torch-fidelity's Inception-v3 (random values), made
    without downloading."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    with monkeypatch.context() as m:
        m.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None)
        torch.manual_seed(0)
        state = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    path = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    return path


def test_inception_route_loads_user_weights_offline(fake_inception_weights, no_network):
    # The full distance needs eigenvalues of a 2048x2048 matrix (~45 s on 2 cores): check the
    # route up to the features.
    metric = iqa._inception_metric(fake_inception_weights)
    batch = iqa._inception_batch(_crops(CAM64, n=2, size=48))
    assert batch.dtype == torch.uint8 and batch.shape == (2, 3, 48, 48)
    with torch.inference_mode():
        metric.update(batch, real=True)
    assert int(metric.real_features_num_samples) == 2
    assert metric.real_features_sum.shape == (2048,)


def test_inception_route_refuses_code_in_the_weights_file(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "payload": Path("/")}, path)  # not weights-only
    with pytest.raises(ValueError, match="not a weights-only"):
        iqa._inception_metric(path)
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="does not hold torch-fidelity"):
        iqa._inception_metric(path)


# ------------------------------------------------------------------------- a table
def test_blind_quality_table():
    images = np.stack([CAM64, _degraded(CAM64)["blur"], _degraded(CAM64)["noise"]])
    df = iqa.blind_quality(images[:, None])
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["image", "NIQE", "BRISQUE", "PIQE"]
    assert list(df["image"]) == [0, 1, 2]
    assert df["PIQE"].iloc[0] == pytest.approx(iqa.piqe(CAM64))
    only = iqa.blind_quality(list(images[:2]), metrics=("PIQE",))
    assert list(only.columns) == ["image", "PIQE"] and len(only) == 2
    with pytest.raises(ValueError, match="unknown metrics"):
        iqa.blind_quality(images, metrics=("SSIM",))
    with pytest.raises(ValueError, match="one array"):
        iqa.blind_quality(CAM64)


# -------------------------------------------------------------------- build files
def test_no_deps_installs_are_pinned_like_the_lock():
    """mmagic and pypiqe are installed --no-deps by the Makefile, outside pyproject: their pins
    there must be the lock's."""
    root = project_root()
    makefile = (root / "Makefile").read_text()
    lock = (root / "requirements/constraints.txt").read_text()
    for name in ("mmagic", "pypiqe"):
        pinned = re.search(rf"--no-deps[^\n]*(?:\\\n[^\n]*)*\b{name}==([\w.]+)", makefile)
        assert pinned, f"the Makefile does not install {name}==<version> with --no-deps"
        assert f"\n{name}=={pinned.group(1)}\n" in lock


def test_frechet_distance_reuses_reference_features_with_the_same_result(no_network):
    real = _crops(CAMERA / 255.0)
    fake = [ndimage.gaussian_filter(c, 2.0) for c in real]
    iqa._REAL_FEATURES.clear()
    first = iqa.frechet_distance(real, fake)             # computes the reference features
    assert len(iqa._REAL_FEATURES) == 1
    again = iqa.frechet_distance([c.copy() for c in real], fake)  # same content: reused
    assert again == first and len(iqa._REAL_FEATURES) == 1
    other = iqa.frechet_distance(real, [_degraded(c)["noise"] for c in real])
    iqa._REAL_FEATURES.clear()
    assert iqa.frechet_distance(real, [_degraded(c)["noise"] for c in real]) == other  # fresh
    shifted = [np.clip(c + 0.05, 0, 1) for c in real]   # another reference: its own features
    assert iqa.frechet_distance(shifted, fake) != first
