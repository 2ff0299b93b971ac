"""Curation step 1: ingest raw files into decoded frames, safely and with a full account.

EchoAtlas pools public collections that arrive as loose images, DICOM files, cine loops,
videos and archives. This step turns one input path into a list of :class:`Item` s: one per
decoded image or sampled frame, each either ``kept`` (with its pixels) or ``rejected`` (with
a reason a person can act on). Every input yields at least one item, so the curation report
accounts for every file.

Safety, because public archives are untrusted input:

* **Nothing is written to disk.** Archives are read member by member in memory; nothing is
  extracted, so no member can land outside any output folder.
* Formats are recognised by their magic bytes, never by the extension.
* Archive members with absolute paths, drive letters, ``..`` components, links or device
  entries are rejected; member count, declared and *actually read* uncompressed bytes, and
  compression ratio are bounded (zip bombs, lying headers); archives nest one level at most.
* Image dimensions are checked against :attr:`Limits.max_pixels` from the header, before any
  pixel is decoded (decompression bombs).
* Symbolic links are followed only when their target stays inside the input root.

All functions are top-level and take and return plain data, so a Dask bag or futures can call
them on many files (``client.map(ingest_file, paths)``).
"""
from __future__ import annotations

import io
import os
import re
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable

import numpy as np
from PIL import Image

__all__ = ["Limits", "Item", "ingest_file", "ingest_paths", "walk_inputs", "sniff_format"]


@dataclass(frozen=True)
class Limits:
    """Bounds that keep hostile or broken inputs from exhausting memory, disk or time.

    Defaults suit a laptop; raise them deliberately for genuinely large files."""
    max_file_bytes: int = 1 << 30                     # one file or archive member, read in memory
    max_archive_members: int = 100_000                # entries in one archive
    max_total_uncompressed_bytes: int = 8 << 30       # all members of one archive together
    max_compression_ratio: float = 100.0              # uncompressed / compressed, per member
    ratio_min_bytes: int = 1 << 20                    # ratio checked only above this size
    max_pixels: int = 50_000_000                      # width x height of one frame (50 MP)
    max_frames: int = 10_000                          # frames read from one cine or video
    frame_step: int = 10                              # keep every frame_step-th frame


@dataclass
class Item:
    """One decoded image or sampled frame, or the rejection of an input (with its reason)."""
    source_path: str                  # archive members: "archive.zip!inner/name.png"
    frame: int | None = None          # frame index in a cine / video / multi-page file
    status: str = "kept"              # "kept" | "rejected"
    reason: str = ""                  # "" when kept
    image: np.ndarray | None = None   # uint8 [H, W] or [H, W, 3]; None when rejected
    format: str = ""                  # png, jpeg, bmp, tiff, dicom, mp4, avi, zip, tar, ...
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        return self.status == "kept"


RAR_MISSING = "RAR support not installed: pip install rarfile and unrar"
_DICOM_HINT = ("install a decoder for this transfer syntax (pip install pylibjpeg "
               "pylibjpeg-libjpeg, or python-gdcm), then ingest the file again")
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")
_SUPPORTED = "PNG, JPEG, BMP, TIFF, DICOM, MP4/MOV/AVI/MKV, ZIP, TAR(.gz/.bz2/.xz), RAR"
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20


# ----------------------------------------------------------------------------- helpers
def _reject(source: str, reason: str, fmt: str = "", frame: int | None = None,
            **meta: Any) -> Item:
    return Item(source, frame, "rejected", reason, None, fmt, dict(meta))


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def sniff_format(head: bytes, name: str = "") -> tuple[str, str]:
    """(kind, format) from a file's first 512+ bytes; kind is image, dicom, video, archive
    or unknown. The name is consulted only where a format has no signature (DICOM files
    without the 128-byte preamble, old tar files, compressed tar streams)."""
    low = name.lower()
    if head[128:132] == b"DICM":  # first: a DICOM preamble may hold a TIFF header (PS3.10 7.5)
        return "dicom", "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head[:3] == b"\xff\xd8\xff":
        return "image", "jpeg"
    if head[:2] == b"BM":
        return "image", "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image", "tiff"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "archive", "zip"
    if head[:6] == b"Rar!\x1a\x07":  # RAR 4 (then \x00) and RAR 5 (then \x01\x00)
        return "archive", "rar"
    if head[257:262] == b"ustar":
        return "archive", "tar"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return "archive", "tar"  # a compressed stream: opened as a tar; not a tar -> rejected
    if head[4:8] == b"ftyp":
        return "video", "mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video", "mkv"
    if low.endswith((".dcm", ".dicom")):
        return "dicom", "dicom"  # DICOM without preamble: pydicom decides
    if low.endswith(".tar"):
        return "archive", "tar"  # pre-POSIX tar without the ustar magic
    return "unknown", os.path.splitext(low)[1].lstrip(".")


