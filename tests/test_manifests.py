"""The data manifests (paper Tables 1, 5, 6-7), their validation, checksums and country data."""
import hashlib
import importlib.util
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from echocare_lib import manifests as m
from echocare_lib.ontology import load_ontology
from echocare_lib.paths import manifests_dir, project_root

ONTO = load_ontology()
FILES = (m.DATASETS_FILE, m.LINKS_FILE, m.APPLICATIONS_FILE, m.LOCK_FILE)
# Table 5's legend: the country codes it uses (FR is in the legend but no row uses it).
LEGEND = {"BD", "BR", "CA", "CH", "CN", "DE", "DZ", "EG", "ES", "FR", "GB", "IE", "IN", "IR",
          "NL", "NO", "PL", "RO", "SL", "US"}


@pytest.fixture(scope="module")
def datasets():
    return m.load_datasets()


@pytest.fixture(scope="module")
def links():
    return m.load_links()


@pytest.fixture(scope="module")
def apps():
    return m.load_applications()


# ---------------------------------------------------------------------- the real manifests
def test_real_manifests_validate():
    assert m.validate_manifests() == {m.DATASETS_FILE: 76, m.LINKS_FILE: 75,
                                      m.APPLICATIONS_FILE: 11}


def test_table5_lists_the_76_datasets_of_the_link_tables_caption(datasets, links):
    # Tables 6-7 are captioned "Download links of the 76 datasets": Table 5 numbers 1..76.
    assert list(datasets["paper_row"]) == list(range(1, 77))
    assert datasets["dataset"].is_unique
    # The link tables print 75 rows (39 + 36); the one without a link is MUST.
    assert len(links) == 75
    assert links["paper_table"].value_counts().to_dict() == {6: 39, 7: 36}
    assert set(datasets["dataset"]) - set(links["dataset"]) == {"MUST"}
    assert set(links["dataset"]) <= set(datasets["dataset"])


@pytest.mark.parametrize("name, cases, images, countries", [
    ("UIC", None, 2206, "United Kingdom; United States"),
    ("2ULM", None, 683, ""),            # row number printed '3.'
    ("NDF", None, 513, ""),             # images printed '513 5635'
    ("UNS", None, 5635, ""),            # split row 38/39
    ("UI", None, 17034, ""),
    ("OCD", 469, 648, ""),              # merged with MMOTU in the OCR
    ("MMOTU", 294, 1639, "China"),
    ("EBUS", 4, 1039, "Norway"),        # country printed 'NO NO'
    ("3VG", 100, 253, "Romania"),       # values and name on different lines
    ("FUCD", None, 704, "China"),
    ("ReMIND2Reg", 114, 952, "United States"),  # garbled duplicate row dropped
    ("PMUB", 1151, 509646, "United States"),
    ("SlicerIGT", 8, 706, "United States"),
])
def test_table5_transcription_spot_checks(datasets, name, cases, images, countries):
    row = datasets.set_index("dataset").loc[name]
    assert (pd.isna(row["cases"]) if cases is None else row["cases"] == cases)
    assert row["images"] == images
    assert row["countries"] == countries


def test_table5_countries_come_from_the_legend(datasets):
    codes = {c for cell in datasets["country_codes"] for c in m.split_list(cell)}
    assert codes <= LEGEND and LEGEND - codes == {"FR"}


def test_every_entry_has_ontology_paths_and_licence_access(datasets, apps):
    for df in (datasets, apps):
        for organs, paths in zip(df["organs"], df["ontology_paths"]):
            names, chains = m.split_list(organs), m.split_list(paths)
            assert names and len(names) == len(chains)
            for name, chain in zip(names, chains):
                assert tuple(chain.split("/")) == ONTO.path(ONTO.find(name))
        assert (df["licence"].str.len() > 0).all() and (df["access"].str.len() > 0).all()


def test_table1_sizes_exactly_as_printed(apps):
    sizes = {r.name: (r.train, r.test) for r in apps.itertuples()}
    assert sizes == {
        "DDTI": (522, 123), "MusV": (2203, 911), "AbdomenUS": (3345, 872),
        "Thyroid Cine-Clip": (157, 35), "BRA-BUS": (1500, 375), "SYSU-FLL-CEUS": (285, 68),
        "FOCUS": (250, 50), "BrainLandmark": (80, 24), "CAMUS": (450, 50),
        "USenhance": (1654, 426), "USreport": (1118, 279)}


