"""Curation step 4 (de-duplication): exact hashes, pHash near duplicates at the paper's 95 %,
and the multi-index search against brute force."""
import io

import imagehash
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from echocare_lib.curation.dedup import (
    NearDuplicateIndex, as_uint64, brute_force_pairs, choose_shared_blocks, deduplicate,
    max_bits_for, normalise_url, phash, pixel_hash, representatives, similarity, url_hash)
from echocare_lib.sim.tasks import generate

# Fast simulator tasks (the cine ones take ~0.5-1 s per sample); 9 x 11 = 99 distinct scenes.
TASKS = ("breast_birads", "abdomen_organ_seg", "fetal_4ch_detection", "fetal_brain_landmarks",
         "vessel_seg", "thyroid_nodule_seg", "enhancement", "liver_report", "liver_lesion_ceus")
MAX_BITS = max_bits_for(0.95)


# ----------------------------------------------------------------------------- variants
def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _crop(a: np.ndarray, f: float) -> np.ndarray:
    h, w = a.shape
    dy, dx = int(round(h * f)), int(round(w * f))
    return a[dy:h - dy, dx:w - dx]


def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=int(q))
    return np.asarray(Image.open(buf))


def _resize(a: np.ndarray, f: float) -> np.ndarray:
    im = Image.fromarray(a)
    return np.asarray(im.resize((max(8, round(im.width * f)), max(8, round(im.height * f))),
                                Image.BILINEAR))


def _export(a: np.ndarray, pad: float = 0.12) -> np.ndarray:
    """A scanner-style export: the image inside a black surround."""
    h, w = a.shape
    return np.pad(a, ((int(h * pad),) * 2, (int(w * pad),) * 2))


# Each variant: rng -> image -> image. Parameter ranges follow the simulator corpus's near
# duplicates (sim/corpus.py: gain x0.85-1.15 +-10, JPEG, resize x0.7-0.9, 4 % crop) and the
# brief (JPEG quality 70-90).
VARIANTS = {
    "gain": lambda r, a: _u8(a.astype(np.float32) * r.uniform(0.85, 1.15) + r.uniform(-10, 10)),
    "jpeg70-90": lambda r, a: _jpeg(a, r.integers(70, 91)),
    "resize": lambda r, a: _resize(a, r.choice([r.uniform(0.5, 0.9), r.uniform(1.1, 1.5)])),
    "gain+jpeg+resize": lambda r, a: _jpeg(_resize(_u8(a.astype(np.float32) * r.uniform(
        0.9, 1.1) + r.uniform(-5, 5)), r.uniform(0.7, 0.9)), r.integers(70, 91)),
    "crop1%": lambda r, a: _crop(a, 0.01),
    "crop2%": lambda r, a: _crop(a, 0.02),
    "crop4%": lambda r, a: _crop(a, 0.04),
}
# Floors asserted below, set under the recall measured on these 99 scenes (seed 0). The
# measured values are printed by the test. pHash at <= 3 bits does not survive crops that cut
# into the field of view: 2 % per side already breaks most pairs and 4 % almost all, so those
# are reported, not asserted; the crop the pipeline meets is a crop of the export's surround,
# which the field-of-view crop removes ("export crop 4%" below).
FLOORS = {"gain": 0.85, "jpeg70-90": 0.95, "resize": 0.95, "gain+jpeg+resize": 0.85,
          "crop1%": 0.75, "export crop 4%": 0.95}


@pytest.fixture(scope="module")
def scenes() -> list[np.ndarray]:
    out = []
    for task in TASKS:
        for s in generate(task, 11, size=128, seed=0):
            out.append(_u8(s["image"][0] * 255.0))
    return out


@pytest.fixture(scope="module")
def recall_table(scenes):
    """Hamming distance original -> variant per variant type, plus the pool for precision."""
    orig = as_uint64([phash(a) for a in scenes])
    dists, pool, scene_of = {}, [orig], [np.arange(len(scenes))]
    for k, (name, fn) in enumerate(VARIANTS.items()):
        rng = np.random.default_rng(100 + k)
        var = as_uint64([phash(fn(rng, a)) for a in scenes])
        dists[name] = np.bitwise_count(orig ^ var)
        pool.append(var)
        scene_of.append(np.arange(len(scenes)))
    # The crop a curation run meets: an export with a black surround, cropped 4 % per side,
    # then cut back to its field of view (crop_fov=True, the same on both sides).
    o_fov = as_uint64([phash(a, crop_fov=True) for a in scenes])
    e_fov = as_uint64([phash(_crop(_export(a), 0.04), crop_fov=True) for a in scenes])
    dists["export crop 4%"] = np.bitwise_count(o_fov ^ e_fov)
    return dists, np.concatenate(pool), np.concatenate(scene_of)


