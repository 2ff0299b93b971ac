"""The paper's result tables (Tables 3 and 4) as data: the numbers to compare our runs with.

These are the EchoCare technical report's own numbers, transcribed by hand from its text
(``/work/shared/paper/echocare_techreport.txt``: Table 3 "Performance of foundation models for
ultrasound report generation on the USData Liver dataset", Table 4 "Transfer learning performance
of different foundation models on 10 clinical applications") into
``data_manifests/paper_results.csv``. Nothing here is computed, re-run or rounded: ``mean`` and
``std`` are the printed "mean±std" (two decimals, the paper's units: percent for percentages,
pixels for the landmark distance, EF points for the EF MAE, raw scores for NIQE/BRISQUE/PIQE/FID).

One row per (table, application, metric, model), in the paper's row and column order (Table 3
first). Columns:

- ``table``: "Table 3" or "Table 4";
- ``application``: our task name (:data:`echocare_lib.downstream.registry.TASKS`);
  ``application_paper``: the paper's row group as printed ("Node segmentation", "BI-BADS
  classification", ...);
- ``metric_paper``: the metric as printed, cleaned of OCR/LaTeX noise ("BELU-1" -> "BLEU-1",
  ``$mDSC\\ (\\uparrow)$`` -> "mDSC"); ``metric``: the registry's name for it (a name in
  ``get_task(application).metrics``): mAP@box -> box-AP, CTR -> P_CTR, F1-score -> F1,
  FID -> FD, CE@ACC/PPR/SEN/F1 -> ACC/precision/recall/F1, and the landmark row printed "MAE"
  -> MRE (the mean landmark distance; the prose calls it "average MSE");
- ``higher_is_better``: the paper's arrow; "(†)" is the OCR of "↑" and is read so, except on
  the landmark "MAE" row, an error (lower is better); every such reading is in ``note``;
- ``model`` and ``model_group``: the column and its header group ("SOTA w/o FM" for the first,
  task-specific column, which changes per block: SwinUNETR, ViT, Faster R-CNN, ViTPose, EchoNet,
  EnlightenGAN; then "Ultrasound domain" RadImageNet/UltraSAM, "Image-Text domain"
  CLIP/BiomedCLIP, "ImageNet domain" DINO/SimMIM, "Ultrasound domain" USFM/EchoCare, as the
  paper's headers group them; Table 3 has no "SOTA w/o FM" column);
- ``note``: transcription remarks (garbled arrows, OCR fixes, the paper's typos).

Things in the paper itself, kept as printed and flagged in ``note``:

- Table 4's image-enhancement rows repeat, for RadImageNet..SimMIM (and USFM in PIQE), the
  landmark rows' cells (NIQE = landmark MAE, BRISQUE = SDR@2, PIQE = SDR@4, FID = SDR@10):
  an apparent copy-paste in the paper;
- Table 3's METEOR: EchoCare (51.62) is below SimMIM, DINO and BiomedCLIP although the prose
  says EchoCare is best on all ten metrics. Every Table 4 row has EchoCare best.
- The prose's margins over the second-best model do not always match Table 4 (Sec. 4.5.2 says
  NSD +2.26, vessel mDSC +1.36 and mNSD +1.03, organ mNSD +4.36; the table gives +2.43, +1.38,
  +2.47, +4.48); the table is transcribed, not the prose. Sec. 4.5.1 calls the thyroid-nodule
  ACC row an AUC.

:func:`load_paper_results` validates the file; :func:`paper_table` formats it like the paper.
"""
from __future__ import annotations

import os

import pandas as pd

from .manifests import ManifestError, _file, _problem_message, _read_raw

RESULTS_FILE = "paper_results.csv"
COLUMNS = ("table", "application", "application_paper", "metric_paper", "metric",
           "higher_is_better", "model", "model_group", "mean", "std", "note")
TABLES = ("Table 3", "Table 4")
#: our task names of the eleven applications of Tables 3-4, in the paper's order
APPLICATIONS = ("thyroid_nodule_seg", "vessel_seg", "abdomen_organ_seg",
                "thyroid_nodule_cine_cls", "breast_birads", "liver_lesion_ceus",
                "fetal_4ch_detection", "fetal_brain_landmarks", "echo_ef", "enhancement",
                "liver_report")
MODEL_GROUPS = ("SOTA w/o FM", "Ultrasound domain", "Image-Text domain", "ImageNet domain")
KEY = ("table", "application", "metric", "model")


def _problems(df: pd.DataFrame, file) -> list[str]:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        return [f"{file.name}: missing required column(s) {missing}; the header must hold "
                f"{list(COLUMNS)}"]
    out: list[str] = []
    seen: dict[tuple, int] = {}
    for i, row in df.iterrows():
        where = (f"{file.name} line {i + 2} ({row['table']}, {row['application']}, "
                 f"{row['metric']}, {row['model']})")
        if row["table"] not in TABLES:
            out.append(f"{where}: table {row['table']!r} is not one of {TABLES}")
        if row["application"] not in APPLICATIONS:
            out.append(f"{where}: unknown application {row['application']!r}; use one of "
                       f"{APPLICATIONS}")
        if row["model_group"] not in MODEL_GROUPS:
            out.append(f"{where}: model_group {row['model_group']!r} is not one of "
                       f"{MODEL_GROUPS}")
        if row["higher_is_better"] not in ("True", "False"):
            out.append(f"{where}: higher_is_better {row['higher_is_better']!r} is not True/False")
        for col in ("metric_paper", "metric", "model"):
            if not row[col].strip():
                out.append(f"{where}: {col} is empty")
        for col in ("mean", "std"):
            try:
                v = float(row[col])
            except ValueError:
                v = float("nan")
            if v != v:
                out.append(f"{where}: {col} {row[col]!r} is not a number (write the paper's "
                           "value, e.g. 83.17)")
            elif col == "std" and v < 0:
                out.append(f"{where}: std {v} is negative")
        k = tuple(row[c] for c in KEY)
        if k in seen:
            out.append(f"{where}: duplicate (table, application, metric, model) (also on line "
                       f"{seen[k] + 2})")
        seen.setdefault(k, i)
    return out


