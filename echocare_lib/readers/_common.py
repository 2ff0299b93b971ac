"""Shared pieces of the real-data readers: errors, the result list that accounts for every input,
image loading (grey in [0, 1], BT.601 luminance for colour) and small parsing helpers.

Every reader registers each input it was given (a file, a CSV row, an hdf5 clip) and resolves it
as *used* or *skipped with a reason*; nothing is dropped silently. Skips are listed in one
:class:`ReaderWarning` and kept on the returned :class:`ReadResult` (``.skipped``, ``.inputs``).
With ``strict=True`` the first problem raises :class:`DataFormatError` instead.
"""
from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: ITU-R BT.601 luma weights (R, G, B): the grey value of a colour pixel.
BT601 = (0.299, 0.587, 0.114)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class DataNotFoundError(FileNotFoundError):
    """A data set's folder (or the data directory) is not where the readers look for it."""


class DataFormatError(ValueError):
    """A data set's files do not have the layout its reader expects (structural problem, or the
    first per-item problem when a reader runs with ``strict=True``)."""


class ReaderWarning(UserWarning):
    """Some inputs were skipped (each listed with its reason) or need attention."""


@dataclass(frozen=True)
class Skipped:
    item: str    # the input: a path, or path#detail for a row / clip / mark inside a file
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


class ReadResult(list):
    """The samples a reader yields (a plain ``list`` of dicts) plus its accounting.

    ``skipped``: every input that produced no sample, with the reason; ``notes``: inputs that
    were used but deserve a look (e.g. a size column disagreeing with the image);
    ``inputs``: ``{item: "used" | "skipped: reason" | "not read: limit reached"}`` for every
    input the reader found; ``truncated``: ``limit`` stopped the read early."""

    def __init__(self, samples=(), *, dataset: str = "", root: str = "",
                 skipped=(), notes=(), inputs=None, truncated: bool = False):
        super().__init__(samples)
        self.dataset = dataset
        self.root = root
        self.skipped: list[Skipped] = list(skipped)
        self.notes: list[Skipped] = list(notes)
        self.inputs: dict[str, str] = dict(inputs or {})
        self.truncated = truncated


class Collector:
    """Book-keeping for one read: every input is expected, then used or skipped."""

    def __init__(self, dataset: str, root: Path, *, strict: bool = False,
                 limit: int | None = None):
        if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 0):
            raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
        self.dataset, self.root, self.strict, self.limit = dataset, Path(root), strict, limit
        self.status: dict[str, str] = {}
        self.skipped: list[Skipped] = []
        self.notes: list[Skipped] = []
        self.samples: list[dict] = []

    def rel(self, path: "str | Path") -> str:
        p = Path(path)
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)

    def expect(self, item: str) -> None:
        self.status.setdefault(item, "pending")

    def use(self, item: str) -> None:
        self.status[item] = "used"

    def skip(self, item: str, reason: str) -> None:
        if self.strict:
            raise DataFormatError(f"{self.dataset}: {item}: {reason} (under {self.root})")
        if self.status.get(item, "pending") == "pending":
            self.status[item] = f"skipped: {reason}"
            self.skipped.append(Skipped(item, reason))

    def note(self, item: str, text: str) -> None:
        self.notes.append(Skipped(item, text))

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.samples) >= self.limit

    def add(self, sample: dict, *items: str) -> None:
        self.samples.append(sample)
        for it in items:
            self.use(it)

    def finish(self) -> ReadResult:
        pending = [k for k, v in self.status.items() if v == "pending"]
        if pending and not self.full:
            raise RuntimeError(f"{self.dataset} reader left inputs unaccounted: {pending[:5]}")
        for k in pending:
            self.status[k] = "not read: limit reached"
        if self.skipped or self.notes:
            lines = [f"{self.dataset} (under {self.root}): {len(self.samples)} samples; "
                     f"{len(self.skipped)} of {len(self.status)} inputs skipped"]
            lines += [f"  - skipped {s}" for s in self.skipped]
            lines += [f"  - note {s}" for s in self.notes]
            warnings.warn("\n".join(lines), ReaderWarning, stacklevel=3)
        return ReadResult(self.samples, dataset=self.dataset, root=str(self.root),
                          skipped=self.skipped, notes=self.notes, inputs=self.status,
                          truncated=bool(pending))


