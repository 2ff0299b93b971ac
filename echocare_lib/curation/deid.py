"""Curation step 2: de-identification of DICOM headers and of the pixels around the image.

Two kinds of identifying information reach a curated corpus:

* **DICOM header attributes** (patient, institution, physicians, dates, UIDs).
  :func:`deidentify_dicom` applies a subset of the Basic Application Level Confidentiality
  Profile of DICOM PS3.15 Annex E (Table E.1-1): the attributes in :data:`REMOVE_TAGS` are
  removed (action X; where the profile offers X/Z/D we take X), those in :data:`EMPTY_TAGS`
  are kept with an empty value (action Z: Type 2 in the ultrasound IODs), the instance UIDs
  in :data:`UID_TAGS` are replaced by UIDs derived from the originals (action U, consistent,
  so the frames of one study stay linked), and all private tags and overlay groups (which
  can hold burnt-in annotations) are dropped, at every sequence level. The subset is the
  attributes that ultrasound exports carry in practice, not the full table: this is not a
  certified de-identifier, and pixel data are not touched by it.
* **Burnt-in text and the scanner screen around the image.** Scanner exports put the patient
  name, dates, the hospital and settings around the ultrasound field of view (FOV).
  :func:`find_fov` locates the FOV (a sector or a rectangle) and :func:`crop_to_fov` keeps
  only it. Text drawn *inside* the FOV (calipers, markers) stays: see :func:`find_fov`.
  Written by hand on scipy.ndimage: no maintained library finds an ultrasound FOV, and
  scikit-image is not a dependency.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["REMOVE_TAGS", "EMPTY_TAGS", "UID_TAGS", "Fov", "deidentify_dicom", "find_fov",
           "crop_to_fov", "background_level"]

#: PS3.15 Table E.1-1, Basic Profile, action X (remove) - the subset found in ultrasound.
REMOVE_TAGS: tuple[str, ...] = (
    # patient
    "PatientBirthTime", "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames",
    "PatientBirthName", "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers",
    "PatientAge", "PatientSize", "PatientWeight", "MilitaryRank", "BranchOfService",
    "EthnicGroup", "Occupation", "AdditionalPatientHistory", "PatientComments",
    "MedicalRecordLocator", "PatientReligiousPreference", "CountryOfResidence",
    "RegionOfResidence", "PregnancyStatus", "LastMenstrualDate", "ResponsiblePerson",
    "ResponsibleOrganization", "PatientInsurancePlanCodeSequence",
    # institution, physicians, operators, equipment location
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "InstitutionCodeSequence", "PerformingPhysicianName",
    "PerformingPhysicianIdentificationSequence",
    "PhysiciansOfRecord", "PhysiciansOfRecordIdentificationSequence",
    "NameOfPhysiciansReadingStudy", "PhysiciansReadingStudyIdentificationSequence",
    "OperatorsName", "OperatorIdentificationSequence", "RequestingPhysician",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "ReferringPhysicianIdentificationSequence", "StationName", "DeviceSerialNumber",
    "ScheduledPerformingPhysicianName",
    # dates and times beyond the study's own (X / X-D in the profile)
    "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime",
    "InstanceCreationDate", "InstanceCreationTime", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime", "PerformedProcedureStepEndDate",
    "PerformedProcedureStepEndTime", "OverlayDate", "OverlayTime", "CurveDate", "CurveTime",
    # free text that often carries names or dates
    "StudyDescription", "SeriesDescription", "ImageComments", "RequestAttributesSequence",
    "PerformedProcedureStepID", "PerformedProcedureStepDescription",
    "AdmittingDiagnosesDescription",
    "DerivationDescription", "ReferencedPatientSequence", "ReferencedStudySequence",
)
#: PS3.15 Table E.1-1, action Z (zero-length value): Type 2 attributes of the US IODs.
EMPTY_TAGS: tuple[str, ...] = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "ReferringPhysicianName",
    "AccessionNumber", "StudyID", "StudyDate", "StudyTime", "ContentDate", "ContentTime",
)
#: PS3.15 Table E.1-1, action U: replaced by a UID derived from the original (consistent).
UID_TAGS: tuple[str, ...] = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                             "FrameOfReferenceUID")
#: How far (fraction of the screen) faint pieces may lie from the FOV and still be chained.
GROW_MARGIN = 0.08
_METHOD = "PS3.15 E.1-1 Basic Profile subset (EchoCare curation)"  # LO: <= 64 chars


def deidentify_dicom(ds):
    """A de-identified copy of a pydicom ``Dataset`` (the input is left unchanged).

    Removes :data:`REMOVE_TAGS`, empties :data:`EMPTY_TAGS`, replaces :data:`UID_TAGS`,
    drops private tags and overlay groups, at every nesting level, and records the method
    (PatientIdentityRemoved = YES, DeidentificationMethod)."""
    from pydicom.uid import generate_uid

    out = copy.deepcopy(ds)
    out.remove_private_tags()  # pydicom walks nested sequences itself
    remove, empty = set(REMOVE_TAGS), set(EMPTY_TAGS)

    def scrub(dataset, elem):
        kw = elem.keyword
        if kw in remove or (0x6000 <= elem.tag.group <= 0x60FF and elem.tag.group % 2 == 0):
            del dataset[elem.tag]
        elif kw in empty:
            elem.value = None if elem.VR == "SQ" else ""
        elif kw in UID_TAGS and elem.value:
            elem.value = generate_uid(entropy_srcs=["echocare-deid", str(elem.value)])

    out.walk(scrub)
    fm = getattr(out, "file_meta", None)
    if fm is not None and "MediaStorageSOPInstanceUID" in fm and "SOPInstanceUID" in out:
        fm.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = _METHOD
    return out


# ----------------------------------------------------------------------------- field of view
@dataclass
class Fov:
    """The ultrasound field of view found in a screen.

    ``bbox`` is (top, left, bottom, right), bottom/right exclusive; ``mask`` is a boolean
    image of the input's height and width. ``kind`` is "sector", "rectangle" or "none"
    (nothing image-like found: a blank or near-blank screen)."""
    kind: str
    bbox: tuple[int, int, int, int]
    mask: np.ndarray
    fill: float = 0.0          # FOV area / bounding-box area (1 for a rectangle)
    taper: float = 1.0         # width near the top / width near the bottom (< 1: a sector)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def _grey(image: np.ndarray) -> np.ndarray:
    """Brightest channel: keeps tinted and colour-Doppler pixels bright."""
    a = np.asarray(image)
    return a.max(axis=-1) if a.ndim == 3 else a


def background_level(grey: np.ndarray) -> int:
    """The screen's black level: the value shared by most of the screen's border when it is
    dark (0 for most exports; higher when a gain or brightness change lifted the surround;
    0 when the image itself reaches the border)."""
    g = np.asarray(grey)
    if min(g.shape) < 4:
        return 0
    border = np.concatenate([g[:2].ravel(), g[-2:].ravel(), g[:, :2].ravel(), g[:, -2:].ravel()])
    hist = np.bincount(np.clip(border, 0, 255).astype(np.int64), minlength=256)[:64]
    level = int(hist.argmax())
    if hist[level] < 0.5 * border.size or (g == level).mean() < 0.2:
        return 0  # the border is not a uniform surround covering a good part of the screen
    return level


def _opening(mask: np.ndarray, k: int) -> np.ndarray:
    """Binary opening with a k x k square (k odd) as separable min / max filters (fast)."""
    m = mask.astype(np.uint8)
    return ndi.maximum_filter(ndi.minimum_filter(m, size=k), size=k).astype(bool)


def _texture(grey: np.ndarray) -> np.ndarray:
    """Local 3 x 3 standard deviation: speckle is textured, bars and text boxes are flat."""
    g = grey.astype(np.float32)
    m = ndi.uniform_filter(g, 3)
    return np.sqrt(np.maximum(ndi.uniform_filter(g * g, 3) - m * m, 0))


def _hull_mask(mask: np.ndarray) -> np.ndarray:
    """Filled convex hull of a mask (bridges dark cysts and fluid that reach the FOV edge)."""
    from PIL import Image, ImageDraw
    from scipy.spatial import ConvexHull, QhullError

    pts = _row_extremes(mask)
    if len(pts) < 3:
        return mask
    try:
        hull = ConvexHull(pts)
    except QhullError:
        return mask
    canvas = Image.new("1", (mask.shape[1], mask.shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in pts[hull.vertices]], fill=1, outline=1)
    return np.asarray(canvas, bool) | mask


def _row_extremes(mask: np.ndarray) -> np.ndarray:
    """(x, y) of the first and last pixel of every row: they carry the whole convex hull."""
    rows = np.nonzero(mask.any(axis=1))[0]
    sub = mask[rows]
    first = sub.argmax(axis=1)
    last = sub.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)
    return np.concatenate([np.stack([first, rows], 1), np.stack([last, rows], 1)]).astype(float)


def find_fov(image: np.ndarray, *, threshold: int = 6, grow: bool = True) -> Fov:
    """Locate the ultrasound field of view (sector or rectangle) in a scanner screen.

    1. Threshold the brightest channel at ``threshold`` above the black level (tints and
       colour Doppler count; a lifted surround does not).
    2. Remove text, rulers, calipers and markers with a binary opening by a square of about
       1 % of the screen (at least 7 px): their strokes are thinner than that.
    3. Keep the largest *textured* component (speckle; flat bars and logos are not), plus
       the textured components near it or stacked above / below it (a sector cut in two
       by dark fluid, as in fetal scans), fill holes and take the convex hull, so that dark
       cysts or fluid reaching the FOV edge stay inside.
    4. ``grow``: add the faint, thin or scattered signal that the opening removed (speckle
       in a dark near field or behind fluid, thin specular lines) when it lies inside the
       wedge between the FOV's side lines, is dim (peak below 100: speckle, not text), is
       not a small bright mark or a thin vertical bar, and chains to the FOV vertically;
       hull again.
    5. Classify: "sector" when narrow at the top or filling < 85 % of its box, else
       "rectangle".

    Works on uint8 grey or RGB screens. Caveats: marks drawn *inside* the FOV (calipers,
    orientation logo) remain; isolated faint speckle far from the rest is missed; a
    dual-view screen gives the hull of both views."""
    grey = _grey(image)
    h, w = grey.shape
    none = Fov("none", (0, 0, h, w), np.zeros((h, w), bool))
    tex_map = _texture(grey)
    bg = background_level(grey)
    fg = grey > bg + threshold
    if not fg.any():
        return none
    k = max(2 * (min(h, w) // 100) + 1, 7)
    opened = _opening(fg, k)
    labels, n = ndi.label(opened)
    if n == 0:
        return none
    idx = np.arange(1, n + 1)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    interior = ndi.binary_erosion(opened, np.ones((3, 3), bool))
    tex = np.asarray(ndi.mean((tex_map > 2.0) & interior, labels, idx)) / \
        np.maximum(np.asarray(ndi.mean(interior, labels, idx)), 1e-9)
    objs = ndi.find_objects(labels)
    bh = np.array([o[0].stop - o[0].start for o in objs])
    bw = np.array([o[1].stop - o[1].start for o in objs])
    edge = np.array([o[0].start == 0 or o[0].stop == h for o in objs])
    strip = edge & (bh < 0.08 * h) & (bw > 3 * bh)  # tool bars and header bars of the screen
    textured = (tex >= 0.25) & ~strip
    cand = np.nonzero(textured)[0] if textured.any() else np.arange(n)
    best = cand[np.argmax(areas[cand])]
    chosen = {best}
    box = list(_box(objs[best]))
    margin = int(0.04 * max(h, w))
    changed = True
    while changed:  # add large textured components that are near, or stacked in one column
        changed = False
        for c in cand:
            if c in chosen or areas[c] < 0.05 * areas[best] or tex[c] < 0.6:
                continue
            b = _box(objs[c])
            near = b[0] <= box[2] + margin and b[2] >= box[0] - margin and \
                b[1] <= box[3] + margin and b[3] >= box[1] - margin
            overlap = min(b[3], box[3]) - max(b[1], box[1])
            if near or overlap >= 0.5 * min(b[3] - b[1], box[3] - box[1]):
                chosen.add(c)
                box = [min(box[0], b[0]), min(box[1], b[1]), max(box[2], b[2]),
                       max(box[3], b[3])]
                changed = True
    mask = _hull_mask(ndi.binary_fill_holes(np.isin(labels, np.asarray(sorted(chosen)) + 1)))
    if grow:
        top_c = min(chosen, key=lambda c: objs[c][0].start)
        mask = _hull_mask(_grow(mask, labels == top_c + 1, fg, grey, GROW_MARGIN * max(h, w)))
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    bbox = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    kind, fill, taper = _classify(mask, bbox)
    return Fov(kind, bbox, mask, fill, taper)


def _side_lines(top_part: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """The FOV's left and right edges as lines x = x0 + slope * y, fitted to the sides of
    its top part (rows 5-35 %): a sector's straight sides, or vertical for a rectangle."""
    rows = np.nonzero(top_part.any(axis=1))[0]
    t, b = rows[0], rows[-1] + 1
    sel = rows[(rows >= t + 0.05 * (b - t)) & (rows <= t + 0.35 * (b - t))]
    if len(sel) < 3:
        cols = np.nonzero(top_part.any(axis=0))[0]
        return (float(cols[0]), 0.0), (float(cols[-1]), 0.0)
    sub = top_part[sel]
    first = sub.argmax(axis=1)
    last = sub.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)
    sl, xl = np.polyfit(sel, first, 1)
    sr, xr = np.polyfit(sel, last, 1)
    return (float(xl), float(sl)), (float(xr), float(sr))


