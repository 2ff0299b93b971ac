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
