"""Notebooks in git: no outputs, python3 kernel, one literal-only parameters cell, owners."""
import ast
import re

import nbformat
import pytest

from echocare_lib.figures import load_catalogue
from echocare_lib.paths import notebooks_dir
from echocare_lib.run import NOTEBOOK_RE, discover

NOTEBOOKS = discover(notebooks_dir())
REQUIRED_PARAMETERS = {"profile", "seed", "out_dir", "data_dir", "device"}


def test_notebooks_exist_and_are_numbered():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_overview.ipynb"
    stray = [p.name for p in notebooks_dir().glob("*.ipynb") if not NOTEBOOK_RE.match(p.name)]
    assert not stray, f"notebooks not named NN_name.ipynb are never run: {stray}"
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert len(numbers) == len(set(numbers)), "two notebooks share a run number"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name}: outputs committed (run `make strip`)"
            assert cell.execution_count is None, f"{path.name}: execution counts committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_of_literals(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    names = set()
    for stmt in ast.parse(tagged[0].source).body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, ast.unparse(stmt)
        assert isinstance(stmt.targets[0], ast.Name), ast.unparse(stmt)
        ast.literal_eval(stmt.value)  # raises if the value is computed
        names.add(stmt.targets[0].id)
    assert REQUIRED_PARAMETERS <= names, f"{path.name}: missing {REQUIRED_PARAMETERS - names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_names_the_notebook_and_outputs_belong_to_it(path):
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert re.search(rf"setup\([^)]*notebook=\"{path.stem}\"", code), (
        f"{path.name}: call ec.setup(..., notebook=\"{path.stem}\") in the first code cells")
    cat = load_catalogue().set_index("label")
    for label in re.findall(r"save_(?:figure|table)\([^,]+,\s*\"([^\"]+)\"", code):
        assert cat.loc[label, "notebook"] == path.stem, f"{label} is owned by another notebook"