def _grow(mask: np.ndarray, top_part: np.ndarray, fg: np.ndarray, grey: np.ndarray,
          margin: int, min_peak: float = 9, max_peak: float = 100, min_px: int = 5,
          tol: float = 2.0) -> np.ndarray:
    """Add faint, thin or scattered signal that the opening removed (specular lines, speckle
    in a dark near field or behind fluid): raw foreground pieces inside the wedge between
    the FOV's side lines, chained within ``margin`` rows of it. Pieces outside the wedge
    (text, rulers, grey bars) and small bright marks (ruler dots) stay out."""
    (xl0, sl), (xr0, sr) = _side_lines(top_part)
    lab, n = ndi.label(fg & ~mask, np.ones((3, 3), bool))
    if n == 0:
        return mask
    idx = np.arange(1, n + 1)
    yy, xx = np.indices(mask.shape)
    wedge = (xx >= xl0 + sl * yy - tol) & (xx < xr0 + sr * yy + tol)
    size = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    inside = np.asarray(ndi.sum(wedge, lab, idx)) / np.maximum(size, 1)
    peak = np.asarray(ndi.maximum(grey, lab, idx))
    boxes = [_box(o) for o in ndi.find_objects(lab)]
    bh = np.array([bx[2] - bx[0] for bx in boxes])
    bw = np.array([bx[3] - bx[1] for bx in boxes])
    mark = (size < 40) & (peak >= 150)            # ruler dots, focus markers, logos
    bar = (bw <= 10) & (bh >= 4 * bw)              # grey-scale bars, ruler strips
    ok = (inside >= 0.8) & (size >= min_px) & (peak >= min_peak) & (peak < max_peak) & \
        ~mark & ~bar
    rows = np.nonzero(mask.any(axis=1))[0]
    t, b = rows[0], rows[-1] + 1
    added = np.zeros(n, bool)
    for _ in range(50):
        new = ok & ~added & np.array([bx[0] <= b + margin and bx[2] >= t - margin
                                      for bx in boxes])
        if not new.any():
            break
        added |= new
        for j in np.nonzero(new)[0]:
            t, b = min(t, boxes[j][0]), max(b, boxes[j][2])
    return mask | np.isin(lab, idx[added])