# --------------------------------------------------------------------------- images
def to_gray01(arr: np.ndarray) -> np.ndarray:
    """Any decoded image array ([H, W] or [H, W, C], integer or float) -> float32 [H, W] in
    [0, 1]; colour (3 or 4 channels, alpha dropped) -> BT.601 luminance."""
    a = np.asarray(arr)
    if a.ndim == 3:
        if a.shape[2] == 1:
            a = a[..., 0]
        elif a.shape[2] == 2:  # grey + alpha
            a = a[..., 0]
        elif a.shape[2] in (3, 4):
            rgb = a[..., :3].astype(np.float64)
            a = rgb @ np.asarray(BT601)
            a = _scale(a, arr.dtype)
            return np.clip(a, 0, 1).astype(np.float32)
        else:
            raise ValueError(f"cannot convert an image with {a.shape[2]} channels to grey")
    elif a.ndim != 2:
        raise ValueError(f"expected a 2-D image (or 2-D + channels), got shape {a.shape}")
    return np.clip(_scale(a.astype(np.float64), a.dtype), 0, 1).astype(np.float32)


def _scale(a: np.ndarray, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return a
    if dtype.kind == "u":
        return a / float(np.iinfo(dtype).max)
    if dtype.kind == "i":  # PIL's 32-bit mode "I" holds 16-bit PNGs
        top = float(a.max()) if a.size else 0.0
        return a / (255.0 if top <= 255 else 65535.0)
    return a  # float: assumed already in [0, 1]


def _open(path: Path):
    from PIL import Image

    im = Image.open(path)
    im.load()  # decode now: a truncated or corrupt file fails here, inside the caller's try
    return im


def load_gray(path: "str | Path") -> np.ndarray:
    """Decode an image file to float32 [H, W] in [0, 1] (colour -> BT.601 luminance).
    Raises OSError / ValueError (PIL's errors) for unreadable files."""
    with _open(Path(path)) as im:
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        elif im.mode == "1":
            return np.asarray(im, dtype=np.float32)
        return to_gray01(np.asarray(im))


def load_labels(path: "str | Path") -> np.ndarray:
    """Decode a label-map image to its raw integer values, [H, W] uint8: palette images give
    their indices, 1-bit images 0/1, grey images their grey values. A colour image is accepted
    only if its channels are equal (a grey map saved as RGB)."""
    with _open(Path(path)) as im:
        if im.mode == "1":
            return np.asarray(im, dtype=np.uint8)
        a = np.asarray(im)
    if a.ndim == 3:
        if a.shape[2] in (2, 4):
            a = a[..., :-1]
        if not np.all(a == a[..., :1]):
            raise ValueError("label map is a colour image with differing channels "
                             "(expected class indices or a grey/palette map)")
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"label map has shape {a.shape}, expected [H, W]")
    if a.size and (a.min() < 0 or a.max() > 255):
        raise ValueError(f"label values outside 0..255 (min {a.min()}, max {a.max()})")
    return a.astype(np.uint8)


def image_error(exc: BaseException) -> str:
    return f"unreadable image ({type(exc).__name__}: {exc})"


# --------------------------------------------------------------------------- misc helpers
def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV read as text (UTF-8, optional BOM); cells stripped."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = []
        for raw in reader:
            rows.append({(k or "").strip(): (v or "").strip() if isinstance(v, str) else ""
                         for k, v in raw.items()})
    return header, rows


def require_columns(path: Path, header: list[str], needed, dataset: str) -> None:
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataFormatError(f"{dataset}: {path} lacks column(s) {missing}; it has {header}")


def natural_key(s: str):
    """Sort key: digit runs compare as numbers ('2' < '10')."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def select_frames(n: int, max_frames: int | None) -> np.ndarray:
    """Indices of at most ``max_frames`` frames spread evenly over ``n`` (all when None)."""
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be None or >= 1, got {max_frames}")
    if max_frames is None or n <= max_frames:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(int))


def optional_float(text: str | None) -> float | None:
    if text is None or str(text).strip() in ("", "nan", "NaN", "None"):
        return None
    v = float(text)
    return v if np.isfinite(v) else None


#: split names accepted in the import layouts' CSV ``split`` column -> the project's names
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "test": "test", "testing": "test", "": None}


def import_layout_csv(root: Path, csv_name: str, dataset: str, required) -> Path:
    """The label CSV of an import layout (a data set whose official layout was unavailable);
    a clear :class:`DataFormatError` describing the layout when it is missing."""
    csv_path = root / csv_name
    if not csv_path.is_file():
        raise DataFormatError(f"{dataset}: {csv_path} not found. The official release's layout "
                              "was unavailable; this reader reads an import layout:\n  "
                              + "\n  ".join(required))
    return csv_path


def check_root(root: "str | Path", dataset: str, required) -> Path:
    p = Path(root).expanduser()
    if not p.is_dir():
        need = "\n  ".join(required)
        raise DataNotFoundError(f"{dataset}: folder {str(p)!r} does not exist; it should hold\n"
                                f"  {need}")
    return p


def image_files(folder: Path, recursive: bool = True) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.glob("*")
    return sorted((p for p in it if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.as_posix()))
