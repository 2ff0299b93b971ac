"""CAMUS reader: NIfTI axis order, ED/ES 0-based, EF from the cfg, splits, 2019 .mhd release."""
import numpy as np
import pytest

from echocare_lib.readers import (DataFormatError, DataNotFoundError, ReaderWarning,
                                  read_camus, read_task)
from echocare_lib.readers import camus
from echocare_lib.sim.tasks import task_spec
from fixtures_readers_fetal_cardiac import write_camus, write_camus_2019


def _u8(a):  # what the reader must produce for uint8 frames
    return (np.asarray(a, np.float64) / 255).astype(np.float32)


def _read(root, **kw):
    with pytest.warns(ReaderWarning):
        return read_camus(root, **kw)


def test_camus_reads_nifti_release(tmp_path):
    exp = write_camus(tmp_path / "CAMUS")
    out = _read(tmp_path / "CAMUS")
    assert list(camus.CLASSES) == task_spec("echo_ef")["classes"]
    assert [s["meta"]["case_id"] for s in out] == ["patient0001_4CH", "patient0002_4CH"]
    s = out[0]
    seq, gt = exp["seq"][("patient0001", "4CH")], exp["gt"][("patient0001", "4CH")]
    assert s["frames"].dtype == np.float32 and s["frames"].shape == (5, 1, 10, 12)
    # values, hence axis order (rows x columns, asymmetric pattern), read back exactly
    assert np.array_equal(s["frames"][:, 0], _u8(seq))
    assert np.array_equal(s["image"], s["frames"][0])
    assert s["masks"].dtype == np.uint8 and np.array_equal(s["masks"], gt)
    assert np.array_equal(s["mask"], gt[0]) and set(np.unique(s["masks"])) == {0, 1, 2, 3}
    assert s["ef"] == 55.5 and s["ed_index"] == 0 and s["es_index"] == 3
    assert s["view"] == "4CH" and "edv_ml" not in s
    m = s["meta"]
    assert m["dataset"] == "CAMUS" and m["patient_id"] == "patient0001"
    assert m["split"] == "train" and m["release_split"] == "training"
    assert m["pixel_spacing_mm"] == 0.25 and m["frame_rate_hz"] == 25.0
    assert m["image_quality"] == "Good" and m["mask_source"] == "half_sequence_gt"
    assert m["source_path"].endswith("patient0001_4CH_half_sequence.nii.gz")
    # patient0002: ED is frame 2 (1-based), no sequence gt, an ED_gt; non-square pixels
    s2 = out[1]
    assert s2["ed_index"] == 1 and s2["es_index"] == 3 and s2["ef"] == 38.25
    assert np.array_equal(s2["image"], _u8(exp["seq"][("patient0002", "4CH")][1])[None])
    assert "masks" not in s2 and np.array_equal(s2["mask"], exp["ed_gt_0002"])
    assert s2["meta"]["mask_source"] == "ED_gt" and s2["meta"]["split"] == "val"
    assert s2["meta"]["pixel_spacing_mm"] is None
    assert s2["meta"]["pixel_spacing_rc_mm"] == pytest.approx((0.4, 0.2))


def test_camus_accounts_for_every_input(tmp_path):
    write_camus(tmp_path)
    out = _read(tmp_path)
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "lacks key 'EF'" in reasons["database_nifti/patient0003/Info_4CH.cfg"]
    assert "lacks key 'EF'" in \
        reasons["database_nifti/patient0003/patient0003_4CH_half_sequence.nii.gz"]
    assert "unreadable patient0004_4CH_half_sequence.nii.gz" in \
        reasons["database_nifti/patient0004/Info_4CH.cfg"]
    assert len(out.skipped) == 4
    assert any("patient0099" in n.reason for n in out.notes)  # listed, not on disk
    assert all(v == "used" or v.startswith("skipped") for v in out.inputs.values())
    assert out.inputs["database_nifti/patient0001/patient0001_4CH_half_sequence_gt.nii.gz"] \
        == "used"
    assert not any("2CH" in k for k in out.inputs)  # views not asked for are not read


def test_camus_both_views_and_max_frames(tmp_path):
    exp = write_camus(tmp_path)
    out = _read(tmp_path, views=("2CH", "4CH"))
    ids = [s["meta"]["case_id"] for s in out]
    assert ids == ["patient0001_2CH", "patient0001_4CH", "patient0002_4CH"]
    assert out[0]["meta"]["patient_id"] == out[1]["meta"]["patient_id"] == "patient0001"
    assert out[0]["view"] == "2CH" and out[0]["ef"] == 54.0
    assert np.array_equal(out[0]["masks"], exp["gt"][("patient0001", "2CH")])
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "label values [7]" in reasons["database_nifti/patient0002/Info_2CH.cfg"]
    # max_frames=2 of 5: frames 0 and 4, plus ES (frame 3)
    s = _read(tmp_path, max_frames=2)[0]
    seq = exp["seq"][("patient0001", "4CH")]
    assert s["frames"].shape[0] == 3 and s["ed_index"] == 0 and s["es_index"] == 1
    assert np.array_equal(s["frames"][:, 0], _u8(seq[[0, 3, 4]]))
    assert np.array_equal(s["masks"], exp["gt"][("patient0001", "4CH")][[0, 3, 4]])
    with pytest.raises(ValueError, match="views"):
        read_camus(tmp_path, views=("3CH",))


def test_camus_2019_mhd_release(tmp_path):
    exp = write_camus_2019(tmp_path / "CAMUS")
    out = _read(tmp_path / "CAMUS")
    assert len(out) == 1
    s = out[0]
    assert s["ef"] == 48.24 and s["edv_ml"] == 94.14 and s["esv_ml"] == 48.73
    assert np.array_equal(s["frames"][:, 0], _u8(exp["seq"]))
    assert np.array_equal(s["mask"], exp["ed_gt"]) and "masks" not in s
    assert s["ed_index"] == 0 and s["es_index"] == 2
    m = s["meta"]
    assert m["layout"] == "mhd (2019 release)" and m["ef_key"] == "LVef"
    assert m["split"] == "train" and m["pixel_spacing_mm"] == pytest.approx(0.3)
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "LVef" in reasons["testing/patient0051/Info_4CH.cfg"]


def test_camus_strict_and_errors(tmp_path):
    write_camus(tmp_path / "CAMUS")
    with pytest.raises(DataFormatError, match="lacks key 'EF'"):
        read_camus(tmp_path / "CAMUS", strict=True)
    with pytest.warns(ReaderWarning, match="patient0099"):  # listed in a split, not on disk
        one = read_camus(tmp_path / "CAMUS", limit=1)
    assert len(one) == 1 and one.truncated
    with pytest.warns(ReaderWarning):
        assert len(read_task("echo_ef", tmp_path, limit=1)) == 1
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "nope")):
        read_camus(tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match="CAMUS"):
        read_task("echo_ef", tmp_path / "CAMUS")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no patientNNNN"):
        read_camus(tmp_path / "empty")
