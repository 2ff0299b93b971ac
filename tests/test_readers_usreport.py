"""USreport reader: JSON splits (BOM), two images at a common size, Chinese vs English reports,
skipped records and images, errors, dispatch."""
import json

import numpy as np
import pytest

from echocare_lib.readers import (DataFormatError, DataNotFoundError, ReaderWarning,
                                  read_task, read_usreport)
from echocare_lib.readers import usreport
from echocare_lib.sim.tasks import task_spec
from echocare_lib.sim.tasks.report import ENTITIES, entity_vector
from fixtures_readers_generative import EN_REPORT, ZH_REPORT, write_usreport


def _read(root, **kw):
    with pytest.warns(ReaderWarning):
        return read_usreport(root, **kw)


def test_usreport_reads_release_layout(tmp_path):
    exp = write_usreport(tmp_path / "USreport")
    out = _read(tmp_path / "USreport")
    assert task_spec("liver_report")["classes"] == ENTITIES
    assert [s["meta"]["case_id"] for s in out] == ["101", "102", "201", "301"]
    assert [s["meta"]["split"] for s in out] == ["train", "train", "val", "test"]
    for s in out:
        assert set(s) == {"image", "images", "report", "entities", "meta"}
        assert s["images"].dtype == np.float32 and s["images"].shape == (2, 1, 8, 8)
        assert s["image"].shape == (1, 8, 8) and np.array_equal(s["image"], s["images"][0])
        m = s["meta"]
        assert m["dataset"] == "USData Liver (USreport)" and m["task"] == "liver_report"
        assert m["patient_id"] == m["case_id"] and m["organ"] == "liver"
        assert len(m["source_paths"]) == 2 and m["source_path"] == m["source_paths"][0]
    s = out[0]
    np.testing.assert_allclose(s["images"][0, 0], exp["101_1.jpeg"], atol=1e-6)
    np.testing.assert_allclose(s["images"][1, 0], exp["101_2.jpeg"], atol=1e-6)
    assert s["report"] == ZH_REPORT and s["meta"]["labels"] == 2
    assert out[2]["meta"]["source_paths"][1].endswith("Liver_report/201/201_2.jpeg")


def test_usreport_language_and_entities(tmp_path):
    write_usreport(tmp_path)
    by = {s["meta"]["case_id"]: s for s in _read(tmp_path)}
    for case in ("101", "201"):
        assert by[case]["entities"] is None and by[case]["meta"]["language"] == "zh"
    for case in ("102", "301"):
        s = by[case]
        assert s["meta"]["language"] == "en" and s["report"] == EN_REPORT
        assert list(s["entities"]) == ENTITIES
        assert list(s["entities"].values()) == entity_vector(EN_REPORT).tolist()
        assert s["entities"]["liver"] == 1 and s["entities"]["spleen"] == 0
    assert usreport.language("肝脏 normal") == "zh" and usreport.entities_for("肝") is None


def test_usreport_second_image_resized_by_area(tmp_path):
    exp = write_usreport(tmp_path)
    s = {s["meta"]["case_id"]: s for s in _read(tmp_path)}["102"]
    assert s["meta"]["second_image_resized_from"] == [12, 10]
    assert s["meta"]["image_shapes"] == [[8, 8], [12, 10]]
    second = s["images"][1, 0]
    assert second.shape == (8, 8)
    # area averaging keeps the mean (12x10 -> 8x8: box weights cover the image evenly)
    assert second.mean() == pytest.approx(float(exp["102_2.jpeg"].mean()), abs=1e-5)
    np.testing.assert_allclose(second, usreport.resize_area(exp["102_2.jpeg"], (8, 8)))
    assert "second_image_resized_from" not in _read(tmp_path)[0]["meta"]
    # 3 -> 2 cells: each output covers 1.5 inputs; upsampling replicates
    a = np.array([[0.0, 0.3, 0.9]], np.float32)
    np.testing.assert_allclose(usreport.resize_area(a, (1, 2)), [[0.1, 0.7]], atol=1e-6)
    np.testing.assert_allclose(usreport.resize_area(a[:, :2], (2, 4)),
                               [[0, 0, .3, .3], [0, 0, .3, .3]], atol=1e-6)


