"""Figures 1-3 of the paper from the manifests (the paper's numbers) and a curation run
(this run's numbers), always labelled which is which."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.patches import Polygon as PolygonPatch

from ..session import OKABE_ITO

REGION_COLOURS = dict(zip(
    ["head", "chest", "abdomen", "limbs", "back", "fetus", "dorsum", "pelvis", "other"],
    OKABE_ITO + ("#999999",)))


def meta_counts_from_paths(paths: pd.Series, weights: pd.Series | None, onto) -> pd.Series:
    """Images per meta-object type: each row's ';'-separated ontology ids or paths count once
    for every meta type they reach (an image containing that object type, as in Fig. 1)."""
    weights = weights if weights is not None else pd.Series(1, index=paths.index)
    out: dict[str, float] = {}
    for cell, w in zip(paths.fillna(""), weights.fillna(0)):
        metas = set()
        for item in str(cell).split(";"):
            node = item.strip().split("/")[-1]
            if not node:
                continue
            metas |= {a for a in onto.ancestors(node, include_self=True)
                      if onto.node(a).level == "meta"}
        for m in metas:
            out[m] = out.get(m, 0) + float(w)
    return pd.Series(out, dtype=float)


def fig1_ontology(paper: pd.Series, run: pd.Series, onto, *, run_label: str):
    """Meta-object types grouped by clinical region, with image counts: the paper's (Table 5
    manifests) beside this run's curated corpus."""
    metas = [n.id for n in onto.nodes if n.level == "meta" and (paper.get(n.id, 0) or
                                                                run.get(n.id, 0))]
    metas.sort(key=lambda m: (list(REGION_COLOURS).index(onto.path(m)[0]), -paper.get(m, 0)))
    y = np.arange(len(metas))[::-1]
    colours = [REGION_COLOURS[onto.path(m)[0]] for m in metas]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 0.2 * len(metas) + 1.8), sharey=True,
                                   gridspec_kw={"width_ratios": [1.2, 1]})
    pv = np.array([paper.get(m, 0) for m in metas], float)
    has = pv > 0  # a log axis cannot show zero: types the paper's tables never name get no bar
    ax0.barh(y[has], pv[has], color=[c for c, h in zip(colours, has) if h])
    ax0.set_xscale("log")
    ax0.set_xlabel("images (paper: Table 5 manifests, log scale)")
    ax1.barh(y, [run.get(m, 0) for m in metas], color=colours)
    ax1.set_xlabel(f"curated images ({run_label})")
    ax0.set_yticks(y, [onto.node(m).name for m in metas], fontsize=7)
    ax0.set_title("Paper (Table 5)", fontsize=10)
    ax1.set_title("This run", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in REGION_COLOURS.values()]
    ax1.legend(handles, list(REGION_COLOURS), title="clinical region", fontsize=7,
               title_fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
               frameon=False)  # outside the axes: it never hides a bar
    fig.suptitle(f"Anatomy ontology: {onto.n_regions} regions, {onto.n_meta} meta-object types, "
                 f"{onto.n_anatomical} anatomical types; images per meta-object type", fontsize=10)
    fig.tight_layout()
    return fig


def fig2_world_map(counts: pd.DataFrame, shapes: dict, *, source_note: str):
    """Countries shaded by the number of EchoAtlas data sets from them (Table 5)."""
    n = dict(zip(counts["country"], counts["n_datasets"]))
    cmap = plt.get_cmap("cividis_r")
    norm = Normalize(vmin=0, vmax=max(n.values()) if n else 1)
    fig, ax = plt.subplots(figsize=(11, 5.4))
    for country, polys in shapes.items():
        k = n.get(country, 0)
        face = cmap(norm(k)) if k else "#eeeeee"
        for ring in polys:
            ax.add_patch(PolygonPatch(ring, closed=True, facecolor=face, edgecolor="white",
                                      linewidth=0.3))
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 85)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, shrink=0.6, label="data sets from this country")
    top = counts.sort_values("n_datasets", ascending=False).head(6)
    ax.set_title(f"{len(n)} source countries of the EchoAtlas data sets ({source_note}); most: "
                 + ", ".join(f"{c} {k}" for c, k in zip(top['country'], top['n_datasets'])),
                 fontsize=9)
    fig.tight_layout()
    return fig


def fig3_curation(paper_funnel: pd.DataFrame, run_funnel: pd.DataFrame, examples, *,
                  run_label: str):
    """(a) the paper's data-set funnel, (b) this run's image funnel with rejection reasons,
    (c) examples before and after de-identification (field-of-view crop)."""
    n_ex = len(examples)
    fig = plt.figure(figsize=(13, 8.0))
    gs = fig.add_gridspec(1, max(n_ex, 2) * 2, wspace=0.08, left=0.17, right=0.98, top=0.95,
                          bottom=0.56)
    gb = fig.add_gridspec(1, max(n_ex, 1) * 2, wspace=0.04, left=0.01, right=0.99, top=0.44,
                          bottom=0.02)
    ax = fig.add_subplot(gs[0, : max(n_ex, 2)])
    ax.barh(np.arange(len(paper_funnel))[::-1], paper_funnel["count"], color=OKABE_ITO[0])
    ax.set_yticks(np.arange(len(paper_funnel))[::-1],
                  [s[:48] for s in paper_funnel["stage"]], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(50, 2e5)
    ax.set_xlabel("data sets (paper, section 2; log scale)")
    for yy, c in zip(np.arange(len(paper_funnel))[::-1], paper_funnel["count"]):
        ax.text(c, yy, f" {c:,}", va="center", fontsize=7)
    ax.set_title("a  Paper: data-set funnel", loc="left", fontsize=10)
    ax = fig.add_subplot(gs[0, max(n_ex, 2) + 1:])
    labels = [f"{s}{': ' + r if r else ''}"[:55] for s, r in zip(run_funnel["step"],
                                                              run_funnel["reason"])]
    colours = [OKABE_ITO[2] if s.startswith(("input", "decoded", "curated")) else OKABE_ITO[5]
               for s in run_funnel["step"]]
    yy = np.arange(len(run_funnel))[::-1]
    ax.barh(yy, run_funnel["count"], color=colours)
    ax.set_yticks(yy, labels, fontsize=6.5)
    for y_, c in zip(yy, run_funnel["count"]):
        ax.text(c, y_, f" {c}", va="center", fontsize=7)
    ax.set_xlabel(f"files / images ({run_label})")
    ax.set_title("b  This run: files and images per step, rejections with reasons", loc="left",
                 fontsize=10)
    for k, (title, before, after) in enumerate(examples):
        a = fig.add_subplot(gb[0, 2 * k])
        a.imshow(before, cmap="gray")
        a.set_title(f"{title}\nraw", fontsize=7)
        a.set_axis_off()
        b = fig.add_subplot(gb[0, 2 * k + 1])
        b.imshow(after, cmap="gray")
        b.set_title("field of view only", fontsize=7)
        b.set_axis_off()
    fig.text(0.01, 0.48, "c  Before and after de-identification (field-of-view crop removes "
             "the surround and burnt-in text)", fontsize=10)
    return fig
