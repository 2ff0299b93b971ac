"""The paper's Tables 3-4 as data (data_manifests/paper_results.csv): structure, spot checks."""
import pandas as pd
import pytest

from echocare_lib.downstream.registry import get_task
from echocare_lib.manifests import ManifestError
from echocare_lib.paper_results import (APPLICATIONS, COLUMNS, load_paper_results,
                                        paper_table)
from echocare_lib.paths import manifests_dir

FMS = ["RadImageNet", "UltraSAM", "CLIP", "BiomedCLIP", "DINO", "SimMIM", "USFM", "EchoCare"]
SOTA = {"thyroid_nodule_seg": "SwinUNETR", "vessel_seg": "SwinUNETR",
        "abdomen_organ_seg": "SwinUNETR", "thyroid_nodule_cine_cls": "ViT",
        "breast_birads": "ViT", "liver_lesion_ceus": "ViT", "fetal_4ch_detection": "Faster R-CNN",
        "fetal_brain_landmarks": "ViTPose", "echo_ef": "EchoNet", "enhancement": "EnlightenGAN"}
METRICS = {"thyroid_nodule_seg": ["DSC", "NSD"], "vessel_seg": ["mDSC", "mNSD"],
           "abdomen_organ_seg": ["mDSC", "mNSD"], "thyroid_nodule_cine_cls": ["ACC", "F1"],
           "breast_birads": ["ACC", "macro-F1"], "liver_lesion_ceus": ["ACC", "macro-F1"],
           "fetal_4ch_detection": ["box-AP", "P_CTR"],
           "fetal_brain_landmarks": ["MRE", "SDR@2", "SDR@4", "SDR@10"], "echo_ef": ["MAE"],
           "enhancement": ["NIQE", "BRISQUE", "PIQE", "FD"],
           "liver_report": ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "ACC",
                            "precision", "recall", "F1"]}
LOWER_IS_BETTER = {"MRE", "MAE", "NIQE", "BRISQUE", "PIQE", "FD"}
# rows where EchoCare is not the best model, as printed (documented in their notes)
NOT_BEST = {("Table 3", "liver_report", "METEOR")}


@pytest.fixture(scope="module")
def df():
    return load_paper_results()


def test_structure(df):
    assert tuple(df.columns) == COLUMNS
    assert len(df) == 23 * 9 + 10 * 8
    assert list(dict.fromkeys(df["application"])) == ["liver_report", *APPLICATIONS[:-1]]
    assert not df[["mean", "std"]].isna().any().any() and (df["std"] >= 0).all()
    assert not df.duplicated(["table", "application", "metric", "model"]).any()
    assert set(df.loc[df["table"] == "Table 3", "application"]) == {"liver_report"}
    for app, metrics in METRICS.items():
        rows = df[df["application"] == app]
        assert list(dict.fromkeys(rows["metric"])) == metrics, app
        assert set(metrics) <= set(get_task(app).metrics), app
        for metric, g in rows.groupby("metric", sort=False):
            want = FMS if app == "liver_report" else [SOTA[app], *FMS]
            assert list(g["model"]) == want, (app, metric)
            assert (g["model_group"] == "SOTA w/o FM").sum() == (app != "liver_report")
            assert set(g["higher_is_better"]) == {metric not in LOWER_IS_BETTER}, (app, metric)
            assert g["higher_is_better"].iloc[0] == get_task(app).better(metric)


@pytest.mark.parametrize("table, app, metric, model, mean, std", [
    ("Table 4", "thyroid_nodule_seg", "DSC", "EchoCare", 83.17, 0.19),
    ("Table 4", "thyroid_nodule_seg", "NSD", "SwinUNETR", 82.55, 0.86),
    ("Table 4", "vessel_seg", "mNSD", "UltraSAM", 85.68, 0.46),
    ("Table 4", "abdomen_organ_seg", "mNSD", "UltraSAM", 73.75, 0.74),
    ("Table 4", "thyroid_nodule_cine_cls", "F1", "UltraSAM", 79.28, 1.38),
    ("Table 4", "breast_birads", "macro-F1", "EchoCare", 65.38, 1.06),
    ("Table 4", "liver_lesion_ceus", "ACC", "UltraSAM", 83.69, 0.96),
    ("Table 4", "fetal_4ch_detection", "box-AP", "EchoCare", 96.80, 0.64),
    ("Table 4", "fetal_4ch_detection", "P_CTR", "Faster R-CNN", 87.83, 1.61),
    ("Table 4", "fetal_brain_landmarks", "MRE", "SimMIM", 8.39, 0.74),
    ("Table 4", "fetal_brain_landmarks", "SDR@2", "BiomedCLIP", 29.15, 0.71),
    ("Table 4", "echo_ef", "MAE", "EchoCare", 3.91, 0.05),
    ("Table 4", "enhancement", "FD", "EnlightenGAN", 62.19, 2.48),
    ("Table 4", "enhancement", "NIQE", "USFM", 6.81, 1.68),
    ("Table 3", "liver_report", "BLEU-4", "BiomedCLIP", 73.88, 0.31),
    ("Table 3", "liver_report", "METEOR", "EchoCare", 51.62, 0.12),
    ("Table 3", "liver_report", "precision", "EchoCare", 87.30, 0.05),
    ("Table 3", "liver_report", "F1", "SimMIM", 70.60, 1.94),
])
def test_spot_checks(df, table, app, metric, model, mean, std):
    row = df[(df["table"] == table) & (df["application"] == app) & (df["metric"] == metric)
             & (df["model"] == model)]
    assert len(row) == 1
    assert (row["mean"].item(), row["std"].item()) == (mean, std)


