"""echocare_lib: the small shared library of the EchoCare compendium.

Notebooks call into it and show results; loops, models and plotting logic live here.
The public surface is deliberately small:

>>> import echocare_lib as ec
>>> run = ec.setup(seed=0, profile="smoke", notebook="00_overview")
>>> ec.save_figure(fig, "overview_real_us")
"""
from .figures import (
    catalogue_status,
    load_catalogue,
    read_index,
    save_figure,
    save_table,
)
from .paths import project_root
from .profiles import PROFILES, Profile, get_profile, profile_names
from .provenance import __version__, versions
from .session import OKABE_ITO, Run, current_run, setup

__all__ = [
    "__version__", "setup", "Run", "current_run", "Profile", "PROFILES", "get_profile",
    "profile_names", "save_figure", "save_table", "load_catalogue", "read_index",
    "catalogue_status", "project_root", "versions", "OKABE_ITO",
]
