"""Simulated USData-Liver report cases (liver_report): schema, determinism, report text, and
the clinical-efficacy entity rules."""
from __future__ import annotations

import re

import numpy as np
import pytest

from echocare_lib.sim.render import sample_rng
from echocare_lib.sim.tasks import report
from echocare_lib.sim.tasks.report import (ENTITIES, TASKS, draw_findings, entity_vector,
                                           sample_liver_report, write_report)

N_STAT = 40
PAPER_ENTITIES = ["liver", "capsule", "echogenicity", "vein", "kidney", "intrahepatic duct",
                  "bile duct", "gallbladder", "margin", "pancreas", "pancreatic duct",
                  "lesion", "spleen", "nodule"]


def _sample(i: int, size: int = 64, seed: int = 0) -> dict:
    return sample_liver_report(sample_rng(seed, "liver_report", "train", i), size=size,
                               index=i, split="train")


@pytest.fixture(scope="module")
def many() -> list[dict]:
    return [_sample(i) for i in range(N_STAT)]


def test_task_spec():
    spec = TASKS["liver_report"]
    assert spec["kind"] == "report" and spec["classes"] == PAPER_ENTITIES
    assert ENTITIES == PAPER_ENTITIES


@pytest.mark.parametrize("size", [64, 128])
def test_schema(size, many):
    s = many[0] if size == 64 else _sample(0, size=128)
    assert s["images"].dtype == np.float32 and s["images"].shape == (2, 1, size, size)
    assert np.array_equal(s["image"], s["images"][0])
    assert np.isfinite(s["images"]).all() and 0 <= s["images"].min() and s["images"].max() <= 1
    assert (s["images"].reshape(2, -1) > 0).mean(1).min() > 0.3  # both views imaged
    assert isinstance(s["report"], str) and len(s["report"]) > 80
    assert re.match(r"(Findings|FINDINGS|Ultrasound findings):", s["report"])
    assert re.search(r"\n(Impression|IMPRESSION|Conclusion):", s["report"])
    assert list(s["entities"]) == ENTITIES and set(s["entities"].values()) <= {0, 1}
    assert s["entities"]["liver"] == 1
    assert {"liver", "gallbladder", "lesion", "pancreas", "spleen", "kidney"} <= set(s["findings"])
    assert len(s["findings"]["views"]) == 2 and s["findings"]["views"][0] == "right lobe oblique"
    assert "liver" in s["structures"] and all(isinstance(x, str) for x in s["structures"])
    m = s["meta"]
    assert m["task"] == "liver_report" and m["probe"] == "convex"
    assert m["patient_id"] == m["case_id"] and m["device"] in report.DEVICES


def test_determinism():
    a, b = _sample(5), _sample(5)
    assert np.array_equal(a["images"], b["images"]) and a["report"] == b["report"]
    assert a["entities"] == b["entities"] and a["findings"] == b["findings"]
    c = _sample(6)
    assert not np.array_equal(a["images"], c["images"]) and a["report"] != c["report"]


def test_entity_rules_agree_with_structure(many):
    """The CE keyword rules, applied to the text, reproduce the structured entity vector."""
    pairs = [(entity_vector(s["report"]), np.array([s["entities"][e] for e in ENTITIES]))
             for s in many]
    rng = np.random.default_rng(123)
    for _ in range(600):  # text only: many more reports
        text, ents = write_report(draw_findings(rng), rng)
        pairs.append((entity_vector(text), np.array([ents[e] for e in ENTITIES])))
    got, want = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    assert (got == want).mean() >= 0.95
    rate = want.mean(0)
    assert rate[ENTITIES.index("liver")] == 1.0
    # every other entity is sometimes mentioned and sometimes not
    assert all(0.05 < r < 0.99 for e, r in zip(ENTITIES, rate) if e != "liver")


@pytest.mark.parametrize("text,yes,no", [
    ("No intrahepatic bile duct dilatation.", {"intrahepatic duct"}, {"bile duct", "liver"}),
    ("The common bile duct measures 0.5 cm.", {"bile duct"}, {"intrahepatic duct"}),
    ("The main pancreatic duct is not dilated.", {"pancreatic duct"}, {"pancreas"}),
    ("The pancreatic head is normal.", {"pancreas"}, {"pancreatic duct"}),
    ("Hepatic veins are patent.", {"vein"}, {"liver"}),
    ("The liver surface is nodular.", {"liver", "capsule"}, {"nodule"}),
    ("A 1.8 x 1.5 cm hyperechoic lesion with well-defined margins in the right lobe.",
     {"lesion", "margin"}, {"echogenicity", "nodule"}),
    ("Splenomegaly. Right renal cyst. Cholelithiasis.", {"spleen", "kidney", "gallbladder"},
     {"lesion"}),
])
def test_entity_rules_examples(text, yes, no):
    v = dict(zip(ENTITIES, entity_vector(text)))
    assert all(v[e] == 1 for e in yes) and all(v[e] == 0 for e in no)


def test_report_uses_scene_numbers(many):
    for s in many:
        f, text = s["findings"], s["report"]
        les = f["lesion"]
        if les:
            a, b = les["size_cm"]
            assert f"{a} x {b} cm" in text
        if f["portal_vein_dilated"]:
            assert f"{f['portal_vein_cm']} cm" in text
        if f["gallbladder"]["state"] == "stones":
            assert f"{f['gallbladder']['stone_cm']} cm" in text


def test_report_variety_and_normal_phrasing(many):
    texts = [s["report"] for s in many]
    assert len(set(texts)) == len(texts)
    assert len({t.split(". ")[0] for t in texts}) >= 4
    rng = np.random.default_rng(7)
    normal = 0
    for _ in range(300):
        f = draw_findings(rng)
        text, _ = write_report(f, rng)
        plain = (f["liver"]["parenchyma"] == "normal" and not f["lesion"]
                 and f["gallbladder"]["state"] == "normal" and not f["ihd_dilated"]
                 and not f["pancreas"]["duct_dilated"] and not f["spleen"]["enlarged"]
                 and not f["kidney"]["cyst_cm"] and not f["portal_vein_dilated"])
        if plain:
            normal += 1
            imp = text.split("\n")[1].lower()
            assert "normal" in imp or "unremarkable" in imp or "no " in imp
            assert "dilated" not in text.replace("not dilated", "")
    assert normal >= 10


def test_findings_shown_in_images(many):
    """Visible structures follow the findings (lesion, stones), and a fatty liver fades with
    depth more than a normal one on average, with overlap between the groups."""
    drop: dict[str, list[float]] = {"normal": [], "fatty": []}
    for s in many:
        f = s["findings"]
        les = f["lesion"]
        if les and (les["lobe"] == "right" or "epigastric transverse" in f["views"]):
            assert f"liver {les['type']}" in s["structures"]
        if f["gallbladder"]["state"] == "stones" and "gallbladder" in f["views"]:
            assert "gallstone" in s["structures"]
        par = f["liver"]["parenchyma"]
        if par in drop:
            im = s["images"][0, 0]
            rows = np.nonzero(im.max(1) > 0)[0]
            r0, h = rows.min(), rows.max() - rows.min()
            c = slice(24, 40)
            drop[par].append(im[r0 + int(0.55 * h): r0 + int(0.7 * h), c].mean()
                             - im[r0 + int(0.25 * h): r0 + int(0.4 * h), c].mean())
    fat, nor = np.array(drop["fatty"]), np.array(drop["normal"])
    assert len(fat) >= 5 and len(nor) >= 5
    assert fat.mean() < nor.mean() - 0.03
    assert fat.max() > nor.min()  # overlap: not a one-feature giveaway