def load_paper_results(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's Tables 3-4, one row per (table, application, metric, model), validated.

    ``mean``/``std`` are floats, ``higher_is_better`` is bool, ``note`` is '' where none.
    Raises :class:`~echocare_lib.manifests.ManifestError` naming the line of each problem.
    """
    file = _file(RESULTS_FILE, path)
    df = _read_raw(file)
    problems = _problems(df, file)
    if problems:
        raise ManifestError(_problem_message(problems))
    df["mean"] = df["mean"].astype(float)
    df["std"] = df["std"].astype(float)
    df["higher_is_better"] = df["higher_is_better"] == "True"
    return df


def paper_table(application: str | None = None,
                results: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's "mean ± std" cells as strings: metric rows, model columns (paper order).

    With ``application`` (one of :data:`APPLICATIONS`) the index is the registry metric name;
    without, every application, indexed by (table, application, metric), the task-specific
    ("SOTA w/o FM") columns first, with '' where a row has no such column (the first column
    differs per block of Table 4; Table 3 has none).
    """
    df = load_paper_results() if results is None else results
    if application is not None:
        if application not in APPLICATIONS:
            raise ValueError(f"unknown application {application!r}; the paper's tables cover "
                             f"{APPLICATIONS}")
        df = df[df["application"] == application]
    df = df.assign(cell=[f"{m:.2f} ± {s:.2f}" for m, s in zip(df["mean"], df["std"])])
    index = ["metric"] if application is not None else ["table", "application", "metric"]
    rows = list(dict.fromkeys(map(tuple, df[index].to_numpy())))
    # the task-specific "SOTA w/o FM" columns first, then the foundation models
    sota = df["model_group"] == "SOTA w/o FM"
    models = list(dict.fromkeys([*df.loc[sota, "model"], *df.loc[~sota, "model"]]))
    out = df.pivot(index=index, columns="model", values="cell")
    out = out.reindex(pd.MultiIndex.from_tuples(rows, names=index) if len(index) > 1
                      else pd.Index([r[0] for r in rows], name=index[0]))[models]
    out.columns.name = "model"
    return out.fillna("")


#: the encoders of our zoo that stand for a column of the paper (the rest have no offline
#: weights here: RadImageNet, UltraSAM, CLIP, BiomedCLIP, DINO, USFM and the task-specific
#: "SOTA w/o FM" models)
ZOO_FOR_PAPER_MODEL = {"EchoCare": "echocare", "SimMIM": "mim-only"}


def compare_with_paper(ours: pd.DataFrame, *, profile: str, data_source: str,
                       results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 4 (and Table 3 for reports) with this run's numbers beside the paper's.

    ``ours``: this run's summaries, columns ``application``, ``metric``, ``model`` (our zoo
    name) and ``text`` ("mean ± std" in the paper's units). One row per (application, metric)
    of the paper, with the paper's EchoCare and best other model, then one column per encoder
    of this run (``"<model> (this run)"``), and the paper's models this run has no encoder for
    (no offline weights; SimMIM's counterpart is our ``mim-only`` encoder when it is in the
    zoo), named, so no cell is silently blank. A paper row this run did not produce says so."""
    paper = load_paper_results() if results is None else results
    run_models = sorted(ours["model"].unique()) if len(ours) else []
    rows = []
    for (table, app, metric), g in paper.groupby(["table", "application", "metric"],
                                                 sort=False):
        higher = bool(g["higher_is_better"].iloc[0])
        ec = g[g.model == "EchoCare"]
        others = g[g.model != "EchoCare"]
        best = others.loc[others["mean"].idxmax() if higher else others["mean"].idxmin()]
        row = {"table": table, "application": app, "metric": metric,
               "direction": "higher is better" if higher else "lower is better",
               "EchoCare (paper)": (f"{ec['mean'].iloc[0]:.2f} ± {ec['std'].iloc[0]:.2f}"
                                    if len(ec) else "not in the paper's table"),
               "best other model (paper)": f"{best.model} {best['mean']:.2f} ± {best['std']:.2f}"}
        mine = ours[(ours.application == app) & (ours.metric == metric)]
        for m in run_models:
            hit = mine[mine.model == m]
            row[f"{m} (this run)"] = (hit["text"].iloc[0] if len(hit)
                                      else f"no summary in this run ({profile})")
        missing = [p for p in g.model if ZOO_FOR_PAPER_MODEL.get(p) not in run_models]
        row["paper models not run here (no offline weights)"] = ", ".join(missing) or "none"
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(profile=profile, data_source=data_source)
    return out
