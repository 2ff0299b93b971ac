"""DDTI reader: XML + SVG-JSON polygons rasterised, malformed cases skipped and reported."""
import numpy as np
import pytest

from echocare_lib.readers import DataFormatError, ReaderWarning, read_ddti
from fixtures_readers import gray_png, label_png, write_ddti


def test_ddti_reads_xml_layout(tmp_path):
    exp = write_ddti(tmp_path / "DDTI")
    with pytest.warns(ReaderWarning) as rec:
        out = read_ddti(tmp_path / "DDTI")
    assert [s["meta"]["case_id"] for s in out] == ["1_1", "1_2"]
    s = out[0]
    assert s["image"].dtype == np.float32 and s["image"].shape == (1, 24, 32)
    assert 0.0 <= s["image"].min() and s["image"].max() <= 1.0
    assert s["mask"].dtype == np.uint8 and s["mask"].shape == (24, 32)
    # the rectangle (2,3)-(6,8) is rasterised boundary included; the triangle is the 2nd nodule
    assert np.array_equal(s["mask"][:, :15], exp["rect_mask"][:, :15])
    assert s["mask"][12, 21] == 1 and set(np.unique(s["mask"])) == {0, 1}
    m = s["meta"]
    assert m["dataset"] == "DDTI" and m["patient_id"] == "1" and m["split"] is None
    assert m["pixel_spacing_mm"] is None and m["tirads"] == "4a" and m["n_regions"] == 2
    assert m["source_path"].endswith("1_1.jpg")
    assert out[1]["mask"].sum() == 6 * 5 and out[1]["image"].shape == (1, 20, 30)
    # every input is accounted for; the bad ones are skipped with their reason
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "no <mark>" in reasons["2.xml"] and "no <mark>" in reasons["2_1.jpg"]
    assert "truncated" in reasons["3_1.jpg"] and "3.xml" in reasons
    assert "no case file 4.xml" in reasons["4_1.jpg"]
    assert set(out.inputs) == {p.name for p in (tmp_path / "DDTI").iterdir()}
    assert all(v == "used" or v.startswith("skipped") for v in out.inputs.values())
    assert "3_1.jpg" in str(rec[0].message) and "2.xml" in str(rec[0].message)


def test_ddti_strict_and_limit(tmp_path):
    write_ddti(tmp_path / "d")
    with pytest.raises(DataFormatError, match="truncated|no <mark>"):
        read_ddti(tmp_path / "d", strict=True)
    one = read_ddti(tmp_path / "d", limit=1)  # stops before any bad case: nothing to report
    assert len(one) == 1 and one.truncated
    assert "not read: limit reached" in one.inputs.values()


def test_ddti_png_redistribution(tmp_path):
    root = tmp_path / "DDTI"
    gray_png(root / "image" / "7.PNG", 10, 12, 0, fmt="PNG")
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:6] = 255
    label_png(root / "mask" / "7.PNG", m)
    gray_png(root / "image" / "8.PNG", 10, 12, 1, fmt="PNG")  # no mask
    with pytest.warns(ReaderWarning) as rec:
        out = read_ddti(root)
    text = "\n".join(str(r.message) for r in rec)
    assert "no patient identity" in text and "skipped image/8.PNG: no mask/8.PNG" in text
    assert len(out) == 1 and out[0]["mask"].sum() == 9 and out[0]["meta"]["patient_id"] == "7"
    assert "no mask" in out.skipped[0].reason


def test_ddti_empty_folder_is_clear(tmp_path):
    with pytest.raises(DataFormatError, match=r"no <case>\.xml"):
        read_ddti(tmp_path)
