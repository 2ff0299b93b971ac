"""FOCUS reader: ellipse files (b > a, 'thoracic'), masks given or rasterised, CTR, splits."""
import numpy as np
import pytest

from echocare_lib.readers import (DataFormatError, DataNotFoundError, ReaderWarning,
                                  read_focus, read_task)
from echocare_lib.readers import focus
from echocare_lib.sim.tasks import task_spec
from fixtures_readers_fetal_cardiac import write_focus


def _read(root, **kw):
    with pytest.warns(ReaderWarning):
        return read_focus(root, **kw)


def test_focus_reads_official_layout(tmp_path):
    exp = write_focus(tmp_path / "FOCUS")
    out = _read(tmp_path / "FOCUS")
    assert list(focus.CLASSES) == task_spec("fetal_4ch_detection")["classes"]
    assert [s["meta"]["case_id"] for s in out] == ["training_001", "training_002",
                                                   "validation_001", "testing_001"]
    assert [s["meta"]["split"] for s in out] == ["train", "train", "val", "test"]
    assert out[2]["meta"]["release_split"] == "validation"
    s = out[0]
    assert set(s) == {"image", "mask", "ellipses", "ctr", "meta"}
    assert s["image"].dtype == np.float32 and s["image"].shape == (1, 32, 40)
    np.testing.assert_allclose(s["image"][0], exp["images"]["training_001"], atol=1e-6)
    # cardiac "22.5 15.0 6.0 8.0 30.0": b > a -> a=8, b=6, angle 30+90
    assert s["ellipses"] == [
        {"label": "thorax", "cx": 20.0, "cy": 16.0, "a": 14.0, "b": 11.0, "angle": 10.0},
        {"label": "cardiac", "cx": 22.5, "cy": 15.0, "a": 8.0, "b": 6.0, "angle": 120.0}]
    assert s["ctr"] == pytest.approx(6.0 / 11.0, abs=1e-12)  # minor axes
    assert s["meta"]["ctr_file_columns"] == pytest.approx(8.0 / 11.0)  # toolkit's literal b
    assert s["meta"]["mask_source"] == "annfiles_mask"
    assert s["mask"].dtype == np.uint8 and np.array_equal(s["mask"], exp["mask_001"])
    m = s["meta"]
    assert m["dataset"] == "FOCUS" and m["patient_id"] == "training_001"
    assert m["pixel_spacing_mm"] is None and m["source_path"].endswith("training/images/001.png")
    assert m["ellipses_file"]["cardiac"] == [22.5, 15.0, 6.0, 8.0, 30.0]


def test_focus_thoracic_alias_swap_and_rasterised_mask(tmp_path):
    write_focus(tmp_path)
    s = _read(tmp_path)[1]
    # "19 15 9 12 170 Thoracic": b > a -> a=12, b=9, angle (170 + 90) mod 180 = 80
    th, ca = s["ellipses"]
    assert th == {"label": "thorax", "cx": 19.0, "cy": 15.0, "a": 12.0, "b": 9.0, "angle": 80.0}
    assert ca == {"label": "cardiac", "cx": 18.0, "cy": 14.0, "a": 3.0, "b": 2.0, "angle": 45.0}
    assert all(e["a"] >= e["b"] and 0 <= e["angle"] < 180 for e in s["ellipses"])
    assert s["ctr"] == pytest.approx(2.0 / 9.0) and s["meta"]["ctr_file_columns"] == \
        pytest.approx(2.0 / 12.0)
    assert s["meta"]["mask_source"] == "ellipses"
    mk = s["mask"]
    assert mk[14, 18] == 2  # cardiac centre drawn over the thorax
    assert mk[25, 21] == 1  # 10 px along the major axis (80 deg: nearly down the rows)
    assert mk[15, 29] == 0  # 10 px along the columns: beyond the minor half-axis 9
    assert mk[0, 0] == 0 and set(np.unique(mk)) == {0, 1, 2}


def test_focus_accounts_for_every_input(tmp_path):
    write_focus(tmp_path)
    out = _read(tmp_path)
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "line 1: 5 fields" in reasons["training/annfiles_ellipse/003.txt"]
    assert "malformed" in reasons["training/images/003.png"]
    assert "unreadable image" in reasons["training/images/004.png"]
    assert "skipped" in reasons["training/annfiles_ellipse/004.txt"]
    assert "no images/009.png" in reasons["training/annfiles_ellipse/009.txt"]
    assert "no annfiles_ellipse/002.txt" in reasons["testing/images/002.png"]
    assert len(out.skipped) == 6
    assert not any("annfiles_rectangle" in k for k in out.inputs)  # not read, not listed
    assert all(v == "used" or v.startswith("skipped") for v in out.inputs.values())
    assert out.inputs["training/annfiles_mask/001-cardiac.png"] == "used"


def test_focus_incomplete_masks_fall_back_to_ellipses(tmp_path):
    write_focus(tmp_path)
    (tmp_path / "training" / "annfiles_mask" / "001-cardiac.png").unlink()
    out = _read(tmp_path)
    s = out[0]
    assert s["meta"]["mask_source"] == "ellipses" and s["mask"][15, 22] == 2
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "no cardiac mask" in reasons["training/annfiles_mask/001-thorax.png"]


def test_focus_strict_limit_and_errors(tmp_path):
    write_focus(tmp_path / "FOCUS")
    with pytest.raises(DataFormatError, match="5 fields"):
        read_focus(tmp_path / "FOCUS", strict=True)
    one = read_focus(tmp_path / "FOCUS", limit=1)
    assert len(one) == 1 and one.truncated
    assert len(read_task("fetal_4ch_detection", tmp_path, limit=2)) == 2
    assert len(read_focus(tmp_path, limit=1)) == 1  # split folders one level deeper
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "nope")):
        read_focus(tmp_path / "nope")
    with pytest.raises(DataNotFoundError) as err:
        read_task("fetal_4ch_detection", tmp_path / "FOCUS")
    assert str(tmp_path / "FOCUS" / "FOCUS") in str(err.value)
    assert "zenodo.14597550" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no training/"):
        read_focus(tmp_path / "empty")
