"""FOCUS (Four-chamber ultrasound images for fetal cardiac biometry; 300 images, 217 patients):
fetal thorax and heart ellipses in the four-chamber view, and the cardiothoracic ratio.

Layout (shared/DATASETS.md, row FOCUS, confidence *confirmed*: the authors' toolkit,
szuboy/FOCUS-dataset ``toolkit/*.py``; release on Zenodo, doi:10.5281/zenodo.14597550)::

    {training,validation,testing}/
        images/NNN.png                    the image (colour -> BT.601 luminance)
        annfiles_ellipse/NNN.txt          one line per object: ``cx cy a b theta label``
        annfiles_rectangle/NNN.txt        oriented boxes (DOTA style): not read (the ellipses
                                          carry the same objects), not listed as inputs
        annfiles_mask/NNN-cardiac.png     filled region of each object (0 / non-zero)
        annfiles_mask/NNN-thorax.png

The split folders may sit one or two levels below the root (e.g. ``FOCUS/FOCUS/training``).
Ids restart in every split, so ``case_id`` is ``<split folder>_<NNN>`` (e.g. ``training_001``).

Ellipses: ``cx cy`` the centre in pixel coordinates (x = column, y = row, pixel centres at
integers, as ``cv2.ellipse`` draws them in the toolkit), ``a b`` half-axes in pixels, ``theta``
degrees of the ``a`` axis from the +column axis towards +row (the convention of the
simulator's ellipses, :mod:`echocare_lib.sim.tasks.fetal`). The label is ``cardiac`` or the
thorax, spelled ``thorax`` in the released files and ``thoracic`` in the toolkit: both (any
case) map to ``"thorax"``. **b may exceed a in the release**; the reader normalises every
ellipse so that ``a >= b`` (a the major, b the minor half-axis: when b > a they are swapped and
90 degrees added to the angle), then takes the angle modulo 180 -- the same ellipse, in the
simulator's form. ``meta['ellipses_file']`` keeps the values as written.

CTR = b_cardiac / b_thorax with b the **minor** half-axis (min(a, b) of the file), the
cardiothoracic diameter ratio measured on the minor axes like the simulator's ``ctr``. The
toolkit divides the files' 4th columns literally; that ratio is kept in
``meta['ctr_file_columns']`` (it differs from ``ctr`` only where a file has b > a for one
ellipse and not the other).

Mask (uint8 [H, W]: 0 background, 1 thorax, 2 cardiac, cardiac drawn over thorax): from
``annfiles_mask`` when both files of the case are present, readable and of the image's size,
else rasterised from the (normalised) ellipses (pixel centres inside or on the ellipse);
``meta['mask_source']`` says which (``"annfiles_mask"`` or ``"ellipses"``), and a mask file
that could not be used is listed as skipped with its reason.

Patient identity: FOCUS gives no patient id (300 images of 217 patients, unmatched), so
``patient_id`` is the case id; images of one patient may fall on both sides of a split made
here -- keep the official split (``meta['split']``: training -> ``train``, validation ->
``val``, testing -> ``test``; ``meta['release_split']`` keeps the folder name).
Pixel spacing is not in the release (None).

Sample: ``image`` float32 [1, H, W] in [0, 1], ``mask``, ``ellipses`` ([thorax, cardiac], each
``{"label", "cx", "cy", "a", "b", "angle"}``), ``ctr`` (float), ``meta``. Every image,
ellipse file and mask file is accounted for (used, or skipped with its reason: missing or
malformed annotation, unreadable image, file without its image).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._common import (Collector, DataFormatError, ReadResult, check_root, image_error,
                      image_files, load_gray, load_labels, natural_key)

DATASET = "FOCUS"
TASK = "fetal_4ch_detection"
CLASSES = ("background", "thorax", "cardiac")
REQUIRED = (
    "{training,validation,testing}/images/NNN.png",
    "{training,validation,testing}/annfiles_ellipse/NNN.txt: 'cx cy a b theta label' per line "
    "(label cardiac | thorax | thoracic)",
    "{training,validation,testing}/annfiles_mask/NNN-{cardiac,thorax}.png (optional)",
)
#: split folder (lower case) -> meta['split']
SPLIT_NAMES = {"training": "train", "train": "train", "validation": "val", "valid": "val",
               "val": "val", "testing": "test", "test": "test"}
LABELS = {"thorax": "thorax", "thoracic": "thorax", "cardiac": "cardiac"}


class _CaseError(Exception):
    pass


def find_base(root: Path, max_depth: int = 2) -> Path | None:
    """The folder holding the split folders (root or up to ``max_depth`` levels below)."""
    frontier = [root]
    for _ in range(max_depth + 1):
        nxt = []
        for d in sorted(frontier, key=lambda p: natural_key(p.as_posix())):
            if any(c.is_dir() and c.name.lower() in SPLIT_NAMES and (c / "images").is_dir()
                   for c in d.iterdir()):
                return d
            nxt += [c for c in d.iterdir() if c.is_dir()]
        frontier = nxt
    return None


def normalise_ellipse(label: str, cx: float, cy: float, a: float, b: float,
                      theta: float) -> dict:
    """The simulator's ellipse dict, with a >= b (swap and +90 degrees when b > a) and the
    angle in [0, 180)."""
    if b > a:
        a, b, theta = b, a, theta + 90.0
    return {"label": label, "cx": float(cx), "cy": float(cy), "a": float(a), "b": float(b),
            "angle": float(theta % 180.0)}


def parse_ellipse_file(path: Path) -> dict[str, tuple[float, float, float, float, float]]:
    """``{"thorax": (cx, cy, a, b, theta), "cardiac": (...)}`` as written in the file (label
    spellings mapped). Raises ValueError naming the line for anything malformed."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable annotation ({type(exc).__name__}: {exc})") from None
    out: dict[str, tuple[float, float, float, float, float]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise ValueError(f"line {n}: {len(parts)} fields, expected 6 "
                             f"('cx cy a b theta label'): {line.strip()!r}")
        try:
            vals = tuple(float(v) for v in parts[:5])
        except ValueError:
            raise ValueError(f"line {n}: non-numeric value in {line.strip()!r}") from None
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"line {n}: non-finite value in {line.strip()!r}")
        if vals[2] <= 0 or vals[3] <= 0:
            raise ValueError(f"line {n}: half-axes must be > 0, got a={vals[2]}, b={vals[3]}")
        label = LABELS.get(parts[5].lower())
        if label is None:
            raise ValueError(f"line {n}: label {parts[5]!r} is not cardiac, thorax or thoracic")
        if label in out:
            raise ValueError(f"line {n}: a second {label} ellipse")
        out[label] = vals  # type: ignore[assignment]
    missing = [k for k in ("thorax", "cardiac") if k not in out]
    if missing:
        raise ValueError(f"no {' and no '.join(missing)} ellipse")
    return out


