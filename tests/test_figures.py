import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

import echocare_lib as ec
from echocare_lib.figures import INDEX_COLUMNS, load_catalogue

PAPER_LABELS = {f"Fig. {i}" for i in (1, 2, 3, 4)} | {f"Table {i}" for i in (1, 2, 3, 4, 5)}


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [1, 0, 2], label="line")
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y")
    return fig


def test_catalogue_is_valid_and_covers_the_paper():
    cat = load_catalogue()
    assert cat["label"].is_unique
    refs = set(cat["paper_ref"])
    assert PAPER_LABELS <= refs | {"Table 6-7"} | set()
    assert {"Table 6-7", "Fig. 8a-j", "Fig. 8k"} <= refs
    for letter in "abcdefg":
        assert f"Fig. 5{letter}" in refs and f"Fig. 6{letter}" in refs
    assert {"Fig. 7a", "Fig. 7b"} <= refs
    # Every output is owned by exactly one numbered notebook.
    assert cat["notebook"].str.fullmatch(r"\d{2}_[a-z0-9_]+").all()


def test_save_figure_writes_png_pdf_with_provenance_and_index(smoke_run):
    files = ec.save_figure(_figure(), "overview_real_us")
    png, pdf = files
    assert png.suffix == ".png" and pdf.suffix == ".pdf"
    meta = json.loads(Image.open(png).info["Description"])
    assert meta["profile"] == "smoke" and meta["seed"] == "0"
    assert meta["notebook"] == "00_overview" and meta["data_source"] == "simulator"
    assert meta["commit"] and meta["echocare_lib"] == ec.__version__
    assert b"smoke" in pdf.read_bytes()
    idx = ec.read_index(smoke_run.out_dir)
    assert list(idx.columns) == INDEX_COLUMNS
    row = idx.set_index("label").loc["overview_real_us"]
    assert row["notebook"] == "00_overview" and row["files"] == "overview_real_us.png;overview_real_us.pdf"


def test_figures_are_byte_reproducible(smoke_run):
    a = [p.read_bytes() for p in ec.save_figure(_figure(), "overview_real_us")]
    b = [p.read_bytes() for p in ec.save_figure(_figure(), "overview_real_us")]
    assert a == b


def test_save_table_writes_csv_markdown_latex(smoke_run):
    df = pd.DataFrame({"model": ["EchoCare", "scratch"], "DSC": [0.91234567, 0.8]})
    csv, md, tex = ec.save_table(df, "overview_profiles")
    back = pd.read_csv(csv)
    assert back["DSC"].tolist() == [0.91234567, 0.8]  # full precision in the CSV
    text = md.read_text()
    assert "| EchoCare" in text and "0.9123" in text and "profile: smoke" in text
    assert "\\begin{tabular}" in tex.read_text()
    idx = ec.read_index(smoke_run.out_dir)
    assert "overview_profiles" in set(idx["label"])


def test_index_keeps_one_row_per_label(smoke_run):
    ec.save_figure(_figure(), "overview_real_us")
    ec.save_figure(_figure(), "overview_real_us")
    ec.save_table(pd.DataFrame({"a": [1]}), "overview_profiles")
    idx = ec.read_index(smoke_run.out_dir)
    assert sorted(idx["label"]) == ["overview_profiles", "overview_real_us"]


def test_undeclared_or_foreign_labels_are_refused(smoke_run):
    with pytest.raises(KeyError, match="not declared"):
        ec.save_figure(_figure(), "fig99_made_up")
    with pytest.raises(ValueError, match="belongs to notebook '04_segmentation'"):
        ec.save_figure(_figure(), "fig5d_thyroid_seg")
    with pytest.raises(ValueError, match="declared as a table"):
        ec.save_figure(_figure(), "overview_profiles")


def test_catalogue_status_reports_written_outputs(smoke_run):
    ec.save_figure(_figure(), "overview_real_us")
    st = ec.catalogue_status(smoke_run.out_dir).set_index("label")
    assert st.loc["overview_real_us", "status"] == "written"
    assert st.loc["fig5a_thyroid_cls", "status"] == "not yet"
