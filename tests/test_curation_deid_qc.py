"""Curation steps 2-3: DICOM tags removed, the field of view found where the simulator put
it (burnt-in text cropped away), and quality control rejecting empty and tiny images while
flagging non-ultrasound ones."""
import io

import numpy as np
import pydicom
import pytest
from scipy import ndimage as ndi

import echocare_lib.sim.corpus as simcorpus
from echocare_lib.curation import (crop_to_fov, deidentify_dicom, find_fov, ingest_file,
                                   quality_check)
from echocare_lib.sim.devices import DEVICE_STYLES
from echocare_lib.sim.render import sample_rng
from echocare_lib.sim.tasks import task_spec


# ----------------------------------------------------------------------------- DICOM tags
@pytest.fixture(scope="module")
def sim_dicoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    simcorpus.write_corpus(root, n_sources=4, images_per_source=3, size=48, seed=0,
                           progress=False)
    files = sorted(p for p in root.rglob("*.dcm") if p.read_bytes()[128:132] == b"DICM")
    assert files, "the simulator corpus should hold DICOM files"
    return files


def test_deidentify_removes_the_simulator_identifying_tags(sim_dicoms):
    for path in sim_dicoms:
        ds = pydicom.dcmread(path)
        assert str(ds.PatientName).startswith("SIM^") and ds.InstitutionName
        out = deidentify_dicom(ds)
        assert str(ds.PatientName).startswith("SIM^"), "the input must stay unchanged"
        for kw in ("PatientName", "PatientID", "PatientBirthDate", "ReferringPhysicianName",
                   "StudyDate"):
            assert not out.get(kw), kw
        assert "InstitutionName" not in out
        assert out.StudyInstanceUID != ds.StudyInstanceUID
        assert out.PatientIdentityRemoved == "YES" and "PS3.15" in out.DeidentificationMethod
        assert out.Manufacturer == ds.Manufacturer  # device stays: it is provenance
        buf = io.BytesIO()
        out.save_as(buf)
        again = pydicom.dcmread(io.BytesIO(buf.getvalue()))
        assert np.array_equal(again.pixel_array, ds.pixel_array)


def test_deidentify_real_scanner_file_drops_private_tags_and_names():
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("OBXXXX1A.dcm"))
    assert any(e.tag.is_private for e in ds.iterall())
    out = deidentify_dicom(ds)
    assert not any(e.tag.is_private for e in out.iterall())
    assert not out.get("PatientName") and "InstitutionName" not in out
    assert out.SOPInstanceUID == out.file_meta.MediaStorageSOPInstanceUID
    # consistent: the same study gets the same replacement UID
    assert deidentify_dicom(ds).StudyInstanceUID == out.StudyInstanceUID


