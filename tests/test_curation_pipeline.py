"""The curation pipeline end to end on a small simulated corpus plus real DICOMs."""
import shutil

import pandas as pd
import pytest

from echocare_lib.curation import pipeline
from echocare_lib.examples import PYDICOM_US_FILES, _find
from echocare_lib.sim.corpus import corpus_manifest, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    write_corpus(root, n_sources=9, images_per_source=6, size=96, seed=1, progress=False)
    real = root / pipeline.PYDICOM_SET
    real.mkdir()
    for name, _ in PYDICOM_US_FILES:
        shutil.copy(_find(name), real / name)
    return root


@pytest.fixture(scope="module")
def result(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("curated")
    return pipeline.curate(corpus, out, manifest=corpus_manifest(corpus),
                           scheduler="synchronous", progress=False)


def test_every_input_file_is_accounted_for(corpus, result):
    files = {str(p.relative_to(corpus)) for p in corpus.rglob("*") if p.is_file()}
    assert set(result.report["input_file"]) == files
    rejected = result.report[result.report["status"] == "rejected"]
    assert (rejected["reason"] != "").all() and (rejected["step"] != "").all()


def test_planted_defects_are_caught(corpus, result):
    truth = pd.read_csv(corpus / "truth.csv", keep_default_na=False)
    score = pipeline.score_against_truth(result.report, truth)
    kept = score.get("kept", pd.Series(dtype=int))
    for kind in ("blank", "tiny", "corrupt"):
        if kind in score.index:
            assert kept.get(kind, 0) == 0, score
    if "exact_dup" in score.index:  # one of each identical pair goes
        assert score.loc["exact_dup"].sum() - kept.get("exact_dup", 0) >= 1
    assert kept.get("ok", 0) >= 0.9 * score.loc["ok"].sum()


def test_real_cine_is_sampled_every_tenth_frame(result):
    cine = result.report[result.report["source_path"].str.endswith("color3d_jpeg_baseline.dcm")]
    assert sorted(cine["frame"].dropna().astype(int)) == list(range(0, 120, 10))


def test_index_has_provenance_and_only_files_inside_out_dir(result):
    idx = pd.read_parquet(result.out_dir / "curated_index.parquet")
    for col in ("image_id", "dataset", "source_path", "frame", "device", "country",
                "ontology_ids", "ontology_path", "pixel_hash", "phash", "image_path"):
        assert col in idx.columns
    assert idx["image_id"].is_unique and len(idx) == len(result.index)
    assert (idx.loc[idx["dataset"] != pipeline.PYDICOM_SET, "ontology_ids"] != "").all()
    for p in idx["image_path"]:
        assert (result.out_dir / p).is_file()
    written = {p.name for p in (result.out_dir / "images").iterdir()}
    assert written == {p.split("/")[-1] for p in idx["image_path"]}  # no orphans
    assert result.contact_sheets and all(p.is_file() for p in result.contact_sheets)


def test_dask_cluster_gives_the_same_index(corpus, result, tmp_path):
    again = pipeline.curate(corpus, tmp_path / "c2", manifest=corpus_manifest(corpus),
                            scheduler=None, n_workers=2, progress=False)
    cols = ["image_id", "pixel_hash", "phash", "ontology_ids"]
    pd.testing.assert_frame_equal(again.index[cols], result.index[cols])


def test_bad_roots_are_refused(corpus, tmp_path):
    with pytest.raises(NotADirectoryError, match="does not exist"):
        pipeline.curate(tmp_path / "nope", tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="inside the input root"):
        pipeline.curate(corpus, corpus / "out", progress=False)


def test_images_are_labelled_from_their_own_annotations(corpus, result):
    onto = pipeline_ontology()
    truth = pd.read_csv(corpus / "truth.csv", keep_default_na=False).set_index("path")
    idx = result.index
    sim = idx[idx["dataset"] != pipeline.PYDICOM_SET]
    annotated = sim["source_path"].map(truth["kind"]).isin(["ok", "exact_dup", "near_dup"])
    assert (sim.loc[annotated, "label_source"] == "image annotation").all()
    # what no annotator labelled (a kept non-ultrasound frame) falls back to its data set's entry
    assert (sim.loc[~annotated, "label_source"] == "data-set manifest").all()
    ok = sim[sim["source_path"].map(truth["kind"]) == "ok"]
    assert len(ok) > 20
    for path, ids in zip(ok["source_path"], ok["ontology_ids"]):
        levels = truth.loc[path, "label_levels"].split(";")
        deepest = max(("region", "meta", "anatomical").index(v) for v in levels)
        want = {onto.path(i)[min(deepest, len(onto.path(i)) - 1)]
                for i in truth.loc[path, "ontology_ids"].split(";")}
        assert set(ids.split(";")) == want
    real = idx[idx["dataset"] == pipeline.PYDICOM_SET]
    assert (real["label_source"] == "").all() and (real["ontology_ids"] == "").all()
    # the annotations file is an input too: accounted for, rejected as not an image
    row = result.report[result.report["input_file"] == "annotations.csv"]
    assert len(row) == 1 and row["status"].iloc[0] == "rejected"


def pipeline_ontology():
    from echocare_lib.ontology import load_ontology

    return load_ontology()


def test_annotation_wins_over_the_manifest_and_unknown_names_are_kept():
    df = pd.DataFrame({"source_path": ["A/1.png", "A/2.png", "B/3.png", "C/4.png"],
                       "dataset": ["A", "A", "B", "C"], "status": "kept", "device": "",
                       "qc_note": ""})
    manifest = pd.DataFrame({"dataset": ["A", "B"], "ontology_ids": ["liver;kidney", "thyroid"]})
    onto = pipeline_ontology()
    ann = pd.DataFrame({"path": ["A/1.png", "C/4.png"],
                        "ontology_ids": [onto.find("kidney"), onto.find("thyroid")],
                        "unmapped": ["subcutaneous fat", ""]})
    out = pipeline.label(df, manifest, ann).set_index("source_path")
    stray = pd.concat([ann, pd.DataFrame({"path": ["A/typo.png"], "ontology_ids": ["liver"],
                                          "unmapped": [""]})])
    with pytest.warns(UserWarning, match=r"1 of 3 annotation rows name no input file.*typo"):
        pipeline.label(df, manifest, stray)
    assert out.loc["A/1.png", "ontology_ids"] == onto.find("kidney")
    assert out.loc["A/1.png", "label_source"] == "image annotation"
    assert out.loc["A/1.png", "unmapped_structures"] == "subcutaneous fat"
    assert out.loc["A/2.png", "ontology_ids"] == "liver;kidney"
    assert out.loc["A/2.png", "label_source"] == "data-set manifest"
    assert out.loc["C/4.png", "label_source"] == "image annotation"  # no manifest entry needed
    assert out.loc["C/4.png", "qc_note"] == ""
    assert out.loc["B/3.png", "ontology_ids"] == "thyroid"


def test_bad_annotation_files_name_the_file_and_the_fix(tmp_path):
    p = tmp_path / "annotations.csv"
    p.write_text("file,labels\na.png,liver\n")
    with pytest.raises(ValueError, match=r"annotations\.csv.*lack column"):
        pipeline.read_annotations(p)
    p.write_text("path,structures\na.png,liver\na.png,kidney\n")
    with pytest.raises(ValueError, match="twice.*a.png"):
        pipeline.read_annotations(p)
    p.write_bytes(b"\xff\xfe\x00garbage\x00\x00")
    with pytest.raises(ValueError, match="annotations.csv"):
        pipeline.read_annotations(p)
    p.write_text("path,structures\na.png,Liver; fascia\n")
    ann = pipeline.read_annotations(p)
    assert ann["ontology_ids"].iloc[0] == pipeline_ontology().find("liver")
    assert ann["unmapped"].iloc[0] == "fascia"
