"""The EchoAtlas curation pipeline on Dask: every file in, a curated index out.

Steps (paper section 2), one function each, usable on one file or a Dask collection:

1. ingest (:mod:`.ingest`): decode images, DICOMs, cine and video frames, archives, safely;
2. de-identify (:mod:`.deid`): crop to the ultrasound field of view, removing the scanner's
   surround and burnt-in text (DICOM tags are dropped: no tag is carried into the index);
3. quality control (:mod:`.qc`): reject empty images and those with < 1,000 valid pixels,
   flag non-ultrasound images;
4. hashes: exact (decoded pixels) and perceptual (pHash) (:mod:`.dedup`);
5. de-duplicate across the whole collection (exact, and near duplicates at >= 95% pHash
   similarity with a sub-quadratic index) in the driver, where the hashes fit easily;
6. label from per-image annotations where the inputs have them, else from the data set's
   manifest entry (ontology ids), and write the curated index
   (Parquet) with provenance per image, the report (every input accounted for), the funnel,
   and contact sheets of up to 100 images per class for manual inspection.

Per-file work runs on a Dask cluster (a LocalCluster by default, or any scheduler address);
the same code path handles 100 files and 10 million. The input layout is one folder per
data set under the root (``root/<data set>/...``), as the manifests name them.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .dedup import deduplicate, phash, pixel_hash
from .deid import crop_to_fov, find_fov
from .ingest import Limits, ingest_file, walk_inputs
from .qc import quality_check

STEPS = ("ingest", "deid", "qc", "dedup", "kept")


@dataclass
class CurationResult:
    """What a run produced: the curated index, the full report, the funnel, where files went."""

    index: pd.DataFrame
    report: pd.DataFrame
    funnel: pd.DataFrame
    out_dir: Path
    contact_sheets: list[Path] = field(default_factory=list)


def image_id(source_path: str, frame) -> str:
    """Stable id of one image or frame: sha1 of its source path and frame number."""
    key = f"{source_path}#{'' if frame is None else int(frame)}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def process_file(path: str, *, root: str, out_images: str | None,
                 limits: Limits = Limits()) -> list[dict]:
    """Steps 1-4 for one input file: one row per decoded image or frame, or per rejection."""
    rel = os.path.relpath(path, root)
    dataset = Path(rel).parts[0] if len(Path(rel).parts) > 1 else ""
    rows = []
    for item in ingest_file(path, limits, root=root):
        src = os.path.relpath(item.source_path.split("!", 1)[0], root) + (
            "!" + item.source_path.split("!", 1)[1] if "!" in item.source_path else "")
        row = {"image_id": image_id(src, item.frame), "input_file": rel, "source_path": src,
               "dataset": dataset, "frame": item.frame, "format": item.format,
               "device": str(item.meta.get("Manufacturer", "") or ""),
               "status": item.status, "step": "ingest" if not item.kept else "",
               "reason": item.reason}
        if not item.kept:
            rows.append(row)
            continue
        img = item.image
        fov = find_fov(img)
        if fov.kind == "none":
            row.update(status="rejected", step="deid",
                       reason="no ultrasound field of view found (blank or near-blank screen)")
            rows.append(row)
            continue
        crop = crop_to_fov(img, fov)
        ok, reason, flags = quality_check(crop)
        row.update(fov_kind=fov.kind, fov_bbox=",".join(map(str, fov.bbox)),
                   height=int(crop.shape[0]), width=int(crop.shape[1]),
                   n_pixels=int(crop.shape[0] * crop.shape[1]),
                   non_us_flag=bool(flags.get("non_ultrasound", False)),
                   qc_note=str(flags.get("reason", "")))
        if not ok:
            row.update(status="rejected", step="qc", reason=reason)
            rows.append(row)
            continue
        row.update(pixel_hash=pixel_hash(crop), phash=f"{phash(crop):016x}")
        if out_images:
            name = f"{row['image_id']}.png"
            Image.fromarray(crop).save(os.path.join(out_images, name))
            row["image_path"] = f"images/{name}"
        rows.append(row)
    return rows


def _client(scheduler: str | None, n_workers: int):
    """A Dask client: None -> LocalCluster(n_workers), "synchronous" -> None (in process),
    anything else -> the scheduler at that address."""
    if scheduler == "synchronous":
        return None
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40)
    return Client(cluster)


def run_steps(files: list[str], *, root: str, out_images: str | None, limits: Limits,
              scheduler: str | None = None, n_workers: int = 2,
              progress: bool = True) -> pd.DataFrame:
    """Steps 1-4 over all files on Dask; returns one row per image, frame or rejection."""
    import dask.bag as db

    if not files:
        return pd.DataFrame()
    # Small partitions balance uneven files (a cine yields 12 frames, a PNG one) across
    # workers; a few thousand at most keeps the scheduler's overhead negligible.
    nparts = max(1, min(len(files), max(4 * n_workers, len(files) // 4), 4096))
    bag = db.from_sequence(files, npartitions=nparts).map(
        process_file, root=root, out_images=out_images, limits=limits).flatten()
    client = _client(scheduler, n_workers)
    try:
        if client is None:
            if progress:
                from dask.diagnostics import ProgressBar

                with ProgressBar():
                    rows = bag.compute(scheduler="synchronous")
            else:
                rows = bag.compute(scheduler="synchronous")
        else:
            future = client.compute(bag)
            if progress:
                from dask.distributed import progress as dprogress

                dprogress(future, notebook=False)
            rows = future.result()
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None and scheduler is None:
                cluster.close()
    return pd.DataFrame(rows)


def _apply_dedup(df: pd.DataFrame, similarity: float) -> pd.DataFrame:
    kept = df[df["status"] == "kept"]
    if kept.empty:
        return df
    recs = kept[["image_id", "pixel_hash", "phash", "n_pixels"]].rename(columns={"image_id": "id"})
    dd = deduplicate(recs, similarity=similarity).set_index("id")
    df = df.copy()
    for iid, d in dd[~dd["keep"]].iterrows():
        sel = df["image_id"] == iid
        what = "exact duplicate" if d["status"] == "exact_dup" else "near duplicate"
        sim = "" if pd.isna(d["similarity"]) else f", pHash similarity {d['similarity']:.3f}"
        rep = df.loc[df["image_id"] == d["duplicate_of"], "source_path"].iloc[0]
        df.loc[sel, ["status", "step", "reason"]] = [
            "rejected", "dedup", f"{what} of {rep}{sim}"]
        df.loc[sel, "duplicate_of"] = d["duplicate_of"]
    return df


ANNOTATIONS_FILE = "annotations.csv"


def read_annotations(path: "str | os.PathLike") -> pd.DataFrame:
    """Per-image labels: a CSV with ``path`` (the input file relative to the root, as the
    report's ``source_path`` has it, e.g. ``set/a.png`` or ``set/b.zip!c.png``) and
    ``structures`` (';'-separated names, synonyms or ids of the ontology).

    Returns ``path``, ``ontology_ids`` and ``unmapped`` (names the ontology does not hold,
    kept so that nothing an annotator wrote disappears silently)."""
    from ..ontology import load_ontology, map_structures

    path = Path(path)
    try:
        ann = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise ValueError(f"cannot read the annotations {path}: {e}. It must be a CSV with "
                         "columns 'path' and 'structures'.") from e
    missing = {"path", "structures"} - set(ann.columns)
    if missing:
        raise ValueError(f"annotations {path} lack column(s) {sorted(missing)}; expected "
                         "'path' (input file relative to the root) and 'structures' "
                         "(';'-separated ontology names)")
    dup = ann["path"][ann["path"].duplicated()]
    if len(dup):
        raise ValueError(f"annotations {path} list {len(dup)} path(s) twice, e.g. "
                         f"{dup.iloc[0]!r}: keep one row per file")
    onto = load_ontology()
    mapped = [map_structures(onto, [n.strip() for n in s.split(";") if n.strip()])
              for s in ann["structures"]]
    return pd.DataFrame({"path": ann["path"], "ontology_ids": [";".join(i) for i, _ in mapped],
                         "unmapped": [";".join(u) for _, u in mapped]})


def label(df: pd.DataFrame, manifest: pd.DataFrame | None,
          annotations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Step 5: each image gets ontology ids, country and device. The ids come from the
    per-image ``annotations`` (:func:`read_annotations`) where they name the image's input
    file, else from its data set's manifest entry (columns ``dataset``, ``ontology_ids``
    (';'-separated), optional ``country``, ``device``); ``label_source`` says which. A data
    set's entry lists every organ of the data set, so it labels each image with organs the
    image may not show: per-image annotations are what the hierarchical loss should learn
    from. Images with neither keep empty labels, and the report says so."""
    df = df.copy()
    for col in ("ontology_ids", "country", "label_source", "unmapped_structures"):
        df[col] = ""
    hit = pd.Series(False, index=df.index)
    if annotations is not None and len(annotations):
        a = annotations.set_index("path")
        hit = df["source_path"].isin(a.index)
        stray = a.index[~a.index.isin(df["source_path"])]
        if len(stray):  # a typo in a path must not pass silently
            warnings.warn(f"{len(stray)} of {len(a)} annotation rows name no input file, e.g. "
                          f"{list(stray[:3])}: paths are relative to the input root, with "
                          "'archive.zip!member' for archive members", stacklevel=2)
        df.loc[hit, "ontology_ids"] = df.loc[hit, "source_path"].map(a["ontology_ids"])
        df.loc[hit, "label_source"] = "image annotation"
        df.loc[hit, "unmapped_structures"] = df.loc[hit, "source_path"].map(a["unmapped"])
    if manifest is None or manifest.empty:
        unknown = (~hit) & (df["status"] == "kept")
        df.loc[unknown, "qc_note"] = "no label: neither an annotation nor a manifest entry"
        return df
    m = manifest.set_index("dataset")
    known = df["dataset"].isin(m.index)
    by_set = known & ~hit
    df.loc[by_set, "ontology_ids"] = df.loc[by_set, "dataset"].map(m["ontology_ids"]).fillna("")
    df.loc[by_set & (df["ontology_ids"] != ""), "label_source"] = "data-set manifest"
    if "country" in m:
        df.loc[known, "country"] = df.loc[known, "dataset"].map(m["country"]).fillna("")
    if "device" in m:
        dev = df.loc[known, "dataset"].map(m["device"]).fillna("")
        empty = df.loc[known, "device"].fillna("") == ""
        df.loc[known & empty.reindex(df.index, fill_value=False), "device"] = dev[empty]
    unknown = (~known) & (~hit) & (df["status"] == "kept")
    df.loc[unknown, "qc_note"] = "no manifest entry for this data set: unlabelled"
    return df


def funnel(report: pd.DataFrame) -> pd.DataFrame:
    """Counts per step: inputs, rejected at each step (with reasons), kept."""
    rows = [{"step": "input files", "count": report["input_file"].nunique(), "reason": ""},
            {"step": "decoded images and frames", "reason": "",
             "count": int((report["step"] != "ingest").sum())}]
    for step in ("ingest", "deid", "qc", "dedup"):
        rej = report[(report["status"] == "rejected") & (report["step"] == step)]
        reasons = rej["reason"].str.replace(r"(of|:|\().*$", "", regex=True).str.strip()
        for reason, n in reasons.value_counts().items():
            rows.append({"step": f"rejected at {step}", "count": int(n), "reason": reason})
    rows.append({"step": "curated images", "count": int((report["status"] == "kept").sum()),
                 "reason": ""})
    return pd.DataFrame(rows)


def contact_sheets(index: pd.DataFrame, out_dir: Path, onto, *, per_class: int = 100,
                   seed: int = 0, thumb: int = 64) -> list[Path]:
    """Step 5's manual check: up to ``per_class`` random images per meta-object class,
    tiled into one PNG per class (``contact_sheets/<class>.png``)."""
    out = out_dir / "contact_sheets"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_meta: dict[str, list[str]] = {}
    for path, ids in zip(index["image_path"], index["ontology_ids"]):
        metas = {a for i in str(ids).split(";") if i
                 for a in onto.ancestors(i, include_self=True) if onto.node(a).level == "meta"}
        for m in metas:
            per_meta.setdefault(m, []).append(path)
    written = []
    for meta, paths in sorted(per_meta.items()):
        pick = [paths[i] for i in sorted(rng.choice(len(paths), min(per_class, len(paths)),
                                                    replace=False))]
        cols = int(np.ceil(np.sqrt(len(pick))))
        rows = int(np.ceil(len(pick) / cols))
        sheet = Image.new("RGB", (cols * thumb, rows * thumb))
        for k, p in enumerate(pick):
            im = Image.open(out_dir / p).convert("RGB")
            im.thumbnail((thumb, thumb))
            sheet.paste(im, ((k % cols) * thumb, (k // cols) * thumb))
        path = out / f"{meta}.png"
        sheet.save(path)
        written.append(path)
    return written


def curate(root: "str | os.PathLike", out_dir: "str | os.PathLike", *,
           manifest: pd.DataFrame | None = None, annotations: pd.DataFrame | None = None,
           scheduler: str | None = None,
           n_workers: int = 2, similarity: float = 0.95, limits: Limits = Limits(),
           contact_per_class: int = 100, progress: bool = True) -> CurationResult:
    """Run the whole pipeline on every file under ``root``; write under ``out_dir``:
    ``images/`` (curated, de-identified crops), ``curated_index.parquet``, ``report.csv``
    (every input file and frame, kept or rejected with its step and reason),
    ``funnel.csv`` and ``contact_sheets/``.

    Labels: per-image ``annotations`` (default: ``root/annotations.csv`` when it exists, read
    with :func:`read_annotations`) where they name a file, else the data set's ``manifest``
    entry. The annotations file itself is an input like any other and is reported as
    rejected at ingest (not an image)."""
    from ..ontology import load_ontology

    root, out_dir = Path(root).resolve(), Path(out_dir).resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"input root {str(root)!r} does not exist: point it at the "
                                 "folder holding one sub-folder per data set")
    if out_dir == root or root in out_dir.parents:
        raise ValueError(f"out_dir {out_dir} must not be inside the input root {root}")
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    files = walk_inputs(root)
    report = run_steps(files, root=str(root), out_images=str(out_dir / "images"),
                       limits=limits, scheduler=scheduler, n_workers=n_workers,
                       progress=progress)
    for col in ("duplicate_of", "qc_note", "pixel_hash", "phash", "image_path", "fov_kind"):
        if col not in report:
            report[col] = ""
    report = _apply_dedup(report, similarity)
    if annotations is None and (root / ANNOTATIONS_FILE).is_file():
        annotations = read_annotations(root / ANNOTATIONS_FILE)
    report = label(report, manifest, annotations)
    missing = set(os.path.relpath(f, root) for f in files) - set(report["input_file"])
    if missing:  # ingest guarantees a row per file; a gap here is a bug worth stopping for
        raise RuntimeError(f"{len(missing)} input files are missing from the report, e.g. "
                           f"{sorted(missing)[:3]}")
    # images of rejected rows were written by the workers: remove them, keep the index exact
    for p in report.loc[(report["status"] == "rejected") & (report["image_path"].fillna("") != ""),
                        "image_path"]:
        (out_dir / p).unlink(missing_ok=True)
    report.loc[report["status"] == "rejected", "image_path"] = ""
    index = report[report["status"] == "kept"].drop(columns=["status", "step", "reason"])
    index = index.sort_values("image_id").reset_index(drop=True)
    onto = load_ontology()
    index["ontology_path"] = index["ontology_ids"].map(
        lambda s: ";".join("/".join(onto.path(i)) for i in str(s).split(";") if i))
    index.to_parquet(out_dir / "curated_index.parquet", index=False)
    report = report.sort_values(["input_file", "frame"], na_position="first").reset_index(drop=True)
    report.to_csv(out_dir / "report.csv", index=False)
    fun = funnel(report)
    fun.to_csv(out_dir / "funnel.csv", index=False)
    sheets = contact_sheets(index, out_dir, onto, per_class=contact_per_class) if len(index) else []
    return CurationResult(index, report, fun, out_dir, sheets)


# ----------------------------------------------------------------------------- notebook helpers
PYDICOM_SET = "PYDICOM-US"


def default_curation_dir(profile_name: str) -> Path:
    """Where a profile's curation run lives: ``build/<profile>/curation`` (raw inputs of the
    simulated corpus under ``raw/``, outputs under ``curated/``). The pretraining notebook
    reads ``curated/curated_index.parquet`` from here when it exists."""
    from ..paths import build_dir

    return build_dir() / profile_name / "curation"


def manifest_from_datasets(datasets: pd.DataFrame) -> pd.DataFrame:
    """Curation manifest from Table 5: data set folder name -> ontology ids, country."""
    ids = datasets["ontology_paths"].fillna("").map(
        lambda s: ";".join(p.strip().split("/")[-1] for p in s.split(";") if p.strip()))
    return pd.DataFrame({"dataset": datasets["dataset"], "ontology_ids": ids,
                         "country": datasets.get("countries", "")})


def prepare_inputs(run, *, seed: int = 0) -> tuple[Path, pd.DataFrame, str]:
    """The folder to curate, its manifest, and a label saying what it is.

    With a data directory (real data): the data sets under it, labelled by Table 5.
    Without: the simulator's multi-source raw corpus at the profile's size, plus the real
    ultrasound DICOMs of the pydicom-data package as one more data set."""
    import shutil

    from ..examples import PYDICOM_US_FILES, _find
    from ..manifests import load_datasets
    from ..sim.corpus import corpus_manifest, write_corpus

    if run.data_dir is not None:
        return run.data_dir, manifest_from_datasets(load_datasets()), "real data sets"
    p = run.profile
    raw = default_curation_dir(p.name) / "raw"
    if raw.exists():
        shutil.rmtree(raw)
    write_corpus(raw, n_sources=p.corpus_sources, images_per_source=p.corpus_images_per_source,
                 size=max(p.image_size, 96), seed=seed)
    real = raw / PYDICOM_SET
    real.mkdir()
    for name, _ in PYDICOM_US_FILES:
        shutil.copy(_find(name), real / name)
    manifest = pd.concat([corpus_manifest(raw), pd.DataFrame([{
        "dataset": PYDICOM_SET, "country": "", "device": "", "format": "dcm",
        "ontology_ids": ""}])], ignore_index=True)
    label = (f"simulated corpus ({p.corpus_sources} sources x {p.corpus_images_per_source} files)"
             f" + {len(PYDICOM_US_FILES)} real DICOMs")
    return raw, manifest, label


def score_against_truth(report: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """How the pipeline treated each kind of file the simulator planted (rows: truth kind,
    columns: outcome). Cine files count once per sampled frame."""
    rep = report.copy()
    rep["outcome"] = np.where(rep["status"] == "kept",
                              np.where(rep.get("non_us_flag", False).fillna(False).astype(bool),
                                       "kept, flagged non-US", "kept"),
                              "rejected at " + rep["step"].astype(str))
    merged = rep.merge(truth[["path", "kind"]], left_on="source_path", right_on="path",
                       how="left")
    extra = np.where(merged["dataset"] == PYDICOM_SET, "real DICOM (pydicom-data)",
                     "not a corpus image (truth.csv, sources.json, annotations.csv)")
    merged["kind"] = merged["kind"].fillna(pd.Series(extra, index=merged.index))
    return pd.crosstab(merged["kind"], merged["outcome"])


def deid_examples(root: Path, report: pd.DataFrame, n: int = 4, seed: int = 0):
    """(title, raw screen, curated crop) for a few kept images: half simulated, half real."""
    from .ingest import ingest_file

    kept = report[(report["status"] == "kept") & (report["format"].isin(["png", "jpeg", "dicom"]))]
    real = kept[kept["dataset"] == PYDICOM_SET].head(n // 2)
    sim = kept[kept["dataset"] != PYDICOM_SET].sample(
        min(n - len(real), len(kept)), random_state=seed)
    out = []
    for _, row in pd.concat([sim, real]).iterrows():
        items = [it for it in ingest_file(root / row["input_file"], root=root)
                 if it.kept and (it.frame == row["frame"] or pd.isna(row["frame"]))]
        if not items:
            continue
        raw = items[0].image
        crop = crop_to_fov(raw, find_fov(raw))
        out.append((f"{row['dataset']}", raw, crop))
    return out[:n]
