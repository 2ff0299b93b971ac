"""Fetal scene generators: FOCUS four-chamber ellipses/CTR and 24 fetal brain landmarks."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from echocare_lib.sim import device_style, sample_rng
from echocare_lib.sim.tasks import fetal

T4, TB = "fetal_4ch_detection", "fetal_brain_landmarks"


def make(task: str, index: int, size: int = 64, seed: int = 0, split: str = "train") -> dict:
    return fetal.TASKS[task]["sample"](sample_rng(seed, task, split, index), size=size,
                                       index=index, split=split)


@pytest.fixture(scope="module")
def focus128() -> list[dict]:
    return [make(T4, i, 128, split="test") for i in range(16)]


def raster(e: dict, shape: tuple[int, int]) -> np.ndarray:
    """Pixel-space ellipse -> mask, pixel (row i, col j) centred at (x=j, y=i)."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    t = np.deg2rad(e["angle"])
    u = np.cos(t) * (x - e["cx"]) + np.sin(t) * (y - e["cy"])
    v = -np.sin(t) * (x - e["cx"]) + np.cos(t) * (y - e["cy"])
    return (u / e["a"]) ** 2 + (v / e["b"]) ** 2 < 1


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_registry():
    assert fetal.TASKS[T4]["classes"] == ["background", "thorax", "cardiac"]
    assert fetal.TASKS[T4]["kind"] == "detection" and fetal.TASKS[TB]["kind"] == "landmarks"
    assert len(fetal.LANDMARK_NAMES) == 24 == len(set(fetal.LANDMARK_NAMES))


@pytest.mark.parametrize("size", [64, 128])
def test_focus_schema(size):
    for i in range(3):
        s = make(T4, i, size)
        assert s["image"].dtype == np.float32 and s["image"].shape == (1, size, size)
        assert 0 <= s["image"].min() and s["image"].max() <= 1
        assert s["mask"].dtype == np.uint8 and set(np.unique(s["mask"])) == {0, 1, 2}
        assert [e["label"] for e in s["ellipses"]] == ["thorax", "cardiac"]
        for e in s["ellipses"]:
            assert set(e) == {"label", "cx", "cy", "a", "b", "angle"}
            assert 0 <= e["cx"] < size and 0 <= e["cy"] < size and 0 <= e["angle"] < 180
            assert 0 < e["b"] <= e["a"]
        m = s["meta"]
        assert m["dataset"] == "FOCUS" and m["probe"] == "convex" and 80 <= m["depth_mm"] <= 150
        assert "fetal heart" in s["structures"]


def test_focus_ellipses_match_masks(focus128):
    for s in focus128:
        th, ca = s["ellipses"]
        assert iou(raster(th, s["mask"].shape), s["mask"] >= 1) > 0.95
        assert iou(raster(ca, s["mask"].shape), s["mask"] == 2) > 0.95
        # the heart lies inside the thorax
        assert ((s["mask"] == 2) & ~raster(th, s["mask"].shape)).sum() == 0


def test_focus_ctr(focus128):
    ctr = np.array([s["ctr"] for s in focus128])
    for s, c in zip(focus128, ctr):
        th, ca = s["ellipses"]
        assert c == pytest.approx(min(ca["a"], ca["b"]) / min(th["a"], th["b"]), rel=1e-6)
    assert 0.4 <= ctr.min() and ctr.max() <= 0.75
    many = np.array([make(T4, i)["ctr"] for i in range(40)])
    assert 0.45 < np.median(many) < 0.56 and (many > 0.58).sum() >= 2  # some cardiomegaly


def test_focus_determinism():
    a, b, c = make(T4, 3), make(T4, 3), make(T4, 4)
    assert np.array_equal(a["image"], b["image"]) and a["ellipses"] == b["ellipses"]
    assert not np.array_equal(a["image"], c["image"])


@pytest.mark.parametrize("size", [64, 128])
def test_brain_schema_and_landmarks_inside(size):
    for i in range(6):
        s = make(TB, i, size)
        lm = s["landmarks"]
        assert s["image"].dtype == np.float32 and s["image"].shape == (1, size, size)
        assert lm.dtype == np.float32 and lm.shape == (24, 2)
        assert s["landmark_names"] == fetal.LANDMARK_NAMES
        assert s["mask"].dtype == np.uint8 and set(np.unique(s["mask"])) == {0, 1}
        assert (lm >= 0).all() and (lm <= size - 1).all()
        # every landmark lies in the head (itself inside the field of view), within a pixel
        head = ndi.binary_dilation(s["mask"] > 0, iterations=1)
        r, c = np.round(lm[:, 1]).astype(int), np.round(lm[:, 0]).astype(int)
        assert head[r, c].all()
        sp = s["meta"]["pixel_spacing_mm"]
        ofd = np.linalg.norm(lm[0] - lm[1]) * sp
        bpd = np.linalg.norm(lm[2] - lm[3]) * sp
        assert 54 < ofd < 70 and 40 < bpd < 56 and bpd < ofd  # ~20 weeks
        tcd = np.linalg.norm(lm[7] - lm[8]) * sp
        assert 16 < tcd < 26


def test_brain_landmarks_inside_fov_in_mm():
    for i in range(10):
        rng = np.random.default_rng(i)
        probe = device_style("mid_range").probe("convex", sector_deg=50.0)
        _, info = fetal.fetal_head_scene(rng, probe, 90.0)
        lm = info["landmarks_mm"]
        assert fetal._in_fov(probe, info["depth_mm"], lm[:, 0], lm[:, 1], 1.0)


def test_brain_landmarks_follow_anatomy():
    s = make(TB, 7, 128)
    lm = dict(zip(s["landmark_names"], s["landmarks"]))
    # cerebellum is posterior, CSP anterior of the thalami, all along the midline axis
    axis = lm["skull_anterior"] - lm["skull_posterior"]
    pos = {k: float((v - lm["skull_posterior"]) @ axis / (axis @ axis)) for k, v in lm.items()}
    assert pos["vermis_posterior"] < pos["thalami_centre"] < pos["csp_posterior_proximal"]
    assert pos["midline_posterior"] < 0.1 and pos["midline_anterior"] > 0.9


def test_brain_determinism():
    a, b, c = make(TB, 2), make(TB, 2), make(TB, 3)
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["landmarks"], b["landmarks"])
    assert not np.array_equal(a["landmarks"], c["landmarks"])


def test_structures_map_onto_the_ontology(focus128):
    from echocare_lib.ontology import load_ontology

    onto = load_ontology()
    brains = [make(TB, i) for i in range(6)]
    for name in {x for s in focus128 + brains for x in s["structures"]}:
        onto.find(name)  # raises KeyError for a name the ontology does not know
