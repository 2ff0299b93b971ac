"""USenhance reader: pairing by (organ, name), unpaired and corrupt images, errors, dispatch."""
import numpy as np
import pytest

from echocare_lib.readers import (DataFormatError, DataNotFoundError, ReaderWarning,
                                  read_task, read_usenhance)
from echocare_lib.readers import usenhance
from echocare_lib.readers.splits import patient_split
from echocare_lib.sim.tasks import task_spec
from fixtures_readers_generative import write_usenhance


def _read(root, **kw):
    with pytest.warns(ReaderWarning):
        return read_usenhance(root, **kw)


def test_usenhance_pairs_by_organ_and_name(tmp_path):
    exp = write_usenhance(tmp_path / "USenhance")
    out = _read(tmp_path / "USenhance")
    assert list(usenhance.CLASSES) == task_spec("enhancement")["classes"]
    assert [s["meta"]["case_id"] for s in out] == ["breast_1", "breast_2", "breast_3",
                                                   "carotid_1", "carotid_7", "kidney_1"]
    for s in out:
        assert set(s) <= {"image", "target", "organ", "meta"} and "image" in s
        assert s["image"].dtype == np.float32 and s["image"].ndim == 3
        assert s["image"].shape[0] == 1 and 0 <= s["image"].min() <= s["image"].max() <= 1
        m = s["meta"]
        assert m["dataset"] == "USenhance" and m["task"] == "enhancement"
        assert m["organ"] == s["organ"] and m["case_id"].startswith(s["organ"] + "_")
        assert m["patient_id"] == m["case_id"] and m["split"] is None
        assert m["source_path"].endswith(f"{s['organ']}/low_quality/{m['name']}.png")
    by = {s["meta"]["case_id"]: s for s in out}
    # the same name in two organs: two samples, each with its own organ's pixels
    for organ in ("breast", "carotid"):
        s = by[f"{organ}_1"]
        np.testing.assert_allclose(s["image"][0], exp[(organ, "1", "low")], atol=1e-6)
        np.testing.assert_allclose(s["target"][0], exp[(organ, "1", "high")], atol=1e-6)
        assert s["meta"]["paired"] and s["meta"]["target_path"].endswith(
            f"{organ}/high_quality/1.png")
    assert not np.allclose(by["breast_1"]["image"], by["carotid_1"]["image"])
    # native sizes kept when the pair differs
    s = by["breast_2"]
    assert s["image"].shape == (1, 16, 16) and s["target"].shape == (1, 20, 24)
    assert s["meta"]["image_shape"] == [16, 16] and s["meta"]["target_shape"] == [20, 24]
    np.testing.assert_allclose(by["kidney_1"]["target"][0], exp[("kidney", "1", "high")],
                               atol=1e-6)  # RGB -> BT.601 luminance


def test_usenhance_unpaired_and_corrupt_are_accounted_for(tmp_path):
    exp = write_usenhance(tmp_path)
    out = _read(tmp_path)
    by = {s["meta"]["case_id"]: s for s in out}
    # low without a partner, and low whose partner is corrupt: samples without "target"
    for case, why in (("breast_3", "no high_quality/3"), ("carotid_7", "unreadable")):
        s = by[case]
        assert "target" not in s and s["meta"]["paired"] is False
        assert why in s["meta"]["unpaired_reason"]
    # high without a (readable) partner: targets_only, not samples
    assert [t["meta"]["case_id"] for t in out.targets_only] == ["carotid_5", "carotid_6"]
    t = out.targets_only[0]
    assert set(t) == {"target", "organ", "meta"} and t["organ"] == "carotid"
    np.testing.assert_allclose(t["target"][0], exp[("carotid", "5", "high")], atol=1e-6)
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "unreadable image" in reasons["train_datasets/carotid/low_quality/6.png"]
    assert "unreadable image" in reasons["train_datasets/carotid/high_quality/7.png"]
    assert "'spleen' is not one of" in reasons["train_datasets/spleen/low_quality/1.png"]
    assert "not inside a low_quality/" in reasons["train_datasets/breast/stray.png"]
    assert len(out.skipped) == 4
    notes = {n.item: n.reason for n in out.notes}
    assert "kept as an unpaired sample" in notes["train_datasets/breast/low_quality/3.png"]
    assert "targets_only" in notes["train_datasets/carotid/high_quality/5.png"]
    assert "test_datasets" in notes["."]
    assert len(out.inputs) == 16 and not any("test_datasets" in k for k in out.inputs)
    assert all(v == "used" or v.startswith("skipped") for v in out.inputs.values())
    # paired samples only: unpaired ones skipped with their reason
    strict_pairs = _read(tmp_path, unpaired=False)
    assert [s["meta"]["case_id"] for s in strict_pairs] == ["breast_1", "breast_2",
                                                            "carotid_1", "kidney_1"]
    assert strict_pairs.targets_only == []
    reasons = {sk.item: sk.reason for sk in strict_pairs.skipped}
    assert "unpaired=False" in reasons["train_datasets/carotid/high_quality/5.png"]
    assert "unpaired=False" in reasons["train_datasets/breast/low_quality/3.png"]
    assert len(strict_pairs.skipped) == 8


def test_usenhance_split_and_dispatch(tmp_path):
    write_usenhance(tmp_path / "USenhance 2023")
    with pytest.warns(ReaderWarning):
        out = read_task("enhancement", tmp_path)
    assert len(out) == 6
    train, test = patient_split(out, test_fraction=0.5, seed=0)
    assert len(train) + len(test) == 6 and train and test
    with pytest.warns(ReaderWarning):  # stray files are skipped before the first sample
        assert len(read_task("enhancement", tmp_path, limit=2)) == 2


def test_usenhance_errors_and_limit(tmp_path):
    write_usenhance(tmp_path / "USenhance")
    with pytest.raises(DataFormatError, match="not one of|not inside|unreadable"):
        read_usenhance(tmp_path / "USenhance", strict=True)
    one = _read(tmp_path / "USenhance", limit=1)
    assert len(one) == 1 and one.truncated
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_usenhance(tmp_path / "nope")
    with pytest.raises(DataNotFoundError) as err:
        read_task("enhancement", tmp_path / "USenhance")
    msg = str(err.value)
    assert str(tmp_path / "USenhance" / "USenhance") in msg and "USenhance2023" in msg
    (tmp_path / "empty" / "liver").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="low_quality"):
        read_usenhance(tmp_path / "empty")