def test_prose_margins(df):
    """Margins the prose quotes over the second-best model, which the table reproduces."""
    def cell(app, metric, model):
        r = df[(df["application"] == app) & (df["metric"] == metric) & (df["model"] == model)]
        return r["mean"].item()

    for app, metric, other, margin in [
            ("thyroid_nodule_seg", "DSC", "SimMIM", 2.09),
            ("thyroid_nodule_cine_cls", "ACC", "USFM", 3.35),
            ("breast_birads", "macro-F1", "USFM", 3.85),
            ("fetal_4ch_detection", "P_CTR", "USFM", 2.78),
            ("liver_report", "BLEU-4", "SimMIM", 4.32),
            ("liver_report", "ACC", "SimMIM", 9.39),
            ("liver_report", "F1", "SimMIM", 18.70)]:
        assert cell(app, metric, "EchoCare") - cell(app, metric, other) == \
            pytest.approx(margin, abs=1e-9), (app, metric)


def test_echocare_best_except_documented(df):
    not_best = set()
    for (table, app, metric), g in df.groupby(["table", "application", "metric"], sort=False):
        best = g["mean"].max() if g["higher_is_better"].iloc[0] else g["mean"].min()
        echocare = g.loc[g["model"] == "EchoCare", "mean"].item()
        if echocare != best or (g["mean"] == best).sum() > 1:
            not_best.add((table, app, metric))
            assert "best on all ten" in g.loc[g["model"] == "EchoCare", "note"].item()
    assert not_best == NOT_BEST


def test_documented_paper_quirks(df):
    enh = df[(df["application"] == "enhancement") & df["note"].str.contains("copy-paste")]
    assert len(enh) == 25  # 6 models x NIQE/BRISQUE/FID, 7 in PIQE (USFM too)
    lm = df[df["application"] == "fetal_brain_landmarks"].set_index(["metric", "model"])
    src = {"NIQE": "MRE", "BRISQUE": "SDR@2", "PIQE": "SDR@4", "FD": "SDR@10"}
    for _, r in enh.iterrows():
        assert lm.loc[(src[r["metric"]], r["model"]), "mean"] == r["mean"]
    assert df.loc[df["application"] == "breast_birads", "note"].str.contains("BI-BADS").all()
    mre = df[df["metric"] == "MRE"]
    assert set(mre["metric_paper"]) == {"MAE"} and not mre["higher_is_better"].any()


def test_paper_table():
    t = paper_table("echo_ef")
    assert list(t.columns) == ["EchoNet", *FMS] and list(t.index) == ["MAE"]
    assert t.loc["MAE", "EchoCare"] == "3.91 ± 0.05"
    full = paper_table()
    assert len(full) == 33 and list(full.columns[:6]) == list(dict.fromkeys(SOTA.values()))
    assert full.loc[("Table 3", "liver_report", "BLEU-1"), "SwinUNETR"] == ""
    with pytest.raises(ValueError, match="unknown application"):
        paper_table("nope")


def test_validation_errors(tmp_path):
    raw = pd.read_csv(manifests_dir() / "paper_results.csv", dtype=str, keep_default_na=False)
    bad = raw.copy()
    bad.loc[0, "mean"] = ""
    bad.loc[1, "application"] = "thyroid"
    bad = pd.concat([bad, bad.iloc[[5]]])
    file = tmp_path / "paper_results.csv"
    bad.to_csv(file, index=False)
    with pytest.raises(ManifestError) as e:
        load_paper_results(file)
    msg = str(e.value)
    assert "line 2" in msg and "not a number" in msg
    assert "unknown application 'thyroid'" in msg and "duplicate" in msg
    raw.drop(columns="std").to_csv(file, index=False)
    with pytest.raises(ManifestError, match="missing required column"):
        load_paper_results(file)


def test_compare_with_paper_puts_this_run_beside_the_paper_and_names_what_is_missing():
    from echocare_lib.paper_results import compare_with_paper

    ours = pd.DataFrame([
        {"application": "echo_ef", "metric": "MAE", "model": "echocare", "text": "10.14 ± 1.46"},
        {"application": "echo_ef", "metric": "MAE", "model": "scratch", "text": "9.47 ± 0.74"}])
    t = compare_with_paper(ours, profile="cpu", data_source="simulator")
    ef = t[(t.application == "echo_ef") & (t.metric == "MAE")].iloc[0]
    assert ef["EchoCare (paper)"] == "3.91 ± 0.05"
    assert ef["best other model (paper)"] == "USFM 4.10 ± 0.06"   # lowest MAE of the others
    assert ef["echocare (this run)"] == "10.14 ± 1.46" and ef["scratch (this run)"] == "9.47 ± 0.74"
    missing = ef["paper models not run here (no offline weights)"]
    assert "SimMIM" in missing and "EchoCare" not in missing
    dsc = t[(t.application == "thyroid_nodule_seg") & (t.metric == "DSC")].iloc[0]
    assert dsc["echocare (this run)"] == "no summary in this run (cpu)"   # never blank
    assert len(t) == 33  # 23 rows of Table 4 + 10 of Table 3


def test_table2_names_functions_that_exist():
    import importlib

    from echocare_lib.paths import manifests_dir

    t2 = pd.read_csv(manifests_dir() / "table2_metrics.csv")
    assert t2.metric.is_unique and len(t2) >= 19
    for f in t2.function:
        module, name = f.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), f
