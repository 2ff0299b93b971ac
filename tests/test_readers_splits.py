"""patient_split: patient-level, deterministic, official splits win."""
import pytest

from echocare_lib.readers import patient_split


def _samples(n_patients=20, per=(1, 2, 3), split=None):
    out = []
    for p in range(n_patients):
        for k in range(per[p % len(per)]):
            out.append({"meta": {"dataset": "X", "patient_id": f"p{p}", "case_id": f"p{p}-{k}",
                                 "split": split}})
    return out


def _pids(side):
    return {s["meta"]["patient_id"] for s in side}


def test_patient_split_no_leak_and_deterministic():
    samples = _samples()
    train, test = patient_split(samples, 0.2, seed=0)
    assert len(train) + len(test) == len(samples)
    assert not _pids(train) & _pids(test) and len(_pids(test)) == 4  # 20% of 20 patients
    again = patient_split(list(reversed(samples)), 0.2, seed=0)
    assert _pids(again[1]) == _pids(test)  # order of the input does not matter
    assert [s["meta"]["case_id"] for s in patient_split(samples, 0.2, seed=0)[1]] == \
        [s["meta"]["case_id"] for s in test]
    assert _pids(patient_split(samples, 0.2, seed=1)[1]) != _pids(test)


def test_patient_split_official_wins_and_errors():
    samples = _samples(4, split="train") + [
        {"meta": {"patient_id": "t1", "case_id": "t1", "split": "test"}},
        {"meta": {"patient_id": "t1", "case_id": "t1b", "split": None}},  # follows its patient
    ]
    train, test = patient_split(samples, 0.5)
    assert _pids(test) == {"t1"} and len(test) == 2 and len(train) == 1 + 2 + 3 + 1
    with pytest.raises(ValueError, match="no meta\\['patient_id'\\]"):
        patient_split([{"meta": {"case_id": "x"}}])
    with pytest.raises(ValueError, match="test_fraction"):
        patient_split(samples, 1.0)
