"""BUS-BRA reader: bus_data.csv + Images/ + 1-bit Masks/, BI-RADS 2-5 -> 4 classes, CV folds."""
import numpy as np
import pytest

from echocare_lib.readers import DataFormatError, ReaderWarning, read_busbra
from echocare_lib.readers.busbra import parse_bbox
from fixtures_readers import write_busbra


def test_busbra_reads_release(tmp_path):
    exp = write_busbra(tmp_path)
    with pytest.warns(ReaderWarning) as rec:
        out = read_busbra(tmp_path)
    assert [s["meta"]["case_id"] for s in out] == ["bus_0001-l", "bus_0001-r", "bus_0002-s"]
    assert [s["label"] for s in out] == [0, 3, 2]
    assert [s["label_name"] for s in out] == ["BI-RADS 2", "BI-RADS 5", "BI-RADS 4"]
    assert [s["meta"]["patient_id"] for s in out] == ["1", "1", "2"]
    for s in out:
        assert s["image"].dtype == np.float32 and s["image"].shape == (1, 12, 16)
        assert s["mask"].dtype == np.uint8 and np.array_equal(s["mask"], exp["mask"])
        assert s["meta"]["split"] is None and s["meta"]["pixel_spacing_mm"] is None
    m = out[0]["meta"]
    assert m["bbox_xywh"] == [4, 3, 5, 4] and m["cv5_fold"] == 1 and m["cv10_fold"] is None
    assert m["pathology"] == "benign" and m["source_path"].endswith("Images/bus_0001-l.png")
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert reasons["bus_data.csv#line 6"] == "bus_0004-s: image Images/bus_0004-s.png not found"
    assert "unreadable image" in reasons["bus_data.csv#line 5"]
    assert "unreadable image" in reasons["Masks/mask_0003-l.png"]
    assert reasons["Images/bus_0009-l.png"] == "no row of bus_data.csv names it"
    assert all(v == "used" or v.startswith("skipped") for v in out.inputs.values())
    assert "bus_0004-s" in str(rec[0].message)


def test_busbra_test_fold_and_errors(tmp_path):
    write_busbra(tmp_path)
    with pytest.warns(ReaderWarning):
        out = read_busbra(tmp_path, test_fold=1)
    assert [s["meta"]["split"] for s in out] == ["test", "test", "train"]
    with pytest.raises(DataFormatError, match="10-fold-cv.csv"):
        read_busbra(tmp_path, test_fold=1, cv=10)
    with pytest.raises(DataFormatError, match="line 5: bus_0003-l: Masks/mask_0003-l.png: "
                       "unreadable image"):
        read_busbra(tmp_path, strict=True)
    (tmp_path / "bus_data.csv").write_text("ID,Case\nbus_0001-l,1\n")
    with pytest.raises(DataFormatError, match=r"lacks column\(s\) \['BIRADS'\]"):
        read_busbra(tmp_path)


def test_parse_bbox():
    assert parse_bbox("[1, 1, 10, 20]") == [0, 0, 10, 20]
    assert parse_bbox("junk") is None
