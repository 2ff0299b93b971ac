"""DDTI (Digital Database of Thyroid Ultrasound Images): thyroid nodule segmentation.

Layout (shared/DATASETS.md, row DDTI, confidence *consensus*: several independent public
parsers agree; no authors' loader was found): one flat folder of

* ``<case>.xml``: the case description with fields ``number, age, sex, composition,
  echogenicity, margins, calcifications, tirads`` (strings such as ``4a``) and zero or more
  ``<mark><image>k</image><svg>JSON</svg></mark>``; the svg JSON is a list of regions, each
  ``{"points": [{"x": .., "y": ..}, ...], "regionType": "freehand"}`` in pixel coordinates
  (x = column, y = row) of image k. An image may carry several regions (several nodules) and
  several marks; the mask is their union. Some XML files have no mark and a few have a
  truncated JSON: their images are skipped and reported, never silently dropped.
* ``<case>_<k>.jpg``: the case's k-th image (grey or RGB; RGB -> BT.601 luminance).

The XML files are found recursively under the root (the folder may sit one level deeper) and
each image is looked up beside its XML. A PNG redistribution also circulates
(``image/<id>.PNG`` + ``mask/<id>.PNG``, 0/255); it is read too when no XML is present, but it
carries no patient identity (patient_id = image id, with a warning) and its category column is
not a real label, so it is ignored.

Sample: ``image`` float32 [1, H, W], ``mask`` uint8 [H, W] (0 background, 1 nodule),
``meta``: dataset ``DDTI``, case_id ``<case>_<k>``, patient_id ``<case>`` (one XML = one case =
one patient in the consensus reading; section 4.2 of the paper counts 308:80 patients for
522:123 images), pixel_spacing_mm None (not in the release), split None (no official split),
source_path, annotation_path, the XML's descriptive fields and ``n_regions``.
"""
from __future__ import annotations

import json
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ._common import (Collector, DataFormatError, ReaderWarning, ReadResult, check_root,
                      image_error, image_files, load_gray, load_labels, natural_key)

DATASET = "DDTI"
TASK = "thyroid_nodule_seg"
REQUIRED = (
    "<case>.xml: case fields + <mark><image>k</image><svg>[{\"points\": [{\"x\", \"y\"}, ...]}]"
    "</svg></mark>",
    "<case>_<k>.jpg: image k of the case, beside its XML",
    "(or the PNG redistribution: image/<id>.PNG + mask/<id>.PNG, 0/255)",
)
FIELDS = ("number", "age", "sex", "composition", "echogenicity", "margins", "calcifications",
          "tirads")
_IMAGE_NAME = re.compile(r"^(?P<case>.+)_(?P<k>\d+)$")


def rasterise(regions: list[list[tuple[float, float]]], shape: tuple[int, int]) -> np.ndarray:
    """Union of filled polygons (x = column, y = row, pixel centres at integers; boundary pixels
    included) as a uint8 0/1 mask of ``shape`` (H, W)."""
    from PIL import Image, ImageDraw

    h, w = shape
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for pts in regions:
        draw.polygon([(float(x), float(y)) for x, y in pts], fill=1, outline=1)
    return np.asarray(canvas, dtype=np.uint8).copy()


def parse_svg(text: str | None) -> list[list[tuple[float, float]]]:
    """The regions of one ``<svg>`` element: a list of point lists. Raises ValueError for a
    truncated/invalid JSON or a region without at least 3 numeric points."""
    if text is None or not text.strip():
        raise ValueError("empty <svg> element")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid or truncated SVG JSON ({exc.msg} at char {exc.pos} of "
                         f"{len(text)})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ValueError("SVG JSON is not a non-empty list of regions")
    regions = []
    for i, reg in enumerate(data):
        pts = reg.get("points") if isinstance(reg, dict) else None
        if not isinstance(pts, list):
            raise ValueError(f"region {i} has no 'points' list")
        try:
            xy = [(float(p["x"]), float(p["y"])) for p in pts]
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"region {i} has a point without numeric 'x' and 'y'") from None
        if len(xy) < 3:
            raise ValueError(f"region {i} has {len(xy)} point(s); a polygon needs 3")
        regions.append(xy)
    return regions


