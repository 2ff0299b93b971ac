"""CAMUS (Cardiac Acquisitions for Multi-structure Ultrasound Segmentation; Leclerc et al.,
IEEE TMI 2019): left-ventricular ejection fraction from apical 2CH / 4CH half cycles.

Layout (shared/DATASETS.md, row CAMUS, confidence *confirmed*; independent loaders
vitalab/vital and adamtupper/ultrabench agree):

Current release (NIfTI)::

    database_nifti/patientNNNN/
        patientNNNN_{2CH,4CH}_half_sequence.nii.gz      ED -> ES frames of one view
        patientNNNN_{2CH,4CH}_half_sequence_gt.nii.gz   their label maps (optional)
        patientNNNN_{2CH,4CH}_{ED,ES}[_gt].nii.gz       single frames (ED_gt: mask fallback)
        Info_{2CH,4CH}.cfg                               lines 'Key: value': ED, ES (1-based
                                                         frame numbers in the half sequence),
                                                         NbFrame, Sex, Age, ImageQuality, EF,
                                                         FrameRate
    database_split/subgroup_{training,validation,testing}.txt   one patient name per line

2019 release: the same folders per patient (under ``training/`` / ``testing/``) with
``.mhd`` + ``.raw`` images (``patientNNNN_{2CH,4CH}_sequence.mhd`` is the ED -> ES sequence)
and cfg keys ``LVedv``, ``LVesv``, ``LVef`` instead of ``EF``. The ``.mhd`` header (DimSize,
ElementType, ElementDataFile, ElementSpacing, byte order, optional zlib compression) is parsed
here and the raw data read with numpy. Its split is the parent folder (``training`` ->
``train``, ``testing`` -> ``test``) when no ``database_split`` exists.

Axis order: nibabel returns CAMUS NIfTI volumes as (W, H[, T]) -- x (image column) first;
the reader transposes them to (H, W) / (T, H, W). MetaImage raw data is stored x fastest, so
numpy reads it as (T, H, W) directly. NIfTI zooms / MHD ElementSpacing are (column, row[,
time]) spacings; ``meta['pixel_spacing_rc_mm']`` keeps (row, column) and
``meta['pixel_spacing_mm']`` is their common value when the pixels are square, else None
(the downstream code expects one number).

Intensities: integer images are divided by 255 (by 65535 when values exceed 255); float
images already in [0, 1] are kept, those in [0, 255] divided by 255.

Sample (one view of one patient; ``views`` chooses which, each view of a patient is its own
sample with the same ``patient_id``): ``frames`` float32 [T, 1, H, W] in [0, 1] (the half
sequence; ``max_frames`` keeps at most that many spread evenly, plus ED and ES),
``image`` = the ED frame (``frames[ed_index]``; ED is the first frame of CAMUS half sequences,
so this is ``frames[0]`` as in the simulator), ``ef`` (float, from the cfg: ``EF`` or 2019's
``LVef``), ``edv_ml`` / ``esv_ml`` (2019 cfg only), ``ed_index`` / ``es_index`` (0-based, into
``frames``), ``masks`` uint8 [T, H, W] (0 bg, 1 LV, 2 myocardium, 3 LA) when the
half-sequence ground truth exists (else absent), ``mask`` = the ED mask (from ``masks`` or
the ``_ED_gt`` file; absent when neither exists), ``view`` (``"2CH"``/``"4CH"``) and ``meta``
(case_id ``patientNNNN_4CH``, patient_id ``patientNNNN``, split ``train``/``val``/``test``
from database_split (``release_split`` keeps its name) or None, frame_rate_hz,
image_quality, sex, age, ...). A missing file or cfg key, an unreadable volume, ED/ES outside
the sequence or a label value above 3 skips that view with its reason.

Inputs accounted for (used, or skipped with the reason), per patient and chosen view: the cfg,
the sequence, its ground truth (or, without one, the ``_ED_gt`` file). A ``.raw`` file goes
with its ``.mhd`` header; the single-frame ``_ED`` / ``_ES`` images are not read (the half
sequence holds those frames) and views not asked for are not listed.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np

from ._common import (Collector, DataFormatError, ReadResult, check_root, natural_key,
                      select_frames)

DATASET = "CAMUS"
TASK = "echo_ef"
CLASSES = ("background", "lv", "myocardium", "la")
VIEWS = ("2CH", "4CH")
REQUIRED = (
    "database_nifti/patientNNNN/patientNNNN_{2CH,4CH}_half_sequence[_gt].nii.gz",
    "database_nifti/patientNNNN/Info_{2CH,4CH}.cfg: ED, ES (1-based), NbFrame, EF, FrameRate, ...",
    "database_split/subgroup_{training,validation,testing}.txt (optional)",
    "(or the 2019 release: patientNNNN_{2CH,4CH}_sequence.mhd/.raw, cfg with LVedv, LVesv, LVef)",
)
SPLIT_NAMES = {"training": "train", "validation": "val", "testing": "test"}
_PATIENT = re.compile(r"^patient\d+$", re.IGNORECASE)
_MHD_TYPES = {"MET_UCHAR": "u1", "MET_CHAR": "i1", "MET_USHORT": "u2", "MET_SHORT": "i2",
              "MET_UINT": "u4", "MET_INT": "i4", "MET_ULONG": "u8", "MET_LONG": "i8",
              "MET_FLOAT": "f4", "MET_DOUBLE": "f8"}


class _ViewError(Exception):
    pass


# --------------------------------------------------------------------------- files
def read_cfg(path: Path) -> dict[str, str]:
    """``Key: value`` lines of an Info_*.cfg file (keys and values stripped)."""
    out = {}
    for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            if k.strip():
                out[k.strip()] = v.strip()
    return out


def read_mhd(path: Path) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """(array, ElementSpacing) of a MetaImage ``.mhd`` + raw pair; the array is in numpy order
    (slowest axis first: (T, H, W) for a 2D+t sequence, (H, W) for one frame). Raises
    ValueError for an unsupported or inconsistent header."""
    hdr = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            hdr[k.strip()] = v.strip()
    try:
        dims = [int(v) for v in hdr["DimSize"].split()]
        etype = hdr["ElementType"]
        data_file = hdr["ElementDataFile"]
    except KeyError as exc:
        raise ValueError(f"MetaImage header lacks {exc.args[0]}") from None
    if etype not in _MHD_TYPES:
        raise ValueError(f"unsupported ElementType {etype}")
    if data_file.upper() == "LOCAL" or data_file.upper().startswith("LIST"):
        raise ValueError(f"ElementDataFile {data_file!r} is not supported (separate raw file "
                         "expected)")
    if int(hdr.get("ElementNumberOfChannels", "1")) != 1:
        raise ValueError("multi-channel MetaImage not supported")
    msb = (hdr.get("BinaryDataByteOrderMSB") or hdr.get("ElementByteOrderMSB") or "False")
    dtype = np.dtype(_MHD_TYPES[etype]).newbyteorder(">" if msb.lower() == "true" else "<")
    raw = (path.parent / data_file).read_bytes()
    if hdr.get("CompressedData", "False").lower() == "true":
        raw = zlib.decompress(raw)
    n = int(np.prod(dims))
    if len(raw) != n * dtype.itemsize:
        raise ValueError(f"{data_file} holds {len(raw)} bytes, DimSize {dims} x "
                         f"{dtype.itemsize} needs {n * dtype.itemsize}")
    arr = np.frombuffer(raw, dtype=dtype).reshape(dims[::-1]).astype(dtype.newbyteorder("="))
    spacing = None
    if "ElementSpacing" in hdr:
        spacing = tuple(float(v) for v in hdr["ElementSpacing"].split())
    return arr, spacing


def read_volume(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    """(array (H, W) or (T, H, W), (row, column) spacing in mm or None) of a ``.nii[.gz]`` or
    ``.mhd`` file. NIfTI: nibabel's (W, H[, T]) transposed; MHD: numpy order already."""
    name = path.name.lower()
    if name.endswith(".mhd"):
        arr, sp = read_mhd(path)
        return arr, ((sp[1], sp[0]) if sp and len(sp) >= 2 else None)
    try:
        import nibabel as nib
    except ImportError as exc:  # pinned in pyproject; kept explicit for a clear message
        raise ImportError("Reading CAMUS NIfTI files needs nibabel: pip install nibabel") \
            from exc
    img = nib.load(str(path))
    arr = np.asanyarray(img.dataobj)
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = arr.T
    elif arr.ndim == 3:
        arr = arr.transpose(2, 1, 0)
    else:
        raise ValueError(f"volume has shape {arr.shape}; expected (W, H) or (W, H, T)")
    zooms = img.header.get_zooms()
    sp = (float(zooms[1]), float(zooms[0])) if len(zooms) >= 2 else None
    return np.ascontiguousarray(arr), sp


