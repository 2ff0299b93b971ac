"""Text side of report generation (echocare_lib.downstream.report_text): tokenizer, NLG metrics
(pycocoevalcap) against hand-computed values, clinical-efficacy metrics, word diff, figure."""
from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from echocare_lib.downstream import report_text as rt
from echocare_lib.downstream.report_text import (NLG_KEYS, Tokenizer, ce_metrics, diff_segments,
                                                 nlg_metrics, normalize_for_scoring,
                                                 plot_report_examples, tokenize)
from echocare_lib.sim.tasks.report import ENTITIES, draw_findings, write_report


def _reports(n: int, seed: int = 0) -> list[str]:
    """Simulated liver report texts (findings + text only, no image rendering)."""
    rng = np.random.default_rng(seed)
    return [write_report(draw_findings(rng), rng)[0] for _ in range(n)]


@pytest.fixture(scope="module")
def reports() -> list[str]:
    return _reports(40)


# --------------------------------------------------------------------------- tokenizer
def test_tokenize_rules():
    assert tokenize("Cyst (12.5 mm), ill-defined; CEUS/CT.\nImpression: 1. Normal") == [
        "cyst", "(", "12.5", "mm", ")", ",", "ill-defined", ";", "ceus", "/", "ct", ".",
        "impression", ":", "1", ".", "normal"]
    assert normalize_for_scoring("The CBD (0.5 cm): normal.") == "the cbd 0.5 cm normal"


def test_tokenizer_round_trip_on_simulated_reports(reports):
    tok = Tokenizer.build(reports)
    assert tok.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    for t in reports:
        ids = tok.encode(t)
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and tok.unk_id not in ids
        # normalised text: lower case, whitespace (incl. the line break) collapsed
        assert tok.decode(ids) == " ".join(t.lower().split())
    # deterministic: same vocabulary from the same texts, in any order of building
    assert Tokenizer.build(list(reversed(reports))) == tok


def test_tokenizer_vocab_order_unk_truncation_json():
    tok = Tokenizer.build(["b a a.", "c b"])
    # counts: a 2, b 2, "." 1, c 1 -> by decreasing count, ties alphabetical
    assert tok.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", ".", "c"]
    assert len(tok) == 8
    a, b, c = tok.stoi["a"], tok.stoi["b"], tok.stoi["c"]
    assert tok.encode("A zebra b") == [1, a, 3, b, 2]
    assert tok.decode(tok.encode("A zebra b")) == "a <unk> b"
    assert tok.encode("a b c a b", max_len=4) == [1, a, b, 2]  # eos kept after truncation
    assert tok.encode("a b", max_len=2) == [1, 2]
    with pytest.raises(ValueError):
        tok.encode("a", max_len=1)
    # decode stops at eos and skips pad / bos; arrays accepted
    assert tok.decode(np.array([1, a, b, 2, c, 0, 0])) == "a b"
    assert tok.decode([a, tok.stoi["."], 0]) == "a."
    with pytest.raises(ValueError):
        tok.decode([99])
    assert Tokenizer.build(["x"] * 2 + ["y"], min_count=2).itos[4:] == ["x"]
    back = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert back == tok and back.encode("c a") == tok.encode("c a")
    with pytest.raises(TypeError):
        Tokenizer.build("one string")


# --------------------------------------------------------------------------- NLG metrics
REF = "The liver is normal in size."


def test_bleu_rouge_hand_computed():
    s = nlg_metrics([REF], [REF], meteor=False)
    assert tuple(s) == NLG_KEYS and math.isnan(s["METEOR"])
    for k in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L"):
        assert s[k] == pytest.approx(1.0, abs=1e-9)
    assert s["CIDEr"] == 0.0  # CIDEr's IDF is log(#references) = 0 for one report

    # ref "the liver is normal in size" (r = 6), hyp "the liver is enlarged" (c = 4):
    # clipped unigram matches the/liver/is -> p1 = 3/4; bigrams "the liver", "liver is"
    # match of 3 -> p2 = 2/3; brevity penalty (pycocoevalcap: c < r) exp(1 - r/c) = e^-0.5.
    # BLEU-1 = p1 * BP = 0.45490; BLEU-2 = sqrt(p1 * p2) * BP = sqrt(0.5) * e^-0.5 = 0.42888
    s = nlg_metrics([REF], ["The liver is enlarged."], meteor=False)
    bp = math.exp(1 - 6 / 4)
    assert s["BLEU-1"] == pytest.approx(0.75 * bp, rel=1e-6)
    assert s["BLEU-2"] == pytest.approx(math.sqrt(0.75 * 2 / 3) * bp, rel=1e-6)
    assert 0.45 < s["BLEU-1"] < 0.46 and 0.42 < s["BLEU-2"] < 0.43

    # ROUGE-L: ref (6 words) vs "the liver size is normal" (5): LCS "the liver is normal" = 4,
    # P = 4/5, R = 4/6, F = (1 + 1.2^2) P R / (R + 1.2^2 P) = 0.715543
    s = nlg_metrics([REF], ["The liver size is normal."], meteor=False)
    p, r, b2 = 4 / 5, 4 / 6, 1.2 ** 2
    assert s["ROUGE-L"] == pytest.approx((1 + b2) * p * r / (r + b2 * p), rel=1e-9)
    assert s["ROUGE-L"] == pytest.approx(0.715543, abs=1e-6)


