import os

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

os.environ.setdefault("ECHOCARE_PROFILE", "smoke")


@pytest.fixture
def smoke_run(tmp_path):
    """A smoke-profile run writing into a temporary folder (never into figures/)."""
    import echocare_lib as ec

    return ec.setup(seed=0, profile="smoke", notebook="00_overview", out_dir=tmp_path / "figs",
                    verbose=False)


@pytest.fixture
def one_torch_thread():
    """One torch thread for a test: two threads on a shared 2-core machine run the small CNNs
    up to ~20x slower than one (test modules opt in with ``pytestmark``)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