def test_table1_ten_applications_seven_task_types(apps):
    # The paper speaks of 10 applications and 7 task types; Table 1 prints 11 rows because
    # report generation (USreport, results in Table 3) comes on top of Table 4's ten.
    assert len(apps) == 11
    assert (apps["results_table"] == "Table 4").sum() == 10
    assert list(apps.loc[apps["results_table"] == "Table 3", "name"]) == ["USreport"]
    assert set(apps["task_category"]) == set(m.TASK_CATEGORIES)


def test_table1_sim_tasks_exist():
    from echocare_lib.sim.tasks import task_names

    assert set(m.load_applications()["sim_task"]) == set(task_names())


def test_links_ocr_fixes(links):
    by = links.set_index("dataset")
    assert by.loc["Butterfly", "url"].endswith("/covid19_ultrasound/tree/master/data")
    assert by.loc["LUMINOUS", "url"] == "https://users.encs.concordia.ca/~impact/luminous-database/"
    assert set(by.index[by["link_status"] == "missing_in_paper"]) == {"SlicerIGT", "UBPD"}
    assert (by.loc[["SlicerIGT", "UBPD"], "url"] == "").all()
    assert not by["url"].str.contains(r"\s").any()


# ---------------------------------------------------------------------- validation errors
@pytest.fixture
def bad_dir(tmp_path):
    """A copy of the real manifests to break one thing at a time."""
    for name in FILES:
        shutil.copy(manifests_dir() / name, tmp_path / name)
    return tmp_path


def _edit(folder, name, fn):
    df = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
    df = fn(df)
    df.to_csv(folder / name, index=False)


def _set(df, key, value_col, value, key_col="dataset"):
    df.loc[df[key_col] == key, value_col] = value
    return df


def test_validation_passes_on_the_copy(bad_dir):
    assert m.validate_manifests(bad_dir)[m.DATASETS_FILE] == 76


def test_duplicate_dataset_name(bad_dir):
    _edit(bad_dir, m.DATASETS_FILE,
          lambda df: pd.concat([df, df[df["dataset"] == "BUSI"].assign(paper_row="77",
                                                                      dataset="busi")]))
    with pytest.raises(m.ManifestError) as e:
        m.validate_manifests(bad_dir)
    msg = str(e.value)
    assert "table5_datasets.csv line 78" in msg and "duplicate dataset 'busi'" in msg
    assert "also on line 5" in msg


def test_unknown_organ(bad_dir):
    _edit(bad_dir, m.DATASETS_FILE, lambda df: _set(df, "BUSI", "organs", "unicorn gland"))
    with pytest.raises(m.ManifestError, match=r"line 5 \(paper_row 4, dataset 'BUSI'\): "
                                              r"unknown organ 'unicorn gland'"):
        m.validate_manifests(bad_dir)


def test_unknown_ontology_id_and_wrong_path(bad_dir):
    _edit(bad_dir, m.DATASETS_FILE,
          lambda df: _set(_set(df, "BUSI", "ontology_paths", "chest/breast/unicorn"),
                          "HC18", "ontology_paths", "head/fetal_head/fetal_skull"))
    with pytest.raises(m.ManifestError) as e:
        m.validate_manifests(bad_dir)
    msg = str(e.value)
    assert "unknown ontology id(s) ['unicorn']" in msg
    assert "'fetus/fetal_head/fetal_skull'" in msg  # the path to write instead


@pytest.mark.parametrize("url, why", [
    ("zenodo.org/records/1", "scheme '(none)'"),
    ("ftp://zenodo.org/records/1", "scheme 'ftp'"),
    ("https:///records/1", "no host name"),
    ("https://zenodo.org/re cords/1", "whitespace"),
])
def test_malformed_url(bad_dir, url, why):
    _edit(bad_dir, m.LINKS_FILE, lambda df: _set(df, "AA", "url", url))
    with pytest.raises(m.ManifestError) as e:
        m.validate_manifests(bad_dir)
    msg = str(e.value)
    assert "table6_links.csv line 2 (paper_row 1, dataset 'AA'): malformed URL" in msg
    assert why in msg


def test_empty_url_needs_missing_status(bad_dir):
    _edit(bad_dir, m.LINKS_FILE, lambda df: _set(df, "BUSI", "url", ""))
    with pytest.raises(m.ManifestError, match="missing_in_paper"):
        m.validate_manifests(bad_dir)


