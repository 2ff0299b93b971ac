"""The teaching widgets' logic, without a browser: the scanner simulator responds to every
control and its PSF behaves like a probe's; masking hides the requested fraction; the
hierarchy explorer's probabilities are coherent; the results browser reads the real result
store and prediction files; and ``show_*`` renders statically without a frontend.

Small images (64-192 px) and one tiny pretraining step keep the file well under a minute.
"""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from echocare_lib import widgets as W
from echocare_lib.downstream.finetune import ResultStore
from echocare_lib.downstream.trials import save_predictions
from echocare_lib.ontology import LEVELS, load_ontology

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ONTO = load_ontology()


@pytest.fixture
def no_build(tmp_path, monkeypatch):
    """An empty build folder: no checkpoints, no result stores (the real build/ untouched)."""
    monkeypatch.setenv("ECHOCARE_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build"


def _lateral_width(psf_at: dict) -> float:
    """FWHM (mm) measured on the PSF image: samples of the central row at >= half maximum."""
    row = psf_at["image"][len(psf_at["axial_mm"]) // 2]
    step = float(np.diff(psf_at["lateral_mm"]).mean())
    return float((row >= 0.5 * row.max()).sum() * step)


# ------------------------------------------------------------------------------ scanner
def test_scanner_image_changes_with_every_control():
    base = W.scanner_view("thyroid", size=96)
    img = base["image"]
    assert img.shape == (96, 96) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and img[base["fov"]].std() > 0.05
    changed = {
        "gain_db": W.scanner_view("thyroid", gain_db=8.0, size=96)["image"],
        "dynamic_range_db": W.scanner_view("thyroid", dynamic_range_db=40.0, size=96)["image"],
        "depth_mm": W.scanner_view("thyroid", depth_mm=55.0, size=96)["image"],
        "frequency_mhz": W.scanner_view("thyroid", frequency_mhz=6.0, size=96)["image"],
    }
    for name, other in changed.items():
        frac = np.mean(np.abs(other - img) > 1e-3)
        assert frac > 0.2, f"changing {name} changed only {frac:.1%} of the pixels"
    fov = base["fov"]
    assert changed["gain_db"][fov].mean() > img[fov].mean() + 0.05  # more gain: brighter
    # a narrower dynamic range spreads the same echoes over more grey levels: more contrast
    # where neither image is clipped to black or white (60 / 40 dB: 1.5 x the spread)
    narrow = changed["dynamic_range_db"]
    grey = fov & (img > 0.01) & (img < 0.99) & (narrow > 0.01) & (narrow < 0.99)
    assert grey.mean() > 0.3
    assert narrow[grey].std() > 1.2 * img[grey].std()
    # a deeper view shows more millimetres in the same pixels
    assert W.scanner_view("thyroid", depth_mm=55.0, size=96)["extent_mm"][2] > \
        base["extent_mm"][2]


def test_scanner_same_seed_same_pixels_and_cached_gain_is_exact():
    a = W.scanner_view("phantom", gain_db=3.0, seed=1, size=64)["image"]
    W._FRAMES.clear()  # a new acquisition from scratch
    b = W.scanner_view("phantom", gain_db=3.0, seed=1, size=64)["image"]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, W.scanner_view("phantom", gain_db=3.0, seed=2, size=64)["image"])
    # a gain change re-maps the cached envelope: bit for bit what a new acquisition gives
    W.scanner_view("phantom", seed=1, size=64)
    cached = W.scanner_view("phantom", gain_db=-4.0, dynamic_range_db=50.0, seed=1, size=64)
    W._FRAMES.clear()
    fresh = W.scanner_view("phantom", gain_db=-4.0, dynamic_range_db=50.0, seed=1, size=64)
    assert np.array_equal(cached["image"], fresh["image"])


def test_psf_widens_with_depth_and_narrows_with_frequency():
    deep = W.scanner_view("phantom", depth_mm=60.0, size=192)["psf"]
    at_focus, at_depth = _lateral_width(deep["focus"]), _lateral_width(deep["deepest"])
    assert at_depth > 1.8 * at_focus  # 20 mm vs 60 mm: beyond the focus the beam spreads
    # the library's own measurement agrees with the one on the image (within a sample)
    assert deep["deepest"]["lateral_fwhm_mm"] == pytest.approx(at_depth, abs=0.08)
    assert np.all(np.diff(deep["lateral_fwhm_mm"][deep["depths_mm"] > 25]) >= -1e-6)
    low = W.scanner_view("phantom", frequency_mhz=5.0, size=192)["psf"]["deepest"]
    high = W.scanner_view("phantom", frequency_mhz=12.0, size=192)["psf"]["deepest"]
    assert _lateral_width(low) > 1.8 * _lateral_width(high)  # FWHM ~ wavelength


def test_scanner_maps_show_the_phantom_and_every_scene_renders():
    r = W.scanner_view("phantom", size=128)
    echo, fov = r["echogenicity"], r["fov"]
    assert np.all(echo[~fov] == 0) and r["attenuation"][fov].max() > 5  # calcification
    left, right, bottom, top = r["extent_mm"]
    assert top == pytest.approx(0.0, abs=1e-6) and bottom == pytest.approx(40.0, rel=0.02)
    # the cyst of the phantom (centre x -8 mm, depth 19 mm) is anechoic in the map and dark
    # in the image
    col = int((-8.0 - left) / r["pixel_spacing_mm"])
    row = int(19.0 / r["pixel_spacing_mm"])
    assert echo[row, col] < 0.05 < np.median(echo[fov])
    assert r["image"][row - 2:row + 3, col - 2:col + 3].mean() < 0.5 * r["image"][fov].mean()
    for scene in W.SCENES:
        s = W.scanner_view(scene, size=64)
        assert s["image"].shape == (64, 64) and s["fov"].mean() > 0.3, scene
        assert s["image"][s["fov"]].std() > 0.03, scene
        assert s["settings"]["probe"] in ("linear", "convex", "phased")
    with pytest.raises(ValueError, match="unknown scene"):
        W.scanner_view("kidney stone")
    fig = W.scanner_figure(r)
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert {"lateral position (mm)", "depth (mm)"} <= labels
    plt.close(fig)


# ------------------------------------------------------------------------------ masking
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_masked_fraction_equals_the_ratio(ratio, no_build):
    img = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    r = W.masking_view(img, ratio, 8, size=64)
    assert r["unit_mask"].shape == (8, 8)
    assert r["masked_fraction"] == ratio and r["n_masked"] == ratio * 64
    assert r["pixel_mask"].mean() == pytest.approx(ratio)
    np.testing.assert_allclose(r["masked"], r["target"] * (1 - r["pixel_mask"]))


def test_mask_patch_size_changes_the_layout(no_build):
    img = np.full((64, 64), 0.5, np.float32)
    m8 = W.masking_view(img, 0.5, 8, size=64)["pixel_mask"]
    m16 = W.masking_view(img, 0.5, 16, size=64)["pixel_mask"]
    assert not np.array_equal(m8, m16)
    blocks = m16.reshape(4, 16, 4, 16)  # each 16-px unit is all hidden or all visible
    assert np.all(blocks.min(axis=(1, 3)) == blocks.max(axis=(1, 3)))
    assert not np.all(m8.reshape(4, 16, 4, 16).min(axis=(1, 3)) ==
                      m8.reshape(4, 16, 4, 16).max(axis=(1, 3)))
    assert np.array_equal(m8, W.masking_view(img, 0.5, 8, size=64)["pixel_mask"])  # seeded
    with pytest.raises(ValueError, match="divide"):
        W.masking_view(img, 0.5, 12, size=64)


def test_masking_without_checkpoint_says_which_notebook(no_build):
    r = W.masking_view(np.zeros((50, 70, 3), np.uint8), 0.5, 8, profile="smoke", size=64)
    assert r["reconstruction"] is None and r["checkpoint"] is None
    assert "02_pretraining" in r["message"] and "smoke" in r["message"]
    fig = W.masking_figure(r)
    assert any("02_pretraining" in t.get_text() for ax in fig.axes for t in ax.texts)
    plt.close(fig)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A finished one-step pretraining checkpoint of the smoke model (as tests/test_pretraining
    builds them): the real folder format, with decoder and anatomy classifier."""
    from echocare_lib.pretraining import PretrainConfig, pretrain
    from echocare_lib.pretraining.data import ArrayImages

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    ids = rng.choice(np.asarray(ONTO.ids), 4)
    hier = np.stack([ONTO.encode(i) for i in ids])
    ds = ArrayImages(rng.integers(0, 256, (4, 64, 64), dtype=np.uint8), hier,
                     np.ones_like(hier, dtype=bool))
    cfg = PretrainConfig.from_profile("smoke", steps=1, batch_size=2, progress=False)
    folder = tmp_path_factory.mktemp("widgets") / "echocare-tiny"
    pretrain(cfg, folder, dataset=ds, device="cpu")
    torch.set_num_threads(n)
    return folder


def test_masking_with_a_checkpoint_reconstructs_the_hidden_units(tiny_checkpoint):
    rng_state = torch.get_rng_state()
    r = W.masking_view("simulated: phantom", 0.5, 8, encoder_checkpoint=tiny_checkpoint)
    assert torch.equal(rng_state, torch.get_rng_state())  # the caller's RNG is untouched
    assert r["checkpoint"] == str(tiny_checkpoint) and r["message"] == ""
    rec, target, pm = r["reconstruction"], r["target"], r["pixel_mask"]
    assert rec.shape == target.shape == (64, 64)  # the model's input size
    assert np.array_equal(rec[pm == 0], target[pm == 0])  # visible pixels pasted back
    assert not np.allclose(rec[pm == 1], 0) and np.isfinite(r["masked_mae"])
    r16 = W.masking_view("simulated: phantom", 0.5, 16, encoder_checkpoint=tiny_checkpoint)
    assert "8-px" in r16["message"] and r16["unit_mask"].shape == (4, 4)


# ------------------------------------------------------------------------------ hierarchy
def test_hierarchy_probabilities_are_coherent(tiny_checkpoint):
    r = W.hierarchy_view(2, encoder_checkpoint=tiny_checkpoint, profile="smoke")
    p = r["probabilities"]
    assert p.shape == (len(ONTO),) and r["coherent"] is True
    child = np.flatnonzero(ONTO.parent_index >= 0)
    assert np.all(p[child] <= p[ONTO.parent_index[child]])  # child <= parent, everywhere
    ids = [i for i, _, _ in r["path"]]
    assert [ONTO.node(i).level for i in ids] == list(LEVELS)
    assert ONTO.parent(ids[1]) == ids[0] and ONTO.parent(ids[2]) == ids[1]
    probs = [q for _, _, q in r["path"]]
    assert probs == sorted(probs, reverse=True)
    assert probs[0] == pytest.approx(p[ONTO.level_slice("region")].max())
    meta = r["levels"][1]
    assert meta["parent"] == ids[0] and all(ONTO.parent(i) == ids[0] for i in meta["ids"])
    plt.close(W.hierarchy_figure(r))


def test_hierarchy_image_is_notebook_02s_held_out_image(no_build):
    from echocare_lib.pretraining.data import simulated_images

    r = W.hierarchy_view(2, profile="smoke")
    assert r["probabilities"] is None and "02_pretraining" in r["message"]
    probe = simulated_images(3, 64, seed=1, split="test", progress=False)
    assert np.array_equal(r["image"], probe.images[2] / 255.0)
    assert set(r["truth"]) == set(ONTO.decode(probe.hierarchy[2])) and r["truth"]
    with pytest.raises(IndexError):
        W.hierarchy_view(10_000, profile="smoke")


# ------------------------------------------------------------------------------ results
def _test_cases(n=4, size=32, ef=False):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        mask[8 + i:20 + i, 10:22] = 1
        s = {"image": rng.random((1, size, size), dtype=np.float32), "mask": mask,
             "meta": {"case_id": f"case-{i}", "patient_id": f"p{i}", "pixel_spacing_mm": 0.5}}
        if ef:
            s["ef"] = 40.0 + 5 * i
        out.append(s)
    return out


def _store(root, task, h="feedc0ffee12"):
    rows = pd.DataFrame([{"task": task, "model": "echocare", "trial": t, "seed": 10 + t,
                          "train_fraction": 1.0, "metric": m, "value": v + t, "config_hash": h}
                         for t in (0, 1) for m, v in (("mDSC", 0.5), ("mNSD", 0.25))])
    ResultStore(root, task).add(rows)
    return h


def test_results_browser_reads_store_and_predictions(tmp_path, no_build):
    task = "thyroid_nodule_seg"
    test = _test_cases()
    data = (_test_cases(2), test, "fake")
    h = _store(tmp_path, task)
    probs = torch.zeros(len(test), 2, 32, 32)
    probs[:, 0] = 1.0
    probs[1, 1, 10:20, 10:22] = 2.0  # case 1: a predicted nodule
    save_predictions(tmp_path, task, "echocare", 1.0, h, probs, kind="segmentation",
                     classes=("background", "nodule"))
    r = W.results_view(task, "echocare", 0, 1, profile="smoke", results_dir=tmp_path, data=data)
    assert r["available"] and r["metrics"] == {"mDSC": 0.5, "mNSD": 0.25}
    assert r["trials"] == [0, 1] and r["encoders"] == ["echocare"] and r["n_cases"] == 4
    assert np.array_equal(r["prediction"]["mask"], probs[1].argmax(0).numpy())
    assert np.array_equal(r["truth"]["mask"], test[1]["mask"])
    inter = (r["prediction"]["mask"] & test[1]["mask"]).sum()
    dsc = 2 * inter / (r["prediction"]["mask"].sum() + test[1]["mask"].sum())
    assert r["case_scores"]["mDSC"] == pytest.approx(dsc)
    assert any("earlier configuration" in n for n in r["notes"])  # not this profile's hash
    plt.close(W.results_figure(r))
    # another trial: its metrics, and a note that only trial 0's predictions are kept
    r1 = W.results_view(task, "echocare", 1, 1, profile="smoke", results_dir=tmp_path,
                        data=data)
    assert r1["metrics"] == {"mDSC": 1.5, "mNSD": 1.25} and r1["prediction"] is None
    assert any("trial 0 only" in n for n in r1["notes"])
    assert np.array_equal(r1["truth"]["mask"], test[1]["mask"])
    plt.close(W.results_figure(r1))
    missing = W.results_view(task, "scratch", profile="smoke", results_dir=tmp_path, data=data)
    assert not missing["available"] and "echocare" in missing["message"]


def test_results_browser_regression_and_no_results(tmp_path, no_build):
    task = "echo_ef"
    test = _test_cases(ef=True)
    h = _store(tmp_path, task)
    ef = torch.tensor([30.0, 47.5, 60.0, 80.0])
    save_predictions(tmp_path, task, "echocare", 1.0, h, ef, kind="regression")
    r = W.results_view(task, "echocare", 0, 1, profile="smoke", results_dir=tmp_path,
                       data=(_test_cases(2, ef=True), test, "fake"))
    assert r["prediction"]["ef"] == 47.5 and r["truth"]["ef"] == 45.0
    assert r["case_scores"]["absolute error (EF %)"] == pytest.approx(2.5)
    plt.close(W.results_figure(r))
    empty = W.results_view("vessel_seg", "echocare", profile="smoke",
                           results_dir=tmp_path / "none")
    assert not empty["available"] and "04_segmentation" in empty["message"]
    assert W.results_figure(empty) is None


# ------------------------------------------------------------------------------ static / live
def test_interactive_only_when_asked(monkeypatch):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    assert W.is_interactive() is False
    monkeypatch.setenv(W.ENV_VAR, "live")
    assert W.is_interactive() is True and W.is_interactive(False) is False
    monkeypatch.setenv(W.ENV_VAR, "0")
    assert W.is_interactive() is False and W.is_interactive(True) is True


def test_static_fallback_needs_no_frontend_and_is_deterministic(monkeypatch, no_build, capsys):
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    pngs = []
    for _ in range(2):
        view = W.show_scanner("phantom", size=64)  # displays (printed outside IPython)
        assert view.interactive is False and view.widget is None
        assert isinstance(view.figure, plt.Figure) and view.result["image"].shape == (64, 64)
        buf = io.BytesIO()
        view.figure.savefig(buf, format="png")
        pngs.append(buf.getvalue())
    assert pngs[0] == pngs[1]
    res = W.show_results("vessel_seg", profile="smoke")
    assert res.result["available"] is False
    assert "04_segmentation" in capsys.readouterr().out
    mask = W.show_masking(np.zeros((64, 64), np.float32), profile="smoke", size=64, show=False)
    assert "02_pretraining" in mask.text and mask.figure is not None


def test_live_scanner_redraws_when_a_slider_moves(monkeypatch):
    import ipywidgets

    drawn = []
    figure = W.scanner_figure
    monkeypatch.setattr(W, "scanner_figure", lambda r: drawn.append(r) or figure(r))
    view = W.show_scanner("phantom", interactive=True, show=False, size=64)
    assert isinstance(view.widget, ipywidgets.Widget) and view.interactive
    before = view.result["image"]
    view.controls["gain_db"].value = 10.0
    assert view.result["settings"]["gain_db"] == 10.0
    assert view.result["image"].mean() > before.mean()
    n = len(drawn)
    view.controls["scene"].value = "liver"  # loads the liver preset, then draws once
    assert len(drawn) == n + 1
    s = view.result["settings"]
    assert (s["scene"], s["probe"], s["depth_mm"]) == ("liver", "convex", 140.0)
    assert view.controls["frequency_mhz"].value == pytest.approx(s["frequency_mhz"])
