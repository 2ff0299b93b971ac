"""Mus-V reader: nested release folders, RGB frames -> BT.601 grey, 0/1/2 label maps, forces."""
import numpy as np
import pytest

from echocare_lib.readers import DataFormatError, ReaderWarning, read_musv
from fixtures_readers import corrupt, write_musv


def test_musv_reads_nested_release(tmp_path):
    exp = write_musv(tmp_path / "MusV")
    with pytest.warns(ReaderWarning) as rec:
        out = read_musv(tmp_path / "MusV")
    ids = [s["meta"]["case_id"] for s in out]
    assert ids == ["carotid_000001_001", "carotid_000001_002", "femoral_00002_001",
                   "femoral_00002_002"]
    s = out[0]
    assert s["image"].dtype == np.float32 and s["image"].shape == (1, 12, 16)
    # RGB PNG -> BT.601 luminance, exactly
    np.testing.assert_allclose(s["image"][0], exp["frames"]["carotid_000001_001.png"], atol=1e-6)
    assert s["mask"].dtype == np.uint8 and np.array_equal(s["mask"], exp["label"])
    assert set(np.unique(s["mask"])) == {0, 1, 2}  # 0 bg, 1 vein, 2 artery kept as released
    m = s["meta"]
    assert m["patient_id"] == "carotid_000001" and m["frame_index"] == 1
    assert m["split"] == "train" and out[2]["meta"]["split"] == "test"
    assert out[2]["meta"]["release_split"] == "valid"
    assert m["force"] == exp["forces"][0].tolist() and m["force_fz"] == exp["forces"][0, 2]
    assert out[1]["meta"]["force_fz"] == exp["forces"][1, 2]
    assert out[2]["meta"]["force"] is None  # no Forces file for that video
    assert m["pixel_spacing_mm"] is None and m["source_path"].endswith("carotid_000001_001.png")
    rel = "Multimodal Ultrasound Vascular Segmentation/"
    reasons = {sk.item.removeprefix(rel): sk.reason for sk in out.skipped}
    assert reasons["Videos/train/carotid_000001/carotid_000001_003.png"] == \
        "no Annotations/carotid_000001_003.png"
    assert reasons["Annotations/carotid_000001/carotid_000001_004.png"].startswith(
        "label values [7] outside")
    assert "unexpected label" in reasons["Videos/train/carotid_000001/carotid_000001_004.png"]
    files = {p.relative_to(tmp_path / "MusV").as_posix()
             for p in (tmp_path / "MusV").rglob("*") if p.is_file()}
    assert set(out.inputs) == files
    assert "carotid_000001_003.png" in str(rec[0].message)


def test_musv_corrupt_frame_and_missing_layout(tmp_path):
    write_musv(tmp_path / "m")
    base = tmp_path / "m" / "Multimodal Ultrasound Vascular Segmentation"
    corrupt(base / "Videos" / "valid" / "femoral_00002" / "femoral_00002_002.png")
    with pytest.warns(ReaderWarning, match="unreadable image"):
        out = read_musv(tmp_path / "m")
    assert len(out) == 3
    with pytest.raises(DataFormatError, match="Videos/ and Annotations/"):
        read_musv(tmp_path / "m" / "Multimodal Ultrasound Vascular Segmentation" / "Forces")
