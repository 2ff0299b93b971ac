"""Stanford AIMI thyroid cine-clip reader: dataset.hdf5 + metadata.csv (needs h5py)."""
import numpy as np
import pytest

from echocare_lib.readers import DataFormatError, ReaderWarning, read_aimi_thyroid_cine
from echocare_lib.readers.aimi_thyroid_cine import patient_groups

h5py = pytest.importorskip("h5py")

from fixtures_readers import write_aimi  # noqa: E402


def test_aimi_reads_clips(tmp_path):
    exp = write_aimi(tmp_path)
    with pytest.warns(ReaderWarning) as rec:
        out = read_aimi_thyroid_cine(tmp_path, max_frames=3)
    assert [s["meta"]["case_id"] for s in out] == ["1_", "2_", "5_"]
    assert [(s["label"], s["label_name"]) for s in out] == [(0, "benign"), (1, "malignant"),
                                                            (0, "benign")]
    s = out[0]
    # 4 frames (frame_num 1, 2, 3, 5, shuffled in the file) -> 3 kept, in frame order
    assert s["meta"]["frame_nums"] == [1, 3, 5] and s["meta"]["n_frames_total"] == 4
    assert s["frames"].dtype == np.float32 and s["frames"].shape == (3, 1, 8, 10)
    np.testing.assert_allclose(s["frames"][:, 0, 0, 0] * 255, [11, 31, 51], atol=1e-4)
    assert s["masks"].dtype == np.uint8 and s["masks"].shape == (3, 8, 10)
    assert s["masks"][2, 5:7, 2:4].all() and s["masks"][2].sum() == 4  # 255 -> 1
    assert np.array_equal(s["image"], s["frames"][1]) and np.array_equal(s["mask"], s["masks"][1])
    m = s["meta"]
    # 1_ and 2_ share age and sex and are adjacent: one patient proxy; 5_ is another
    assert m["patient_id"] == "1_" and out[1]["meta"]["patient_id"] == "1_"
    assert out[2]["meta"]["patient_id"] == "5_" and m["nodule_id"] == "1_"
    assert m["split"] is None and m["pixel_spacing_mm"] is None
    assert m["clinical"]["ti-rads_level"] == "5" and m["source_path"].endswith("dataset.hdf5")
    assert out.skipped[0].item == "metadata.csv#line 5" and "9_" in out.skipped[0].reason
    assert "9_" in str(rec[0].message)
    assert set(out.inputs) == {"metadata.csv#line 2", "metadata.csv#line 3",
                               "metadata.csv#line 4", "metadata.csv#line 5",
                               "dataset.hdf5#annot_id=1_", "dataset.hdf5#annot_id=2_",
                               "dataset.hdf5#annot_id=5_"}
    assert len(exp["clips"]) == 3
    nod = read_aimi_thyroid_cine(tmp_path, max_frames=None, patient_grouping="nodule", limit=2)
    assert [s["meta"]["patient_id"] for s in nod] == ["1_", "2_"] and nod.truncated
    assert nod[0]["frames"].shape[0] == 4


def test_aimi_missing_hdf5_dataset(tmp_path):
    write_aimi(tmp_path, drop="mask")
    with pytest.raises(DataFormatError, match=r"lacks dataset\(s\) \['mask'\]"):
        read_aimi_thyroid_cine(tmp_path)


def test_patient_groups_never_group_unknown_demographics():
    rows = [{"annot_id": "1_", "age": "", "sex": ""}, {"annot_id": "2_", "age": "", "sex": ""},
            {"annot_id": "10_", "age": "50", "sex": "Male"},
            {"annot_id": "3_", "age": "50", "sex": "male"}]
    g = patient_groups(rows)
    assert g["1_"] == ["1_"] and g["2_"] == ["2_"] and g["3_"] == g["10_"] == ["3_", "10_"]
