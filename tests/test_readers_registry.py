"""Reader registry: task names, folder lookup under data_dir, clear DataNotFoundError."""
import numpy as np
import pytest

from echocare_lib.readers import (FOLDERS, READERS, DataFormatError, DataNotFoundError,
                                  ReaderWarning, dataset_dir, read_task, to_gray01)
from echocare_lib.readers import abdomenus, aimi_thyroid_cine, busbra, sysu_fll_ceus
from echocare_lib.sim.tasks import task_names, task_spec
from fixtures_readers import write_busbra, write_musv


def test_registry_matches_simulator_tasks_and_classes():
    assert set(READERS) <= set(task_names()) and set(FOLDERS) == set(READERS)
    assert list(abdomenus.CLASSES) == task_spec("abdomen_organ_seg")["classes"]
    assert list(aimi_thyroid_cine.CLASSES) == task_spec("thyroid_nodule_cine_cls")["classes"]
    assert list(busbra.CLASSES) == task_spec("breast_birads")["classes"]
    assert list(sysu_fll_ceus.CLASSES) == task_spec("liver_lesion_ceus")["classes"]
    assert task_spec("vessel_seg")["classes"] == ["background", "vein", "artery"]
    for mod in (abdomenus, aimi_thyroid_cine, busbra, sysu_fll_ceus):
        assert mod.REQUIRED and all(isinstance(r, str) for r in mod.REQUIRED)


def test_read_task_finds_folders_by_alias(tmp_path):
    write_busbra(tmp_path / "BUS-BRA")
    write_musv(tmp_path / "mus_v")
    out = read_task("breast_birads", tmp_path, limit=2)  # stops before the faulty rows
    assert len(out) == 2 and out[0]["meta"]["dataset"] == "BUS-BRA"
    with pytest.warns(ReaderWarning):
        assert read_task("vessel_seg", tmp_path)[0]["meta"]["dataset"] == "Mus-V"
    (tmp_path / "BRA-BUS").mkdir()
    with pytest.raises(DataFormatError, match="several folders"):
        dataset_dir("breast_birads", tmp_path)


def test_missing_data_set_error_is_clear(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError) as err:
        read_task("thyroid_nodule_seg", tmp_path)
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert str(tmp_path / "DDTI") in msg and "data set: DDTI" in msg
    assert "not listed in data_manifests/table6_links.csv" in msg and "Pedraza" in msg
    assert "simulator" in msg and "generate('thyroid_nodule_seg'" in msg
    with pytest.raises(DataNotFoundError, match="zenodo.7730709"):
        read_task("breast_birads", tmp_path)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_task("vessel_seg", tmp_path / "nope")
    monkeypatch.delenv("ECHOCARE_DATA_DIR", raising=False)
    with pytest.raises(DataNotFoundError, match="No data directory"):
        read_task("liver_lesion_ceus", None)
    with pytest.raises(KeyError, match="no real-data reader"):
        read_task("fetal_biometry", tmp_path)


def test_to_gray01_bt601():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_allclose(to_gray01(rgb)[0], [0.299, 0.587, 0.114], atol=1e-6)
    assert to_gray01(np.array([[0, 65535]], np.uint16)).tolist() == [[0.0, 1.0]]
