"""Neck simulator tasks: schema, determinism, label sanity, class evidence (DDTI, Mus-V, AIMI)."""
import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from echocare_lib.sim import acquire, sample_rng
from echocare_lib.sim.tasks import neck

TASKS = list(neck.TASKS)


def make(task, i, size=64, split="train", seed=0):
    return neck.TASKS[task]["sample"](sample_rng(seed, task, split, i), size=size, index=i,
                                      split=split)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("size", [64, 128])
def test_schema(task, size):
    spec = neck.TASKS[task]
    assert set(spec) >= {"kind", "classes", "sample", "description", "paper_dataset"}
    o = make(task, 1, size)
    img = o["image"]
    assert img.dtype == np.float32 and img.shape == (1, size, size)
    assert 0 <= img.min() and img.max() <= 1 and img.std() > 0.05
    m = o["mask"]
    assert m.dtype == np.uint8 and m.shape == (size, size)
    assert m.max() < len(spec["classes"])
    assert isinstance(o["structures"], list) and all(s == s.lower() for s in o["structures"])
    meta = o["meta"]
    for k in ("dataset", "task", "case_id", "patient_id", "split", "device", "pixel_spacing_mm"):
        assert k in meta
    assert meta["probe"] == "linear" and 30 <= meta["depth_mm"] <= 45
    if task == "thyroid_nodule_cine_cls":
        t = 8 if size <= 64 else 12
        assert o["frames"].shape == (t, 1, size, size) and o["frames"].dtype == np.float32
        assert o["masks"].shape == (t, size, size) and o["masks"].dtype == np.uint8
        np.testing.assert_array_equal(o["image"], o["frames"][t // 2])
        np.testing.assert_array_equal(o["mask"], o["masks"][t // 2])
        assert o["label"] in (0, 1) and o["label_name"] == spec["classes"][o["label"]]


@pytest.mark.parametrize("task", TASKS)
def test_determinism(task):
    a, b, c = make(task, 3), make(task, 3), make(task, 4)
    for k in ("image", "mask") + (("frames", "masks") if "frames" in a else ()):
        np.testing.assert_array_equal(a[k], b[k])
    assert a["meta"] == b["meta"]
    assert not np.array_equal(a["image"], c["image"])


def test_thyroid_masks_and_structures():
    for i in range(12):
        o = make("thyroid_nodule_seg", i)
        assert o["mask"].sum() >= 3, i  # a nodule is always visible
        assert {"thyroid", "thyroid nodule", "trachea"} <= set(o["structures"])
    ids = [make("thyroid_nodule_seg", i)["meta"]["patient_id"] for i in range(6)]
    assert len(set(ids)) < len(ids)  # some patients contribute several images


def test_vessel_classes():
    both, ratio = 0, []
    for i in range(12):
        m = make("vessel_seg", i)["mask"]
        vein, artery = (m == 1).sum(), (m == 2).sum()
        both += vein > 0 and artery > 0
        ratio.append(vein / max(artery, 1))
    assert both == 12
    assert 0.3 < np.median(ratio) < 5  # veins larger on average, but not always


def test_nodule_sweep_and_decorrelation():
    o = make("thyroid_nodule_cine_cls", 5, 64)
    area = o["masks"].reshape(len(o["masks"]), -1).sum(1)
    t = len(area)
    assert area[t // 2] > area[0] and area[t // 2] > area[-1] and area.min() > 0
    f = o["frames"][:, 0].reshape(t, -1)
    c_next = np.corrcoef(f[0], f[1])[0, 1]
    c_far = np.corrcoef(f[0], f[-1])[0, 1]
    assert 0.3 < c_next < 0.995 and c_far < c_next  # gradual decorrelation


def test_cine_balance_and_overlapping_evidence():
    """Malignant nodules are on average less echogenic than the surrounding gland and more
    often taller than wide, but both statistics overlap between the classes."""
    rows = []
    for i in range(40):
        o = make("thyroid_nodule_cine_cls", i, 64, split="test")
        m = o["mask"] > 0
        img = o["image"][0]
        ring = binary_dilation(m, iterations=3) & ~m
        r, c = np.nonzero(m)
        rows.append((o["label"], img[m].mean() / (img[ring].mean() + 1e-3),
                     (np.ptp(r) + 1) / (np.ptp(c) + 1)))
    a = np.array(rows)
    ben, mal = a[a[:, 0] == 0], a[a[:, 0] == 1]
    assert 12 <= len(mal) <= 28
    assert mal[:, 1].mean() < ben[:, 1].mean() and mal[:, 2].mean() > ben[:, 2].mean()
    # overlap: no single threshold separates the classes
    assert mal[:, 1].max() > ben[:, 1].min() and ben[:, 1].max() > mal[:, 1].min()
    assert mal[:, 2].min() < ben[:, 2].max()


def test_reusable_scenes():
    rng = np.random.default_rng(0)
    sc, info = neck.thyroid_scene(rng, depth_mm=40, nodule={"malignant": True})
    assert "thyroid nodule" in sc.label_names() and info["nodules"][0]["composition"]
    fr = acquire(sc, rng, device="high_end", size=64, **info["acquire"])
    assert fr.mask(sc, "thyroid nodule").any() and fr.mask(sc, "thyroid").any()
    sc, info = neck.thyroid_scene(rng, depth_mm=40)
    assert "thyroid nodule" not in sc.label_names()
    sc, info = neck.carotid_scene(rng, depth_mm=35)
    fr = acquire(sc, rng, device="low_end", size=64, **info["acquire"])
    assert fr.mask(sc, "carotid artery").any() and fr.mask(sc, "jugular vein").any()
