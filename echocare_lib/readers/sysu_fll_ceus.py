"""SYSU-FLL-CEUS (Sun Yat-sen University; Liang et al., IEEE TMI 2016): focal liver lesion
(HCC / HEM / FNH) from a contrast-enhanced ultrasound cine -- an *import* layout.

**The official release's layout was not available.** The data set was announced by its authors,
but no loader for the raw release and no description of its files were found
(shared/DATASETS.md, row SYSU-FLL-CEUS: *not found*). This reader therefore defines a simple,
documented import layout that a holder of the data can produce; it is not a reader of an
official release, and the simulator (``echocare_lib.sim.tasks``, task ``liver_lesion_ceus``)
stays the default for this application.

Import layout (folder ``SYSU-FLL-CEUS/`` under the data directory)::

    labels.csv    one row per case; columns
                    case_id          names the clip (below)
                    label            HCC | HEM | FNH (also: hepatocellular carcinoma,
                                     hemangioma/haemangioma, focal nodular hyperplasia)
                    patient_id       optional (default: case_id, noted in meta)
                    split            optional: train | test (an official split, if you have one)
                    pixel_spacing_mm optional: number
    clips/<case_id>/               the cine as frame images (PNG/JPEG/BMP/TIFF), in file-name
                                   order (numbers compare numerically), or
    clips/<case_id>.<mp4|avi|mov|mkv|wmv>   the cine as one video (read with imageio-ffmpeg)

Frames hold the contrast view only (crop a dual-view screen beforehand); colour frames are
converted with BT.601 luminance. One sample per case: ``frames`` float32 [T, 1, H, W] with at
most ``max_frames`` frames spread evenly over the cine (default 16; None keeps all), ``image`` =
the middle selected frame, ``label`` (0 HCC, 1 HEM, 2 FNH, the simulator's order) and
``label_name``. Every row and every clip is accounted for (used, or skipped with a reason).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import (SPLIT_NAMES, Collector, ReadResult, check_root,
                      image_error, import_layout_csv,
                      image_files, load_gray, natural_key, optional_float, read_csv_rows,
                      require_columns, select_frames, to_gray01)

DATASET = "SYSU-FLL-CEUS"
TASK = "liver_lesion_ceus"
CLASSES = ("HCC", "HEM", "FNH")
ALIASES = {"hcc": 0, "hepatocellular carcinoma": 0, "hem": 1, "hemangioma": 1,
           "haemangioma": 1, "hepatic hemangioma": 1, "fnh": 2,
           "focal nodular hyperplasia": 2}
CSV_NAME = "labels.csv"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".wmv", ".mpg", ".mpeg")
REQUIRED = (
    "labels.csv: case_id, label (HCC | HEM | FNH) [, patient_id, split, pixel_spacing_mm]",
    "clips/<case_id>/<frame>.png (frames in name order) or clips/<case_id>.mp4|.avi|...",
    "(import layout defined by this project: the official release's layout was unavailable)",
)


class _CaseError(Exception):
    pass


def _frames_from_folder(folder: Path, max_frames: int | None) -> tuple[np.ndarray, int]:
    files = image_files(folder)
    if not files:
        raise _CaseError(f"clips/{folder.name}/ holds no frame images")
    sel = select_frames(len(files), max_frames)
    frames = []
    for k in sel:
        try:
            frames.append(load_gray(files[k]))
        except (OSError, ValueError, SyntaxError) as exc:
            raise _CaseError(f"frame {files[k].name}: {image_error(exc)}") from None
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise _CaseError(f"frames differ in size: {sorted(shapes)}")
    return np.stack(frames), len(files)


def _frames_from_video(path: Path, max_frames: int | None) -> tuple[np.ndarray, int]:
    try:
        import imageio.v2 as iio
    except ImportError as exc:  # pinned in pyproject; kept explicit for a clear message
        raise ImportError("Reading CEUS videos needs imageio and imageio-ffmpeg: "
                          "pip install imageio imageio-ffmpeg") from exc
    try:
        reader = iio.get_reader(path, format="FFMPEG")
    except Exception as exc:  # imageio raises a variety of errors for unreadable videos
        raise _CaseError(f"unreadable video ({type(exc).__name__}: {exc})") from None
    try:
        try:
            n = reader.count_frames()
        except Exception as exc:
            raise _CaseError(f"cannot count the video's frames ({exc})") from None
        if n < 1:
            raise _CaseError("video has no frames")
        sel = set(select_frames(n, max_frames).tolist())
        last = max(sel)
        frames = []
        try:
            for k, fr in enumerate(reader):
                if k in sel:
                    frames.append(to_gray01(fr))
                if k >= last:
                    break
        except Exception as exc:
            raise _CaseError(f"video decoding failed after {len(frames)} frame(s) ({exc})") \
                from None
        if not frames:
            raise _CaseError("no frame could be decoded")
        return np.stack(frames), n
    finally:
        reader.close()


def read_sysu_fll_ceus(root, *, limit: int | None = None, strict: bool = False,
                       max_frames: int | None = 16) -> ReadResult:
    """Read the SYSU-FLL-CEUS import layout under ``root`` (module docstring); ``limit``: at
    most that many cases; ``max_frames``: frames kept per cine (None: all); ``strict``: raise
    at the first problem instead of skipping and reporting."""
    root = check_root(root, DATASET, REQUIRED)
    select_frames(1, max_frames)  # validates max_frames
    csv_path = import_layout_csv(root, CSV_NAME, DATASET, REQUIRED)
    header, rows = read_csv_rows(csv_path)
    require_columns(csv_path, header, ("case_id", "label"), DATASET)
    col = Collector(DATASET, root, strict=strict, limit=limit)
    clips_dir = root / "clips"
    clips: dict[str, Path] = {}
    if clips_dir.is_dir():
        for p in sorted(clips_dir.iterdir(), key=lambda p: natural_key(p.name)):
            if p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES:
                key = p.name if p.is_dir() else p.stem
                col.expect(col.rel(p))
                if key in clips:
                    col.skip(col.rel(p), f"a second clip for case {key!r} "
                                         f"(also {col.rel(clips[key])})")
                else:
                    clips[key] = p
    has_pid = "patient_id" in header
    for i, _ in enumerate(rows, start=2):
        col.expect(f"{CSV_NAME}#line {i}")
    seen: set[str] = set()
    for i, row in enumerate(rows, start=2):
        if col.full:
            break
        item = f"{CSV_NAME}#line {i}"
        case = row["case_id"]
        clip = clips.get(case)
        if clip is not None:
            seen.add(case)
        try:
            if not case:
                raise _CaseError("empty case_id")
            label = ALIASES.get(row["label"].strip().lower())
            if label is None:
                raise _CaseError(f"label {row['label']!r} is not one of HCC, HEM, FNH")
            split_text = row.get("split", "")
            if split_text.lower() not in SPLIT_NAMES:
                raise _CaseError(f"split {split_text!r} is not one of train, val, test")
            try:
                spacing = optional_float(row.get("pixel_spacing_mm"))
            except ValueError:
                raise _CaseError(f"pixel_spacing_mm {row.get('pixel_spacing_mm')!r} is not a "
                                 "number") from None
            if has_pid and not row.get("patient_id"):
                raise _CaseError("empty patient_id cell")
            if clip is None:
                raise _CaseError(f"no clips/{case}/ folder nor clips/{case}.<video>")
            frames, n_total = (_frames_from_folder(clip, max_frames) if clip.is_dir()
                               else _frames_from_video(clip, max_frames))
        except _CaseError as exc:
            col.skip(item, f"case {case!r}: {exc}")
            if clip is not None:
                col.skip(col.rel(clip), f"its row ({item}) was skipped: {exc}")
            continue
        frames = frames[:, None].astype(np.float32)
        pid = row["patient_id"] if has_pid else case
        col.add({"image": frames[len(frames) // 2], "frames": frames, "label": label,
                 "label_name": CLASSES[label],
                 "meta": {"dataset": DATASET, "task": TASK, "case_id": case,
                          "patient_id": pid,
                          "patient_id_source": "patient_id column" if has_pid
                          else "case_id (labels.csv has no patient_id column)",
                          "pixel_spacing_mm": spacing, "split": SPLIT_NAMES[split_text.lower()],
                          "source_path": str(clip), "source": "real", "modality": "CEUS",
                          "n_frames": len(frames), "n_frames_total": n_total,
                          "layout": "import (official layout unavailable)"}},
                item, col.rel(clip))
    if not col.full:
        for key, p in clips.items():
            if key not in seen:
                col.skip(col.rel(p), f"no row of {CSV_NAME} has case_id {key!r}")
    return col.finish()