def to01(arr: np.ndarray) -> np.ndarray:
    """Image intensities to float32 in [0, 1] (see the module docstring)."""
    a = np.asarray(arr)
    top = float(a.max()) if a.size else 0.0
    if a.dtype.kind in "ui" or a.dtype == np.bool_:
        scale = 255.0 if top <= 255 else 65535.0
    else:
        scale = 1.0 if top <= 1.0 else 255.0
    return np.clip(a.astype(np.float64) / scale, 0, 1).astype(np.float32)


def _labels(arr: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise _ViewError(f"{what}: non-integer label values")
    vals = np.unique(a)
    bad = [v for v in vals.tolist() if v < 0 or v > 3]
    if bad:
        raise _ViewError(f"{what}: label values {bad[:5]} outside 0..3 "
                         "(0 bg, 1 LV, 2 myocardium, 3 LA)")
    return a.astype(np.uint8)


# --------------------------------------------------------------------------- discovery
def _find_patients(root: Path, max_depth: int = 3) -> list[Path]:
    found, frontier = [], [root]
    for _ in range(max_depth + 1):
        nxt = []
        for d in frontier:
            for c in d.iterdir():
                if c.is_dir():
                    (found if _PATIENT.match(c.name) else nxt).append(c)
        frontier = nxt
    return sorted(found, key=lambda p: natural_key(p.as_posix()))


def _read_splits(root: Path) -> tuple[dict[str, str], Path | None]:
    """patient name -> release split name from database_split/subgroup_*.txt."""
    cands = [root / "database_split"] + [c / "database_split" for c in root.iterdir()
                                         if c.is_dir()]
    folder = next((c for c in cands if c.is_dir()), None)
    if folder is None:
        return {}, None
    out: dict[str, str] = {}
    for name in SPLIT_NAMES:
        f = folder / f"subgroup_{name}.txt"
        if not f.is_file():
            continue
        for line in f.read_text(encoding="utf-8-sig").splitlines():
            pid = line.strip()
            if not pid:
                continue
            if pid in out and out[pid] != name:
                raise DataFormatError(f"{DATASET}: {pid} is listed in subgroup_{out[pid]}.txt "
                                      f"and subgroup_{name}.txt under {folder}")
            out[pid] = name
    return out, folder


def _first(folder: Path, stem: str, suffixes=(".nii.gz", ".nii", ".mhd")) -> Path | None:
    for s in suffixes:
        p = folder / f"{stem}{s}"
        if p.is_file():
            return p
    return None


def _cfg_number(cfg: dict, key: str, path: Path, kind=float):
    if key not in cfg:
        raise _ViewError(f"{path.name} lacks key {key!r}")
    try:
        v = float(cfg[key])
    except ValueError:
        raise _ViewError(f"{path.name}: {key} = {cfg[key]!r} is not a number") from None
    if not np.isfinite(v):
        raise _ViewError(f"{path.name}: {key} = {cfg[key]!r} is not finite")
    if kind is int:
        if v != int(v):
            raise _ViewError(f"{path.name}: {key} = {cfg[key]!r} is not a frame number")
        return int(v)
    return v


# --------------------------------------------------------------------------- reader
def read_camus(root, *, limit: int | None = None, strict: bool = False,
               views=("4CH",), max_frames: int | None = None) -> ReadResult:
    """Read CAMUS under ``root`` (see the module docstring); ``views``: which apical views
    to read (``"2CH"``, ``"4CH"``; one sample per patient and view); ``max_frames``: at most
    that many frames of each half sequence spread evenly, plus ED and ES (None: all);
    ``limit``: at most that many samples; ``strict``: raise :class:`DataFormatError` at the
    first problem instead of skipping and reporting."""
    root = check_root(root, DATASET, REQUIRED)
    if isinstance(views, str):
        views = (views,)
    views = tuple(str(v).upper() for v in views)
    bad = [v for v in views if v not in VIEWS]
    if bad or not views:
        raise ValueError(f"views must be a non-empty subset of {VIEWS}, got {views!r}")
    select_frames(1, max_frames)  # validates max_frames
    patients = _find_patients(root)
    if not patients:
        raise DataFormatError(f"{DATASET}: no patientNNNN folder under {root}; expected:\n  "
                              + "\n  ".join(REQUIRED))
    splits, split_dir = _read_splits(root)
    col = Collector(DATASET, root, strict=strict, limit=limit)
    if split_dir is not None:
        on_disk = {p.name for p in patients}
        missing = sorted(set(splits) - on_disk, key=natural_key)
        if missing:
            col.note(col.rel(split_dir), f"{len(missing)} patient(s) listed but not found: "
                                         f"{missing[:5]}")
    jobs = []
    for pdir in patients:
        for view in views:
            cfg = pdir / f"Info_{view}.cfg"
            seq = (_first(pdir, f"{pdir.name}_{view}_half_sequence")
                   or _first(pdir, f"{pdir.name}_{view}_sequence"))
            gt = _first(pdir, _stem(seq) + "_gt") if seq is not None else None
            ed_gt = _first(pdir, f"{pdir.name}_{view}_ED_gt") if gt is None else None
            files = [p for p in (cfg, seq, gt, ed_gt) if p is not None]
            for p in files:
                col.expect(col.rel(p))
            jobs.append((pdir, view, cfg, seq, gt, ed_gt, files))
    unlisted = []
    for pdir, view, cfg, seq, gt, ed_gt, files in jobs:
        if col.full:
            break
        pid = pdir.name
        if split_dir is not None:
            release_split = splits.get(pid)
            if release_split is None and view == views[0]:
                unlisted.append(pid)
        else:
            parent = pdir.parent.name.lower()
            release_split = parent if parent in ("training", "testing") else None
        try:
            sample = _read_view(col, pdir, view, cfg, seq, gt, ed_gt, max_frames)
        except _ViewError as exc:
            for p in files:
                col.skip(col.rel(p), f"{pid} {view}: {exc}")
            continue
        sample["meta"].update({"split": SPLIT_NAMES.get(release_split or ""),
                               "release_split": release_split})
        col.add(sample, *[col.rel(p) for p in files])
    if unlisted:
        col.note(col.rel(split_dir), f"{len(unlisted)} patient folder(s) in no subgroup file "
                                     f"(split None): {unlisted[:5]}")
    return col.finish()


def _stem(path: Path) -> str:
    name = path.name
    for s in (".nii.gz", ".nii", ".mhd"):
        if name.lower().endswith(s):
            return name[:-len(s)]
    return path.stem


def _load(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    try:
        return read_volume(path)
    except ImportError:
        raise
    except Exception as exc:  # corrupt files raise OSError, EOFError, zlib.error, nibabel's
        # ImageFileError, ValueError...: report the file, never crash the whole read
        raise _ViewError(f"unreadable {path.name} ({type(exc).__name__}: {exc})") from None


def _read_view(col: Collector, pdir: Path, view: str, cfg_path: Path, seq: Path | None,
               gt: Path | None, ed_gt: Path | None, max_frames: int | None) -> dict:
    pid = pdir.name
    if not cfg_path.is_file():
        raise _ViewError(f"{cfg_path.name} not found")
    if seq is None:
        raise _ViewError(f"no {pid}_{view}_half_sequence.nii.gz (nor 2019's "
                         f"{pid}_{view}_sequence.mhd)")
    try:
        cfg = read_cfg(cfg_path)
    except OSError as exc:
        raise _ViewError(f"unreadable {cfg_path.name} ({exc})") from None
    ed = _cfg_number(cfg, "ED", cfg_path, int)
    es = _cfg_number(cfg, "ES", cfg_path, int)
    ef_key = "EF" if "EF" in cfg else ("LVef" if "LVef" in cfg else None)
    if ef_key is None:
        raise _ViewError(f"{cfg_path.name} lacks key 'EF' (nor the 2019 release's 'LVef')")
    ef = _cfg_number(cfg, ef_key, cfg_path)
    extra = {}
    for key, name in (("LVedv", "edv_ml"), ("LVesv", "esv_ml")):
        if key in cfg:
            extra[name] = _cfg_number(cfg, key, cfg_path)
    nb = _cfg_number(cfg, "NbFrame", cfg_path, int) if "NbFrame" in cfg else None
    rate = _cfg_number(cfg, "FrameRate", cfg_path) if "FrameRate" in cfg else None
    vol, spacing = _load(seq)
    if vol.ndim == 2:
        vol = vol[None]
    n_total = vol.shape[0]
    if not (1 <= ed <= n_total and 1 <= es <= n_total):
        raise _ViewError(f"ED={ed} / ES={es} (1-based) outside the {n_total} frames of "
                         f"{seq.name}")
    masks = ed_mask = None
    if gt is not None:
        gvol, _ = _load(gt)
        if gvol.ndim == 2:
            gvol = gvol[None]
        if gvol.shape != vol.shape:
            raise _ViewError(f"{gt.name} has shape {gvol.shape}, the sequence {vol.shape}")
        masks = _labels(gvol, gt.name)
    elif ed_gt is not None:
        m, _ = _load(ed_gt)
        m = np.squeeze(m)
        if m.shape != vol.shape[1:]:
            raise _ViewError(f"{ed_gt.name} has shape {m.shape}, the frames {vol.shape[1:]}")
        ed_mask = _labels(m, ed_gt.name)
    if nb is not None and nb != n_total:
        col.note(col.rel(seq), f"{n_total} frames, {cfg_path.name} says NbFrame {nb}")
    sel = np.array(sorted(set(select_frames(n_total, max_frames).tolist()) | {ed - 1, es - 1}))
    pos = {int(k): i for i, k in enumerate(sel)}
    frames = to01(vol[sel])[:, None]
    ed_i, es_i = pos[ed - 1], pos[es - 1]
    sample: dict = {"image": frames[ed_i], "frames": frames, "ef": float(ef), **extra,
                    "ed_index": ed_i, "es_index": es_i}
    if masks is not None:
        sample["masks"] = np.ascontiguousarray(masks[sel])
        sample["mask"] = sample["masks"][ed_i]
    elif ed_mask is not None:
        sample["mask"] = ed_mask
    sample["view"] = view
    sp_mm = (float(spacing[0]) if spacing and abs(spacing[0] - spacing[1])
             <= 1e-6 * max(spacing) else None)
    ann = gt if gt is not None else (ed_gt if ed_mask is not None else None)
    sample["meta"] = {
        "dataset": DATASET, "task": TASK, "case_id": f"{pid}_{view}", "patient_id": pid,
        "pixel_spacing_mm": sp_mm, "pixel_spacing_rc_mm": spacing, "split": None,
        "source_path": str(seq), "annotation_path": str(ann) if ann is not None else None,
        "cfg_path": str(cfg_path), "source": "real", "view": view,
        "layout": "mhd (2019 release)" if seq.suffix.lower() == ".mhd" else "nifti",
        "ef_key": ef_key, "frame_rate_hz": rate, "image_quality": cfg.get("ImageQuality"),
        "sex": cfg.get("Sex"), "age": cfg.get("Age"), "n_frames": int(len(sel)),
        "n_frames_total": int(n_total), "ed_frame_1based": ed, "es_frame_1based": es,
        "mask_source": ("half_sequence_gt" if masks is not None
                        else "ED_gt" if ed_mask is not None else None),
    }
    return sample
