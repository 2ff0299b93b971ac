"""AbdomenUS import layout (official layout unavailable): cases.csv + images/ + masks/."""
import numpy as np
import pytest

import echocare_lib.readers.abdomenus as mod
from echocare_lib.readers import DataFormatError, ReaderWarning, read_abdomenus
from fixtures_readers import write_abdomenus


def test_abdomenus_import_layout(tmp_path):
    exp = write_abdomenus(tmp_path)
    with pytest.warns(ReaderWarning) as rec:
        out = read_abdomenus(tmp_path)
    assert [s["meta"]["case_id"] for s in out] == ["a1", "a2"]
    for s in out:
        assert s["image"].dtype == np.float32 and s["image"].shape == (1, 10, 14)
        assert s["mask"].dtype == np.uint8 and np.array_equal(s["mask"], exp["label"])
        assert s["meta"]["patient_id"] == "P1" and s["meta"]["split"] is None
    assert set(np.unique(out[0]["mask"])) == {0, 1, 2, 3, 4, 5}
    assert out[0]["meta"]["pixel_spacing_mm"] == 0.3 and out[1]["meta"]["pixel_spacing_mm"] is None
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "mask values [6] outside 0..5" in reasons["cases.csv#line 4"]
    assert "unreadable image" in reasons["cases.csv#line 5"]
    assert reasons["cases.csv#line 6"] == "image images/missing.png not found"
    assert "not referenced" in reasons["images/orphan.png"]
    assert "images/b1.png" in reasons and "masks/b2.png" in reasons
    assert all(v == "used" or v.startswith("skipped") for v in out.inputs.values())
    assert len(out.inputs) == 5 + 9  # 5 rows + 5 images + 4 masks
    assert "orphan.png" in str(rec[0].message)


def test_abdomenus_docs_and_errors(tmp_path):
    assert "official release's layout was not available" in mod.__doc__
    with pytest.raises(DataFormatError, match="cases.csv not found.*import layout"):
        read_abdomenus(tmp_path)
    (tmp_path / "cases.csv").write_text("image\nimages/a.png\n")
    with pytest.raises(DataFormatError, match=r"lacks column\(s\) \['patient_id'\]"):
        read_abdomenus(tmp_path)
