"""CEUS focal liver lesion generator (SYSU-FLL-CEUS-like): schema, determinism, kinetics."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from echocare_lib.sim import sample_rng
from echocare_lib.sim.tasks import liver_ceus

TASK = "liver_lesion_ceus"
SAMPLE = liver_ceus.TASKS[TASK]["sample"]


def make(index: int, size: int = 64, seed: int = 0, split: str = "train") -> dict:
    return SAMPLE(sample_rng(seed, TASK, split, index), size=size, index=index, split=split)


@pytest.fixture(scope="module")
def batch() -> list[dict]:
    return [make(i, 64, split="test") for i in range(36)]


def test_registry():
    spec = liver_ceus.TASKS[TASK]
    assert spec["classes"] == ["HCC", "HEM", "FNH"] and spec["kind"] == "classification"
    assert spec["paper_dataset"] == "SYSU-FLL-CEUS"


@pytest.mark.parametrize("size,n_frames", [(64, 8), (128, 12)])
def test_schema(size, n_frames):
    s = make(1, size)
    f = s["frames"]
    assert f.dtype == np.float32 and f.shape == (n_frames, 1, size, size)
    assert 0 <= f.min() and f.max() <= 1
    t = s["times_s"]
    assert t.dtype == np.float32 and t.shape == (n_frames,) and np.all(np.diff(t) > 0)
    assert t[0] < 20 and t[-1] > 120  # arterial through late phase
    assert s["phases"][0] == "arterial" and s["phases"][-1] == "late"
    k = s["meta"]["image_frame"]
    assert np.array_equal(s["image"], f[k]) and t[k] <= 32
    assert s["image_bmode"].dtype == np.float32 and s["image_bmode"].shape == (1, size, size)
    assert s["mask"].dtype == np.uint8 and set(np.unique(s["mask"])) == {0, 1}
    assert s["label_name"] == liver_ceus.CLASSES[s["label"]]
    m = s["meta"]
    assert m["dataset"] == "SYSU-FLL-CEUS" and m["probe"] == "convex" and m["modality"] == "CEUS"
    assert 100 <= m["depth_mm"] <= 140 and "liver lesion" in s["structures"]


def test_determinism():
    a, b, c = make(4), make(4), make(5)
    assert np.array_equal(a["frames"], b["frames"]) and np.array_equal(a["times_s"], b["times_s"])
    assert np.array_equal(a["image_bmode"], b["image_bmode"])
    assert np.array_equal(a["mask"], b["mask"])
    assert not np.array_equal(a["frames"], c["frames"])


def test_mask_inside_fov_and_balance(batch):
    for s in batch:
        fov = s["image_bmode"][0] > 0
        m = s["mask"] > 0
        assert 10 <= m.sum() and (m & ~fov).sum() <= 2
    counts = np.bincount([s["label"] for s in batch], minlength=3)
    assert counts.min() == counts.max() == 12


def _enhancement(s: dict) -> tuple[float, float]:
    """Lesion/surrounding liver display ratio: arterial peak and late-phase mean."""
    m = s["mask"].astype(bool)
    ring = ndi.binary_dilation(m, iterations=4) & ~m & (s["image_bmode"][0] > 0)
    f, t = s["frames"][:, 0], s["times_s"]
    r = np.array([f[k][m].mean() / (f[k][ring].mean() + 1e-3) for k in range(len(f))])
    return float(r[(t > 14) & (t <= 32)].max()), float(r[t > 120].mean())


def test_enhancement_patterns_differ_but_overlap(batch):
    ev = {k: np.array([_enhancement(s) for s in batch if s["label"] == k]) for k in range(3)}
    hcc, hem, fnh = ev[0], ev[1], ev[2]
    # arterial hyperenhancement for HCC and FNH, then washout for HCC only (on average)
    assert hcc[:, 0].mean() > 1.5 and fnh[:, 0].mean() > 1.5
    assert hcc[:, 1].mean() < hem[:, 1].mean() and hcc[:, 1].mean() < fnh[:, 1].mean()
    assert (hcc[:, 0] - hcc[:, 1]).mean() > (hem[:, 0] - hem[:, 1]).mean()
    # overlap: some HCC do not wash out more than some benign lesions do
    assert hcc[:, 1].max() > min(hem[:, 1].min(), fnh[:, 1].min())


def test_kinetics_curves():
    tic = liver_ceus.TIC(onset=10, rise=4, peak=2.0, plateau=0.3, tau=40)
    assert tic(5) == 0 and tic(20) > tic(12) and tic(200) < tic(25)
    assert tic(1e4) == pytest.approx(0.6, rel=1e-3)


def test_structures_map_onto_the_ontology(batch):
    from echocare_lib.ontology import load_ontology

    onto = load_ontology()
    for name in {x for s in batch for x in s["structures"]}:
        onto.find(name)  # raises KeyError for a name the ontology does not know
