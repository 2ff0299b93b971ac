"""One way to save a figure or a table: under the paper's label, with provenance, indexed.

Every output the compendium regenerates is declared once in
``data_manifests/figure_catalogue.csv`` (label, kind, paper reference, owning notebook,
title). :func:`save_figure` and :func:`save_table` refuse labels that are not declared, or
that belong to another notebook, so each paper figure is produced by exactly one notebook.
Each save writes the files and updates ``index.csv`` in the output folder: the list of what
this output folder holds, which notebook made it, with which profile, seed and commit.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .paths import manifests_dir
from .session import Run, current_run

CATALOGUE_FILE = "figure_catalogue.csv"
INDEX_FILE = "index.csv"
CATALOGUE_COLUMNS = ["label", "kind", "paper_ref", "notebook", "title"]
INDEX_COLUMNS = [
    "label", "kind", "paper_ref", "title", "notebook", "files",
    "profile", "data_source", "seed", "commit", "echocare_lib",
]
KINDS = ("figure", "table")


@dataclass(frozen=True)
class CatalogueEntry:
    label: str
    kind: str
    paper_ref: str
    notebook: str
    title: str


def load_catalogue(path: "str | os.PathLike | None" = None) -> pd.DataFrame:
    """The declared outputs, validated: unique labels, known kinds, a notebook for each."""
    path = Path(path) if path else manifests_dir() / CATALOGUE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Figure catalogue {str(path)!r} is missing; it ships with the repo.")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in CATALOGUE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {CATALOGUE_COLUMNS}")
    dup = df.loc[df["label"].duplicated(), "label"].tolist()
    if dup:
        raise ValueError(f"{path}: duplicate label(s) {dup}; each output is declared once")
    bad_kind = df.loc[~df["kind"].isin(KINDS), "label"].tolist()
    if bad_kind:
        raise ValueError(f"{path}: label(s) {bad_kind} have a kind other than {KINDS}")
    return df[CATALOGUE_COLUMNS]


def catalogue_entry(label: str) -> CatalogueEntry:
    df = load_catalogue()
    row = df[df["label"] == label]
    if row.empty:
        raise KeyError(
            f"Output label {label!r} is not declared in data_manifests/{CATALOGUE_FILE}. "
            "Add a row (label, kind, paper_ref, notebook, title) so the figure index knows "
            "which notebook owns it."
        )
    return CatalogueEntry(**row.iloc[0].to_dict())


def _check_owner(entry: CatalogueEntry, kind: str, run: Run) -> None:
    if entry.kind != kind:
        raise ValueError(f"{entry.label!r} is declared as a {entry.kind}, not a {kind}")
    if run.notebook != "interactive" and entry.notebook != run.notebook:
        raise ValueError(
            f"{entry.label!r} belongs to notebook {entry.notebook!r} in the catalogue, but "
            f"{run.notebook!r} tried to save it. Each output has exactly one owner notebook."
        )


def stamp_text(run: Run, data_source: str | None = None) -> str:
    """The visible provenance line drawn on every figure (the commit is in the metadata)."""
    return (f"EchoCare compendium {run.version} | profile: {run.profile.name} | "
            f"data: {data_source or run.data_source} | seed {run.seed}")


def read_index(out_dir: "str | os.PathLike") -> pd.DataFrame:
    path = Path(out_dir) / INDEX_FILE
    if not path.is_file():
        return pd.DataFrame(columns=INDEX_COLUMNS)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _update_index(out_dir: Path, row: dict) -> None:
    """Replace the label's row and rewrite the index atomically (sorted, so diffs are stable),
    under a file lock: notebooks running side by side (``run --jobs``) share the index."""
    from filelock import FileLock

    with FileLock(str(out_dir / ".index.lock"), timeout=120):
        _rewrite_index(out_dir, row)


def _rewrite_index(out_dir: Path, row: dict) -> None:
    df = read_index(out_dir)
    df = df[df["label"] != row["label"]]
    df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    df = df.reindex(columns=INDEX_COLUMNS).sort_values("label", kind="stable")
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".index-", suffix=".csv")
    with os.fdopen(fd, "w", newline="") as fh:
        df.to_csv(fh, index=False, quoting=csv.QUOTE_MINIMAL)
    os.replace(tmp, out_dir / INDEX_FILE)


def _provenance(run: Run, data_source: str | None) -> dict[str, str]:
    prov = run.provenance()
    if data_source:
        prov["data_source"] = data_source
    return prov


def _index_row(entry: CatalogueEntry, files: list[Path], prov: dict, out_dir: Path) -> dict:
    return {
        "label": entry.label, "kind": entry.kind, "paper_ref": entry.paper_ref,
        "title": entry.title, "files": ";".join(str(f.relative_to(out_dir)) for f in files),
        **prov,
    }


def save_figure(fig, label: str, *, run: Run | None = None, data_source: str | None = None,
                stamp: bool = True) -> list[Path]:
    """Save ``fig`` as ``<label>.png`` and ``<label>.pdf`` in the run's output folder.

    The PNG and PDF carry the provenance in their metadata; a small grey line on the figure
    says which profile, data source and seed made it. ``data_source`` overrides the run's
    (``simulator`` or ``real``) for outputs drawn from something else, such as the paper's
    own numbers or bundled files. Files are byte-for-byte reproducible (no creation dates).
    """
    run = run or current_run()
    entry = catalogue_entry(label)
    _check_owner(entry, "figure", run)
    out_dir = run.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    prov = _provenance(run, data_source)
    if stamp:
        # Below the axes (va="top" at y=0): the tight bounding box grows to include it,
        # so it never covers tick labels.
        fig.text(0.995, -0.005, stamp_text(run, data_source), ha="right", va="top",
                 fontsize=6.5, color="0.4")
    meta = json.dumps({**prov, "label": label, "paper_ref": entry.paper_ref})
    png, pdf = out_dir / f"{label}.png", out_dir / f"{label}.pdf"
    fig.savefig(png, metadata={"Title": entry.title, "Description": meta,
                               "Software": f"echocare_lib {run.version}"})
    fig.savefig(pdf, metadata={"Title": entry.title, "Subject": meta,
                               "Creator": f"echocare_lib {run.version}", "CreationDate": None})
    _update_index(out_dir, _index_row(entry, [png, pdf], prov, out_dir))
    return [png, pdf]


def save_table(df: pd.DataFrame, label: str, *, run: Run | None = None,
               data_source: str | None = None, index: bool = False,
               float_format: str = "{:.4g}") -> list[Path]:
    """Save a table as CSV (full precision), Markdown and LaTeX (rounded for reading).

    The Markdown and LaTeX files carry the title and the provenance line as a caption;
    ``data_source`` works as in :func:`save_figure`.
    """
    run = run or current_run()
    entry = catalogue_entry(label)
    _check_owner(entry, "table", run)
    out_dir = run.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, tex_path = (out_dir / f"{label}.{ext}" for ext in ("csv", "md", "tex"))
    df.to_csv(csv_path, index=index)
    shown = df.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else float_format.format(v))
    caption = f"{entry.paper_ref + ': ' if entry.paper_ref else ''}{entry.title}"
    stamp = stamp_text(run, data_source)
    md = [f"**{caption}**", "", shown.to_markdown(index=index), "",
          f"_{stamp}; commit {run.commit}_", ""]
    md_path.write_text("\n".join(md))
    tex_path.write_text(shown.to_latex(index=index, caption=f"{caption} ({stamp})",
                                       label=f"tab:{label}", escape=True))
    files = [csv_path, md_path, tex_path]
    _update_index(out_dir, _index_row(entry, files, _provenance(run, data_source), out_dir))
    return files


def catalogue_status(out_dir: "str | os.PathLike") -> pd.DataFrame:
    """The catalogue joined with an output folder's index: what exists, from which run."""
    cat = load_catalogue()
    idx = read_index(out_dir)[["label", "profile", "seed", "commit"]]
    df = cat.merge(idx, on="label", how="left")
    df["status"] = df["profile"].map(lambda p: "written" if isinstance(p, str) and p else "not yet")
    return df.fillna("")
