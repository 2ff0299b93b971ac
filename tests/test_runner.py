"""The Papermill runner: order, selection, summaries, and failures that name the cell."""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from echocare_lib.run import discover, select

PARAMS = 'profile = None\nseed = 0\nout_dir = None\ndata_dir = None\ndevice = "auto"'


def _write(path: Path, sources):
    cells = [new_code_cell("import echocare_lib as ec")]
    cells.append(new_code_cell(PARAMS, metadata={"tags": ["parameters"]}))
    cells += [new_code_cell(s) for s in sources]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3",
                                                            "display_name": "Python 3",
                                                            "language": "python"}})
    nbformat.write(nb, path)


@pytest.fixture
def nb_dir(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    _write(d / "00_overview.ipynb", [
        'run = ec.setup(seed=seed, profile=profile, notebook="00_overview", out_dir=out_dir)',
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([seed, 1])\n"
        'ec.save_figure(fig, "overview_real_us")',
        'assert run.profile.name == "smoke", run.profile',
    ])
    _write(d / "01_broken.ipynb", [
        "x = 1",
        "y = x / 0  # deliberately broken",
        "z = 2",
    ])
    (d / "scratch.ipynb").write_text("not a compendium notebook")  # ignored: no NN_ prefix
    return d


def _run(nb_dir, *args):
    cmd = [sys.executable, "-m", "echocare_lib.run", "--notebooks-dir", str(nb_dir),
           "--build-dir", str(nb_dir.parent / "build"), "--out-dir", str(nb_dir.parent / "out"),
           "--profile", "smoke", "--no-progress", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_discover_and_select(nb_dir):
    nbs = discover(nb_dir)
    assert [p.stem for p in nbs] == ["00_overview", "01_broken"]
    assert [p.stem for p in select(nbs, ["01"], None)] == ["01_broken"]
    assert [p.stem for p in select(nbs, ["00_overview,01_broken.ipynb"], None)] == [
        "00_overview", "01_broken"]
    assert [p.stem for p in select(nbs, None, "1")] == ["01_broken"]
    with pytest.raises(SystemExit, match="matches no notebook"):
        select(nbs, ["07"], None)


def test_runner_injects_parameters_and_summarises(nb_dir):
    res = _run(nb_dir, "--only", "00")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "00_overview" in res.stdout and "ok" in res.stdout
    out = nb_dir.parent / "out"
    assert (out / "overview_real_us.png").is_file() and (out / "index.csv").is_file()
    executed = nbformat.read(nb_dir.parent / "build/smoke/notebooks/00_overview.ipynb", 4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "profile = \"smoke\"" in injected[0].source
    summary = (nb_dir.parent / "build/smoke/run_summary.csv").read_text()
    assert "00_overview,ok" in summary and "overview_real_us" in summary


def test_broken_notebook_exits_nonzero_naming_notebook_and_cell(nb_dir):
    res = _run(nb_dir)  # 00 passes, then 01 fails
    assert res.returncode != 0
    err = res.stderr
    assert "notebook 01_broken.ipynb failed in cell 4 of 5" in err, err
    assert "ZeroDivisionError" in err
    assert "y = x / 0  # deliberately broken" in err
    assert "build/smoke/notebooks/01_broken.ipynb" in err
    assert "FAILED" in res.stdout  # the summary still prints


def test_bad_arguments_are_refused_clearly(nb_dir):
    res = _run(nb_dir, "--only", "42")
    assert res.returncode != 0 and "matches no notebook" in res.stderr
    res = subprocess.run([sys.executable, "-m", "echocare_lib.run", "--profile", "huge", "--list"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "Unknown profile 'huge'" in res.stderr


def test_stages_group_independent_notebooks_in_order(tmp_path):
    from echocare_lib.run import stages

    names = ["00_overview", "01_echoatlas_curation", "02_pretraining", "03_classification",
             "04_segmentation", "09_report_generation", "10_label_efficiency_ablation",
             "11_tables", "12_extra", "13_more"]
    got = [[p.stem.split("_")[0] for p in g] for g in stages([tmp_path / f"{n}.ipynb"
                                                             for n in names])]
    # 12 and 13 are in no stage: each runs alone, after everything before it
    assert got == [["00", "01"], ["02"], ["03", "04", "09"], ["10"], ["11"], ["12"], ["13"]]


def test_parallel_stage_runs_both_and_attributes_outputs(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    for stem, label in (("00_overview", "overview_real_us"), ("01_echoatlas_curation", "fig2_world_map")):
        _write(d / f"{stem}.ipynb", [
            f'run = ec.setup(seed=seed, profile=profile, notebook="{stem}", out_dir=out_dir)',
            "import os, matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([seed, 1])\n"
            f'ec.save_figure(fig, "{label}")',
            'assert os.environ["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))',
        ])
    res = _run(d, "--jobs", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    summary = (tmp_path / "build/smoke/run_summary.csv").read_text()
    # each notebook is credited with its own output although both wrote the index at once
    assert "00_overview,ok" in summary and "01_echoatlas_curation,ok" in summary
    lines = {ln.split(",")[0]: ln for ln in summary.splitlines()}
    assert "overview_real_us" in lines["00_overview"] and "fig2_world_map" not in lines["00_overview"]
    assert "fig2_world_map" in lines["01_echoatlas_curation"]
    index = (tmp_path / "out/index.csv").read_text()
    assert "overview_real_us" in index and "fig2_world_map" in index
    assert "wall time" in res.stdout
