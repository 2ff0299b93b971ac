"""Breast BI-RADS scene generator (BUS-BRA-like): schema, determinism, labels, evidence."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from echocare_lib.sim import sample_rng
from echocare_lib.sim.tasks import breast

TASK = "breast_birads"
SAMPLE = breast.TASKS[TASK]["sample"]


def make(index: int, size: int = 64, seed: int = 0, split: str = "train") -> dict:
    return SAMPLE(sample_rng(seed, TASK, split, index), size=size, index=index, split=split)


@pytest.fixture(scope="module")
def batch() -> list[dict]:
    return [make(i, size=128, split="test") for i in range(40)]


def test_task_registry():
    spec = breast.TASKS[TASK]
    assert spec["kind"] == "classification"
    assert spec["classes"] == ["BI-RADS 2", "BI-RADS 3", "BI-RADS 4", "BI-RADS 5"]
    assert spec["paper_dataset"] == "BUS-BRA"


@pytest.mark.parametrize("size", [64, 128])
def test_schema(size):
    for i in range(4):
        s = make(i, size)
        assert s["image"].dtype == np.float32 and s["image"].shape == (1, size, size)
        assert 0.0 <= s["image"].min() and s["image"].max() <= 1.0 and s["image"].std() > 0.05
        assert s["mask"].dtype == np.uint8 and s["mask"].shape == (size, size)
        assert set(np.unique(s["mask"])) == {0, 1}
        assert isinstance(s["label"], int) and 0 <= s["label"] < 4
        assert s["label_name"] == breast.CLASSES[s["label"]]
        assert "breast lesion" in s["structures"]
        assert all(isinstance(x, str) for x in s["structures"])
        assert set(s["descriptors"]) >= {"shape", "orientation", "margin", "echo_pattern",
                                         "posterior_features", "calcifications"}
        m = s["meta"]
        assert m["dataset"] == "BUS-BRA" and m["task"] == TASK and m["split"] == "train"
        assert m["probe"] == "linear" and 30 <= m["depth_mm"] <= 45 and m["pixel_spacing_mm"] > 0
        assert m["patient_id"] and m["case_id"]


def test_determinism():
    a, b, c = make(5), make(5), make(6)
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], b["mask"])
    assert a["descriptors"] == b["descriptors"]
    assert not np.array_equal(a["image"], c["image"])
    assert not np.array_equal(a["image"], make(5, seed=1)["image"])


def test_mask_inside_image_not_touching_everything(batch):
    for s in batch:
        frac = s["mask"].mean()
        assert 0.003 < frac < 0.4  # a lesion, not the whole image


def test_class_balance(batch):
    counts = np.bincount([s["label"] for s in batch], minlength=4)
    assert counts.min() >= 8, counts


def _evidence(s: dict) -> tuple[float, float, float]:
    """(outline irregularity, height/width, posterior echo below minus beside the lesion)."""
    img, m = s["image"][0], s["mask"].astype(bool)
    area, per = m.sum(), (m & ~ndi.binary_erosion(m)).sum()
    rows, cols = np.nonzero(m)
    h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
    r1, c0, c1 = rows.max() + 1, cols.min(), cols.max() + 1
    band = img[r1: r1 + h]
    below = band[:, c0:c1]
    side = np.concatenate([band[:, max(c0 - w // 2, 0):c0], band[:, c1:c1 + w // 2]], axis=1)
    post = below.mean() - side.mean() if below.size and side.size else 0.0
    return per ** 2 / (4 * np.pi * area), h / w, post


def test_class_evidence_exists_but_overlaps(batch):
    ev = {k: np.array([_evidence(s) for s in batch if s["label"] == k]) for k in range(4)}
    irr = {k: v[:, 0] for k, v in ev.items()}
    # BI-RADS 5 outlines are more irregular and taller-than-wide than BI-RADS 2/3 ...
    assert irr[3].mean() > irr[1].mean() + 0.2 and irr[3].mean() > irr[0].mean() + 0.2
    assert ev[3][:, 1].mean() > ev[1][:, 1].mean()
    # ... cysts (BI-RADS 2) enhance posteriorly, malignant masses tend to shadow ...
    assert ev[0][:, 2].mean() > ev[3][:, 2].mean()
    # ... but no single feature separates the grades (overlapping distributions)
    assert irr[3].min() < irr[1].max()
    assert ev[0][:, 2].min() < ev[3][:, 2].max()


def test_breast_scene_for_reuse():
    rng = np.random.default_rng(0)
    scene, info = breast.breast_scene(rng, depth_mm=40.0)
    assert info["lesion"] is None and "lesion" not in scene.label_names()
    scene, info = breast.breast_scene(np.random.default_rng(1), depth_mm=35.0, lesion=3)
    assert info["lesion"]["grade"] == 3 and scene.label_names() == ["lesion"]
    scene, info = breast.breast_scene(np.random.default_rng(2), depth_mm=35.0, lesion="random")
    assert 0 <= info["lesion"]["grade"] < 4


def test_structures_map_onto_the_ontology(batch):
    from echocare_lib.ontology import load_ontology

    onto = load_ontology()
    for name in {x for s in batch for x in s["structures"]}:
        onto.find(name)  # raises KeyError for a name the ontology does not know
