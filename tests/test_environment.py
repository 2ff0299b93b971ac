"""environment.yml, pyproject.toml, the pins and the Makefile describe one environment."""
import re
import tomllib

import yaml

from echocare_lib.paths import project_root

ROOT = project_root()


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins():
    pins = {}
    for line in (ROOT / "requirements/constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(spec):
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([^;\s]+)", spec.strip())
    assert m, f"pyproject dependency {spec!r} is not pinned exactly (name==version)"
    return _norm(m.group(1)), m.group(3)


def test_direct_dependencies_are_pinned_and_match_the_lock():
    project = _pyproject()["project"]
    pins = _pins()
    specs = project["dependencies"] + [d for ds in project["optional-dependencies"].values() for d in ds]
    for spec in specs:
        name, version = _requirement(spec)
        assert pins.get(name) == version, f"{name}: pyproject {version}, constraints {pins.get(name)}"
    # The pair the offline machines ship (see shared/OFFLINE_NOTES.md).
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"]
    requires = _pyproject()["project"]["requires-python"]
    assert ">=3.11" in requires and "<3.12" in requires
    assert (ROOT / ".python-version").read_text().strip() == "3.11"
    assert "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-c requirements/constraints.txt" in pip
    # The same extras the Makefile installs.
    makefile = (ROOT / "Makefile").read_text()
    assert '-c requirements/constraints.txt -e ".[dev]"' in makefile
    assert "-e .[dev]" in pip
    assert set(_pyproject()["project"]["optional-dependencies"]) == {"dev", "bench"}


def test_environment_yml_lists_no_conda_package_that_pyproject_lacks():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d.split("=")[0] for d in env["dependencies"] if isinstance(d, str)]
    assert sorted(conda) == ["pip", "python"]
