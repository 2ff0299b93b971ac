"""``setup()``: the first code cell of every notebook.

It fixes seeds, asks torch for deterministic algorithms, sets a headless-safe matplotlib
style with a colour-blind-safe palette, resolves the profile and the output folder, and
prints the versions that matter. It returns a :class:`Run` that the figure-saving functions
read their provenance from.
"""
from __future__ import annotations

import os
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .paths import resolve_data_dir, resolve_out_dir
from .profiles import Profile, get_profile
from .provenance import __version__, git_commit, versions

#: Okabe & Ito (2008) colour-blind-safe qualitative palette, used as the default cycle.
OKABE_ITO = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
)

_NOTEBOOK_RE = re.compile(r"^\d{2}_[a-z0-9_]+$")


@dataclass
class Run:
    """What a notebook run is: profile, seed, where outputs go, and where it came from."""

    notebook: str
    profile: Profile
    seed: int
    out_dir: Path
    data_dir: Path | None
    device: str
    commit: str
    version: str = __version__
    versions: dict = field(default_factory=dict)

    @property
    def data_source(self) -> str:
        """``real`` when a data directory is set, else the embedded simulator."""
        return "real" if self.data_dir is not None else "simulator"

    def provenance(self) -> dict[str, str]:
        return {
            "notebook": self.notebook,
            "profile": self.profile.name,
            "data_source": self.data_source,
            "seed": str(self.seed),
            "commit": self.commit,
            "echocare_lib": self.version,
        }

    def __repr__(self) -> str:
        return (f"Run(notebook={self.notebook!r}, profile={self.profile.name!r}, seed={self.seed}, "
                f"device={self.device!r}, data_source={self.data_source!r}, out_dir='{self.out_dir}')")


_CURRENT: Run | None = None


def current_run() -> Run:
    """The run set up by the last :func:`setup` call in this process."""
    if _CURRENT is None:
        raise RuntimeError(
            "echocare_lib.setup(...) has not been called in this kernel: run the notebook's "
            "setup cell first (it fixes the seed and profile that figures are stamped with)."
        )
    return _CURRENT


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices), and request deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    # cuBLAS needs this set before its first use to be deterministic (CUDA docs).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    torch.manual_seed(seed)  # also seeds every CUDA device
    # warn_only: ops without a deterministic kernel warn instead of failing the run.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _in_ipython_kernel() -> bool:
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    try:
        shell = ip.get_ipython()
    except Exception:
        return False
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def configure_matplotlib() -> None:
    """Paper-ready defaults: legible fonts, Okabe-Ito cycle, no-GUI backend outside Jupyter."""
    import matplotlib

    if not _in_ipython_kernel() and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")  # headless: scripts, tests, CI
    from cycler import cycler

    matplotlib.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 200,
        "savefig.bbox": "tight",
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
        "image.cmap": "gray",
        "pdf.fonttype": 42,  # embed TrueType: editable text in the PDFs
        "svg.hashsalt": "echocare",  # deterministic SVG ids
    })


def resolve_device(device: str | None) -> str:
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but torch sees no CUDA device. "
            "Use device='auto' or 'cpu' on this machine."
        )
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:N]' or 'mps', got {device!r}")
    return device


def setup(
    seed: int = 0,
    profile: "str | Profile | None" = None,
    *,
    notebook: str = "interactive",
    out_dir: "str | os.PathLike | None" = None,
    data_dir: "str | os.PathLike | None" = None,
    device: str | None = "auto",
    verbose: bool = True,
) -> Run:
    """Prepare a notebook run and return it.

    ``notebook`` is the notebook's stem (``"00_overview"``); it is recorded in the figure
    index so every figure names the notebook that made it.
    """
    global _CURRENT
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if notebook != "interactive" and not _NOTEBOOK_RE.match(notebook):
        raise ValueError(
            f"notebook must be the notebook's file stem such as '00_overview', got {notebook!r}"
        )
    prof = get_profile(profile)
    seed_everything(int(seed))
    configure_matplotlib()
    run = Run(
        notebook=notebook,
        profile=prof,
        seed=int(seed),
        out_dir=resolve_out_dir(out_dir, prof.name),
        data_dir=resolve_data_dir(data_dir),
        device=resolve_device(device),
        commit=git_commit(),
        versions=versions(),
    )
    _CURRENT = run
    if verbose:
        print(f"EchoCare compendium {__version__} | notebook {notebook} | profile '{prof.name}' "
              f"({prof.purpose}) | seed {run.seed} | device {run.device} | data {run.data_source}")
        print(f"outputs -> {run.out_dir}   commit {run.commit}")
        print("versions: " + ", ".join(f"{k} {v}" for k, v in run.versions.items()
                                       if k not in ("platform",)))
    return run