def test_missing_column_and_non_numeric_count(bad_dir):
    _edit(bad_dir, m.LINKS_FILE, lambda df: df.drop(columns=["url"]))
    _edit(bad_dir, m.DATASETS_FILE, lambda df: _set(df, "BUSI", "images", "1,707"))
    with pytest.raises(m.ManifestError) as e:
        m.validate_manifests(bad_dir)
    msg = str(e.value)
    assert "table6_links.csv: missing required column(s) ['url']" in msg
    assert "dataset 'BUSI'): images '1,707' is not a whole number" in msg


def test_link_to_unknown_dataset_and_bad_application(bad_dir):
    _edit(bad_dir, m.LINKS_FILE, lambda df: _set(df, "AA", "dataset", "NOPE"))
    _edit(bad_dir, m.APPLICATIONS_FILE,
          lambda df: _set(df, "CAMUS", "task_category", "prophecy", key_col="name"))
    with pytest.raises(m.ManifestError) as e:
        m.validate_manifests(bad_dir)
    msg = str(e.value)
    assert "data set 'NOPE' is not in table5_datasets.csv" in msg
    assert "name 'CAMUS'): task_category 'prophecy'" in msg


def test_loader_rejects_its_own_bad_file(bad_dir):
    _edit(bad_dir, m.DATASETS_FILE, lambda df: _set(df, "BUSI", "countries", "Atlantis"))
    with pytest.raises(m.ManifestError, match="Unknown country 'Atlantis'"):
        m.load_datasets(bad_dir / m.DATASETS_FILE)


# ---------------------------------------------------------------------- checksums
@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    (root / "BUSI" / "benign").mkdir(parents=True)
    (root / "HC18").mkdir()
    (root / "BUSI" / "benign" / "benign (1).png").write_bytes(b"\x89PNG fake breast" * 1000)
    (root / "HC18" / "000_HC.png").write_bytes(b"fetal head")
    lock = m.write_lock(root, ["BUSI/benign/benign (1).png", root / "HC18" / "000_HC.png"],
                        lock=tmp_path / "checksums.lock")
    return root, lock


def test_sha256_file_streams(tmp_path):
    p = tmp_path / "f.bin"
    payload = np.random.default_rng(0).bytes(300_001)
    p.write_bytes(payload)
    assert m.sha256_file(p) == m.sha256_file(p, chunk_size=7) == hashlib.sha256(payload).hexdigest()


def test_checksums_ok(data):
    root, lock = data
    report = m.check_checksums(root, lock)
    assert list(report.columns) == ["path", "expected", "actual", "status"]
    assert sorted(report["path"]) == ["BUSI/benign/benign (1).png", "HC18/000_HC.png"]
    assert (report["status"] == "ok").all()
    assert m.read_lock(lock)["HC18/000_HC.png"] == hashlib.sha256(b"fetal head").hexdigest()


def test_checksums_mismatch_and_missing(data):
    root, lock = data
    (root / "BUSI" / "benign" / "benign (1).png").write_bytes(b"truncated")
    (root / "HC18" / "000_HC.png").unlink()
    report = m.verify_checksums(root, lock).set_index("path")
    assert report.loc["BUSI/benign/benign (1).png", "status"] == "mismatch"
    assert report.loc["HC18/000_HC.png", "status"] == "missing"
    assert report.loc["HC18/000_HC.png", "actual"] == ""
    with pytest.raises(m.ChecksumError) as e:
        m.check_checksums(root, lock)
    msg = str(e.value)
    expected = m.read_lock(lock)["BUSI/benign/benign (1).png"]
    assert "2 of 2 locked file(s)" in msg
    assert (f"BUSI/benign/benign (1).png: mismatch; expected sha256 {expected}, actual "
            f"{hashlib.sha256(b'truncated').hexdigest()}") in msg
    assert "HC18/000_HC.png: missing" in msg and "(file not found)" in msg
    # What to do: the data set's link from table6, and how to accept a new release.
    assert "https://www.kaggle.com/datasets/aryashah2k/breast-ultrasound-images-dataset" in msg
    assert "https://zenodo.org/records/1322001" in msg and "write_lock" in msg


def test_empty_lock_is_fine(tmp_path):
    lock = tmp_path / "empty.lock"
    shutil.copy(manifests_dir() / m.LOCK_FILE, lock)
    assert m.read_lock(lock) == {}
    assert m.check_checksums(tmp_path, lock).empty