def _text(node, tag: str) -> str | None:
    el = node.find(tag)
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def read_ddti(root, *, limit: int | None = None, strict: bool = False) -> ReadResult:
    """Read DDTI under ``root`` (see the module docstring); ``limit``: at most that many
    samples; ``strict``: raise :class:`DataFormatError` at the first problem instead of
    skipping and reporting."""
    root = check_root(root, DATASET, REQUIRED)
    xmls = sorted((p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".xml"),
                  key=lambda p: natural_key(p.as_posix()))
    if not xmls and ((root / "image").is_dir() or (root / "mask").is_dir()):
        return _read_png_redistribution(root, limit=limit, strict=strict)
    col = Collector(DATASET, root, strict=strict, limit=limit)
    if not xmls:
        raise DataFormatError(f"{DATASET}: no <case>.xml files under {root} (nor the PNG "
                              f"redistribution's image/ and mask/ folders); expected:\n  "
                              + "\n  ".join(REQUIRED))
    # every candidate image beside the XML files: <case>_<k>.<ext>
    images: dict[tuple[Path, str, int], Path] = {}
    for folder in sorted({p.parent for p in xmls}):
        for img in image_files(folder, recursive=False):
            m = _IMAGE_NAME.match(img.stem)
            if m:
                images.setdefault((folder, m["case"], int(m["k"])), img)
                col.expect(col.rel(img))
    for x in xmls:
        col.expect(col.rel(x))

    claimed: set[Path] = set()
    for xml_path in xmls:
        if col.full:
            break
        xrel = col.rel(xml_path)
        case = xml_path.stem
        own = {k: p for (f, c, k), p in images.items() if f == xml_path.parent and c == case}
        try:
            tree = ET.parse(xml_path)
        except (ET.ParseError, OSError) as exc:
            col.skip(xrel, f"unreadable XML ({exc})")
            for p in own.values():
                claimed.add(p)
                col.skip(col.rel(p), f"its case file {xml_path.name} is unreadable")
            continue
        node = tree.getroot()
        fields = {f: _text(node, f) for f in FIELDS}
        marks = node.findall(".//mark")
        if not marks:
            col.skip(xrel, "no <mark> element: the case has no nodule outline")
            for p in own.values():
                claimed.add(p)
                col.skip(col.rel(p), f"{xml_path.name} has no <mark> (no nodule outline)")
            continue
        by_image: dict[int, list] = {}
        bad: dict[int, list[str]] = {}
        for j, mk in enumerate(marks):
            k_text = _text(mk, "image")
            try:
                k = int(k_text)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                col.expect(f"{xrel}#mark {j}")
                col.skip(f"{xrel}#mark {j}", f"<image> is {k_text!r}, not an image number")
                continue
            try:
                by_image.setdefault(k, []).extend(parse_svg(_text(mk, "svg")))
            except ValueError as exc:
                bad.setdefault(k, []).append(f"mark {j}: {exc}")
        used_any = False
        for k in sorted(set(by_image) | set(bad)):
            if col.full:
                break
            item = f"{xrel}#image {k}"
            img = own.get(k)
            if img is None:
                col.expect(item)
                col.skip(item, f"marked image {case}_{k}.jpg not found beside {xml_path.name}")
                continue
            claimed.add(img)
            irel = col.rel(img)
            if k in bad:
                col.skip(irel, "; ".join(bad[k]))
                continue
            try:
                gray = load_gray(img)
            except (OSError, ValueError, SyntaxError) as exc:
                col.skip(irel, image_error(exc))
                continue
            mask = rasterise(by_image[k], gray.shape)
            if not mask.any():
                col.skip(irel, "outline rasterises to an empty mask (points outside the image?)")
                continue
            col.add({"image": gray[None], "mask": mask,
                     "meta": {"dataset": DATASET, "task": TASK, "case_id": f"{case}_{k}",
                              "patient_id": case, "pixel_spacing_mm": None, "split": None,
                              "source_path": str(img), "annotation_path": str(xml_path),
                              "source": "real", "n_regions": len(by_image[k]), **fields}},
                    irel)
            used_any = True
        if used_any:
            col.use(xrel)
        if col.full:
            break
        for k, p in own.items():
            if p not in claimed:
                claimed.add(p)
                col.skip(col.rel(p), f"no <mark> for image {k} in {xml_path.name}")
        if not used_any:
            col.skip(xrel, "none of its marked images could be read (see their entries)")
    if not col.full:
        for (folder, case, k), p in images.items():
            if p not in claimed:
                col.skip(col.rel(p), f"no case file {case}.xml beside it")
    return col.finish()


def _read_png_redistribution(root: Path, *, limit, strict) -> ReadResult:
    col = Collector(DATASET, root, strict=strict, limit=limit)
    img_dir, mask_dir = root / "image", root / "mask"
    imgs = image_files(img_dir) if img_dir.is_dir() else []
    masks = {p.stem: p for p in (image_files(mask_dir) if mask_dir.is_dir() else [])}
    for p in imgs:
        col.expect(col.rel(p))
    for p in masks.values():
        col.expect(col.rel(p))
    seen = set()
    for img in imgs:
        if col.full:
            break
        irel = col.rel(img)
        m = masks.get(img.stem)
        if m is None:
            col.skip(irel, f"no mask/{img.stem}.PNG")
            continue
        seen.add(img.stem)
        try:
            gray = load_gray(img)
        except (OSError, ValueError, SyntaxError) as exc:
            col.skip(irel, image_error(exc))
            col.skip(col.rel(m), "its image is unreadable")
            continue
        try:
            lab = load_labels(m)
        except (OSError, ValueError, SyntaxError) as exc:
            col.skip(col.rel(m), image_error(exc))
            col.skip(irel, "its mask is unreadable")
            continue
        if lab.shape != gray.shape:
            col.skip(irel, f"mask shape {lab.shape} differs from the image's {gray.shape}")
            col.skip(col.rel(m), "shape differs from its image")
            continue
        col.add({"image": gray[None], "mask": (lab > 127).astype(np.uint8) if lab.max() > 1
                 else lab.astype(np.uint8),
                 "meta": {"dataset": DATASET, "task": TASK, "case_id": img.stem,
                          "patient_id": img.stem, "pixel_spacing_mm": None, "split": None,
                          "source_path": str(img), "annotation_path": str(m), "source": "real",
                          "layout": "png-redistribution"}}, irel, col.rel(m))
    if not col.full:
        for stem, p in masks.items():
            if stem not in seen:
                col.skip(col.rel(p), f"no image/{stem}.PNG")
    warnings.warn(f"{DATASET}: read the PNG redistribution under {root}: it carries no patient "
                  "identity, so patient_id is the image id and a patient-level split cannot be "
                  "guaranteed; prefer the original XML release.", ReaderWarning, stacklevel=3)
    return col.finish()