def rasterise_ellipse(e: dict, shape: tuple[int, int]) -> np.ndarray:
    """Bool [H, W]: pixel centres (col j, row i) inside or on ellipse ``e`` (simulator dict)."""
    h, w = shape
    ii, jj = np.mgrid[0:h, 0:w].astype(np.float64)
    t = np.deg2rad(e["angle"])
    dx, dy = jj - e["cx"], ii - e["cy"]
    u = dx * np.cos(t) + dy * np.sin(t)
    v = -dx * np.sin(t) + dy * np.cos(t)
    return (u / e["a"]) ** 2 + (v / e["b"]) ** 2 <= 1.0 + 1e-9


def _mask_files(mask_dir: Path, stem: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if mask_dir.is_dir():
        for suffix, label in (("cardiac", "cardiac"), ("thorax", "thorax"),
                              ("thoracic", "thorax")):
            p = mask_dir / f"{stem}-{suffix}.png"
            if p.is_file() and label not in found:
                found[label] = p
    return found


def read_focus(root, *, limit: int | None = None, strict: bool = False) -> ReadResult:
    """Read FOCUS under ``root`` (see the module docstring); ``limit``: at most that many
    samples; ``strict``: raise :class:`DataFormatError` at the first problem instead of
    skipping and reporting."""
    root = check_root(root, DATASET, REQUIRED)
    base = find_base(root)
    if base is None:
        raise DataFormatError(f"{DATASET}: no training/, validation/ or testing/ folder with an "
                              f"images/ subfolder under {root}; expected:\n  "
                              + "\n  ".join(REQUIRED))
    col = Collector(DATASET, root, strict=strict, limit=limit)
    order = {"train": 0, "val": 1, "test": 2}
    split_dirs = sorted((d for d in base.iterdir() if d.is_dir()
                         and d.name.lower() in SPLIT_NAMES and (d / "images").is_dir()),
                        key=lambda d: (order[SPLIT_NAMES[d.name.lower()]], d.name))
    plan = []
    for sd in split_dirs:
        imgs = image_files(sd / "images", recursive=False)
        anns = sorted((sd / "annfiles_ellipse").glob("*.txt"),
                      key=lambda p: natural_key(p.name)) \
            if (sd / "annfiles_ellipse").is_dir() else []
        masks = image_files(sd / "annfiles_mask", recursive=False) \
            if (sd / "annfiles_mask").is_dir() else []
        for p in (*imgs, *anns, *masks):
            col.expect(col.rel(p))
        plan.append((sd, imgs, anns, masks))

    for sd, imgs, anns, masks in plan:
        if col.full:
            break
        release_split = sd.name
        split = SPLIT_NAMES[release_split.lower()]
        ann_by_stem = {p.stem: p for p in anns}
        claimed: set[Path] = set()
        for img in imgs:
            if col.full:
                break
            irel = col.rel(img)
            stem = img.stem
            ann = ann_by_stem.get(stem)
            mfiles = _mask_files(sd / "annfiles_mask", stem)
            claimed.update(mfiles.values())
            if ann is not None:
                claimed.add(ann)
            try:
                if ann is None:
                    raise _CaseError(f"no annfiles_ellipse/{stem}.txt")
                try:
                    raw = parse_ellipse_file(ann)
                except ValueError as exc:
                    col.skip(col.rel(ann), str(exc))
                    raise _CaseError(f"its annotation annfiles_ellipse/{stem}.txt is "
                                     f"malformed: {exc}") from None
                try:
                    gray = load_gray(img)
                except (OSError, ValueError, SyntaxError) as exc:
                    raise _CaseError(image_error(exc)) from None
            except _CaseError as exc:
                col.skip(irel, str(exc))
                others = ([ann] if ann is not None else []) + list(mfiles.values())
                for p in others:
                    col.skip(col.rel(p), f"its case ({irel}) was skipped: {exc}")
                continue
            ellipses = [normalise_ellipse(k, *raw[k]) for k in ("thorax", "cardiac")]
            thorax, cardiac = ellipses
            ctr = cardiac["b"] / thorax["b"]
            mask, source = _case_mask(col, mfiles, gray.shape, irel)
            if mask is None:
                mask = np.zeros(gray.shape, np.uint8)
                mask[rasterise_ellipse(thorax, gray.shape)] = 1
                mask[rasterise_ellipse(cardiac, gray.shape)] = 2
            case = f"{release_split}_{stem}"
            used = [irel, col.rel(ann)] + ([col.rel(p) for p in mfiles.values()]
                                           if source == "annfiles_mask" else [])
            col.add({"image": gray[None], "mask": mask, "ellipses": ellipses,
                     "ctr": float(ctr),
                     "meta": {"dataset": DATASET, "task": TASK, "case_id": case,
                              "patient_id": case,
                              "patient_id_source": "case id (FOCUS gives no patient id)",
                              "pixel_spacing_mm": None, "split": split,
                              "release_split": release_split, "source_path": str(img),
                              "annotation_path": str(ann), "source": "real",
                              "mask_source": source,
                              "ellipses_file": {k: list(v) for k, v in raw.items()},
                              "ctr_file_columns": float(raw["cardiac"][3] / raw["thorax"][3])}},
                    *used)
        if col.full:
            break
        img_stems = {p.stem for p in imgs}
        for p in anns:
            if p not in claimed:
                col.skip(col.rel(p), f"no images/{p.stem}.png for this annotation")
        for p in masks:
            if p not in claimed:
                stem = p.stem.rsplit("-", 1)[0]
                col.skip(col.rel(p), f"no images/{stem}.png for this mask" if stem
                         not in img_stems else "not a NNN-cardiac / NNN-thorax mask name")
    return col.finish()


def _case_mask(col: Collector, mfiles: dict[str, Path], shape: tuple[int, int],
               irel: str) -> tuple[np.ndarray | None, str]:
    """The label map from annfiles_mask (None, "ellipses" when it cannot be used; the unusable
    files are skipped with their reason)."""
    if not mfiles:
        return None, "ellipses"
    if len(mfiles) < 2:
        (label, p), = mfiles.items()
        other = "thorax" if label == "cardiac" else "cardiac"
        col.skip(col.rel(p), f"no {other} mask beside it; the mask of {irel} is rasterised "
                             "from the ellipses")
        return None, "ellipses"
    maps = {}
    for label, p in mfiles.items():
        try:
            lab = load_labels(p)
        except (OSError, ValueError, SyntaxError) as exc:
            reason = image_error(exc)
        else:
            if lab.shape == shape:
                maps[label] = lab > 0
                continue
            reason = f"shape {lab.shape} differs from the image's {shape}"
        for q in mfiles.values():
            col.skip(col.rel(q), f"{col.rel(p)}: {reason}; the mask of {irel} is rasterised "
                                 "from the ellipses")
        return None, "ellipses"
    mask = np.zeros(shape, np.uint8)
    mask[maps["thorax"]] = 1
    mask[maps["cardiac"]] = 2
    return mask, "annfiles_mask"