def test_empty_hypothesis_scores_zero():
    s, per = nlg_metrics([REF, REF], ["", "  "], meteor=False, return_per_report=True)
    for k in NLG_KEYS:
        if k != "METEOR":
            assert s[k] == 0.0 and (per[k] == 0).all()


def test_meteor_runs_java_and_closes_it(reports):
    psutil = pytest.importorskip("psutil")
    if rt.shutil.which("java") is None:
        pytest.skip("no Java runtime: METEOR cannot run")
    refs = [reports[0], reports[1], reports[2]]
    hyps = [reports[0], "Bowel loops show active peristalsis without free fluid.", ""]
    s, per = nlg_metrics(refs, hyps, require_java=True, return_per_report=True)
    # METEOR of identical texts is just below 1 (fragmentation penalty of one chunk)
    assert per["METEOR"][0] > 0.95
    assert per["METEOR"][1] < 0.2
    assert per["METEOR"][2] == 0.0
    assert 0.0 < s["METEOR"] < 1.0
    assert per.shape == (3, len(NLG_KEYS))
    jvm = rt._METEOR
    assert jvm is not None  # one JVM per process, reused by the next call
    nlg_metrics(refs[:1], hyps[:1], require_java=True)
    assert rt._METEOR is jvm
    rt._shutdown_meteor()   # what atexit does at interpreter exit
    java_children = [p for p in psutil.Process().children(recursive=True)
                     if "java" in (p.name() or "").lower() and p.status() != psutil.STATUS_ZOMBIE]
    assert not java_children, "the METEOR JVM was left running"


def test_meteor_without_java(monkeypatch):
    monkeypatch.setattr(rt.shutil, "which", lambda name: None)
    with pytest.warns(RuntimeWarning, match="METEOR unavailable"):
        s = nlg_metrics([REF], [REF])
    assert math.isnan(s["METEOR"]) and s["BLEU-4"] == pytest.approx(1.0)
    with pytest.raises(RuntimeError, match="java"):
        nlg_metrics([REF], [REF], require_java=True)


def test_input_validation():
    for f in (nlg_metrics, ce_metrics):
        with pytest.raises(ValueError, match="references but"):
            f([REF], [REF, REF])
        with pytest.raises(ValueError, match="empty"):
            f([], [])
        with pytest.raises(TypeError, match=r"hypotheses\[0\]"):
            f([REF], [None])
        with pytest.raises(TypeError, match="list of str"):
            f(REF, REF)
    with pytest.raises(ValueError, match="no words"):
        nlg_metrics(["..."], [REF], meteor=False)


