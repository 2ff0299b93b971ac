"""Checks on what a whole smoke run produced; ``make test`` runs them after nbval has executed
every notebook into ``build/nbval/figures`` (the unit pass leaves this folder out).

Every figure and table label the paper uses (Figs. 1-3 and 5-8, Tables 1-6) must be produced by
exactly one notebook, the one the catalogue names, and appear in the run's figure index with its
files on disk.
"""
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from echocare_lib.figures import load_catalogue, read_index
from echocare_lib.paths import project_root

OUT = Path(os.environ.get("ECHOCARE_SMOKE_OUT") or project_root() / "build/nbval/figures")
PAPER_FIGURES = {1, 2, 3, 5, 6, 7, 8}
PAPER_TABLES = {1, 2, 3, 4, 5, 6}


def _numbers(ref: str, word: str) -> set[int]:
    """'Fig. 5a' -> {5}; 'Table 6-7' -> {6, 7}; 'Table 4 (part)' -> {4}."""
    m = re.match(rf"{word}\.? (\d+)(?:-(\d+))?", ref or "")
    if not m:
        return set()
    lo = int(m.group(1))
    return set(range(lo, int(m.group(2) or lo) + 1))


@pytest.fixture(scope="module")
def index() -> pd.DataFrame:
    if not (OUT / "index.csv").is_file():
        pytest.fail(f"{OUT / 'index.csv'} is missing: run `make nbval` (or `make test`) first; "
                    "these checks read what the smoke run wrote")
    return read_index(OUT)


def test_catalogue_covers_every_paper_figure_and_table():
    cat = load_catalogue().fillna("")
    figs = set().union(*(_numbers(r, "Fig") for r in cat.paper_ref))
    tables = set().union(*(_numbers(r, "Table") for r in cat.paper_ref))
    assert PAPER_FIGURES <= figs, sorted(PAPER_FIGURES - figs)
    assert PAPER_TABLES <= tables, sorted(PAPER_TABLES - tables)


def test_every_paper_label_is_in_the_index_from_its_one_notebook(index):
    cat = load_catalogue().fillna("")
    paper = cat[cat.paper_ref != ""]
    rows = index.set_index("label")
    missing = sorted(set(paper.label) - set(rows.index))
    assert not missing, f"paper outputs the smoke run did not write: {missing}"
    for _, entry in paper.iterrows():
        row = rows.loc[entry.label]
        assert row["notebook"] == entry.notebook, (entry.label, row["notebook"], entry.notebook)
        files = [OUT / f for f in row["files"].split(";") if f]
        assert files and all(f.is_file() and f.stat().st_size > 0 for f in files), entry.label
        assert row["profile"] == "smoke", entry.label


def test_every_output_of_the_index_is_declared_once(index):
    cat = load_catalogue().set_index("label")
    assert index["label"].is_unique
    unknown = sorted(set(index.label) - set(cat.index))
    assert not unknown, f"index rows with no catalogue entry: {unknown}"
    # each catalogue label has exactly one owner, and the index agrees with it
    assert (index.set_index("label")["notebook"] == cat.loc[index.label, "notebook"]).all()
    everything = set(cat.index)
    assert everything == set(index.label), sorted(everything ^ set(index.label))
