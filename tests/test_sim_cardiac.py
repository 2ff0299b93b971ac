"""Simulated CAMUS-like apical 4CH cines (echo_ef): schema, determinism, labels, EF truth."""
from __future__ import annotations

import numpy as np
import pytest

from echocare_lib.sim.render import sample_rng
from echocare_lib.sim.tasks import cardiac
from echocare_lib.sim.tasks.cardiac import TASKS, sample_echo_ef, simpson_volume_ml

N_STAT = 24


def _sample(i: int, size: int = 64, seed: int = 0, split: str = "train") -> dict:
    return sample_echo_ef(sample_rng(seed, "echo_ef", split, i), size=size, index=i, split=split)


@pytest.fixture(scope="module")
def many() -> list[dict]:
    return [_sample(i) for i in range(N_STAT)]


@pytest.fixture(scope="module")
def big() -> list[dict]:
    return [_sample(i, size=128) for i in range(3)]


def test_task_spec():
    spec = TASKS["echo_ef"]
    assert spec["kind"] == "regression" and spec["paper_dataset"] == "CAMUS"
    assert spec["classes"] == ["background", "lv", "myocardium", "la"]
    assert spec["sample"] is sample_echo_ef


@pytest.mark.parametrize("size,n_frames", [(64, 10), (128, 16)])
def test_schema(size, n_frames, many, big):
    s = many[0] if size == 64 else big[0]
    assert s["frames"].dtype == np.float32 and s["frames"].shape == (n_frames, 1, size, size)
    assert s["image"].dtype == np.float32 and s["image"].shape == (1, size, size)
    assert np.array_equal(s["image"], s["frames"][s["ed_index"]])
    assert np.isfinite(s["frames"]).all() and s["frames"].min() >= 0 and s["frames"].max() <= 1
    assert s["masks"].dtype == np.uint8 and s["masks"].shape == (n_frames, size, size)
    assert set(np.unique(s["masks"])) <= {0, 1, 2, 3}
    assert np.array_equal(s["mask"], s["masks"][s["ed_index"]])
    assert s["ed_index"] == 0 and 0 < s["es_index"] < n_frames
    assert isinstance(s["ef"], float) and 15 < s["ef"] < 80
    assert s["edv_ml"] > s["esv_ml"] > 0
    assert s["ef"] == pytest.approx(100 * (s["edv_ml"] - s["esv_ml"]) / s["edv_ml"])
    assert s["view"] == "4CH"
    assert {"left ventricle", "myocardium", "left atrium"} <= set(s["structures"])
    m = s["meta"]
    assert m["dataset"] == "CAMUS" and m["task"] == "echo_ef" and m["probe"] == "phased"
    assert m["patient_id"] == m["case_id"] and m["split"] == "train"
    assert m["device"] in cardiac.DEVICES and 140 <= m["depth_mm"] <= 160
    assert m["pixel_spacing_mm"] > 0


def test_determinism():
    a, b = _sample(3), _sample(3)
    for key in ("frames", "masks"):
        assert np.array_equal(a[key], b[key])
    assert a["ef"] == b["ef"] and a["meta"] == b["meta"]
    c = _sample(4)
    assert not np.array_equal(a["frames"], c["frames"]) and a["ef"] != c["ef"]


def _inside_sector(mask: np.ndarray, image: np.ndarray) -> bool:
    """Every labelled pixel has imaged (non-black) pixels to its left and right in its row."""
    lit = image > 0
    left = np.maximum.accumulate(lit, axis=1)
    right = np.maximum.accumulate(lit[:, ::-1], axis=1)[:, ::-1]
    return bool(np.all((left & right)[mask]))


def test_labels_sane(many):
    for s in many:
        es = s["es_index"]
        for k in (0, es):
            m = s["masks"][k]
            for cls in (1, 2, 3):
                assert (m == cls).sum() > 10, (s["meta"]["case_id"], k, cls)
            assert _inside_sector(m > 0, s["frames"][k, 0])
        lv_ed, lv_es = (s["masks"][0] == 1).sum(), (s["masks"][es] == 1).sum()
        myo_ed, myo_es = (s["masks"][0] == 2).sum(), (s["masks"][es] == 2).sum()
        assert lv_es < lv_ed  # the LV shrinks in systole
        assert 0.75 < myo_es / myo_ed < 1.35  # myocardial area roughly conserved


def test_ef_distribution_and_overlap(many):
    ef = np.array([s["ef"] for s in many])
    assert ef.min() < 35 and ef.max() > 60 and ef.std() > 10
    edv = np.array([s["edv_ml"] for s in many])
    low, high = edv[ef < 40], edv[ef > 55]
    # reduced EF comes with dilated ventricles on average, but volumes overlap
    assert low.mean() > high.mean() and low.min() < high.max()


def test_image_evidence_of_contraction(many):
    """Inside the ED cavity, the ES frame is brighter when more wall moves in (higher EF)."""
    ef, gain = [], []
    for s in many:
        cav = s["masks"][0] == 1
        f = s["frames"][:, 0]
        gain.append(f[s["es_index"]][cav].mean() - f[0][cav].mean())
        ef.append(s["ef"])
    r = np.corrcoef(ef, gain)[0, 1]
    assert 0.3 < r < 0.99


def test_mask_simpson_matches_truth(big):
    """Simpson's discs on the displayed masks (principal axis) reproduce the analytic EF."""
    for s in big:
        sp = s["meta"]["pixel_spacing_mm"]
        ed = simpson_volume_ml(s["masks"][0] == 1, sp)
        es = simpson_volume_ml(s["masks"][s["es_index"]] == 1, sp)
        assert abs(100 * (ed - es) / ed - s["ef"]) < 5
        assert ed == pytest.approx(s["edv_ml"], rel=0.15)


def test_simpson_on_a_cylinder():
    """Discs of a 20 x 40 mm rectangle (a cylinder of revolution): pi/4 d^2 L."""
    mask = np.zeros((100, 100), bool)
    mask[10:50, 40:60] = True
    v = simpson_volume_ml(mask, 1.0, apex=(49.5, 9.5), base=(49.5, 49.5))
    assert v == pytest.approx(np.pi / 4 * 20 ** 2 * 40 / 1000, rel=0.03)


def test_speckle_decorrelates_between_frames(many):
    s = many[1]
    f = s["frames"][:, 0]
    myo = s["masks"][0] == 2
    r = np.corrcoef(f[0][myo], f[1][myo])[0, 1]
    assert 0.3 < r < 0.995
