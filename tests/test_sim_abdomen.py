"""Abdomen simulator task (AbdomenUS-like): schema, determinism, labels, reusable scenes."""
import numpy as np
import pytest

from echocare_lib.sim import Probe, acquire, sample_rng
from echocare_lib.sim.geometry import make_display
from echocare_lib.sim.tasks import abdomen

TASK = "abdomen_organ_seg"


def make(i, size=64, split="train", seed=0):
    return abdomen.TASKS[TASK]["sample"](sample_rng(seed, TASK, split, i), size=size, index=i,
                                         split=split)


@pytest.fixture(scope="module")
def batch():
    return [make(i) for i in range(40)]


@pytest.mark.parametrize("size", [64, 128])
def test_schema(size):
    spec = abdomen.TASKS[TASK]
    assert spec["classes"] == ["background", "liver", "kidney", "pancreas", "bladder", "spleen"]
    o = make(2, size)
    assert o["image"].dtype == np.float32 and o["image"].shape == (1, size, size)
    assert 0 <= o["image"].min() and o["image"].max() <= 1
    assert o["mask"].dtype == np.uint8 and o["mask"].shape == (size, size)
    assert o["mask"].max() <= 5
    meta = o["meta"]
    assert meta["probe"] == "convex" and 110 <= meta["depth_mm"] <= 160
    assert meta["dataset"] == "AbdomenUS" and meta["view"] in abdomen.VIEWS
    assert meta["patient_id"] and meta["split"] == "train"


def test_determinism():
    a, b, c = make(7), make(7), make(8)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["mask"], b["mask"])
    assert a["meta"] == b["meta"] and not np.array_equal(a["image"], c["image"])


def sector(o) -> np.ndarray:
    """The field of view of a sample, rebuilt from its metadata."""
    meta, size = o["meta"], o["mask"].shape[0]
    probe = Probe("convex", meta["f0_mhz"], radius_mm=meta["radius_mm"],
                  sector_deg=meta["sector_deg"])
    x, z = make_display(probe, meta["depth_mm"], size, size).pixel_centres()
    d, u = probe.from_xz(x, z)
    half = np.deg2rad(meta["sector_deg"]) / 2
    return (d >= 0) & (d <= meta["depth_mm"]) & (np.abs(u) <= half)


def test_masks_inside_sector(batch):
    for o in batch:
        m, fov = o["mask"], sector(o)
        assert (m > 0).sum() >= 10  # at least one organ in every image
        assert not (m[~fov] > 0).any()
        assert (o["image"][0][~fov] == 0).all()


def test_views_and_classes(batch):
    views = {o["meta"]["view"] for o in batch}
    assert views == set(abdomen.VIEWS)
    present = np.zeros(6, int)
    for o in batch:
        present[np.unique(o["mask"])] += 1
    assert (present[1:] >= 3).all(), present
    # view-organ consistency: each view shows its organs
    want = {"ruq": 1, "luq": 5, "epigastric": 3, "suprapubic": 4}
    for o in batch:
        assert (o["mask"] == want[o["meta"]["view"]]).any(), o["meta"]["view"]


def test_organ_echogenicity(batch):
    """Texture evidence: the bladder is anechoic, the renal sinus brightens the kidney,
    liver and spleen are mid-grey (their ranges overlap)."""
    means = {k: [] for k in range(1, 6)}
    for o in batch:
        for k in range(1, 6):
            sel = o["mask"] == k
            if sel.sum() > 20:
                means[k].append(o["image"][0][sel].mean())
    m = {k: np.mean(v) for k, v in means.items()}
    assert m[4] < 0.5 * min(m[1], m[5])
    assert abs(m[1] - m[5]) < 0.25


def test_reusable_scenes():
    rng = np.random.default_rng(1)
    for kind in abdomen.LESIONS:
        sc, info = abdomen.liver_scene(rng, depth_mm=140, lesion={"kind": kind, "radius_mm": 10})
        assert info["lesion"]["kind"] == kind and "liver lesion" in sc.label_names()
        fr = acquire(sc, rng, device="mid_range", size=64, **info["acquire"])
        assert fr.mask(sc, "liver lesion").sum() > 3
    sc, info = abdomen.kidney_scene(rng, depth_mm=130)
    fr = acquire(sc, rng, device="low_end", size=64, **info["acquire"])
    assert fr.mask(sc, "kidney").sum() > 100 and "kidney" in info
    with pytest.raises(ValueError):
        abdomen.view_scene(rng, "thorax", depth_mm=100)
