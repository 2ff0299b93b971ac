"""Label efficiency (Fig. 8a-j), the pretraining ablation (Fig. 8k) and the run's verdicts.

Everything here is computed from the tidy result rows of :func:`trials.run_trials` (never from
typed-in numbers):

* :func:`primary_values` keeps each application's primary metric in the paper's display units;
* :func:`curve_summary` gives mean ± std per (application, encoder, train fraction), and
  :func:`plot_label_efficiency` draws one panel per application with an error band per encoder;
* :func:`ablation_gains` is Fig. 8k's quantity: each pretrained encoder's change of the primary
  metric relative to the natural-image baseline, in percent of the baseline, signed so that
  positive means better (the paper's "improved performance (%)"; relative, because the ten
  primary metrics have different units: %, pixels, EF points, NIQE), paired by trial (the same
  trial index shares its seed, validation split and training subset across encoders);
* :func:`matching_fraction` answers the paper's label-efficiency claim ("EchoCare can outperform
  other models using only 60% of the labelled data") for this run's rows;
* :func:`verdict_rows` is the one-line-per-application summary of where pretraining helped.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..session import OKABE_ITO
from . import stats
from .plots import MODEL_COLOURS, _order
from .registry import Task

#: primary metric -> (display scale, unit), as notebooks 03-09 and the paper show them
DISPLAY = {"AUC": (100, "%"), "ACC": (100, "%"), "DSC": (100, "%"), "mDSC": (100, "%"),
           "MRE": (1, "px"), "MAE": (1, "EF points"), "NIQE": (1, ""), "BLEU-4": (100, "%")}
PANEL_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _display(metric: str) -> tuple[float, str]:
    return DISPLAY.get(metric, (1, ""))


def primary_values(rows: pd.DataFrame, tasks: list[Task]) -> pd.DataFrame:
    """One row per (task, model, train fraction, trial): the primary metric in display units,
    with its unit and direction."""
    parts = []
    for t in tasks:
        d = rows[(rows.task == t.name) & (rows.metric == t.primary)].copy()
        if d.empty:
            continue
        scale, unit = _display(t.primary)
        d["value"] = d["value"].astype(float) * scale
        d["train_fraction"] = d["train_fraction"].astype(float)
        d["unit"], d["higher_is_better"] = unit, t.better(t.primary)
        parts.append(d[["task", "model", "train_fraction", "trial", "metric", "value", "unit",
                        "higher_is_better"]])
    if not parts:
        raise ValueError("no primary-metric rows for the given tasks: run their trials first")
    return pd.concat(parts, ignore_index=True)


def curve_summary(prim: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof 1; NaN for one trial) and trial count per (task, model, fraction)."""
    g = prim.groupby(["task", "metric", "unit", "model", "train_fraction"], sort=False)["value"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    return out.sort_values(["task", "model", "train_fraction"], kind="stable").reset_index(drop=True)


def plot_label_efficiency(summary: pd.DataFrame, tasks: list[Task], *, title: str,
                          ncols: int = 5):
    """One panel per application (Fig. 8a-j): the primary metric against the percentage of
    training labels, a line per encoder with a ± 1 std band over trials."""
    tasks = [t for t in tasks if t.name in set(summary.task)]
    ncols = min(ncols, len(tasks))
    nrows = -(-len(tasks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 2.9 * nrows), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for k, (ax, t) in enumerate(zip(axes.flat, tasks)):
        d = summary[summary.task == t.name]
        for m in _order(d.model.unique()):
            c = d[d.model == m].sort_values("train_fraction")
            x = 100 * c.train_fraction.to_numpy()
            y, s = c["mean"].to_numpy(), c["std"].fillna(0).to_numpy()
            colour = MODEL_COLOURS.get(m, OKABE_ITO[6])
            ax.plot(x, y, marker="o", ms=4, lw=1.5, color=colour, label=m)
            ax.fill_between(x, y - s, y + s, color=colour, alpha=0.18, lw=0)
        unit = d.unit.iloc[0]
        arrow = "↑" if t.better(t.primary) else "↓"
        ax.set_ylabel(f"{t.primary} ({unit}) {arrow}" if unit else f"{t.primary} {arrow}")
        ax.set_xlabel("training labels (%)")
        ax.set_xlim(0, 105)
        ax.set_title(f"{PANEL_LETTERS[k]}. {t.title}", fontsize=9, loc="left", wrap=True)
        ax.grid(alpha=0.3)
        if d.train_fraction.nunique() == 1:  # e.g. the GAN on the cpu profile: say why
            ax.text(0.03, 0.04, f"run at {100 * d.train_fraction.iloc[0]:.0f}% of the labels "
                    "only\n(the profile's fractions for this task)", transform=ax.transAxes,
                    fontsize=7, color="0.3", va="bottom")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def ablation_gains(prim: pd.DataFrame, *, baseline: str = "imagenet",
                   models: tuple[str, ...] = ("mim-only", "echocare"),
                   fraction: float = 1.0) -> pd.DataFrame:
    """Per (task, model, trial): the change of the primary metric over ``baseline`` in the
    same trial, in percent of the baseline's value, positive = better (NaN where the baseline
    is ~0, as an untrained smoke-profile model's can be)."""
    d = prim[np.isclose(prim.train_fraction, fraction)]
    out = []
    for task, g in d.groupby("task", sort=False):
        base = g[g.model == baseline].set_index("trial")["value"]
        if base.empty:
            continue
        higher = bool(g.higher_is_better.iloc[0])
        for m in models:
            v = g[g.model == m].set_index("trial")["value"]
            common = v.index.intersection(base.index)
            for t in common:
                b = base[t]
                # a baseline at ~0 (an untrained smoke-profile decoder) has no relative change
                gain = (v[t] - b) / abs(b) * 100 if abs(b) > 1e-6 else np.nan
                out.append({"task": task, "model": m, "trial": int(t), "value": v[t],
                            "baseline": b, "gain_pct": gain if higher else -gain})
    return pd.DataFrame(out, columns=["task", "model", "trial", "value", "baseline", "gain_pct"])


def plot_ablation(gains: pd.DataFrame, tasks: list[Task], *, baseline: str = "imagenet",
                  title: str):
    """Fig. 8k: per application, each variant's gain over the natural-image baseline (mean ±
    std over trials as bars, trials as points); positive = better than the baseline."""
    tasks = [t for t in tasks if t.name in set(gains.task)]
    models = [m for m in _order(gains.model.unique())]
    fig, ax = plt.subplots(figsize=(max(7.0, 1.05 * len(tasks) + 2), 4.2))
    width = 0.8 / max(1, len(models))
    rng = np.random.default_rng(0)
    for j, m in enumerate(models):
        means, stds, xs = [], [], []
        for i, t in enumerate(tasks):
            v = gains[(gains.task == t.name) & (gains.model == m)].gain_pct.dropna().to_numpy()
            x = i + (j - (len(models) - 1) / 2) * width
            xs.append(x)
            means.append(v.mean() if len(v) else np.nan)
            stds.append(v.std(ddof=1) if len(v) > 1 else 0.0)
            ax.scatter(x + rng.uniform(-width / 6, width / 6, len(v)), v, s=8, color="black",
                       zorder=3)
        ax.bar(xs, means, width * 0.92, yerr=stds, capsize=2, label=m, alpha=0.8,
               color=MODEL_COLOURS.get(m, OKABE_ITO[6]), error_kw={"lw": 0.8})
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(tasks)),
                  [f"{t.name.replace('_', ' ')}\n({t.primary})" for t in tasks],
                  rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(f"change over {baseline} (% of its value, + = better)")
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def matching_fraction(summary: pd.DataFrame, tasks: list[Task], model: str = "echocare"
                      ) -> pd.DataFrame:
    """Per application: the smallest train fraction at which ``model``'s mean is at least as
    good as every other encoder's mean with all the labels (NaN: at no fraction)."""
    out = []
    for t in tasks:
        d = summary[summary.task == t.name]
        full = d[np.isclose(d.train_fraction, 1.0) & (d.model != model)]
        mine = d[d.model == model].sort_values("train_fraction")
        if full.empty or mine.empty:
            continue
        higher = t.better(t.primary)
        target = full["mean"].max() if higher else full["mean"].min()
        ok = mine[mine["mean"] >= target] if higher else mine[mine["mean"] <= target]
        out.append({"task": t.name, "metric": t.primary,
                    "best other at 100%": float(target),
                    "best other": full.loc[full["mean"].idxmax() if higher
                                           else full["mean"].idxmin(), "model"],
                    f"{model} fraction matching it":
                        float(ok.train_fraction.iloc[0]) if len(ok) else np.nan})
    return pd.DataFrame(out)


def retention(task: Task, low: float, full: float) -> float:
    """Share (%) of its full-label primary metric a model keeps with fewer labels, 100 = no
    loss and below 100 always worse: low / full for a higher-is-better metric, full / low for
    an error (MRE, MAE), so that shares of different applications can be compared (a median
    of raw ratios would count a doubled error as a gain)."""
    if not (np.isfinite(low) and np.isfinite(full)) or low <= 0 or full <= 0:
        return float("nan")
    return float(100 * (low / full if task.better(task.primary) else full / low))


def verdict_rows(prim: pd.DataFrame, tasks: list[Task], model: str = "echocare",
                 fraction: float = 1.0, alpha: float = 0.05) -> pd.DataFrame:
    """One row per application: ``model`` against the best other encoder on the primary
    metric at ``fraction`` (mean ± std, the two-sided Wilcoxon and Welch p of the pair from
    :func:`stats.compare_to_best`), and a verdict: "helped" (ahead, p < alpha), "ahead, not
    significant", "behind, not significant" or "hurt" (behind, p < alpha). The p used is
    Wilcoxon's when it is defined, else Welch's."""
    d = prim[np.isclose(prim.train_fraction, fraction)]
    out = []
    for t in tasks:
        g = d[d.task == t.name]
        if model not in set(g.model) or g.model.nunique() < 2:
            continue
        higher = t.better(t.primary)
        means = g.groupby("model")["value"].mean()
        others = means.drop(model)
        rival = others.idxmax() if higher else others.idxmin()
        pair = g[g.model.isin([model, rival])]
        cmp = stats.compare_to_best(pair, "model", "trial", "value", higher_is_better=higher)
        row = cmp.iloc[0] if len(cmp) else None
        w_p = float(row.w_p) if row is not None else np.nan
        t_p = float(row.t_p) if row is not None else np.nan
        p = w_p if np.isfinite(w_p) else t_p
        ahead = means[model] > means[rival] if higher else means[model] < means[rival]
        sig = np.isfinite(p) and p < alpha
        verdict = ("helped" if ahead and sig else "hurt" if sig else
                   "ahead, not significant" if ahead else "behind, not significant")
        sd = g.groupby("model")["value"].std()
        unit = g.unit.iloc[0]
        out.append({"application": t.name, "metric": f"{t.primary} ({unit})" if unit else t.primary,
                    "direction": "higher is better" if higher else "lower is better",
                    model: f"{means[model]:.2f} ± {sd[model]:.2f}",
                    "best other": rival, "best other value": f"{means[rival]:.2f} ± {sd[rival]:.2f}",
                    "trials": int(g[g.model == model].trial.nunique()),
                    "Wilcoxon p": w_p, "Welch p": t_p, "verdict": verdict})
    return pd.DataFrame(out)


VERDICT_COLOURS = {"helped": OKABE_ITO[4], "hurt": OKABE_ITO[5],
                   "ahead, not significant": "#cfe3f2", "behind, not significant": "#f6dccb"}


def plot_run_summary(header: list[str], verdicts: pd.DataFrame, notes: list[str], *,
                     title: str):
    """A one-page summary: the run's settings (``header`` lines), the verdict of every
    application (:func:`verdict_rows`, verdict cells coloured), and ``notes`` lines (written by
    the caller from the results: label efficiency, ablation) right below the table."""
    fig = plt.figure(figsize=(11.7, 8.3))  # A4 landscape
    fig.text(0.03, 0.97, title, fontsize=13, weight="bold", va="top")
    fig.text(0.03, 0.925, "\n".join(header), fontsize=8.5, va="top", family="monospace")
    top = 0.925 - 0.024 * (len(header) + 1)
    bottom = top  # where the notes start: below the table once it is drawn
    if len(verdicts):
        ax = fig.add_axes((0.03, 0.05, 0.94, top - 0.05))
        ax.axis("off")
        cols = [c for c in verdicts.columns if c not in ("Welch p",)]
        cells = [[(f"{v:.3g}" if isinstance(v, float) else str(v)) for v in r]
                 for r in verdicts[cols].itertuples(index=False)]
        tab = ax.table(cellText=cells, colLabels=cols, loc="upper left", cellLoc="left")
        tab.auto_set_font_size(False)
        tab.set_fontsize(8)
        tab.auto_set_column_width(list(range(len(cols))))
        k = cols.index("verdict")
        for i, r in enumerate(cells, start=1):
            tab[i, k].set_facecolor(VERDICT_COLOURS.get(r[k], "white"))
        for j in range(len(cols)):
            tab[0, j].set_text_props(weight="bold")
        fig.canvas.draw()  # the table's real extent, to put the notes right under it
        box = tab.get_window_extent(fig.canvas.get_renderer()).transformed(
            fig.transFigure.inverted())
        bottom = box.y0 - 0.03
    fig.text(0.03, bottom, "\n".join(notes), fontsize=9, va="top", linespacing=1.6)
    return fig
