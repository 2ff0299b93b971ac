"""Where things live: the project root, the figures folder, build outputs and data.

Notebooks run with different working directories (Papermill uses ``notebooks/``, nbval the
notebook's folder, a user whatever they like), so every path is resolved from the project
root rather than from the current directory.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _looks_like_root(p: Path) -> bool:
    return (p / "pyproject.toml").is_file() and (p / "echocare_lib").is_dir()


@lru_cache(maxsize=None)
def _find_root(start: str) -> Path:
    env = os.environ.get("ECHOCARE_ROOT")
    if env:
        root = Path(env).expanduser().resolve()
        if not _looks_like_root(root):
            raise FileNotFoundError(
                f"ECHOCARE_ROOT={env!r} is not an EchoCare checkout (no pyproject.toml and "
                "echocare_lib/ there). Unset it or point it at the repository's top folder."
            )
        return root
    # An editable install (what `make` does) keeps the package inside the checkout.
    if _looks_like_root(PACKAGE_DIR.parent):
        return PACKAGE_DIR.parent
    for p in [Path(start).resolve(), *Path(start).resolve().parents]:
        if _looks_like_root(p):
            return p
    # Installed as a plain package outside a checkout: outputs go under the current folder.
    return Path(start).resolve()


def project_root() -> Path:
    """The repository's top folder (``$ECHOCARE_ROOT`` overrides)."""
    return _find_root(os.getcwd())


def manifests_dir() -> Path:
    return project_root() / "data_manifests"


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def build_dir() -> Path:
    """Scratch outputs: executed notebooks, result stores, checkpoints (never committed)."""
    return Path(os.environ.get("ECHOCARE_BUILD_DIR") or project_root() / "build")


def reference_figures_dir() -> Path:
    """``figures/``: git holds the `cpu` profile's reference run here."""
    return project_root() / "figures"


def default_out_dir(profile_name: str) -> Path:
    """Where figures go when nobody says: ``figures/`` for ``cpu`` (the reference run git
    holds), ``build/<profile>/figures`` for any other profile, so a smoke or paper run never
    overwrites the committed reference by accident."""
    if profile_name == "cpu":
        return reference_figures_dir()
    return build_dir() / profile_name / "figures"


def resolve_out_dir(out_dir: "str | os.PathLike | None", profile_name: str) -> Path:
    """Explicit argument > ``$ECHOCARE_OUT_DIR`` > :func:`default_out_dir`."""
    if out_dir is None or str(out_dir).strip() == "":
        out_dir = os.environ.get("ECHOCARE_OUT_DIR") or default_out_dir(profile_name)
    p = Path(out_dir).expanduser()
    if not p.is_absolute():
        p = project_root() / p
    return p


def resolve_data_dir(data_dir: "str | os.PathLike | None") -> Path | None:
    """Explicit argument > ``$ECHOCARE_DATA_DIR`` > None (use the embedded simulator)."""
    if data_dir is None or str(data_dir).strip() == "":
        data_dir = os.environ.get("ECHOCARE_DATA_DIR") or None
    if data_dir is None:
        return None
    p = Path(data_dir).expanduser()
    if not p.is_absolute():
        p = project_root() / p
    if not p.is_dir():
        raise FileNotFoundError(
            f"Data directory {str(p)!r} does not exist. Set data_dir (or ECHOCARE_DATA_DIR) to "
            "the folder holding the downloaded data sets (see README, 'Real data'), or leave it "
            "empty to use the embedded simulator."
        )
    return p


def display_path(path: "str | os.PathLike") -> str:
    """``path`` relative to the project root when it lies inside it (tables stay the same on
    every clone), else absolute (``ECHOCARE_BUILD_DIR`` may point anywhere)."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(project_root().resolve()))
    except ValueError:
        return str(p)
