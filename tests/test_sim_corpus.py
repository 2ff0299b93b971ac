"""The simulated raw corpus: every file accounted for, real defects to curate, reproducible."""
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from echocare_lib.ontology import load_ontology
from echocare_lib.sim.corpus import DEFECTS, FAMILIES, pretraining_samples, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    report = write_corpus(root, n_sources=10, images_per_source=8, size=64, seed=0,
                          progress=False)
    return root, report


def _files_on_disk(root: Path) -> set[str]:
    out = set()
    for p in root.rglob("*"):
        if p.is_file() and p.parent != root:
            rel = f"{p.parent.name}/{p.name}"
            if p.suffix == ".zip":
                with zipfile.ZipFile(p) as zf:
                    out |= {f"{p.parent.name}/{p.name}!{n}" for n in zf.namelist()}
            else:
                out.add(rel)
    return out


def test_every_file_is_in_the_truth_table_and_back(corpus):
    root, report = corpus
    truth = pd.read_csv(root / "truth.csv", keep_default_na=False)
    assert set(truth["path"]) == _files_on_disk(root)
    assert len(truth) == 10 * 8


def test_sources_vary_and_defects_exist(corpus):
    root, report = corpus
    truth = report.truth
    assert truth["country"].nunique() >= 4 and truth["device"].nunique() >= 3
    assert {"png", "jpg", "bmp", "dcm", "zip"} <= set(truth["format"])
    kinds = set(truth["kind"])
    assert "ok" in kinds and len(kinds & set(DEFECTS)) >= 3, kinds
    dups = truth[truth["kind"].isin(["exact_dup", "near_dup"])]
    assert (dups["duplicate_of"] != "").all()
    assert set(dups["duplicate_of"]) <= set(truth["path"].str.replace(r"\.zip!", ".zip!", regex=True)) | \
        set(truth["source"] + "/" + truth["file"].str.split("!").str[-1])


def test_labels_map_onto_the_ontology(corpus):
    _, report = corpus
    onto = load_ontology()
    ok = report.truth[report.truth["kind"] == "ok"]
    assert len(ok) > 40
    for ids in ok["ontology_ids"]:
        assert ids, "every clean image names at least one structure"
        for node in ids.split(";"):
            onto.node(node)


def test_dicoms_carry_identifying_tags_to_remove(corpus):
    root, report = corpus
    dcm = report.truth[(report.truth["format"] == "dcm") & (report.truth["kind"] == "ok")]
    assert len(dcm)
    ds = pydicom.dcmread(root / dcm["path"].iloc[0])
    assert ds.Modality == "US" and str(ds.PatientName).startswith("SIM^")
    assert ds.InstitutionName and ds.pixel_array.ndim == 3


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        write_corpus(root, n_sources=4, images_per_source=4, size=64, seed=3, progress=False)

    def digest(root):
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    assert digest(a) == digest(b)


def test_pretraining_samples_are_hierarchy_coherent():
    onto = load_ontology()
    samples = pretraining_samples(len(FAMILIES), size=64, seed=0)
    for s in samples:
        assert s["image"].shape == (1, 64, 64) and s["image"].dtype == np.float32
        assert s["hierarchy"].shape == (len(onto),) and s["hierarchy"].sum() >= 3
        assert onto.is_coherent(s["hierarchy"])
        assert s["hierarchy_mask"].dtype == bool and s["hierarchy_mask"][: onto.n_regions].all()


def test_sources_annotate_each_image_at_their_levels(corpus):
    root, report = corpus
    onto = load_ontology()
    ann = pd.read_csv(root / "annotations.csv", keep_default_na=False).set_index("path")
    truth = report.truth.set_index("path")
    assert set(ann.index) <= set(truth.index)
    annotated = truth.loc[ann.index]
    assert set(annotated["kind"]) <= {"ok", "exact_dup", "near_dup", "corrupt"}
    assert set(truth.index[truth["kind"] == "ok"]) <= set(ann.index)  # every clean image
    for path, row in ann.iterrows():
        levels = truth.loc[path, "label_levels"].split(";")
        ids = [onto.find(n) for n in row["structures"].split(";")]
        assert {onto.node(i).level for i in ids} <= set(levels), (path, row["structures"])
        # the annotation names exactly the visible structures' nodes at the deepest level
        truth_ids = truth.loc[path, "ontology_ids"].split(";")
        deepest = max(("region", "meta", "anatomical").index(v) for v in levels)
        want = {onto.path(i)[min(deepest, len(onto.path(i)) - 1)] for i in truth_ids}
        assert set(ids) == want
    # images of one source differ in what they show: labels are per image, not per source
    per_source = ann.groupby(truth.loc[ann.index, "source"].values)["structures"].nunique()
    assert (per_source > 1).any()
