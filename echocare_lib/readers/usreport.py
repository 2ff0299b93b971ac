"""USData / USreport (PLA General Hospital): two ultrasound images per examination and the
expert report; liver (the paper's Table 3), breast and thyroid subsets.

Layout (shared/DATASETS.md, row USData / USreport, confidence *partial*). What it rests on:

* the authors' repository LijunRio/Ultrasound-Report-Generation (``KMVE_RG/config.py``,
  ``KMVE_RG/modules/datasets.py``): one annotation JSON per organ, read with
  ``encoding="utf_8_sig"``, a dict with ``"train"``, ``"val"`` and ``"test"`` lists of
  ``{"uid", "image_path": [two paths], "finding": report text, "labels"}``; the two images are
  opened as ``os.path.join(image_dir, image_path[k])``; the configuration names the JSON
  ``new_Thyroid2.json`` next to the image folder ``Thyroid_report`` in one data folder;
* third-party descriptions of the unpacked release (seen in public code that reads it, not the
  authors'): ``new_Liver2.json``, ``new_Mammary2.json``, ``new_Thyroid2.json`` beside
  ``Liver_report/``, ``Mammary_report/``, ``Thyroid_report/``; ``image_path`` holds bare file
  names (``<uid>_<k>.jpeg``); records may also carry a ``"split"`` field.

So the layout read here is (``<R>``: ``Liver``, ``Mammary`` for breast, ``Thyroid``)::

    new_<R>2.json            {"train": [...], "val": [...], "test": [...]}
    <R>_report/<image_path>  the images each record names

Accepted variants, found in the root or up to two folders below it: the JSON named
``new_<R>2.json``, ``new_<R>.json``, ``<R>.json`` or ``<organ>.json`` (any case), or
``annotation.json`` inside a folder named ``<R>``, ``<organ>``, ``<R>_report`` or
``<R>_dataset``; a top-level list of records each with a ``"split"`` field. Several matching
JSON files -> :class:`DataFormatError` (keep one). The image folder is the first that exists of
``<R>_report``, ``<organ>_report``, ``<R>``, ``<organ>``, ``images`` beside the JSON, then in
the root; an image path that is not found there is also tried relative to the JSON's folder and
the root (paths that include the folder name); backslashes are read as ``/``.

Errors: a JSON that does not parse, is not UTF-8, or lacks the split lists ->
:class:`DataFormatError` naming the file and the problem; no image folder and the records'
images not found beside the JSON -> :class:`DataNotFoundError` naming the folder to create
(``<R>_report/`` beside the JSON); a missing data set folder -> :class:`DataNotFoundError`
(``read_task`` names ``<data_dir>/USreport``).

Text: the release's reports are **Chinese**. ``entities`` (the 14 key entities of the CE
metric, :func:`echocare_lib.sim.tasks.report.entity_vector`) rest on English keyword rules, so
for a report with CJK characters ``entities`` is None and ``meta['language']`` is ``"zh"``;
the clinical-efficacy metrics need English reports (or a translation) -- the NLG metrics do
not. An English report gets ``entities`` = ``{entity: 0/1}`` from those rules and
``meta['language']`` ``"en"``.

Patient identity: the release gives no patient id; ``case_id`` and ``patient_id`` are the
``uid`` (one examination; a patient examined twice would be two ids). Split: the list a record
is in (``train``/``val``/``test``; ``meta['split']``); a record whose own ``"split"`` field
disagrees is noted. ``labels`` (cluster labels of the authors' knowledge distiller, not a
diagnosis) is kept in ``meta['labels']``.

Sample: ``image`` float32 [1, H, W] (the first image), ``images`` float32 [2, 1, H, W] (both;
when the second differs in size it is resized to the first's with area interpolation --
:func:`resize_area`, exact pixel-area averaging -- and ``meta['second_image_resized_from']``
keeps its native [H, W]), ``report`` (the ``finding`` text), ``entities``, ``meta``. Every
record and every image file in the image folder is accounted for: a record without readable
images, with a missing field or a repeated uid is skipped with its reason, and so are its
images; an image no record names, or a third image of a record, is listed as skipped.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ._common import (Collector, DataFormatError, DataNotFoundError, ReadResult, check_root,
                      image_error, image_files, load_gray, natural_key)

TASK = "liver_report"
#: organ -> the name the release uses in file names
RELEASE_NAMES = {"liver": "Liver", "breast": "Mammary", "thyroid": "Thyroid"}
_ORGAN_ALIASES = {"liver": "liver", "breast": "breast", "mammary": "breast",
                  "thyroid": "thyroid"}
SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                  "validation": "val", "test": "test", "testing": "test"}
REQUIRED = (
    "new_Liver2.json (UTF-8, optional BOM): {\"train\": [...], \"val\": [...], \"test\": [...]}, "
    "each record {\"uid\", \"image_path\": [2 paths], \"finding\": report text, \"labels\"}",
    "Liver_report/<image_path>: the two images of each record",
    "(breast: new_Mammary2.json + Mammary_report/; thyroid: new_Thyroid2.json + "
    "Thyroid_report/)",
)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


def dataset_name(organ: str) -> str:
    return f"USData {organ.capitalize()} (USreport)"


def language(text: str) -> str:
    """``"zh"`` when ``text`` holds CJK characters (ideographs or CJK punctuation), else
    ``"en"``."""
    return "zh" if _CJK.search(text) else "en"


def entities_for(text: str) -> dict[str, int] | None:
    """``{entity: 0/1}`` by the CE keyword rules for an English report; None for a report in
    Chinese (the rules are English)."""
    if language(text) != "en":
        return None
    from ..sim.tasks.report import ENTITIES, entity_vector

    return {e: int(v) for e, v in zip(ENTITIES, entity_vector(text))}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def find_annotation(root: Path, organ: str, max_depth: int = 2) -> list[Path]:
    """The annotation JSON files of ``organ`` under ``root`` (see the module docstring)."""
    r = _norm(RELEASE_NAMES[organ])
    o = _norm(organ)
    stems = {f"new{r}2", f"new{r}", r, o}
    folders = {r, o, f"{r}report", f"{o}report", f"{r}dataset", f"{o}dataset"}
    out, frontier = [], [root]
    for _ in range(max_depth + 1):
        for d in frontier:
            for p in d.iterdir():
                if p.is_file() and p.suffix.lower() == ".json":
                    s = _norm(p.stem)
                    if s in stems or (s == "annotation" and _norm(d.name) in folders):
                        out.append(p)
        frontier = [c for d in frontier for c in d.iterdir() if c.is_dir()]
    return sorted(out, key=lambda p: natural_key(p.as_posix()))


def _image_dir(json_path: Path, root: Path, organ: str) -> Path | None:
    r = RELEASE_NAMES[organ]
    wanted = [_norm(n) for n in (f"{r}_report", f"{organ}_report", r, organ, "images")]
    for base in dict.fromkeys((json_path.parent, root)):
        dirs = {_norm(c.name): c for c in sorted(base.iterdir()) if c.is_dir()}
        for w in wanted:
            if w in dirs:
                return dirs[w]
    return None


def load_annotation(path: Path, dataset: str) -> list[tuple[str, int, dict]]:
    """``[(split, index in its list, record), ...]`` of an annotation JSON; a clear
    :class:`DataFormatError` naming the file and the problem otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{dataset}: {path} is not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{dataset}: {path} is not valid JSON: {exc.msg} at line "
                              f"{exc.lineno}, column {exc.colno}") from None
    except OSError as exc:
        raise DataFormatError(f"{dataset}: cannot read {path} ({exc})") from None
    out = []
    if isinstance(data, dict):
        keys = {k: _SPLIT_ALIASES.get(str(k).lower()) for k in data}
        found = [k for k, v in keys.items() if v]
        if not found:
            raise DataFormatError(f"{dataset}: {path} has no 'train', 'val' or 'test' list; "
                                  f"its top-level keys are {sorted(map(str, data))[:10]}")
        for k in found:
            if not isinstance(data[k], list):
                raise DataFormatError(f"{dataset}: {path}: '{k}' is a "
                                      f"{type(data[k]).__name__}, expected a list of records")
        order = {s: i for i, s in enumerate(SPLITS)}
        for k in sorted(found, key=lambda k: order[keys[k]]):
            out += [(keys[k], i, rec) for i, rec in enumerate(data[k])]
    elif isinstance(data, list):
        for i, rec in enumerate(data):
            s = rec.get("split") if isinstance(rec, dict) else None
            split = _SPLIT_ALIASES.get(str(s).lower()) if s is not None else None
            out.append((split or f"?{s}", i, rec))
    else:
        raise DataFormatError(f"{dataset}: {path} holds a JSON {type(data).__name__}, expected "
                              "an object with 'train', 'val' and 'test' lists")
    return out


