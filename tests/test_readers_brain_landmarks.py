"""Fetal brain landmark import layout: 24 (x, y) points per image, bad rows skipped."""
import numpy as np
import pytest

from echocare_lib.readers import (DataFormatError, DataNotFoundError, ReaderWarning,
                                  read_brain_landmarks, read_task)
from echocare_lib.readers import brain_landmarks
from echocare_lib.sim.tasks import task_spec
from echocare_lib.sim.tasks.fetal import LANDMARK_NAMES
from fixtures_readers_fetal_cardiac import write_brain_landmarks


def _read(root, **kw):
    with pytest.warns(ReaderWarning):
        return read_brain_landmarks(root, **kw)


def test_brain_landmarks_reads_import_layout(tmp_path):
    exp = write_brain_landmarks(tmp_path / "BrainBenchmark")
    out = _read(tmp_path / "BrainBenchmark")
    assert task_spec("fetal_brain_landmarks")["classes"] == list(LANDMARK_NAMES)
    assert "official release's layout was not available" in brain_landmarks.__doc__
    assert [s["meta"]["case_id"] for s in out] == ["a", "b"]
    a, b = out
    assert set(a) == {"image", "landmarks", "landmark_names", "meta"}
    assert a["image"].dtype == np.float32 and a["image"].shape == (1, 32, 40)
    np.testing.assert_allclose(a["image"][0], exp["a"], atol=1e-6)
    assert a["landmarks"].dtype == np.float32 and a["landmarks"].shape == (24, 2)
    assert np.array_equal(a["landmarks"], exp["points"]["a"].astype(np.float32))
    assert np.array_equal(b["landmarks"], exp["points"]["b"].astype(np.float32))
    assert b["landmarks"][3].tolist() == [45.0, 10.0]  # x = column, y = row, kept as given
    assert a["landmark_names"] == list(LANDMARK_NAMES)
    assert a["meta"]["patient_id"] == b["meta"]["patient_id"] == "P1"
    assert a["meta"]["pixel_spacing_mm"] == 0.2 and b["meta"]["pixel_spacing_mm"] is None
    assert a["meta"]["split"] == "train" and a["meta"]["dataset"] == "BrainBenchmark"
    assert b["meta"]["source_path"].endswith("images/b.png")  # bare name found in images/
    assert any("outside the 40x32 image" in n.reason and "skull_distal" in n.reason
               for n in out.notes)


def test_brain_landmarks_accounts_for_every_input(tmp_path):
    write_brain_landmarks(tmp_path)
    out = _read(tmp_path)
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "unreadable image" in reasons["landmarks.csv#line 4"]
    assert "skipped" in reasons["images/c.png"]
    assert "y_skull_proximal='n/a'" in reasons["landmarks.csv#line 5"]
    assert "skipped" in reasons["images/d.png"]
    assert "images/missing.png not found" in reasons["landmarks.csv#line 6"]
    assert "not referenced" in reasons["images/e.png"]
    assert len(out.skipped) == 6
    assert all(v == "used" or v.startswith("skipped") for v in out.inputs.values())


def test_brain_landmarks_strict_columns_and_errors(tmp_path):
    root = tmp_path / "BrainLandmark"  # an accepted alias of the folder
    write_brain_landmarks(root)
    with pytest.raises(DataFormatError, match="unreadable image"):
        read_brain_landmarks(root, strict=True)
    one = read_brain_landmarks(root, limit=1)
    assert len(one) == 1 and one.truncated
    with pytest.warns(ReaderWarning, match="outside"):
        two = read_task("fetal_brain_landmarks", tmp_path, limit=2)
    assert two[1]["meta"]["case_id"] == "b"
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "nope")):
        read_brain_landmarks(tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match="BrainBenchmark"):
        read_task("fetal_brain_landmarks", root)
    csv = root / "landmarks.csv"
    csv.write_text(csv.read_text().replace("x_vermis_anterior", "x_vermis"))
    with pytest.raises(DataFormatError, match="x_vermis_anterior"):
        read_brain_landmarks(root)
    csv.unlink()
    with pytest.raises(DataFormatError, match="import layout"):
        read_brain_landmarks(root)
