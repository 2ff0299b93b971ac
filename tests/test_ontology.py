"""The EchoAtlas ontology: the shipped tree (counts, coverage) and the loader's behaviour."""
import re
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echocare_lib.ontology import (
    LEVELS,
    Node,
    Ontology,
    OntologyError,
    counts_table,
    load_ontology,
)
from echocare_lib.paths import manifests_dir

ONTO = load_ontology()
ALL_IDS = list(ONTO.ids)

PAPER_REGIONS = ["head", "chest", "abdomen", "limbs", "back", "fetus", "dorsum", "pelvis", "other"]

# Structures of the ten downstream tasks (paper, Table 1 and section 4.2) and the USreport
# entities (section 4.3), as the paper names them.
DOWNSTREAM = [
    "thyroid nodule", "thyroid", "carotid artery", "femoral artery", "femoral vein",
    "jugular vein", "liver", "kidney", "pancreas", "bladder", "spleen", "breast",
    "breast lesion", "breast tumor", "BUS", "focal liver lesion", "HCC", "hemangioma", "FNH",
    "fetal thorax", "fetal heart", "fetal brain", "skull", "thalami", "cerebellum",
    "cavum septi pellucidi", "Sylvian fissure", "midline", "left ventricle", "LV",
    "left atrium", "LA", "myocardium", "heart",
    # USreport entities
    "capsule", "echogenicity", "vein", "portal vein", "hepatic vein", "intrahepatic duct",
    "bile duct", "gallbladder", "pancreatic duct", "lesion", "nodule",
]
# Organs of the Table 5 data sets (inferred from the data sets' titles and references).
TABLE5_ORGANS = [
    "breast", "thyroid", "liver", "kidney", "heart", "fetal head", "fetal brain", "fetal heart",
    "fetal abdomen", "ovary", "prostate", "lung", "carotid", "muscle", "nerve", "spine",
    "gallbladder", "pancreas", "spleen", "bladder", "uterus", "cervix", "lymph node", "tongue",
    "brain", "skin", "appendix", "rectum", "pubic symphysis", "hip", "tendon", "mitral valve",
    "aorta", "multifidus", "brachial plexus", "femur",
]


def _md_counts() -> dict[str, int]:
    text = (manifests_dir() / "ONTOLOGY.md").read_text(encoding="utf-8")
    out = {}
    for level, label in [("region", "regions"), ("meta", "meta-object types"),
                         ("anatomical", "anatomical types")]:
        m = re.search(rf"^\|\s*{label}\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|", text, re.M)
        assert m, f"ONTOLOGY.md has no counts row for {label!r}"
        out[level] = int(m.group(2))
    return out


# ---------------------------------------------------------------------- the shipped tree
def test_counts_match_ontology_md():
    counts = _md_counts()
    assert ONTO.n_regions == 9 == counts["region"]
    assert ONTO.n_meta == counts["meta"]
    assert ONTO.n_anatomical == counts["anatomical"]
    assert len(ONTO) == sum(counts.values())
    assert counts_table(ONTO) in (manifests_dir() / "ONTOLOGY.md").read_text(encoding="utf-8")


def test_paper_regions_present_in_order():
    regions = [n.id for n in ONTO.nodes[ONTO.level_slice("region")]]
    assert regions == PAPER_REGIONS
    assert ONTO.find("thorax") == "chest" and ONTO.find("Head & Neck") == "head"


@pytest.mark.parametrize("term", DOWNSTREAM + TABLE5_ORGANS)
def test_structures_findable(term):
    node = ONTO.node(ONTO.find(term))
    assert node.level in ("meta", "anatomical")


def test_specific_lookups():
    assert ONTO.find("LV") == "left_ventricle" == ONTO.find("left cardiac ventricle")
    assert ONTO.path(ONTO.find("thalami")) == ("fetus", "fetal_brain", "fetal_thalamus")
    assert ONTO.path("femoral_vein") == ("limbs", "femoral_vessels", "femoral_vein")
    assert ONTO.find("hcc") == ONTO.find("Hepatocellular-Carcinoma") == "hepatocellular_carcinoma"
    assert ONTO.parent("fetal_heart") == "fetal_thorax"


def test_find_unknown_lists_close_matches():
    with pytest.raises(KeyError, match="thyroid nodule"):
        ONTO.find("thyroid nodul")
    with pytest.raises(KeyError, match="not an id, name or synonym"):
        ONTO.find("xyzzy")


def test_structure_and_order():
    levels = [n.level for n in ONTO.nodes]
    assert levels == sorted(levels, key=LEVELS.index)
    for lvl in LEVELS:
        assert all(n.level == lvl for n in ONTO.nodes[ONTO.level_slice(lvl)])
    assert all(ONTO.index[n.id] == i for i, n in enumerate(ONTO.nodes))
    for n in ONTO.nodes:
        assert len(ONTO.path(n.id)) == LEVELS.index(n.level) + 1
        if n.level != "anatomical":
            assert ONTO.descendants(n.id), n.id
    assert ONTO.ancestors("left_ventricle") == ["heart", "chest"]
    assert ONTO.ancestors("left_ventricle", include_self=True)[0] == "left_ventricle"
    assert ONTO.descendants("fetal_thorax") == ["fetal_thoracic_cavity", "fetal_heart"]
    assert load_ontology() is ONTO  # cached


