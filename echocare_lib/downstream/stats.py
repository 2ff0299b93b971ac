"""Statistical analysis of repeated trials (paper section 4.4), as tidy tables.

The paper reports every metric as mean ± standard deviation over 20 independent trials, runs
two-sample t-tests between the best model and every other model (stars: * p < 0.05,
** p < 0.01, *** p < 0.001, two-sided), and in Fig. 5 uses the two-sided Wilcoxon signed-rank
test between EchoCare and the second-best model. Input is one tidy row per (model, trial)::

    model      trial  dsc
    EchoCare   0      0.851
    USFM       0      0.829
    ...

>>> summarise(df, by="model", value="dsc")          # model, n, mean, std, text ("85.10 ± 0.35")
>>> compare_to_best(df, "model", "trial", "dsc")    # one row per other model: t-test, Wilcoxon

The tests are scipy's (``scipy.stats.ttest_ind``, ``scipy.stats.wilcoxon``). Written here by
hand: the pairing of trials, the choice of the best model, and the degenerate cases that scipy
answers misleadingly (scipy 1.17 returns p = 1.0 for an all-zero or one-element Wilcoxon
sample and p = 0.0 for a t-test between two constant samples): those get p = NaN and a reason.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = ["summarise", "compare_to_best", "stars"]


def stars(p: float) -> str:
    """Significance stars of section 4.4: '***' p<0.001, '**' p<0.01, '*' p<0.05, else 'ns'.

    A NaN p-value (no test was possible) gives 'n/a', not 'ns': no test is not a negative test.
    """
    if p is None or np.isnan(p):
        return "n/a"
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a p-value lies in [0, 1], got {p}")
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "ns"


def _columns_present(df: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the table; it has {list(df.columns)}")


def summarise(df: pd.DataFrame, by: str | Sequence[str], value: str, *, scale: float = 1.0,
              digits: int = 2) -> pd.DataFrame:
    """Mean ± standard deviation (ddof=1, the sample SD) of ``value`` per group.

    Returns a tidy table: the ``by`` columns, ``n``, ``mean``, ``std`` and ``text``, the paper's
    "mean ± std" string after multiplying by ``scale`` (e.g. 100 for percentages) and rounding
    to ``digits``. A group of one trial has std NaN (the sample SD is undefined) and its text
    shows "± n/a". Rows with a missing ``value`` raise: nothing is silently dropped.
    """
    by = [by] if isinstance(by, str) else list(by)
    _columns_present(df, [*by, value])
    if df[value].isna().any():
        bad = df.loc[df[value].isna(), by].drop_duplicates().to_dict("records")
        raise ValueError(f"{value!r} has missing values in groups {bad}; fix or drop them first")
    out = (df.groupby(by, sort=True)[value]
           .agg(n="count", mean="mean", std=lambda s: s.std(ddof=1))
           .reset_index())

    def fmt(row) -> str:
        sd = "n/a" if math.isnan(row["std"]) else f"{row['std'] * scale:.{digits}f}"
        return f"{row['mean'] * scale:.{digits}f} ± {sd}"

    out["text"] = out.apply(fmt, axis=1) if len(out) else pd.Series(dtype=str)
    return out


def _t_test(a: np.ndarray, b: np.ndarray, equal_var: bool) -> tuple[float, float, str]:
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan, f"t-test needs >= 2 trials per model (got {len(a)}, {len(b)})"
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return math.nan, math.nan, "t-test undefined: both models are constant over trials"
    res = sps.ttest_ind(a, b, equal_var=equal_var)
    return float(res.statistic), float(res.pvalue), ""


def _wilcoxon(d: np.ndarray) -> tuple[float, float, str]:
    if len(d) < 2:
        return math.nan, math.nan, f"Wilcoxon needs >= 2 paired trials (got {len(d)})"
    if np.all(d == 0):
        return math.nan, math.nan, "Wilcoxon undefined: all paired differences are zero"
    res = sps.wilcoxon(d, alternative="two-sided")
    return float(res.statistic), float(res.pvalue), ""


def compare_to_best(df: pd.DataFrame, model_col: str, trial_col: str, value: str,
                    higher_is_better: bool = True, *, equal_var: bool = False) -> pd.DataFrame:
    """The best model (by mean ``value``) against every other model, as section 4.4 does.

    For each other model, one row with:

    * ``t_stat``, ``t_p``, ``t_stars``: two-sample t-test (``scipy.stats.ttest_ind``) of the
      best model's trials against that model's. The paper says only "two-sample t-test" (its
      software, MedCalc, offers Student's test and Welch's correction); the default here is
      Welch's (``equal_var=False``) because the models' trial SDs differ up to about 5-fold in
      the paper's tables, and Welch's test keeps its error rate under unequal variances while
      losing almost nothing when they are equal. With equal trial counts (20 and 20) the t
      statistic is the same as Student's; only the degrees of freedom, hence p, differ a
      little. Pass ``equal_var=True`` for Student's test.
    * ``w_stat``, ``w_p``, ``w_stars``: two-sided Wilcoxon signed-rank test
      (``scipy.stats.wilcoxon``, default zero handling and method) on the paired differences
      best - other, paired by ``trial_col`` (the trial index / seed), so row order does not
      matter. Trials run for only one of the two models are left out of the pairing and
      counted in ``n_unpaired``.
    * ``rank`` (2 = second best, the model Fig. 5 tests), ``n_best``, ``n_other``, ``n_pairs``,
      means, ``diff`` (best - other) and ``note`` (why a p-value is NaN, if one is).

    Degenerate input never raises: fewer than 2 trials, two constant models, or all-zero
    paired differences give p = NaN, stars 'n/a' and a reason in ``note``. A (model, trial)
    pair listed twice raises, since the pairing would be ambiguous. Ties for best mean go to
    the first model in sorted order, and the note says so.
    """
    _columns_present(df, [model_col, trial_col, value])
    if df[value].isna().any():
        raise ValueError(f"{value!r} has missing values; fix or drop them first")
    dup = df.duplicated([model_col, trial_col], keep=False)
    if dup.any():
        pairs = df.loc[dup, [model_col, trial_col]].drop_duplicates().to_dict("records")
        raise ValueError(f"(model, trial) listed more than once: {pairs[:5]}; each model needs "
                         "one row per trial for the paired test")
    means = df.groupby(model_col, sort=True)[value].mean()
    if len(means) < 2:
        raise ValueError(f"need at least 2 models in {model_col!r}, got {list(means.index)}")
    order = means.sort_values(ascending=not higher_is_better, kind="stable")
    best = order.index[0]
    tie_note = (f"tie for best mean with {list(order.index[order == order.iloc[0]][1:])}; "
                f"{best!r} chosen (first in sorted order)" if (order == order.iloc[0]).sum() > 1
                else "")
    best_trials = df[df[model_col] == best].set_index(trial_col)[value]

    rows = []
    for rank, other in enumerate(order.index[1:], start=2):
        other_trials = df[df[model_col] == other].set_index(trial_col)[value]
        a, b = best_trials.to_numpy(float), other_trials.to_numpy(float)
        t_stat, t_p, t_note = _t_test(a, b, equal_var)
        common = best_trials.index.intersection(other_trials.index).sort_values()
        d = (best_trials.loc[common] - other_trials.loc[common]).to_numpy(float)
        w_stat, w_p, w_note = _wilcoxon(d)
        n_unpaired = len(best_trials) + len(other_trials) - 2 * len(common)
        note = "; ".join(x for x in (tie_note, t_note, w_note,
                                     f"{n_unpaired} trial(s) without a partner left out of the "
                                     "Wilcoxon test" if n_unpaired else "") if x)
        rows.append({
            "best": best, "model": other, "rank": rank,
            "n_best": len(a), "n_other": len(b), "n_pairs": len(common),
            "n_unpaired": n_unpaired, "mean_best": float(a.mean()),
            "mean_other": float(b.mean()), "diff": float(a.mean() - b.mean()),
            "t_stat": t_stat, "t_p": t_p, "t_stars": stars(t_p),
            "w_stat": w_stat, "w_p": w_p, "w_stars": stars(w_p), "note": note,
        })
    return pd.DataFrame(rows)


def verdicts(summary: pd.DataFrame, tests: pd.DataFrame, tasks, model: str = "echocare",
             metrics: str = "primary") -> list[str]:
    """One sentence per (task, metric): does ``model`` beat each other encoder, with the
    means and the two-sided Wilcoxon p of the test between the two (``tests`` from
    :func:`compare_to_best` via ``plots.box_with_stars``; it compares the best encoder with
    each other one, so a pair without the best in it is said to be untested). Written from
    the rows, whatever the answer is. ``metrics``: ``"primary"`` or ``"all"``."""
    by_name = {t.name: t for t in tasks}
    lines = []
    for (task, metric), g in summary.groupby(["task", "metric"], sort=False):
        t_ = by_name[task]
        if metrics == "primary" and metric != t_.primary:
            continue
        means = g.set_index("model")["mean"]
        if model not in means:
            continue
        higher = t_.better(metric)
        parts = []
        for other in [m for m in means.index if m != model]:
            t = tests[(tests.task == task) & (tests.metric == metric) &
                      (((tests.best == model) & (tests.model == other)) |
                       ((tests.best == other) & (tests.model == model)))]
            p = t.w_p.iloc[0] if len(t) else float("nan")
            ahead = means[model] > means[other] if higher else means[model] < means[other]
            test = (f"Wilcoxon p = {p:.3g}" if np.isfinite(p) else
                    "not tested: the tests pair the best encoder with each other one")
            parts.append(f"{'beats' if ahead else 'does not beat'} {other} "
                         f"({means[model]:.2f} vs {means[other]:.2f}, {test})")
        lines.append(f"{task} [{metric}, {'higher' if higher else 'lower'} is better]: "
                     f"{model} " + "; ".join(parts))
    return lines