def test_usreport_accounts_for_every_input(tmp_path):
    write_usreport(tmp_path)
    out = _read(tmp_path)
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "'103_2.jpeg' not found" in reasons["new_Liver2.json#train[2]"]
    assert "no report text" in reasons["new_Liver2.json#train[3]"]
    assert "uid 101 repeats new_Liver2.json#train[0]" in reasons["new_Liver2.json#val[1]"]
    assert "unreadable image" in reasons["new_Liver2.json#test[1]"]
    assert "was skipped" in reasons["Liver_report/103_1.jpeg"]
    assert "was skipped" in reasons["Liver_report/302_1.jpeg"]
    assert "only the first two" in reasons["Liver_report/301_3.jpeg"]
    assert "no record" in reasons["Liver_report/999_1.jpeg"]
    assert len(out.skipped) == 11
    notes = {n.item: n.reason for n in out.notes}
    assert "'split' field says 'train'" in " ".join(
        n.reason for n in out.notes if n.item == "new_Liver2.json#test[0]")
    assert "new_Liver2.json#test[0]" in notes
    assert all(v == "used" or v.startswith("skipped") for v in out.inputs.values())
    assert out.inputs["Liver_report/201/201_2.jpeg"] == "used"


def test_usreport_variants_without_bom_and_other_organs(tmp_path):
    root = tmp_path / "USData"
    write_usreport(root, bom=False)
    (root / "new_Liver2.json").rename(root / "Liver_report" / "annotation.json")
    out = _read(root)
    assert len(out) == 4 and out[0]["meta"]["annotation_path"].endswith("annotation.json")
    # a flat list with a split per record, for the breast (Mammary) subset
    img = root / "Mammary_report"
    img.mkdir()
    for name in ("7_1.jpeg", "7_2.jpeg"):
        (img / name).write_bytes((root / "Liver_report" / "101_1.jpeg").read_bytes())
    (root / "new_Mammary2.json").write_text(json.dumps(
        [{"uid": 7, "finding": "Breast nodule.", "image_path": ["7_1.jpeg", "7_2.jpeg"],
          "labels": 1, "split": "valid"}]), encoding="utf-8")
    b = read_usreport(root, organ="mammary")
    assert len(b) == 1 and b[0]["meta"]["split"] == "val" and b[0]["meta"]["organ"] == "breast"
    assert b[0]["meta"]["dataset"] == "USData Breast (USreport)"
    with pytest.raises(DataFormatError, match="no annotation JSON for organ 'thyroid'"):
        read_usreport(root, organ="thyroid")
    with pytest.raises(ValueError, match="organ must be one of"):
        read_usreport(root, organ="kidney")


def test_usreport_errors_dispatch_and_limit(tmp_path):
    root = tmp_path / "USreport"
    write_usreport(root)
    with pytest.warns(ReaderWarning):
        assert len(read_task("liver_report", tmp_path)) == 4
    assert len(read_task("liver_report", tmp_path, limit=2)) == 2  # before the faulty records
    one = read_usreport(root, limit=1)
    assert len(one) == 1 and one.truncated
    with pytest.raises(DataFormatError, match="not found"):
        read_usreport(root, strict=True)
    # missing folders
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_usreport(tmp_path / "nope")
    with pytest.raises(DataNotFoundError) as err:
        read_task("liver_report", root)
    assert str(root / "USreport") in str(err.value) and "USData" in str(err.value)
    # bad JSON: the path and the problem
    good = (root / "new_Liver2.json").read_bytes()
    (root / "new_Liver2.json").write_bytes(good[:-40])
    with pytest.raises(DataFormatError, match=r"new_Liver2.json is not valid JSON: .* line"):
        read_usreport(root)
    (root / "new_Liver2.json").write_text(json.dumps({"training_set": []}))
    with pytest.raises(DataFormatError, match="no 'train', 'val' or 'test' list"):
        read_usreport(root)
    (root / "new_Liver2.json").write_text(json.dumps({"train": {"uid": 1}}))
    with pytest.raises(DataFormatError, match="'train' is a dict"):
        read_usreport(root)
    (root / "new_Liver2.json").write_bytes(good)
    (root / "liver.json").write_bytes(good)
    with pytest.raises(DataFormatError, match="several annotation files"):
        read_usreport(root)
    (root / "liver.json").unlink()
    # no image folder and images not found beside the JSON
    (root / "Liver_report").rename(root / "pictures")
    with pytest.raises(DataNotFoundError, match="Liver_report"):
        read_usreport(root)
    (root / "new_Liver2.json").unlink()
    with pytest.raises(DataFormatError, match="new_Liver2.json"):
        read_usreport(root)