def _unknown_reason(source: str, head: bytes) -> str:
    ext = os.path.splitext(source.lower())[1]
    start = head[:16]
    if ext in _IMAGE_EXTS:
        return (f"not an image: {source} is named {ext} but its bytes match no image, DICOM, "
                f"video or archive signature (starts with {start!r}); it is mislabelled or "
                f"corrupt: re-download it or remove it from the source")
    return (f"unsupported format: {source} (extension {ext or 'none'!r}, starts with "
            f"{start!r}); supported: {_SUPPORTED}")


def _unsafe_member_name(name: str) -> str:
    """Why an archive member name could escape an extraction root ('' when it is safe)."""
    n = name.replace("\\", "/")
    if "\x00" in n:
        return f"unsafe member name {name!r}: contains a NUL byte"
    if n.startswith("/"):
        return f"unsafe member name {name!r}: absolute path (members must be relative)"
    if _DRIVE.match(n):
        return f"unsafe member name {name!r}: Windows drive-letter path"
    if ".." in n.split("/"):
        return f"unsafe member name {name!r}: path traversal ('..' component)"
    return ""


def _within(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


# ----------------------------------------------------------------------------- pixels
def _to_uint8(arr: np.ndarray, *, bits: int | None = None) -> np.ndarray:
    """Any integer or float pixel array -> uint8 [H, W] or [H, W, 3] (alpha dropped)."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    elif a.ndim == 3 and a.shape[-1] == 2:  # grey + alpha
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.integer) and a.min() >= 0:
        top = int(a.max())
        nbits = bits or max(8, top.bit_length())
        if top <= 255 and bits is None:
            return a.astype(np.uint8)
        return (a.astype(np.uint32) >> max(nbits - 8, 0)).clip(0, 255).astype(np.uint8)
    a = a.astype(np.float64)  # signed or float: min-max to the 8-bit range
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.round((np.nan_to_num(a, nan=lo) - lo) / (hi - lo) * 255).astype(np.uint8)


def _pil_to_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("L", "RGB"):
        return np.asarray(im).copy()
    if mode in ("1", "LA", "La"):
        return np.asarray(im.convert("L")).copy()
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _to_uint8(np.asarray(im))
    return np.asarray(im.convert("RGB")).copy()  # P, PA, RGBA, CMYK, YCbCr, LAB, HSV, ...


def _decode_image(data: bytes, source: str, fmt: str, limits: Limits) -> list[Item]:
    """PNG / JPEG / BMP / TIFF via Pillow, with the pixel-count check before decoding."""
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        return [_reject(source, f"decompression bomb: {exc}", fmt)]
    except Exception as exc:  # UnidentifiedImageError, SyntaxError, OSError, ...
        return [_reject(source, f"could not read the {fmt.upper()} header: {exc}", fmt)]
    w, h = im.size
    meta = {"original_size": [h, w], "mode": im.mode, "bytes": len(data)}
    if w * h > limits.max_pixels:
        return [_reject(source, f"decompression bomb: header declares {w} x {h} = "
                        f"{w * h / 1e6:,.1f} MP, over Limits.max_pixels = "
                        f"{limits.max_pixels / 1e6:,.1f} MP; not decoded", fmt, **meta)]
    if w == 0 or h == 0:
        return [_reject(source, f"image has zero size ({w} x {h})", fmt, **meta)]
    n = int(getattr(im, "n_frames", 1) or 1)
    frames = [None] if n == 1 else list(range(0, min(n, limits.max_frames), limits.frame_step))
    items = []
    for idx in frames:
        try:
            if idx is not None:
                im.seek(idx)
            im.load()
            arr = _pil_to_array(im)
        except Exception as exc:
            msg = str(exc) or type(exc).__name__
            items.append(_reject(source, f"could not decode {fmt.upper()} (truncated or "
                                 f"corrupt file): {msg}", fmt, idx, **meta))
            if idx in (None, 0):
                break
            continue
        items.append(Item(source, idx, "kept", "", arr, fmt, {**meta, "frames_total": n}))
    if n > limits.max_frames:
        items.append(_frames_over_limit(source, fmt, n, limits))
    return items


def _frames_over_limit(source: str, fmt: str, n: int | str, limits: Limits) -> Item:
    return _reject(source, f"frames from {limits.max_frames} on (of {n}) not read: over "
                   f"Limits.max_frames = {limits.max_frames}; raise it to sample them", fmt,
                   None, frames_total=n)


# ----------------------------------------------------------------------------- DICOM
_DICOM_META = ("Modality", "Manufacturer", "ManufacturerModelName", "PhotometricInterpretation",
               "Rows", "Columns", "NumberOfFrames", "BitsStored", "SamplesPerPixel",
               "FrameTime", "CineRate", "BurnedInAnnotation")


def _dicom_meta(ds) -> dict[str, Any]:
    """A whitelist of non-identifying header fields (patient, institution and dates never
    leave this function; see :func:`echocare_lib.curation.deid.deidentify_dicom`)."""
    meta: dict[str, Any] = {}
    for kw in _DICOM_META:
        v = ds.get(kw)
        if v is not None and v != "":
            meta[kw] = int(v) if isinstance(v, int) else float(v) if isinstance(v, float) \
                else str(v)
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None:
        meta["TransferSyntax"] = getattr(ts, "name", str(ts))
    sop = ds.get("SOPClassUID")
    if sop is not None:
        meta["SOPClass"] = getattr(sop, "name", str(sop))
    regions = ds.get("SequenceOfUltrasoundRegions")
    if regions:  # physical units 3 = cm
        r = regions[0]
        if r.get("PhysicalUnitsXDirection") == 3 and r.get("PhysicalDeltaX"):
            meta["pixel_spacing_mm"] = [float(r.PhysicalDeltaY) * 10, float(r.PhysicalDeltaX) * 10]
    return meta


def _dicom_frame_to_uint8(arr: np.ndarray, ds) -> np.ndarray:
    from pydicom.pixels import apply_color_lut, apply_voi_lut

    pi = str(ds.get("PhotometricInterpretation", "")).upper()
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        desc = ds.get("RedPaletteColorLookupTableDescriptor")
        lut_bits = int(desc[2]) if desc is not None and len(desc) > 2 else 8
        return _to_uint8(rgb, bits=16 if lut_bits > 8 else 8)
    bits = int(ds.get("BitsStored", 8) or 8)
    if arr.ndim == 2 and bits > 8 and "WindowCenter" in ds:
        out = _to_uint8(apply_voi_lut(arr, ds).astype(np.float64))
    else:
        out = _to_uint8(arr, bits=bits if bits > 8 and ds.get("PixelRepresentation", 0) == 0
                        else None)
    if pi == "MONOCHROME1":
        out = 255 - out
    return out


def _decode_dicom(data: bytes, source: str, limits: Limits) -> list[Item]:
    """DICOM via pydicom: palette colour -> RGB, YBR -> RGB (pydicom 3 default), cine loops
    sampled every ``frame_step``-th frame, one frame decoded at a time."""
    import pydicom
    from pydicom.pixels import pixel_array

    fmt = "dicom"
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:
        return [_reject(source, f"not a readable DICOM file: {exc}", fmt)]
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        return [_reject(source, "DICOM file has no pixel data (a report, DICOMDIR or "
                        "presentation state): nothing to curate", fmt, **_dicom_meta(ds))]
    meta = {**_dicom_meta(ds), "bytes": len(data)}
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    meta["original_size"] = [rows, cols]
    if rows * cols > limits.max_pixels:
        return [_reject(source, f"decompression bomb: header declares {cols} x {rows} = "
                        f"{rows * cols / 1e6:,.1f} MP per frame, over Limits.max_pixels = "
                        f"{limits.max_pixels / 1e6:,.1f} MP; not decoded", fmt, **meta)]
    try:
        n = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        n = 1
    meta["frames_total"] = n
    frames = [None] if n == 1 else list(range(0, min(n, limits.max_frames), limits.frame_step))
    items: list[Item] = []
    for idx in frames:
        try:
            arr = pixel_array(ds, index=idx) if idx is not None else ds.pixel_array
            img = _dicom_frame_to_uint8(arr, ds)
        except Exception as exc:
            msg = str(exc).strip() or type(exc).__name__
            if "missing dependencies" in msg or "plugin" in msg.lower():
                msg = f"{msg}\n-> {_DICOM_HINT}"
            items.append(_reject(source, f"could not decode DICOM pixel data: {msg}", fmt,
                                 idx, **meta))
            if idx in (None, 0):  # the first frame failed: the others would fail alike
                break
            continue
        items.append(Item(source, idx, "kept", "", img, fmt, dict(meta)))
    if n > limits.max_frames:
        items.append(_frames_over_limit(source, fmt, n, limits))
    return items


# ----------------------------------------------------------------------------- video
def _decode_video(path: str, source: str, fmt: str, limits: Limits) -> list[Item]:
    """MP4 / MOV / AVI / MKV via imageio's ffmpeg reader: every ``frame_step``-th frame."""
    import imageio.v2 as iio

    try:
        reader = iio.get_reader(path, format="FFMPEG")
    except Exception as exc:
        return [_reject(source, f"could not open video: {exc}", fmt)]
    items: list[Item] = []
    try:
        md = reader.get_meta_data()
        w, h = md.get("size", (0, 0))
        meta = {"original_size": [int(h), int(w)], "fps": md.get("fps"),
                "duration_s": md.get("duration"), "codec": md.get("codec")}
        if w * h > limits.max_pixels:
            return [_reject(source, f"decompression bomb: video frames are {w} x {h} = "
                            f"{w * h / 1e6:,.1f} MP, over Limits.max_pixels", fmt, **meta)]
        n_read = 0
        for i, frame in enumerate(reader):
            if i >= limits.max_frames:
                items.append(_frames_over_limit(source, fmt, "more", limits))
                break
            n_read = i + 1
            if i % limits.frame_step == 0:
                items.append(Item(source, i, "kept", "", _to_uint8(frame), fmt, dict(meta)))
        for it in items:
            it.meta["frames_total"] = n_read
        if not items:
            items.append(_reject(source, "video has no decodable frames (empty or "
                                 "truncated)", fmt, **meta))
    except Exception as exc:
        items.append(_reject(source, f"video decoding failed after {len(items)} sampled "
                             f"frames: {exc}", fmt))
    finally:
        reader.close()
    return items


# ----------------------------------------------------------------------------- archives
@dataclass
class _Budget:
    """Uncompressed bytes and members read so far from one top-level archive (nested
    archives draw on the same budget)."""
    limits: Limits
    total: int = 0
    members: int = 0

    @property
    def left(self) -> int:
        return self.limits.max_total_uncompressed_bytes - self.total


def _bounded_read(f: BinaryIO, declared: int, compressed: int | None, budget: _Budget,
                  name: str) -> tuple[bytes | None, str]:
    """Read at most ``declared`` + 1 bytes, counting what is actually produced, so an archive
    header that under-states a member's size cannot expand past the limits."""
    lim = budget.limits
    cap = min(declared, budget.left, lim.max_file_bytes)
    buf = bytearray()
    while True:
        chunk = f.read(min(_CHUNK, cap + 1 - len(buf)))
        if not chunk:
            break
        buf += chunk
        if len(buf) > declared:
            return None, (f"member expands beyond its declared size of {declared:,} bytes "
                          f"(lying header, possible zip bomb); reading stopped")
        if len(buf) > cap:
            return None, (f"member {name!r} exceeds the archive's uncompressed budget "
                          f"({_mb(lim.max_total_uncompressed_bytes)} total, "
                          f"{_mb(lim.max_file_bytes)} per member); reading stopped")
        if compressed and len(buf) > lim.ratio_min_bytes and \
                len(buf) / compressed > lim.max_compression_ratio:
            return None, (f"compression ratio over {lim.max_compression_ratio:g}:1 while "
                          f"reading (zip bomb); reading stopped")
    budget.total += len(buf)
    return bytes(buf), ""


def _check_sizes(declared: int, compressed: int | None, budget: _Budget) -> str:
    """Why a member must not be read, judged from the archive's declared sizes."""
    lim = budget.limits
    if declared > lim.max_file_bytes:
        return (f"member declares {_mb(declared)} uncompressed, over Limits.max_file_bytes = "
                f"{_mb(lim.max_file_bytes)}")
    if compressed is not None and declared > lim.ratio_min_bytes:
        ratio = declared / max(compressed, 1)
        if ratio > lim.max_compression_ratio:
            return (f"zip bomb: compression ratio {ratio:,.0f}:1 ({_mb(declared)} from "
                    f"{compressed:,} bytes) over Limits.max_compression_ratio = "
                    f"{lim.max_compression_ratio:g}")
    return ""


def _open_member_source(source: str, name: str) -> str:
    return f"{source}!{name}"


def _read_member(open_member, declared: int, compressed: int | None, name: str, msrc: str,
                 budget: "_Budget", limits: Limits, depth: int, items: list) -> str:
    """Read one archive member with a bounded read and ingest it, appending to ``items``.

    Returns "" on success, else the rejection reason (also appended as an item)."""
    try:
        with open_member() as f:
            data, why = _bounded_read(f, declared, compressed, budget, name)
    except Exception as exc:
        data, why = None, (f"corrupt archive member (its data does not match its "
                           f"header; possibly a forged size): {exc}")
    if data is None:
        items.append(_reject(msrc, why))
        return why
    items.extend(_ingest_bytes(data, msrc, limits, depth, budget))
    return ""


def _zip_items(src: str | BinaryIO, source: str, limits: Limits, depth: int,
               budget: _Budget) -> list[Item]:
    try:
        zf = zipfile.ZipFile(src)
    except Exception as exc:
        return [_reject(source, f"corrupt or unreadable ZIP archive: {exc}", "zip")]
    items: list[Item] = []
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        budget.members += len(infos)
        if budget.members > limits.max_archive_members:
            return [_reject(source, f"archive has {len(infos):,} members, over "
                            f"Limits.max_archive_members = {limits.max_archive_members:,} "
                            f"(possible zip bomb); not opened", "zip")]
        declared = sum(i.file_size for i in infos)
        if declared > budget.left:
            return [_reject(source, f"zip bomb: archive declares {_mb(declared)} "
                            f"uncompressed, over Limits.max_total_uncompressed_bytes = "
                            f"{_mb(limits.max_total_uncompressed_bytes)}; not opened", "zip")]
        if not infos:
            return [_reject(source, "empty archive: no files inside", "zip")]
        stopped = ""
        for info in infos:
            msrc = _open_member_source(source, info.filename)
            if stopped:
                items.append(_reject(msrc, f"not read: {stopped}"))
                continue
            ftype = (info.external_attr >> 16) & 0o170000
            why = _unsafe_member_name(info.filename)
            if not why and ftype == stat.S_IFLNK:
                why = "symbolic link member: links are never followed"
            elif not why and ftype not in (0, stat.S_IFREG):
                why = f"special file member (mode {oct(ftype)}): not a regular file"
            elif not why and info.flag_bits & 0x1:
                why = "encrypted member: decrypt the archive first"
            why = why or _check_sizes(info.file_size, info.compress_size, budget)
            if why:
                items.append(_reject(msrc, why))
                continue
            why = _read_member(lambda: zf.open(info), info.file_size, info.compress_size,
                               info.filename, msrc, budget, limits, depth, items)
            if "budget" in why:
                stopped = "the archive exceeded its uncompressed budget"
    return items


def _tar_items(src: str | BinaryIO, source: str, limits: Limits, depth: int,
               budget: _Budget, compressed_size: int) -> list[Item]:
    """TAR (plain, .gz, .bz2, .xz) read as a stream: one header at a time, so a bomb is
    stopped at the header that declares too much."""
    items: list[Item] = []
    n_files = 0
    try:
        tf = tarfile.open(name=src if isinstance(src, str) else None,
                          fileobj=None if isinstance(src, str) else src, mode="r|*")
    except Exception as exc:
        return [_reject(source, f"not a readable TAR archive: {exc}", "tar")]
    try:
        with tf:
            for m in tf:
                if m.isdir():
                    continue
                n_files += 1
                budget.members += 1
                msrc = _open_member_source(source, m.name)
                if budget.members > limits.max_archive_members:
                    items.append(_reject(source, f"archive has more than "
                                         f"{limits.max_archive_members:,} members "
                                         f"(Limits.max_archive_members); reading stopped",
                                         "tar"))
                    break
                why = _unsafe_member_name(m.name)
                if not why and m.issym():
                    why = f"symbolic link member (-> {m.linkname!r}): links are never followed"
                elif not why and m.islnk():
                    why = f"hard link member (-> {m.linkname!r}): links are never followed"
                elif not why and (m.ischr() or m.isblk() or m.isfifo()):
                    why = "device or FIFO member: not a regular file"
                elif not why and not m.isreg():
                    why = f"unsupported member type {m.type!r}: not a regular file"
                if why:
                    items.append(_reject(msrc, why))
                    continue
                if m.size > budget.left:
                    items.append(_reject(msrc, f"zip bomb: member declares {_mb(m.size)}, "
                                         f"more than the {_mb(max(budget.left, 0))} left of "
                                         f"Limits.max_total_uncompressed_bytes; archive "
                                         f"reading stopped"))
                    items.append(_reject(source, "archive reading stopped at "
                                         f"{m.name!r}: uncompressed budget exhausted", "tar"))
                    break
                why = _check_sizes(m.size, None, budget)
                if why:
                    items.append(_reject(msrc, why))
                    budget.total += m.size  # the stream still inflates it when skipping
                    continue
                f = tf.extractfile(m)
                data, why = _bounded_read(f, m.size, None, budget, m.name)
                if data is None:
                    items.append(_reject(msrc, why))
                    break
                if compressed_size and budget.total > limits.ratio_min_bytes and \
                        budget.total / compressed_size > limits.max_compression_ratio:
                    items.append(_reject(source, f"zip bomb: {_mb(budget.total)} inflated "
                                         f"from {compressed_size:,} compressed bytes, ratio "
                                         f"over Limits.max_compression_ratio = "
                                         f"{limits.max_compression_ratio:g}; reading stopped",
                                         "tar"))
                    break
                items.extend(_ingest_bytes(data, msrc, limits, depth, budget))
    except Exception as exc:
        items.append(_reject(source, f"corrupt or truncated TAR archive after {n_files} "
                             f"members: {exc}", "tar"))
    if n_files == 0 and not items:
        items.append(_reject(source, "empty archive: no files inside", "tar"))
    return items


def _rar_items(src: str | BinaryIO, source: str, limits: Limits, depth: int,
               budget: _Budget) -> list[Item]:
    """RAR through the optional ``rarfile`` package and an unrar/unar/bsdtar backend."""
    try:
        import rarfile  # optional dependency
        rarfile.tool_setup()
    except Exception:
        return [_reject(source, RAR_MISSING, "rar")]
    try:
        rf = rarfile.RarFile(src)
    except Exception as exc:
        return [_reject(source, f"corrupt or unreadable RAR archive: {exc}", "rar")]
    items: list[Item] = []
    with rf:
        infos = [i for i in rf.infolist() if not i.is_dir()]
        budget.members += len(infos)
        if budget.members > limits.max_archive_members:
            return [_reject(source, f"archive has {len(infos):,} members, over "
                            f"Limits.max_archive_members; not opened", "rar")]
        if sum(i.file_size for i in infos) > budget.left:
            return [_reject(source, "zip bomb: archive declares more than "
                            "Limits.max_total_uncompressed_bytes; not opened", "rar")]
        if not infos:
            return [_reject(source, "empty archive: no files inside", "rar")]
        for info in infos:
            msrc = _open_member_source(source, info.filename)
            why = _unsafe_member_name(info.filename)
            if not why and info.is_symlink():
                why = "symbolic link member: links are never followed"
            elif not why and info.needs_password():
                why = "encrypted member: decrypt the archive first"
            why = why or _check_sizes(info.file_size, info.compress_size, budget)
            if why:
                items.append(_reject(msrc, why))
                continue
            _read_member(lambda: rf.open(info), info.file_size, info.compress_size,
                         info.filename, msrc, budget, limits, depth, items)
    return items


def _archive_items(fmt: str, src: str | BinaryIO, source: str, limits: Limits, depth: int,
                   budget: _Budget, size: int) -> list[Item]:
    if fmt == "zip":
        return _zip_items(src, source, limits, depth + 1, budget)
    if fmt == "tar":
        return _tar_items(src, source, limits, depth + 1, budget, size)
    return _rar_items(src, source, limits, depth + 1, budget)


# ----------------------------------------------------------------------------- dispatch
def _ingest_bytes(data: bytes, source: str, limits: Limits, depth: int,
                  budget: _Budget) -> list[Item]:
    """Decode an archive member held in memory (``depth`` = archive nesting level)."""
    if not data:
        return [_reject(source, "empty file (0 bytes)")]
    kind, fmt = sniff_format(data[:1024], source.rsplit("!", 1)[-1])
    if kind == "image":
        return _decode_image(data, source, fmt, limits)
    if kind == "dicom":
        return _decode_dicom(data, source, limits)
    if kind == "archive":
        if depth >= 2:
            return [_reject(source, f"nested archive deeper than one level ({fmt} inside an "
                            f"archive inside an archive): unpack the outer levels first", fmt)]
        return _archive_items(fmt, io.BytesIO(data), source, limits, depth, budget, len(data))
    if kind == "video":
        return [_reject(source, f"{fmt.upper()} video inside an archive: decoding it would "
                        f"need a temporary file, and ingest writes nothing; extract the "
                        f"archive and ingest the video file directly", fmt)]
    return [_reject(source, _unknown_reason(source, data[:16]), fmt)]


def ingest_file(path: str | os.PathLike, limits: Limits = Limits(),
                root: str | os.PathLike | None = None) -> list[Item]:
    """Decode one input file into :class:`Item` s (kept or rejected; never an empty list).

    ``root`` is the input root: a symbolic link is followed only when its target lies inside
    it (default: the folder holding ``path``). Never raises on bad input and never writes."""
    source = os.fspath(path)
    try:
        return _ingest_path(source, limits, root)
    except Exception as exc:  # a bug or an exotic failure still leaves a trace in the report
        return [_reject(source, f"unexpected error while ingesting {source}: "
                        f"{type(exc).__name__}: {exc}")]


def _ingest_path(source: str, limits: Limits, root) -> list[Item]:
    real = source
    if os.path.islink(source):
        base = os.fspath(root) if root is not None else os.path.dirname(os.path.abspath(source))
        target = os.path.realpath(source)
        if not os.path.exists(target):
            return [_reject(source, f"broken symbolic link (-> {os.readlink(source)!r})")]
        if not _within(target, base):
            return [_reject(source, f"symbolic link points outside the input root {base} "
                            f"(-> {target}); not followed")]
        if os.path.isdir(target):
            return [_reject(source, f"symbolic link to a directory ({target}); not followed: "
                            f"pass the directory itself to walk_inputs")]
        real = target
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return [_reject(source, f"file not found: {source}")]
    except OSError as exc:
        return [_reject(source, f"cannot access {source}: {exc}")]
    if stat.S_ISDIR(st.st_mode):
        return [_reject(source, f"{source} is a directory: use walk_inputs to list its files")]
    if not stat.S_ISREG(st.st_mode):
        return [_reject(source, f"{source} is not a regular file (device, FIFO or socket)")]
    if st.st_size == 0:
        return [_reject(source, "empty file (0 bytes)")]
    with open(real, "rb") as f:
        head = f.read(1024)
    kind, fmt = sniff_format(head, source)
    if kind == "archive":
        return _archive_items(fmt, real, source, limits, 0, _Budget(limits), st.st_size)
    if kind == "video":
        return _decode_video(real, source, fmt, limits)
    if kind == "unknown":
        return [_reject(source, _unknown_reason(source, head), fmt)]
    if st.st_size > limits.max_file_bytes:
        return [_reject(source, f"file is {_mb(st.st_size)}, over Limits.max_file_bytes = "
                        f"{_mb(limits.max_file_bytes)}; raise the limit if it is genuine", fmt)]
    with open(real, "rb") as f:
        data = f.read(limits.max_file_bytes + 1)
    if kind == "image":
        return _decode_image(data, source, fmt, limits)
    return _decode_dicom(data, source, limits)


def ingest_paths(paths: Iterable[str | os.PathLike], limits: Limits = Limits(),
                 root: str | os.PathLike | None = None) -> list[Item]:
    """:func:`ingest_file` over many paths, in order (the single-process route)."""
    out: list[Item] = []
    for p in paths:
        out.extend(ingest_file(p, limits, root))
    return out


def walk_inputs(root: str | os.PathLike) -> list[str]:
    """Every file under ``root``, sorted, without following symbolic links.

    Links (to files or folders) are listed too, so that :func:`ingest_file` reports those
    pointing outside ``root`` as rejected instead of their disappearing from the account."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"input root {root!r} is not a directory: pass the folder "
                                 f"that holds the raw files")
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        out.extend(os.path.join(dirpath, d) for d in dirnames
                   if os.path.islink(os.path.join(dirpath, d)))
        out.extend(os.path.join(dirpath, f) for f in filenames)
    return sorted(out)