def test_frame_and_masks():
    df = ONTO.to_frame()
    assert list(df.columns) == ["id", "name", "level", "parent", "path"]
    assert len(df) == len(ONTO) and df["id"].is_unique
    assert df.loc[df.id == "left_ventricle", "path"].item() == "chest/heart/left_ventricle"
    m = ONTO.level_mask(["region", "meta"])
    assert m.dtype == bool and m.sum() == ONTO.n_regions + ONTO.n_meta and not m[-1]
    assert ONTO.level_mask("anatomical").sum() == ONTO.n_anatomical
    with pytest.raises(ValueError):
        ONTO.level_mask("organ")


# ---------------------------------------------------------------------- encode / decode
def _closure(ids):
    return {a for i in ids for a in ONTO.ancestors(i, include_self=True)}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(ALL_IDS), max_size=12))
def test_encode_is_ancestor_closed_and_decodes(ids):
    v = ONTO.encode(ids)
    assert v.dtype == np.float32 and v.shape == (len(ONTO),)
    assert set(np.unique(v)) <= {0.0, 1.0}
    positive = {ONTO.ids[i] for i in np.flatnonzero(v)}
    assert positive == _closure(ids)
    assert ONTO.decode(v) == [i for i in ALL_IDS if i in positive]  # class order
    assert ONTO.is_coherent(v)


def test_encode_edge_cases():
    assert not ONTO.encode([]).any()
    assert np.array_equal(ONTO.encode("liver_capsule"), ONTO.encode(["liver_capsule"]))
    with pytest.raises(KeyError, match="not_a_node"):
        ONTO.encode(["liver", "not_a_node"])
    with pytest.raises(ValueError, match="length"):
        ONTO.decode(np.zeros(3))


def test_matrices_match_ancestors_and_descendants():
    A, D = ONTO.ancestor_matrix(), ONTO.descendant_matrix()
    assert A.dtype == bool and A.shape == (len(ONTO),) * 2 and np.array_equal(D, A.T)
    for i, node_id in enumerate(ALL_IDS):
        assert {ALL_IDS[j] for j in np.flatnonzero(A[i])} == set(ONTO.ancestors(node_id, True))
        assert {ALL_IDS[j] for j in np.flatnonzero(D[i])} == set(ONTO.descendants(node_id, True))
        assert np.array_equal(A[i], ONTO.encode([node_id]).astype(bool))
    A[0, 1] = True  # a copy: the ontology is unaffected
    assert not ONTO.ancestor_matrix()[0, 1]


def test_is_coherent():
    v = ONTO.encode(["left_ventricle"])
    v[ONTO.index["heart"]] = 0.0
    assert not ONTO.is_coherent(v)
    p = np.zeros(len(ONTO))
    p[[ONTO.index[i] for i in ("chest", "heart", "left_ventricle")]] = [0.9, 0.6, 0.6]
    assert ONTO.is_coherent(p)
    p[ONTO.index["left_ventricle"]] = 0.7
    assert not ONTO.is_coherent(p)
    p[ONTO.index["left_ventricle"]] = 0.6 + 5e-7  # within tolerance
    assert ONTO.is_coherent(p)
    assert ONTO.is_coherent(np.stack([ONTO.encode(["liver"]), ONTO.encode([])]))


def test_constructor_checks_parents():
    with pytest.raises(OntologyError, match="parent"):
        Ontology([Node("r", "r", "region", None), Node("a", "a", "anatomical", "r")])


# ---------------------------------------------------------------------- validation errors
GOOD = """\
regions:
  - id: chest
    name: chest
    synonyms: [thorax]
    children:
      - id: heart
        name: heart
        children:
          - id: left_ventricle
            name: left ventricle
            synonyms: [LV]
"""


def _write(tmp_path, text, name="onto.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_small_good_file(tmp_path):
    onto = load_ontology(_write(tmp_path, GOOD))
    assert onto.ids == ("chest", "heart", "left_ventricle")
    assert onto.find("lv") == "left_ventricle"


BAD = {
    "duplicate id": (GOOD.replace("id: left_ventricle", "id: heart"), "duplicate id 'heart'"),
    "missing id": (GOOD.replace("- id: left_ventricle\n            name", "- name"),
                   "'left ventricle'.*no 'id'"),
    "missing name": (GOOD.replace("        name: heart\n", ""), "no 'name'"),
    "fourth level": (GOOD + "            children:\n              - id: lv_apex\n"
                     "                name: LV apex\n", "fourth level"),
    "anatomical under region": (GOOD + "      - id: pleural_line\n        name: pleural line\n",
                                "pleural_line.*no 'children'"),
    "empty meta": (GOOD + "      - id: lung\n        name: lung\n        children: []\n",
                   "lung.*empty or missing 'children'"),
    "shared synonym": (GOOD + "      - id: lung\n        name: lung\n        synonyms: [lv]\n"
                       "        children:\n          - id: pleural_line\n"
                       "            name: pleural line\n",
                       "'LV' names both 'lung' and 'left_ventricle'"),
    "malformed yaml": (GOOD + "  - id: [unclosed\n", "malformed YAML at line"),
    "bad id": (GOOD.replace("id: left_ventricle", "id: Left-Ventricle"), "snake_case"),
    "unknown key": (GOOD.replace("synonyms: [LV]", "synonym: [LV]"), "unknown key"),
    "empty region": ("regions:\n  - id: chest\n    name: chest\n", "chest.*'children'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_validation_errors(tmp_path, case):
    text, pattern = BAD[case]
    path = _write(tmp_path, text, f"{case.replace(' ', '_')}.yaml")
    with pytest.raises(OntologyError, match=pattern) as err:
        load_ontology(path)
    assert str(path) in str(err.value)  # the message names the file


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_ontology(tmp_path / "nope.yaml")
