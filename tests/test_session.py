import random

import numpy as np
import pytest
import torch

import echocare_lib as ec


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_same_seed_same_numbers(tmp_path):
    ec.setup(seed=3, profile="smoke", out_dir=tmp_path, verbose=False)
    a = _draw()
    ec.setup(seed=3, profile="smoke", out_dir=tmp_path, verbose=False)
    assert _draw() == a
    ec.setup(seed=4, profile="smoke", out_dir=tmp_path, verbose=False)
    assert _draw() != a


def test_setup_requests_determinism(tmp_path):
    ec.setup(seed=0, profile="smoke", out_dir=tmp_path, verbose=False)
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.benchmark


def test_setup_resolves_profile_outdir_device(tmp_path, monkeypatch):
    monkeypatch.delenv("ECHOCARE_OUT_DIR", raising=False)
    run = ec.setup(seed=0, profile="paper", notebook="00_overview", verbose=False)
    assert run.profile.name == "paper"
    # Only the cpu profile writes into the committed figures/ by default.
    assert run.out_dir == ec.project_root() / "build" / "paper" / "figures"
    run = ec.setup(seed=0, profile="cpu", verbose=False)
    assert run.out_dir == ec.project_root() / "figures"
    monkeypatch.setenv("ECHOCARE_OUT_DIR", str(tmp_path))
    assert ec.setup(seed=0, profile="cpu", verbose=False).out_dir == tmp_path
    assert run.device in ("cpu", "cuda")
    assert run.data_source == "simulator"


def test_setup_prints_versions(tmp_path, capsys):
    ec.setup(seed=1, profile="smoke", notebook="00_overview", out_dir=tmp_path)
    out = capsys.readouterr().out
    for word in ("profile 'smoke'", "seed 1", "torch", "timm", "monai", "00_overview"):
        assert word in out


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_bad_seed_is_refused(bad, tmp_path):
    with pytest.raises(ValueError, match="seed"):
        ec.setup(seed=bad, profile="smoke", out_dir=tmp_path, verbose=False)


def test_bad_notebook_name_and_data_dir(tmp_path):
    with pytest.raises(ValueError, match="file stem"):
        ec.setup(seed=0, profile="smoke", notebook="overview.ipynb", out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="does-not-exist.*simulator"):
        ec.setup(seed=0, profile="smoke", out_dir=tmp_path, data_dir=tmp_path / "does-not-exist")


def test_unavailable_device_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        ec.setup(seed=0, profile="smoke", out_dir=tmp_path, device="cuda", verbose=False)
    with pytest.raises(ValueError, match="device must be"):
        ec.setup(seed=0, profile="smoke", out_dir=tmp_path, device="tpu", verbose=False)


def test_current_run_before_setup_is_a_clear_error(monkeypatch):
    import echocare_lib.session as session

    monkeypatch.setattr(session, "_CURRENT", None)
    with pytest.raises(RuntimeError, match="setup"):
        session.current_run()