def test_near_duplicate_recall_by_variant_at_95_percent(recall_table):
    dists, _, _ = recall_table
    recall = {k: float(np.mean(d <= MAX_BITS)) for k, d in dists.items()}
    print("\nnear-duplicate recall at similarity >= 0.95 (<= 3 of 64 bits), 99 scenes:")
    for k, r in recall.items():
        print(f"  {k:<18} recall {r:.2f}   median bits {np.median(dists[k]):.0f}   "
              f"max {dists[k].max()}")
    for k, floor in FLOORS.items():
        assert recall[k] >= floor, f"{k}: recall {recall[k]:.2f} < {floor}"
    # Documented limitation, checked so a change of behaviour is noticed: crops into the FOV.
    assert recall["crop4%"] < 0.5


def test_near_duplicate_precision(recall_table, scenes):
    """Every pair found among originals and all their variants links the same scene."""
    _, pool, scene_of = recall_table
    index = NearDuplicateIndex(0.95)
    index.add(pool)
    pairs = index.pairs(expand=True)
    true = scene_of[pairs.index[:, 0]] == scene_of[pairs.index[:, 1]]
    precision = float(true.mean())
    print(f"\nprecision {precision:.3f} over {len(true)} pairs found among {len(pool)} images "
          f"({len(scenes)} scenes x {1 + len(VARIANTS)})")
    assert len(true) > len(scenes)
    assert precision >= 0.98
    # distinct scenes are far apart: no two originals within the threshold
    orig = pool[:len(scenes)]
    assert len(brute_force_pairs(orig, MAX_BITS).index) == 0


# ----------------------------------------------------------------------------- the index
def _planted(rng: np.random.Generator, n: int, frac: float = 0.05, max_flip: int = 5,
             exact: int = 0) -> np.ndarray:
    h = rng.integers(0, 2 ** 64 - 1, n, dtype=np.uint64, endpoint=True)
    k = int(n * frac)
    for dst, src in zip(rng.choice(n, k, replace=False), rng.integers(0, n, k)):
        x = h[src]
        for b in rng.choice(64, int(rng.integers(0, max_flip + 1)), replace=False):
            x ^= np.uint64(1) << np.uint64(b)
        h[dst] = x
    if exact:
        h[rng.choice(n, exact, replace=False)] = h[0]
    return h


@pytest.mark.parametrize("shared", [None, 1, 2, 3])
@pytest.mark.parametrize("max_bits", [0, 1, 3, 6])
def test_mih_pairs_equal_brute_force(shared, max_bits):
    rng = np.random.default_rng(7 + max_bits)
    h = _planted(rng, 3000, exact=12)
    index = NearDuplicateIndex(shared_blocks=shared)
    index.add(h)
    got, ref = index.pairs(max_bits, expand=True), brute_force_pairs(h, max_bits)
    assert len(ref.index) > 50
    np.testing.assert_array_equal(got.index, ref.index)
    np.testing.assert_array_equal(got.distance, ref.distance)
    # the linear (non-expanded) edge set gives the same clusters as all pairs
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    n = h.size
    ref_labels = connected_components(coo_matrix((np.ones(len(ref.index)), ref.index.T),
                                                 shape=(n, n)), directed=False)[1]
    labels = index.groups(max_bits)
    assert len(set(zip(labels, ref_labels))) == len(set(labels)) == len(set(ref_labels))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(0, 300), max_bits=st.integers(0, 8),
       frac=st.floats(0, 0.5))
def test_mih_pairs_property(seed, n, max_bits, frac):
    h = _planted(np.random.default_rng(seed), n, frac=frac, max_flip=max_bits + 2,
                 exact=min(n, 3) if n else 0)
    index = NearDuplicateIndex()
    index.add(h)
    got, ref = index.pairs(max_bits, expand=True), brute_force_pairs(h, max_bits)
    np.testing.assert_array_equal(got.index, ref.index)
    np.testing.assert_array_equal(got.distance, ref.distance)


def test_threshold_conversion():
    assert max_bits_for(0.95) == 3  # 1 - 3/64 = 0.953; 4 bits would be 0.9375
    assert max_bits_for(1 - 3 / 64) == 3 and max_bits_for(1.0) == 0 and max_bits_for(0.0) == 64
    assert similarity(3) == pytest.approx(0.953125)
    with pytest.raises(ValueError, match="within"):
        max_bits_for(1.5)
    assert NearDuplicateIndex(0.95).max_bits == 3