# ----------------------------------------------------------------------------- field of view
def simulated_screens(n: int, seed: int = 0):
    """Scanner screens made the way ``write_corpus`` makes them, with the simulator's own
    field-of-view mask captured from ``burn_in`` (pixels of the clean frame > 0.02)."""
    captured = {}
    original = simcorpus.burn_in

    def spy(canvas, fov, *args, **kwargs):
        captured["fov"] = fov.copy()
        return original(canvas, fov, *args, **kwargs)

    fams, styles = list(simcorpus.FAMILIES), list(DEVICE_STYLES)
    rng = np.random.default_rng(seed)
    out = []
    simcorpus.burn_in = spy
    try:
        for i in range(n):
            fam = fams[i % len(fams)]
            task, depth, probe = simcorpus.FAMILIES[fam]
            style = styles[(i // len(fams)) % len(styles)]
            h = int(rng.choice([240, 300, 360]))
            w = int(h * rng.choice([1.0, 1.25, 1.33]))
            sample = task_spec(task)["sample"](sample_rng(seed, task, "train", i), size=48,
                                               index=i, split="train")
            rgb = simcorpus.screen_from_image(sample["image"][0], style, rng, screen=(h, w),
                                              depth_mm=depth, calipers=bool(rng.random() < .3),
                                              probe_kind=probe)
            out.append({"rgb": rgb, "fov": captured["fov"], "probe": probe, "style": style})
    finally:
        simcorpus.burn_in = original
    return out


def _bbox(mask):
    r, c = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return np.array([r[0], c[0], r[-1] + 1, c[-1] + 1])


def test_find_fov_matches_the_simulated_field_of_view():
    screens = simulated_screens(54)
    errors, removed, kept, kinds = [], [], [], []
    for s in screens:
        fov = find_fov(s["rgb"])
        grey = s["rgb"].max(-1)
        errors.append(np.abs(np.array(fov.bbox) - _bbox(s["fov"])).max())
        burnt = (grey > 40) & ~ndi.binary_dilation(s["fov"], iterations=2)  # text, rulers
        removed.append(1 - (burnt & fov.mask).sum() / burnt.sum())
        signal = s["fov"] & (grey > 6)
        kept.append((signal & fov.mask).sum() / signal.sum())
        kinds.append((s["probe"], fov.kind))
        crop = crop_to_fov(s["rgb"], fov)
        t, l, b, r = fov.bbox
        assert crop.shape == (b - t, r - l, 3) and not crop[~fov.mask[t:b, l:r]].any()
    errors = np.array(errors)
    # bbox within 5 px: 83 % of 270 such screens and 86-90 % of the ok images of written
    # corpora; the misses are isolated faint speckle in fetal and liver scenes
    assert (errors <= 5).mean() >= 0.8, np.sort(errors)
    assert np.mean(removed) > 0.995 and min(removed) > 0.9  # burnt-in text is cut away
    assert np.mean(kept) > 0.98  # and the image kept
    assert all(k == "rectangle" for p, k in kinds if p == "linear")
    assert all(k == "sector" for p, k in kinds if p == "phased")
    assert np.mean([k == "sector" for p, k in kinds if p == "convex"]) >= 0.9


def test_find_fov_on_real_scanner_screens():
    from pydicom.data import get_testdata_file

    cine = ingest_file(get_testdata_file("color3d_jpeg_baseline.dcm"))[0].image
    fov = find_fov(cine)
    t, l, b, r = fov.bbox
    assert fov.kind == "sector"
    assert b <= 450 and r <= 600 and l >= 60 and t >= 20  # toolbar, labels, logo excluded
    uncr = ingest_file(get_testdata_file("US1_UNCR.dcm"))[0].image
    fov = find_fov(uncr)
    assert fov.kind == "rectangle"
    assert fov.bbox[0] > 80 and fov.bbox[2] < 360  # header text and 'LYMPH NODE' excluded
    crop = crop_to_fov(uncr, fov)
    assert crop.shape[0] < uncr.shape[0] and crop.any()


def test_blank_screen_has_no_fov_and_fails_qc():
    blank = np.zeros((120, 160, 3), np.uint8)
    fov = find_fov(blank)
    assert fov.kind == "none" and not fov.mask.any()
    assert quality_check(crop_to_fov(blank, fov))[:2] == (False, "empty image")


# ----------------------------------------------------------------------------- QC
def test_qc_rejects_empty_and_tiny_images():
    assert quality_check(np.zeros((64, 64), np.uint8))[:2] == (False, "empty image")
    assert quality_check(np.full((64, 64, 3), 128, np.uint8))[:2] == (False, "empty image")
    assert quality_check(None)[:2] == (False, "empty image")
    assert quality_check(np.zeros((0, 0), np.uint8))[:2] == (False, "empty image")
    tiny = np.zeros((240, 320, 3), np.uint8)
    tiny[100:120, 50:70] = np.random.default_rng(0).integers(40, 200, (20, 20, 1))
    ok, reason, flags = quality_check(tiny)
    assert not ok and reason == "fewer than 1,000 valid pixels (400)"
    assert flags["valid_pixels"] == 400


def test_qc_keeps_ultrasound_including_tinted_and_real():
    from pydicom.data import get_testdata_file

    for s in simulated_screens(36, seed=3):  # every device style, sepia and blue tints too
        for img in (s["rgb"], crop_to_fov(s["rgb"], find_fov(s["rgb"]))):
            ok, reason, flags = quality_check(img)
            assert ok and reason == "" and not flags["non_ultrasound"], (s["style"], reason)
    for name in ("US1_UNCR.dcm", "color3d_jpeg_baseline.dcm", "gdcm-US-ALOKA-16.dcm"):
        img = ingest_file(get_testdata_file(name))[0].image
        ok, reason, _ = quality_check(crop_to_fov(img, find_fov(img)))
        assert ok and reason == "", (name, reason)


def test_qc_flags_non_ultrasound_without_rejecting_it():
    rng = np.random.default_rng(1)
    flagged = []
    for i in range(16):
        img = simcorpus._defective("non_us", (240, 300), rng)  # photo-like scenes and charts
        ok, reason, flags = quality_check(img)
        assert ok, "a non-ultrasound image is flagged, not rejected"
        flagged.append(flags["non_ultrasound"])
        if flags["non_ultrasound"]:
            assert reason.startswith("possibly not ultrasound:")
    assert np.mean(flagged) >= 0.9