# --------------------------------------------------------------------------- CE metrics
def test_ce_metrics_hand_computed():
    refs = ["The liver is normal. The gallbladder is normal. The spleen is normal.",
            "The right kidney is normal. The pancreas is unremarkable.",
            "Portal vein 1.1 cm."]
    hyps = ["The liver is normal. The gallbladder is normal. A nodule is seen.",
            "The right kidney is normal.",
            "Portal vein 1.1 cm."]
    y_true, y_pred = rt.entity_matrix(refs), rt.entity_matrix(hyps)
    on = lambda m, i: {ENTITIES[j] for j in np.flatnonzero(m[i])}  # noqa: E731
    assert [on(y_true, i) for i in range(3)] == [{"liver", "gallbladder", "spleen"},
                                                 {"kidney", "pancreas"}, {"vein"}]
    assert [on(y_pred, i) for i in range(3)] == [{"liver", "gallbladder", "nodule"},
                                                 {"kidney"}, {"vein"}]
    m = ce_metrics(refs, hyps)
    # TP = liver, gallbladder, kidney, vein = 4; FP = nodule = 1; FN = spleen, pancreas = 2
    assert m["precision"] == pytest.approx(4 / 5)
    assert m["recall"] == pytest.approx(4 / 6)
    assert m["F1"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 2))  # 8/11
    # 3 disagreements among 3 x 14 decisions; only report 3 matches entirely
    assert m["ACC"] == pytest.approx(39 / 42)
    assert m["exact_match"] == pytest.approx(1 / 3)
    assert m["F1[liver]"] == 1.0 and m["F1[spleen]"] == 0.0 and m["F1[nodule]"] == 0.0
    assert m["F1[capsule]"] == 0.0  # absent everywhere: zero_division=0
    assert {k for k in m if k.startswith("F1[")} == {f"F1[{e}]" for e in ENTITIES}
    assert all(0.0 <= v <= 1.0 for v in m.values())


def test_ce_identical_reports(reports):
    m = ce_metrics(reports[:10], reports[:10])
    assert m["ACC"] == m["exact_match"] == m["precision"] == m["recall"] == m["F1"] == 1.0


# --------------------------------------------------------------------------- diff + figure
def test_diff_segments_three_labels():
    segs = diff_segments("The liver is normal in size.",
                         "The liver is enlarged in size, with a nodule.")
    assert segs == [("match", "the liver is"), ("missing", "normal"), ("extra", "enlarged"),
                    ("match", "in size"), ("extra", ", with a nodule"), ("match", ".")]
    assert diff_segments("a b", "a b") == [("match", "a b")]
    assert diff_segments("a b", "") == [("missing", "a b")]


def test_plot_report_examples(tmp_path, reports):
    cases = [{"case_id": "001", "reference": reports[0],
              "predictions": {"echocare": reports[0].replace("normal", "increased", 1)
                              + " No ascites.",
                              "scratch": reports[3]}},
             {"case_id": "002", "reference": reports[1], "predictions": {"echocare": ""}}]
    fig = plot_report_examples(cases, title="demo")
    try:
        assert len(fig.axes) == 2 * 3  # (case, model) rows x (ground truth, prediction)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        colours = rt._diff_colours()
        for k, ax in enumerate(fig.axes):
            texts = ax.texts
            case = cases[0] if k < 4 else cases[1]
            model = ["echocare", "echocare", "scratch", "scratch", "echocare", "echocare"][k]
            ref, pred = case["reference"], case["predictions"][model]
            head = texts[0].get_text()
            assert head == (f"Case {case['case_id']}: ground truth" if k % 2 == 0 else
                            f"Case {case['case_id']}: {model}")
            body = texts[1:]
            # the panel spells the whole (tokenised) report, word for word
            shown = "".join(t.get_text().replace(" ", "") for t in body)
            want = "".join(tokenize(ref if k % 2 == 0 else pred))
            assert shown == want
            allowed = {colours["match"], colours["missing" if k % 2 == 0 else "extra"]}
            assert {t.get_color() for t in body} <= allowed
            for t in body:
                if t.get_color() == colours["extra"]:
                    assert t.get_fontweight() == "bold"
                assert t.get_fontsize() >= 8
            # inside the panel, and no two runs overlap
            axbox = ax.get_window_extent(renderer)
            boxes = [t.get_window_extent(renderer) for t in body]
            for bb in boxes:
                assert axbox.x0 <= bb.x0 and bb.x1 <= axbox.x1 + 0.5
                assert axbox.y0 <= bb.y0 and bb.y1 <= axbox.y1
            lines: dict = {}  # baseline -> x extents of its runs
            for t, bb in zip(body, boxes):
                lines.setdefault(t.get_position()[1], []).append((bb.x0, bb.x1))
            for runs in lines.values():
                runs.sort()
                assert all(x1 <= nx0 + 0.5 for (_, x1), (nx0, _) in zip(runs, runs[1:]))
            ys = sorted(lines)  # line spacing >= 1.3 x font size
            assert all(b - a >= 1.3 * body[0].get_fontsize() for a, b in zip(ys, ys[1:]))
        assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == 3
        fig.savefig(tmp_path / "examples.png")
        assert (tmp_path / "examples.png").stat().st_size > 10_000
    finally:
        plt.close(fig)
    with pytest.raises(ValueError):
        plot_report_examples([{"case_id": "x", "reference": REF, "predictions": {}}])