def test_shared_blocks_grow_with_n():
    assert choose_shared_blocks(10_000, 3) == 1
    assert choose_shared_blocks(1_000_000, 3) >= 2
    assert choose_shared_blocks(10 ** 6, 0) == 1


def test_blank_images_do_not_go_quadratic():
    """20,000 blank images hashing to 0 are one cluster through a star, not 2 * 10^8 pairs."""
    rng = np.random.default_rng(0)
    h = np.concatenate([np.zeros(20_000, np.uint64),
                        rng.integers(0, 2 ** 63, 1000, dtype=np.uint64)])
    index = NearDuplicateIndex()
    index.add(h)
    p = index.pairs()
    assert len(p.index) == 19_999 and (p.distance == 0).all()
    labels = index.groups()
    assert len(set(labels[:20_000])) == 1


def test_giant_bucket_is_capped_and_reported():
    rng = np.random.default_rng(1)
    # 600 distinct hashes sharing their top 16 bits: one bucket of the 4 blocks at t = 1
    low = rng.choice(2 ** 40, 600, replace=False).astype(np.uint64)
    h = (np.uint64(0xABCD) << np.uint64(48)) | low
    index = NearDuplicateIndex(max_bucket=100, shared_blocks=1)
    index.add(h)
    with pytest.warns(RuntimeWarning, match="max_bucket=100"):
        index.pairs()
    capped = index.capped_buckets
    assert len(capped) >= 1
    row = capped.iloc[0]
    assert row["size"] == 600 and row["mask"] == "ffff000000000000"
    assert row["value"] == "abcd000000000000"


def test_add_checks_ids_and_values():
    index = NearDuplicateIndex()
    with pytest.raises(ValueError, match="one id per hash"):
        index.add(np.zeros(3, np.uint64), ids=["a"])
    with pytest.raises(ValueError, match="hexadecimal"):
        as_uint64(["xyz"])
    index.add(["ffffffffffffffff", 0, 2 ** 63], ids=["a", "b", "c"])
    assert index.hashes.tolist() == [2 ** 64 - 1, 0, 2 ** 63] and index.ids == ["a", "b", "c"]


def test_brute_force_refuses_large_inputs():
    with pytest.raises(ValueError, match="quadratic"):
        brute_force_pairs(np.zeros(20_001, np.uint64), 3)


# ----------------------------------------------------------------------------- exact hashes
def _roundtrip(a: np.ndarray, fmt: str) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    buf.seek(0)
    return np.asarray(Image.open(buf))


@pytest.mark.parametrize("shape", [(40, 56), (40, 56, 3)])
def test_pixel_hash_same_pixels_in_png_and_bmp(shape):
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    png, bmp = _roundtrip(a, "PNG"), _roundtrip(a, "BMP")
    assert pixel_hash(png) == pixel_hash(bmp) == pixel_hash(a)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    assert pixel_hash(Image.open(io.BytesIO(buf.getvalue()))) == pixel_hash(a)  # PIL input
    assert pixel_hash(_roundtrip(a, "JPEG")) != pixel_hash(a)  # lossy: not exact


def test_pixel_hash_includes_shape_dtype_and_ignores_byte_order():
    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert pixel_hash(a) != pixel_hash(a.reshape(4, 3))
    assert pixel_hash(a) != pixel_hash(a.astype(np.int16))
    assert pixel_hash(a) == pixel_hash(a.astype(">u2"))  # big-endian DICOM == little-endian


def test_phash_matches_imagehash_and_layouts():
    img = _u8(generate("breast_birads", 1, size=64, seed=3)[0]["image"][0] * 255)
    assert phash(img) == int(str(imagehash.phash(Image.fromarray(img))), 16)
    assert phash(np.stack([img] * 3, -1)) == phash(img)  # grey RGB
    assert phash(img[None].astype(np.float32) / 255.0) == phash(img)  # [C, H, W] float schema
    assert 0 <= phash(img) < 2 ** 64
    with pytest.raises(ValueError, match="2-D image"):
        phash(np.zeros((5,), np.uint8))


def test_phash_crop_fov_removes_black_padding():
    img = _u8(generate("vessel_seg", 1, size=64, seed=1)[0]["image"][0] * 255)
    padded = np.pad(img, ((10, 10), (30, 30)))
    assert phash(padded, crop_fov=True) == phash(img, crop_fov=True)
    assert phash(padded) != phash(img)  # default hashes what it is given (step 2's crop)


