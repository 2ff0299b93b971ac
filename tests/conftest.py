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
