"""Provenance stamped on every figure and table: profile, seed, commit, library version."""
from __future__ import annotations

import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata

from .paths import project_root

__version__ = "0.1.0"

#: Packages whose versions change numbers; printed by ``setup`` and recorded in the overview.
KEY_PACKAGES = (
    "torch", "torchvision", "timm", "monai", "numpy", "scipy", "scikit-learn", "pandas",
    "matplotlib", "papermill", "pydicom",
)


@lru_cache(maxsize=1)
def git_commit() -> str:
    """Short commit of the checkout, ``+dirty`` when tracked files changed, or ``unknown``."""
    root = project_root()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
            text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Versions that matter for reproducing numbers, plus the hardware torch sees."""
    out = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "echocare_lib": __version__,
    }
    for name in KEY_PACKAGES:
        out[name] = package_version(name)
    try:
        import torch

        out["torch.cuda"] = (
            f"{torch.version.cuda} ({torch.cuda.get_device_name(0)})"
            if torch.cuda.is_available() else "not available"
        )
        out["torch.threads"] = str(torch.get_num_threads())
    except Exception as exc:  # torch missing or broken: say so rather than crash the overview
        out["torch.cuda"] = f"unavailable ({type(exc).__name__}: {exc})"
    return out