def _box(sl: tuple[slice, slice]) -> tuple[int, int, int, int]:
    return sl[0].start, sl[1].start, sl[0].stop, sl[1].stop


def _classify(mask: np.ndarray, bbox) -> tuple[str, float, float]:
    """A rectangle fills its bounding box; a sector is narrow at the top (the probe) and
    wide at the bottom."""
    t, l, b, r = bbox
    sub = mask[t:b, l:r]
    fill = float(sub.mean())
    widths = sub.sum(axis=1)
    hh = len(widths)
    top = float(np.median(widths[int(hh * 0.05): max(int(hh * 0.15), int(hh * 0.05) + 1)]))
    bottom = float(widths[int(hh * 0.5):].max())
    taper = top / max(bottom, 1.0)
    kind = "sector" if (taper < 0.8 or fill < 0.85) else "rectangle"
    return kind, fill, taper


def crop_to_fov(image: np.ndarray, fov: Fov) -> np.ndarray:
    """Crop to the FOV's bounding box and zero every pixel outside the FOV mask (removes the
    burnt-in text, rulers and the black surround). A screen with no FOV comes back all zero
    at its own size (the QC step then rejects it as empty)."""
    t, l, b, r = fov.bbox
    out = np.array(image[t:b, l:r], copy=True)
    out[~fov.mask[t:b, l:r]] = 0
    return out
