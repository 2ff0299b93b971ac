"""Label efficiency, ablation gains and verdicts (downstream/efficiency.py) on rows built here."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from echocare_lib.downstream import TASKS
from echocare_lib.downstream import efficiency as eff

SEG, LMK = TASKS["thyroid_nodule_seg"], TASKS["fetal_brain_landmarks"]  # DSC up, MRE down


def _rows(task, values: dict, fractions=(1.0,), metric=None):
    """Tidy rows: values[model] = list per trial (same list at every fraction, scaled by it)."""
    out = []
    for m, vals in values.items():
        for f in fractions:
            for t, v in enumerate(vals):
                out.append({"task": task.name, "model": m, "trial": t, "seed": t,
                            "train_fraction": f, "metric": metric or task.primary,
                            "value": v * f, "config_hash": "h"})
    return pd.DataFrame(out)


def test_primary_values_use_display_units_and_direction():
    rows = pd.concat([_rows(SEG, {"echocare": [0.5, 0.7]}),
                      _rows(SEG, {"echocare": [9.0]}, metric="NSD"),  # not primary: dropped
                      _rows(LMK, {"echocare": [3.0, 5.0]})])
    p = eff.primary_values(rows, [SEG, LMK])
    seg = p[p.task == SEG.name]
    assert seg.value.tolist() == [50.0, 70.0] and (seg.unit == "%").all()
    assert seg.higher_is_better.all() and not p[p.task == LMK.name].higher_is_better.any()
    s = eff.curve_summary(p)
    row = s[s.task == SEG.name].iloc[0]
    assert row["mean"] == 60.0 and row["std"] == pytest.approx(np.std([50, 70], ddof=1))
    with pytest.raises(ValueError, match="no primary-metric rows"):
        eff.primary_values(rows, [TASKS["echo_ef"]])


def test_ablation_gains_are_paired_signed_and_relative():
    rows = pd.concat([_rows(SEG, {"imagenet": [0.5, 0.4], "echocare": [0.55, 0.3]}),
                      _rows(LMK, {"imagenet": [4.0, 5.0], "echocare": [3.0, 5.5]})])
    g = eff.ablation_gains(eff.primary_values(rows, [SEG, LMK]), models=("echocare",))
    seg = g[g.task == SEG.name].set_index("trial").gain_pct
    assert seg[0] == pytest.approx(10.0) and seg[1] == pytest.approx(-25.0)
    lmk = g[g.task == LMK.name].set_index("trial").gain_pct  # lower MRE = better = positive
    assert lmk[0] == pytest.approx(25.0) and lmk[1] == pytest.approx(-10.0)
    zero = _rows(SEG, {"imagenet": [0.0], "echocare": [0.2]})
    assert eff.ablation_gains(eff.primary_values(zero, [SEG]), models=("echocare",)
                              ).gain_pct.isna().all()


def test_matching_fraction_finds_the_smallest_share_that_matches_full_labels():
    rows = pd.concat([_rows(SEG, {"echocare": [0.8] * 3}, fractions=(0.25, 0.5, 1.0)),
                      _rows(SEG, {"scratch": [0.5] * 3}, fractions=(1.0,))])
    s = eff.curve_summary(eff.primary_values(rows, [SEG]))
    m = eff.matching_fraction(s, [SEG]).iloc[0]
    # echocare: 20% at 25%, 40% at 50%, 80% at 100%; scratch: 50% at 100% -> needs 100%
    assert m["best other"] == "scratch" and m["echocare fraction matching it"] == 1.0
    rows2 = pd.concat([_rows(SEG, {"echocare": [0.8] * 3}, fractions=(0.25, 0.5, 1.0)),
                       _rows(SEG, {"scratch": [0.3] * 3}, fractions=(1.0,))])
    s2 = eff.curve_summary(eff.primary_values(rows2, [SEG]))
    assert eff.matching_fraction(s2, [SEG]).iloc[0]["echocare fraction matching it"] == 0.5


def test_verdicts_follow_the_paired_test():
    up = [0.60, 0.62, 0.61, 0.63, 0.65, 0.64]
    down = [v - 0.1 for v in up]
    helped = eff.verdict_rows(eff.primary_values(
        _rows(SEG, {"echocare": up, "scratch": down, "imagenet": [v - .2 for v in up]}), [SEG]), [SEG])
    r = helped.iloc[0]
    assert r.verdict == "helped" and r["best other"] == "scratch"
    assert r["Wilcoxon p"] == pytest.approx(2 / 2 ** 6)  # every pair favours echocare
    hurt = eff.verdict_rows(eff.primary_values(
        _rows(SEG, {"echocare": down, "scratch": up}), [SEG]), [SEG]).iloc[0]
    assert hurt.verdict == "hurt"
    rng = np.random.default_rng(0)
    noise = list(0.6 + 0.05 * rng.standard_normal(6))
    mixed = eff.verdict_rows(eff.primary_values(
        _rows(SEG, {"echocare": noise, "scratch": noise[::-1]}), [SEG]), [SEG]).iloc[0]
    assert mixed.verdict.endswith("not significant")


def test_figures_have_a_panel_per_application_and_a_bar_per_variant():
    rows = pd.concat([_rows(t, {m: [0.5, 0.6] for m in ("echocare", "scratch", "imagenet", "mim-only")},
                            fractions=(0.25, 1.0)) for t in (SEG, LMK)])
    p = eff.primary_values(rows, [SEG, LMK])
    fig = eff.plot_label_efficiency(eff.curve_summary(p), [SEG, LMK], title="t")
    panels = [a for a in fig.axes if a.get_visible() and a.lines]
    assert len(panels) == 2 and len(panels[0].lines) == 4
    assert panels[0].get_xlabel() == "training labels (%)"
    g = eff.ablation_gains(p, models=("mim-only", "echocare"))
    fig2 = eff.plot_ablation(g, [SEG, LMK], title="t")
    assert len(fig2.axes[0].patches) == 4  # 2 applications x 2 variants
    page = eff.plot_run_summary(["profile smoke"], eff.verdict_rows(p, [SEG, LMK]), ["note"],
                                title="t")
    assert any("note" in t.get_text() for t in page.texts)
    # an application measured at 100% only (the cpu profile's GAN) still gets its panel
    single = eff.curve_summary(eff.primary_values(_rows(SEG, {"echocare": [0.5, 0.6]},
                                                         fractions=(1.0,)), [SEG]))
    fig3 = eff.plot_label_efficiency(single, [SEG], title="t")
    ax3 = [a for a in fig3.axes if a.get_visible() and a.lines][0]
    assert list(ax3.lines[0].get_xdata()) == [100.0]
    assert any("100% of the labels only" in t.get_text() for t in ax3.texts)  # and says why
    assert not any(a.texts for a in fig.axes)  # curves with several fractions carry no note
    plt.close("all")


def test_retention_is_below_100_when_fewer_labels_do_worse_whatever_the_direction():
    assert eff.retention(SEG, 40.0, 80.0) == pytest.approx(50.0)  # DSC halved
    assert eff.retention(LMK, 12.0, 6.0) == pytest.approx(50.0)  # MRE doubled
    assert eff.retention(LMK, 5.0, 6.0) > 100  # fewer labels, smaller error: better
    assert np.isnan(eff.retention(SEG, float("nan"), 80.0))
    assert np.isnan(eff.retention(LMK, 0.0, 6.0))