def test_write_lock_keeps_entries_and_rejects_outside_files(data, tmp_path):
    root, lock = data
    (root / "HC18" / "001_HC.png").write_bytes(b"another head")
    m.write_lock(root, ["HC18/001_HC.png"], lock=lock)
    assert len(m.read_lock(lock)) == 3
    assert lock.read_text().startswith("# EchoCare data checksums lock, format 1.")
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"x")
    with pytest.raises(ValueError, match="not inside the data directory"):
        m.write_lock(root, [outside], lock=lock)
    with pytest.raises(FileNotFoundError):
        m.write_lock(root, ["HC18/nope.png"], lock=lock)


@pytest.mark.parametrize("line, why", [
    ("0" * 64 + "  ../etc/passwd", "contains '..'"),
    ("0" * 64 + "  /etc/passwd", "is absolute"),
    ("abc  BUSI/x.png", "expected '<64 hex digits>  <path>'"),
])
def test_malformed_lock_lines(tmp_path, line, why):
    lock = tmp_path / "bad.lock"
    lock.write_text("# header\n" + line + "\n")
    with pytest.raises(m.ChecksumError, match=re.escape(why)):
        m.read_lock(lock)


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="no sha256sum on this machine")
def test_lock_is_sha256sum_compatible(data):
    root, lock = data
    body = "".join(ln + "\n" for ln in lock.read_text().splitlines() if not ln.startswith("#"))
    out = subprocess.run(["sha256sum", "-c", "-"], input=body, text=True, cwd=root,
                         capture_output=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------- paper numbers, countries
def test_paper_funnel():
    f = m.paper_funnel()
    assert list(f["count"]) == [13000, 1136, 334, 138]
    assert list(f["approximate"]) == [True, False, False, False]
    paper = project_root().parent / "shared" / "paper" / "echocare_techreport.txt"
    if paper.exists():  # the quotes are the paper's words
        text = " ".join(paper.read_text(encoding="utf-8").split())
        for quote in f["paper_text"]:
            assert quote in text


@pytest.mark.parametrize("alias", ["USA", "US", "u.s.a.", "United States of America",
                                   "united  states"])
def test_normalise_country_us(alias):
    assert m.normalise_country(alias) == "United States"


def test_normalise_country_others():
    assert m.normalise_country("GB") == m.normalise_country("UK") == "United Kingdom"
    assert m.normalise_country("IR") == "Iran" and m.normalise_country("NL") == "Netherlands"
    with pytest.raises(ValueError, match="Unknown country 'Atlantis'"):
        m.normalise_country("Atlantis")
    assert m.normalise_country(" Atlantis ", strict=False) == "Atlantis"


def test_country_counts(datasets):
    c = m.country_counts().set_index("country")
    assert len(c) == 19
    assert c.loc["China", "n_datasets"] == 13
    assert c.loc["United States", "n_datasets"] == 7
    assert c.loc["United Kingdom", "n_datasets"] == 6
    assert "UIC" in c.loc["United States", "datasets"] and "UIC" in c.loc["United Kingdom",
                                                                           "datasets"]
    with_unknown = m.country_counts(include_unknown=True).set_index("country")
    assert with_unknown.loc["unknown", "n_datasets"] == (datasets["countries"] == "").sum()


needs_geometry = pytest.mark.skipif(
    importlib.util.find_spec(m.GEOMETRY_PACKAGE) is None,
    reason=f"{m.GEOMETRY_PACKAGE} (world geometry for Fig. 2) is not installed")


@needs_geometry
def test_country_shapes_cover_the_source_countries():
    shapes = m.country_shapes()
    assert len(shapes) > 200
    wanted = set(m.country_counts()["country"]) | {m.normalise_country(c) for c in
                                                   m.load_applications()["country"]}
    assert wanted <= set(shapes)
    for polys in shapes.values():
        for p in polys:
            assert p.ndim == 2 and p.shape[1] == 2 and len(p) >= 4
            assert np.all(np.abs(p[:, 0]) <= 180.0001) and np.all(np.abs(p[:, 1]) <= 90.0001)
            assert not p.flags.writeable
    us = np.concatenate(shapes["United States"])
    assert us[:, 0].min() < -120 and us[:, 0].max() > -70  # spans the continent
    assert list(shapes)[:2] == ["Antarctica", "Russia"]   # largest first


@needs_geometry
def test_country_shapes_tolerance():
    coarse = sum(len(p) for p in m.country_shapes(0.5)["China"])
    fine = sum(len(p) for p in m.country_shapes(0.05)["China"])
    assert coarse < fine
    with pytest.raises(ValueError):
        m.country_shapes(-1)