# ----------------------------------------------------------------------------- URLs
@pytest.mark.parametrize("a, b", [
    ("https://Zenodo.org/records/123/", "https://zenodo.org/records/123"),
    ("HTTPS://zenodo.org:443/records/123", "https://zenodo.org/records/123"),
    ("http://example.org:80/a", "http://example.org/a"),
    ("https://example.org/a#section-2", "https://example.org/a"),
    ("  https://example.org/a//  ", "https://example.org/a"),
    ("https://example.org/", "https://example.org"),
    ("https://EXAMPLE.org./a", "https://example.org/a"),
])
def test_url_normalisation_equal(a, b):
    assert normalise_url(a) == normalise_url(b)
    assert url_hash(a) == url_hash(b)


@pytest.mark.parametrize("a, b", [
    ("https://example.org/A", "https://example.org/a"),  # paths are case-sensitive
    ("https://example.org/a?v=1", "https://example.org/a?v=2"),  # the query selects a file
    ("https://example.org:8443/a", "https://example.org/a"),  # non-default port
    ("http://example.org/a", "https://example.org/a"),
])
def test_url_normalisation_different(a, b):
    assert url_hash(a) != url_hash(b)


def test_url_errors_say_what_to_do():
    with pytest.raises(ValueError, match="not an absolute link"):
        normalise_url("zenodo.org/records/1")
    with pytest.raises(ValueError, match="download link"):
        normalise_url("")


# ----------------------------------------------------------------------------- the table
def test_deduplicate_marks_exact_near_url_and_unique():
    base = 0x0123456789ABCDEF
    recs = pd.DataFrame([
        {"id": "a", "pixel_hash": "p1", "phash": f"{base:016x}", "n_pixels": 100},
        {"id": "b", "pixel_hash": "p1", "phash": f"{base:016x}", "n_pixels": 100},  # exact
        {"id": "c", "pixel_hash": "p2", "phash": base ^ 0b111, "n_pixels": 400},  # near, larger
        {"id": "d", "pixel_hash": "p3", "phash": base ^ 0xF0F0F0F0F0F0F0F0, "n_pixels": 100},
        {"id": "e", "pixel_hash": "p4", "phash": base ^ (0xF << 40), "n_pixels": 100},  # 4 bits
    ])
    out = deduplicate(recs).set_index("id")
    # c is the largest of {a, b, c}: it is kept, a and b are near duplicates of it
    assert out.loc["c", "keep"] and out.loc["c", "status"] == "unique"
    assert out.loc["a", "status"] == "near_dup" and out.loc["a", "duplicate_of"] == "c"
    assert out.loc["a", "hamming"] == 3 and out.loc["a", "similarity"] == pytest.approx(61 / 64)
    assert out.loc["b", "duplicate_of"] == "c"
    assert out.loc["d", "keep"] and out.loc["e", "keep"]
    assert out["keep"].sum() == 3
    # without sizes the smallest id wins, and b is an exact duplicate of a
    out2 = deduplicate(recs.drop(columns="n_pixels")).set_index("id")
    assert out2.loc["a", "keep"] and out2.loc["b", "status"] == "exact_dup"
    assert out2.loc["c", "status"] == "near_dup" and out2.loc["c", "duplicate_of"] == "a"


def test_deduplicate_urls_and_errors():
    links = pd.DataFrame({"id": ["x", "y", "z"],
                          "url": ["https://Zenodo.org/records/1/", "https://zenodo.org/records/1",
                                  "https://zenodo.org/records/2"]})
    out = deduplicate(links).set_index("id")
    assert out.loc["y", "status"] == "url_dup" and out.loc["y", "duplicate_of"] == "x"
    assert out.loc["z", "keep"] and np.isnan(out.loc["z", "similarity"])
    with pytest.raises(ValueError, match="'id' column"):
        deduplicate(pd.DataFrame({"phash": [1]}))
    with pytest.raises(ValueError, match="unique"):
        deduplicate(pd.DataFrame({"id": ["a", "a"], "phash": [1, 2]}))


def test_deduplicate_chain_reports_similarity_to_representative():
    recs = [{"id": "a", "phash": 0}, {"id": "b", "phash": 0b111},
            {"id": "c", "phash": 0b111111}]  # a~b (3), b~c (3), a-c 6 bits apart
    out = deduplicate(recs).set_index("id")
    assert out["cluster"].nunique() == 1
    assert out.loc["c", "hamming"] == 6 and not out.loc["c", "direct"]
    assert out.loc["b", "direct"]


def test_representatives_rule():
    labels = np.array([0, 0, 0, 1, 1])
    assert representatives(labels).tolist() == [0, 0, 0, 3, 3]
    assert representatives(labels, sizes=[1, 5, 5, 2, 2], keys=["z", "y", "x", "b", "a"]
                           ).tolist() == [2, 2, 2, 4, 4]
