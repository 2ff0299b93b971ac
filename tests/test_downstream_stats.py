"""Statistical analysis (paper section 4.4) against scipy on fixed data, and degenerate inputs."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from echocare_lib.downstream.stats import compare_to_best, stars, summarise


def _trials(n=20, seed=0):
    """Three models x n trials; EchoCare best, USFM second, CLIP third (higher is better)."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, mu, sd in (("EchoCare", 0.85, 0.004), ("USFM", 0.83, 0.004), ("CLIP", 0.80, 0.01)):
        trial_effect = rng.normal(0, 0.003, n)       # a shared per-seed effect makes pairing matter
        for t in range(n):
            rows.append({"model": model, "trial": t,
                         "dsc": mu + trial_effect[t] + rng.normal(0, sd)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("p, s", [(0.0, "***"), (0.0009999, "***"), (0.001, "**"),
                                  (0.0099, "**"), (0.01, "*"), (0.0499, "*"), (0.05, "ns"),
                                  (0.8, "ns"), (1.0, "ns"), (math.nan, "n/a")])
def test_stars_thresholds(p, s):
    assert stars(p) == s


def test_stars_rejects_non_p():
    with pytest.raises(ValueError):
        stars(1.5)


def test_summarise_mean_std_ddof1():
    df = pd.DataFrame({"model": ["A"] * 4 + ["B"] * 3,
                       "acc": [0.80, 0.82, 0.84, 0.86, 0.70, 0.71, 0.75]})
    out = summarise(df, by="model", value="acc", scale=100, digits=2).set_index("model")
    assert out.loc["A", "n"] == 4
    assert out.loc["A", "mean"] == pytest.approx(0.83)
    # sample SD of (0.80, 0.82, 0.84, 0.86): sqrt(sum sq dev / 3) = sqrt(0.002 / 3)
    assert out.loc["A", "std"] == pytest.approx(np.sqrt(0.002 / 3))
    assert out.loc["B", "std"] == pytest.approx(np.std([0.70, 0.71, 0.75], ddof=1))
    assert out.loc["A", "text"] == "83.00 ± 2.58"
    assert out.loc["B", "text"] == "72.00 ± 2.65"


def test_summarise_several_keys_and_single_trial():
    df = pd.DataFrame({"task": ["t1", "t1", "t2"], "model": ["A", "A", "A"],
                       "mae": [4.0, 4.2, 3.9]})
    out = summarise(df, by=["task", "model"], value="mae")
    assert list(out.columns) == ["task", "model", "n", "mean", "std", "text"]
    one = out[out.task == "t2"].iloc[0]
    assert one["n"] == 1 and math.isnan(one["std"]) and one["text"] == "3.90 ± n/a"
    with pytest.raises(ValueError, match="missing"):
        summarise(pd.DataFrame({"model": ["A"], "mae": [np.nan]}), "model", "mae")
    with pytest.raises(KeyError, match="nope"):
        summarise(df, by="nope", value="mae")


def test_compare_to_best_matches_scipy():
    df = _trials()
    out = compare_to_best(df, "model", "trial", "dsc").set_index("model")
    assert list(out.index) == ["USFM", "CLIP"]
    assert (out["best"] == "EchoCare").all()
    assert out.loc["USFM", "rank"] == 2 and out.loc["CLIP", "rank"] == 3
    e = df[df.model == "EchoCare"].sort_values("trial")["dsc"].to_numpy()
    for other in ("USFM", "CLIP"):
        o = df[df.model == other].sort_values("trial")["dsc"].to_numpy()
        t = sps.ttest_ind(e, o, equal_var=False)
        w = sps.wilcoxon(e - o)
        row = out.loc[other]
        assert row["t_stat"] == pytest.approx(t.statistic) and row["t_p"] == pytest.approx(t.pvalue)
        assert row["w_stat"] == pytest.approx(w.statistic) and row["w_p"] == pytest.approx(w.pvalue)
        assert row["diff"] == pytest.approx(e.mean() - o.mean())
        assert row["n_pairs"] == 20 and row["n_unpaired"] == 0 and row["note"] == ""
        assert row["t_stars"] == stars(t.pvalue) == "***"
    # 20 positive differences out of 20: the exact two-sided p is 2 / 2**20
    assert out.loc["CLIP", "w_p"] == pytest.approx(2 / 2 ** 20)
    student = compare_to_best(df, "model", "trial", "dsc", equal_var=True).set_index("model")
    o = df[df.model == "USFM"].sort_values("trial")["dsc"].to_numpy()
    assert student.loc["USFM", "t_p"] == pytest.approx(sps.ttest_ind(e, o).pvalue)


def test_compare_to_best_lower_is_better():
    df = pd.DataFrame({"model": ["A"] * 3 + ["B"] * 3, "trial": [0, 1, 2] * 2,
                       "mae": [3.9, 4.0, 3.8, 4.3, 4.1, 4.4]})
    out = compare_to_best(df, "model", "trial", "mae", higher_is_better=False)
    assert out.loc[0, "best"] == "A" and out.loc[0, "model"] == "B"
    assert out.loc[0, "diff"] == pytest.approx(3.9 - 4.2667, abs=1e-4)


def test_wilcoxon_pairs_by_trial_not_by_row_order():
    # small hand-made example where pairing by row position would give a different answer
    df = pd.DataFrame({"model": ["A"] * 6 + ["B"] * 6,
                       "trial": [0, 1, 2, 3, 4, 5] * 2,
                       "acc": [0.90, 0.80, 0.85, 0.70, 0.95, 0.75,
                               0.88, 0.79, 0.80, 0.71, 0.90, 0.70]})
    ref = compare_to_best(df, "model", "trial", "acc").iloc[0]
    a = np.array([0.90, 0.80, 0.85, 0.70, 0.95, 0.75])
    b = np.array([0.88, 0.79, 0.80, 0.71, 0.90, 0.70])
    assert ref["w_p"] == pytest.approx(sps.wilcoxon(a - b).pvalue)
    for seed in range(3):
        shuffled = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        got = compare_to_best(shuffled, "model", "trial", "acc").iloc[0]
        assert got["w_p"] == pytest.approx(ref["w_p"])
        assert got["w_stat"] == pytest.approx(ref["w_stat"])
        assert got["t_p"] == pytest.approx(ref["t_p"])
    # pairing B's trials in reverse order really changes the test, so the pairing matters
    assert sps.wilcoxon(a - b[::-1]).pvalue != pytest.approx(ref["w_p"])


def test_unpaired_trials_are_counted_not_silently_dropped():
    df = _trials(n=8)
    df = df[~((df.model == "USFM") & (df.trial == 7))]
    row = compare_to_best(df, "model", "trial", "dsc").set_index("model").loc["USFM"]
    assert row["n_best"] == 8 and row["n_other"] == 7
    assert row["n_pairs"] == 7 and row["n_unpaired"] == 1 and "without a partner" in row["note"]


def test_degenerate_inputs_give_nan_with_reason():
    # identical models: every paired difference zero, both constant
    same = pd.DataFrame({"model": ["A"] * 3 + ["B"] * 3, "trial": [0, 1, 2] * 2,
                         "v": [0.5] * 6})
    row = compare_to_best(same, "model", "trial", "v").iloc[0]
    assert math.isnan(row["t_p"]) and math.isnan(row["w_p"])
    assert row["t_stars"] == row["w_stars"] == "n/a"
    assert "constant" in row["note"] and "all paired differences are zero" in row["note"]
    assert "tie for best" in row["note"]
    # all-zero differences, non-constant models: t-test works, Wilcoxon does not
    zero_d = pd.DataFrame({"model": ["A"] * 3 + ["B"] * 3, "trial": [0, 1, 2] * 2,
                           "v": [0.5, 0.6, 0.7] * 2})
    row = compare_to_best(zero_d, "model", "trial", "v").iloc[0]
    assert row["t_p"] == pytest.approx(1.0) and math.isnan(row["w_p"])
    # one trial each
    one = pd.DataFrame({"model": ["A", "B"], "trial": [0, 0], "v": [0.9, 0.8]})
    row = compare_to_best(one, "model", "trial", "v").iloc[0]
    assert math.isnan(row["t_p"]) and math.isnan(row["w_p"]) and ">= 2" in row["note"]


def test_bad_tables_raise():
    dup = pd.DataFrame({"model": ["A", "A", "B"], "trial": [0, 0, 0], "v": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="more than once"):
        compare_to_best(dup, "model", "trial", "v")
    with pytest.raises(ValueError, match="at least 2 models"):
        compare_to_best(pd.DataFrame({"model": ["A"], "trial": [0], "v": [1.0]}),
                        "model", "trial", "v")