def _area_weights(n: int, m: int) -> np.ndarray:
    """[m, n] matrix: output cell i averages the input cells it overlaps on [i n/m, (i+1) n/m),
    each weighted by the length of the overlap."""
    edges = np.arange(m + 1) * (n / m)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n)[None, :]
    w = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return w / w.sum(axis=1, keepdims=True)


def resize_area(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 [H, W] -> ``shape`` by exact pixel-area averaging (each output pixel is the
    area-weighted mean of the input pixels its footprint covers; upsampling replicates)."""
    a = np.asarray(a, np.float64)
    out = _area_weights(a.shape[0], shape[0]) @ a @ _area_weights(a.shape[1], shape[1]).T
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def read_usreport(root, *, organ: str = "liver", limit: int | None = None,
                  strict: bool = False) -> ReadResult:
    """Read the USData / USreport subset of ``organ`` (``liver``, ``breast`` / ``mammary``,
    ``thyroid``) under ``root`` (see the module docstring); ``limit``: at most that many
    samples; ``strict``: raise :class:`DataFormatError` at the first problem instead of
    skipping and reporting."""
    key = _ORGAN_ALIASES.get(str(organ).lower())
    if key is None:
        raise ValueError(f"organ must be one of {sorted(_ORGAN_ALIASES)}, got {organ!r}")
    organ = key
    dataset = dataset_name(organ)
    rel = RELEASE_NAMES[organ]
    required = [r.replace("Liver", rel) for r in REQUIRED[:2]]
    root = check_root(root, dataset, required)
    found = find_annotation(root, organ)
    if not found:
        raise DataFormatError(
            f"{dataset}: no annotation JSON for organ {organ!r} under {root} (looked for "
            f"new_{rel}2.json, new_{rel}.json, {rel}.json, {organ}.json, or annotation.json "
            f"in a {rel}/ or {rel}_report/ folder, up to two levels down); expected:\n  "
            + "\n  ".join(required))
    if len(found) > 1:
        raise DataFormatError(f"{dataset}: several annotation files match under {root}: "
                              f"{[str(p.relative_to(root)) for p in found]}; keep one")
    ann = found[0]
    records = load_annotation(ann, dataset)
    img_dir = _image_dir(ann, root, organ)
    bases = list(dict.fromkeys([*([img_dir] if img_dir else []), ann.parent, root]))
    if img_dir is None and not any(_resolve(bases, p) for _, _, rec in records[:50]
                                   for p in _paths(rec)):
        raise DataNotFoundError(
            f"{dataset}: no image folder beside {ann} (looked for {rel}_report/, "
            f"{organ}_report/, {rel}/, {organ}/, images/ there and in {root}), and the "
            f"images the records name are not found relative to {ann.parent}; create "
            f"{ann.parent / (rel + '_report')} holding the images of the release")

    col = Collector(dataset, root, strict=strict, limit=limit)
    items = [f"{col.rel(ann)}#{split}[{i}]" for split, i, _ in records]
    for it in items:
        col.expect(it)
    orphans = image_files(img_dir) if img_dir is not None else []
    for p in orphans:
        col.expect(col.rel(p))
    claimed: set[Path] = set()
    dropped: dict[Path, str] = {}
    seen: dict[str, str] = {}
    for (split, i, rec), item in zip(records, items):
        if col.full:
            break
        why, sample, used = _case(col, rec, split, item, bases, seen, dataset, organ, ann)
        if why:
            col.skip(item, why)
            for name in _paths(rec):
                q = _resolve(bases, name)
                if q is not None:
                    dropped.setdefault(q, f"its record {item} was skipped: {why}")
            continue
        claimed.update(used)
        col.add(sample, item, *[col.rel(p) for p in used])
        for k, name in enumerate(_paths(rec)[2:], start=3):
            q = _resolve(bases, name)
            if q is not None:
                dropped.setdefault(q, f"image {k} of record {item}: only the first two "
                                      "images of a record are used")
    for p, why in dropped.items():
        if p not in claimed:
            col.skip(col.rel(p), why)
    if not col.full:
        for p in orphans:
            if p not in claimed:
                col.skip(col.rel(p), f"no record of {ann.name} names this image")
    return col.finish()


def _paths(rec) -> list[str]:
    p = rec.get("image_path") if isinstance(rec, dict) else None
    if isinstance(p, str):
        p = [p]
    return [str(x) for x in p] if isinstance(p, list) else []


def _resolve(bases: list[Path], name: str) -> Path | None:
    rel = name.replace("\\", "/").lstrip("/")
    for b in bases:
        p = b / rel
        if p.is_file():
            return p
    return None


def _case(col: Collector, rec, split: str, item: str, bases: list[Path],
          seen: dict[str, str], dataset: str, organ: str, ann: Path):
    """(reason to skip, sample, image files used)."""
    if not isinstance(rec, dict):
        return f"record is a {type(rec).__name__}, expected an object", None, []
    if split.startswith("?"):
        return (f"split {split[1:]!r} is not train, val or test (a top-level list needs a "
                "'split' field per record)"), None, []
    uid = rec.get("uid")
    if uid is None or str(uid).strip() == "":
        return "no 'uid'", None, []
    uid = str(uid).strip()
    if uid in seen:
        return f"uid {uid} repeats {seen[uid]}", None, []
    text = next((rec[k] for k in ("finding", "report", "findings") if k in rec), None)
    if not isinstance(text, str) or not text.strip():
        return "no report text ('finding' missing or empty)", None, []
    paths = rec.get("image_path")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        return "'image_path' is not a list of paths", None, []
    if len(paths) < 2:
        return f"'image_path' lists {len(paths)} image(s); two are needed", None, []
    seen[uid] = item
    files, grays = [], []
    for k, name in enumerate(paths[:2]):
        p = _resolve(bases, name)
        if p is None:
            return (f"image {k + 1} {name!r} not found (looked in "
                    f"{', '.join(col.rel(b) or '.' for b in bases)})"), None, []
        try:
            grays.append(load_gray(p))
        except (OSError, ValueError, SyntaxError) as exc:
            return f"image {k + 1} {col.rel(p)}: {image_error(exc)}", None, []
        files.append(p)
    if len(paths) > 2:
        col.note(item, f"{len(paths)} image paths; the first two are used (as the authors' "
                       "loader does)")
    first, second = grays
    meta = {"dataset": dataset, "task": TASK, "case_id": uid, "patient_id": uid,
            "patient_id_source": "uid (USData gives no patient id)", "split": split,
            "organ": organ, "source_path": str(files[0]),
            "source_paths": [str(p) for p in files], "annotation_path": str(ann),
            "record": item.split("#", 1)[1], "language": language(text),
            "labels": rec.get("labels", rec.get("label")), "pixel_spacing_mm": None,
            "source": "real", "image_shapes": [list(first.shape), list(second.shape)]}
    s = rec.get("split")
    if s is not None and _SPLIT_ALIASES.get(str(s).lower()) not in (None, split):
        col.note(item, f"its 'split' field says {s!r}; the list it is in ({split}) is used")
    if second.shape != first.shape:
        meta["second_image_resized_from"] = list(second.shape)
        second = resize_area(second, first.shape)
    images = np.stack([first, second])[:, None].astype(np.float32)
    sample = {"image": images[0], "images": images, "report": text,
              "entities": entities_for(text), "meta": meta}
    return None, sample, files
