"""The pretraining corpus: many simulated "source data sets", raw files and all.

EchoAtlas pools 138 public data sets. Each simulated source here has a name, a country, a
device style, a few organs (drawn from the downstream scene generators), an export format
(PNG, JPEG, BMP, DICOM, ZIP archive, multi-frame DICOM cine) and the label levels it
provides. Files are written as raw scanner exports: black surround, burnt-in text, calipers,
colour tints and varying screen sizes; DICOMs carry (fictional) patient and institution tags.
Each source also annotates its images (``annotations.csv`` at the root: the visible
structures per file, at the levels the source labels), as public collections ship
per-image labels; curation labels images from it, not from the data set's organ list.

So that curation has real work to do, sources also contain what public collections contain:
exact duplicates (also across sources, as when one collection re-distributes another),
near duplicates (resized, re-compressed, brightness-shifted, cropped), blank frames, images
with fewer than 1,000 valid pixels, non-ultrasound images (diagrams, photographs-like
colour scenes) and truncated files. ``truth.csv`` records what every file is, so the
curation notebook can score itself.

``pretraining_samples`` is the in-memory route for pretraining when no curated index exists:
clean frames with multi-hot hierarchy labels over the anatomy ontology.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from ..ontology import load_ontology, map_structures
from .devices import DEVICE_STYLES, apply_tint, device_style
from .geometry import Display, Probe
from .overlay import burn_in
from .render import sample_rng
from .tasks import map_jobs, task_spec

#: Countries of EchoAtlas's sources (paper Fig. 2 / Table 5), used to label simulated sources.
COUNTRIES = ("China", "United States", "Netherlands", "Spain", "Brazil", "Egypt", "India",
             "Italy", "Germany", "United Kingdom", "Canada", "Iran", "Vietnam", "Mexico",
             "Chile", "Tunisia", "Portugal", "Australia", "South Korea", "France")

#: Scene families a source can hold: code -> (task generator, depth read-out in mm, probe).
FAMILIES = {
    "THY": ("thyroid_nodule_seg", 40.0, "linear"),
    "VES": ("vessel_seg", 35.0, "linear"),
    "ABD": ("abdomen_organ_seg", 140.0, "convex"),
    "BRE": ("breast_birads", 40.0, "linear"),
    "LIV": ("liver_lesion_ceus", 140.0, "convex"),
    "FHT": ("fetal_4ch_detection", 110.0, "convex"),
    "FBR": ("fetal_brain_landmarks", 110.0, "convex"),
    "CAR": ("echo_ef", 150.0, "phased"),
    "REP": ("liver_report", 140.0, "convex"),
}
#: What a simulated source's manifest entry says it contains (data-set-level labels, as
#: EchoAtlas labels each image from its data set's entry).
FAMILY_ORGANS = {
    "THY": ["thyroid nodule"],
    "VES": ["carotid artery", "jugular vein"],
    "ABD": ["liver", "kidney", "spleen", "pancreas", "bladder"],
    "BRE": ["breast lesion"],
    "LIV": ["focal liver lesion"],
    "FHT": ["fetal heart"],
    "FBR": ["fetal brain"],
    "CAR": ["left ventricle"],
    "REP": ["liver", "gallbladder"],
}
FORMATS = ("png", "jpg", "bmp", "dcm", "zip", "cine")
DEFECTS = ("exact_dup", "near_dup", "blank", "tiny", "non_us", "corrupt")
LEVELS = ("region", "meta", "anatomical")


@dataclass
class SourceSpec:
    name: str
    country: str
    device: str
    families: list[str]
    n_images: int
    fmt: str
    screen: tuple[int, int]
    levels: list[str]
    defect_rate: float = 0.08
    dup_from: str | None = None  # re-distributes some images of this earlier source


def plan_sources(n_sources: int, images_per_source: int, seed: int) -> list[SourceSpec]:
    """A reproducible, varied list of sources (formats and families cycle, so every format
    and scene family appears once there are enough sources)."""
    rng = np.random.default_rng([seed, 7001])
    fams = list(FAMILIES)
    styles = list(DEVICE_STYLES)
    out = []
    for k in range(n_sources):
        fam = [fams[k % len(fams)]]
        if rng.random() < 0.35:
            fam.append(fams[int(rng.integers(len(fams)))])
        country = COUNTRIES[int(rng.integers(len(COUNTRIES)))]
        fmt = "cine" if "CAR" in fam[:1] else FORMATS[k % 5]
        h = int(rng.choice([240, 300, 360]))
        w = int(h * rng.choice([1.0, 1.25, 1.33]))
        levels = list(LEVELS[: int(rng.integers(1, 4))])
        name = f"SIM-{'-'.join(dict.fromkeys(fam))}-{country[:2].upper()}{k:02d}"
        out.append(SourceSpec(name, country, styles[int(rng.integers(len(styles)))],
                              list(dict.fromkeys(fam)), images_per_source, fmt, (h, w), levels,
                              dup_from=out[int(rng.integers(len(out)))].name
                              if out and rng.random() < 0.3 else None))
    return out


# ----------------------------------------------------------------------------- exports
def screen_from_image(image: np.ndarray, style_name: str, rng: np.random.Generator, *,
                      screen: tuple[int, int], depth_mm: float, calipers: bool,
                      probe_kind: str = "linear") -> np.ndarray:
    """Place a clean [H, W] frame on a scanner screen with burnt-in annotations -> RGB uint8."""
    style = device_style(style_name)
    sh, sw = screen
    h, w = image.shape
    scale = min((sh * 0.8) / h, (sw * 0.7) / w)
    nh, nw = max(int(h * scale), 8), max(int(w * scale), 8)
    frame = np.asarray(Image.fromarray((image * 255).astype(np.uint8)).resize(
        (nw, nh), Image.BILINEAR), np.float32) / 255.0
    top, left = int(sh * 0.1), (sw - nw) // 2 + int(rng.integers(-sw // 20, sw // 20 + 1))
    left = int(np.clip(left, 1, sw - nw - 1))
    canvas = np.zeros((sh, sw), np.float32)
    canvas[top:top + nh, left:left + nw] = frame
    fov = np.zeros((sh, sw), bool)
    fov[top:top + nh, left:left + nw] = frame > 0.02
    spacing = depth_mm / nh
    display = Display(sh, sw, -(left + nw / 2) * spacing, -top * spacing, spacing)
    probe = style.probe(probe_kind, focus_mm=depth_mm * 0.5)
    grey, _ = burn_in(canvas, fov, display, probe, depth_mm=depth_mm,
                      gain_db=style.proc.gain_db, label=style.label, rng=rng,
                      calipers=calipers)
    rgb = apply_tint(grey, style.tint)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def _non_ultrasound(rng: np.random.Generator, shape) -> np.ndarray:
    """A colourful photograph-like scene or a bar-chart slide: what web crawls also return."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    if rng.random() < 0.5:
        img = np.stack([np.sin(6 * xx + rng.uniform(0, 6)) * 0.5 + 0.5,
                        yy, np.cos(5 * yy * xx + rng.uniform(0, 6)) * 0.5 + 0.5], -1)
        img += rng.normal(0, 0.05, img.shape)
    else:
        img = np.ones((h, w, 3))
        for k in range(5):
            x0 = int(w * (0.1 + 0.16 * k))
            top = int(h * rng.uniform(0.2, 0.8))
            img[top:int(h * 0.9), x0:x0 + int(w * 0.1)] = rng.uniform(0, 1, 3)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _defective(kind: str, screen, rng: np.random.Generator) -> np.ndarray:
    """A blank frame, one with fewer than 1,000 valid pixels, or a non-ultrasound image."""
    if kind == "non_us":
        return _non_ultrasound(rng, screen)
    rgb = np.zeros((*screen, 3), np.uint8)
    if kind == "tiny":  # a 20 x 20 patch: 400 valid pixels
        y = int(rng.integers(10, screen[0] - 30))
        x = int(rng.integers(10, screen[1] - 30))
        rgb[y:y + 20, x:x + 20] = rng.integers(40, 200, (20, 20, 1), dtype=np.uint8)
    return rgb


def _near_duplicate(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = Image.fromarray(rgb)
    kind = int(rng.integers(3))
    if kind == 0:  # resized
        f = rng.uniform(0.7, 0.9)
        img = img.resize((int(img.width * f), int(img.height * f)), Image.BILINEAR)
    elif kind == 1:  # brightness / contrast shift
        arr = np.asarray(img, np.float32) * rng.uniform(0.85, 1.15) + rng.uniform(-10, 10)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    else:  # small crop
        dx, dy = int(img.width * 0.04), int(img.height * 0.04)
        img = img.crop((dx, dy, img.width - dx, img.height - dy))
    return np.asarray(img)


def _encode(rgb: np.ndarray, fmt: str, rng: np.random.Generator, meta: dict) -> bytes:
    buf = io.BytesIO()
    if fmt in ("png", "zip"):
        Image.fromarray(rgb).save(buf, format="PNG")
    elif fmt == "jpg":
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(rng.integers(80, 96)))
    elif fmt == "bmp":
        Image.fromarray(rgb).save(buf, format="BMP")
    elif fmt in ("dcm", "cine"):
        return _dicom(rgb[None] if rgb.ndim == 3 else rgb, meta)
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return buf.getvalue()


def _dicom(frames: np.ndarray, meta: dict) -> bytes:
    """An ultrasound DICOM (single or multi-frame RGB) with identifying tags to remove."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, \
        UltrasoundMultiFrameImageStorage, generate_uid

    multi = frames.shape[0] > 1
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage
    uid_seed = f"{meta['source']}/{meta['file']}"
    fm.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[uid_seed])
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(meta["file"], {}, file_meta=fm, preamble=b"\0" * 128)
    ds.SOPClassUID = fm.MediaStorageSOPClassUID
    ds.SOPInstanceUID = fm.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[uid_seed, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[uid_seed, "series"])
    ds.Modality = "US"
    ds.PatientName = meta["patient_name"]
    ds.PatientID = meta["patient_id"]
    ds.PatientBirthDate = "19800101"
    ds.InstitutionName = meta["institution"]
    ds.ReferringPhysicianName = "DOE^JANE"
    ds.Manufacturer = meta["device"]
    ds.StudyDate = "20200101"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if multi:
        ds.NumberOfFrames = frames.shape[0]
    ds.PixelData = np.ascontiguousarray(frames if multi else frames[0]).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


# ----------------------------------------------------------------------------- writing
@dataclass
class CorpusReport:
    root: Path
    sources: list[SourceSpec] = field(default_factory=list)
    truth: pd.DataFrame | None = None


def write_corpus(root: "str | Path", *, n_sources: int, images_per_source: int,
                 size: int = 128, seed: int = 0, progress: bool = True) -> CorpusReport:
    """Write the simulated raw corpus under ``root`` (one folder per source) and
    ``root/truth.csv`` (every file: source, kind, duplicate_of, structures, ontology ids)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    onto = load_ontology()
    sources = plan_sources(n_sources, images_per_source, seed)
    rows: list[dict] = []
    written: dict[str, list[tuple[str, np.ndarray, dict]]] = {}
    it = tqdm(sources, desc="writing simulated sources", unit="source", disable=not progress)
    for src in it:
        folder = root / src.name
        folder.mkdir(exist_ok=True)
        rng = np.random.default_rng([seed, 7002, hash_name(src.name)])
        archive: list[tuple[str, bytes]] = []
        written[src.name] = []
        for i in range(src.n_images):
            fam = src.families[i % len(src.families)]
            task, depth, probe_kind = FAMILIES[fam]
            ext = {"zip": "png", "cine": "dcm"}.get(src.fmt, src.fmt)
            fname = f"{src.name.lower()}_{i:04d}.{ext}"
            base = {"source": src.name, "file": fname, "country": src.country,
                    "device": src.device, "family": fam, "task": task, "format": src.fmt,
                    "patient_name": f"SIM^PATIENT{i:04d}", "patient_id": f"{src.name}-{i // 2:04d}",
                    "institution": f"{src.country} General Hospital"}
            defect = _pick_defect(rng, src, written)
            record = {**base, "kind": "ok", "duplicate_of": "", "structures": "",
                      "ontology_ids": "", "unmapped": "", "label_levels": ";".join(src.levels)}
            if defect in ("exact_dup", "near_dup"):
                donor_src = src.dup_from if (src.dup_from and rng.random() < 0.5) else src.name
                pool = [p for p in written.get(donor_src, []) if p[2]["kind"] == "ok"] or \
                    [p for p in written[src.name] if p[2]["kind"] == "ok"]
                if not pool:  # nothing clean to duplicate yet: write a blank frame instead
                    defect = "blank"
            fallback_fmt = "png" if src.fmt == "cine" else src.fmt
            if defect in ("exact_dup", "near_dup"):
                dname, drgb, drec = pool[int(rng.integers(len(pool)))]
                rgb = drgb if defect == "exact_dup" else _near_duplicate(drgb, rng)
                record.update(kind=defect, duplicate_of=f"{drec['source']}/{dname}",
                              structures=drec["structures"], ontology_ids=drec["ontology_ids"])
                same_format = src.fmt == drec["format"] and defect == "exact_dup"
                data = drec["_bytes"] if same_format else _encode(rgb, fallback_fmt, rng, base)
            elif defect in ("blank", "tiny", "non_us"):
                record["kind"] = defect
                rgb = _defective(defect, src.screen, rng)
                data = _encode(rgb, fallback_fmt, rng, base)
            else:
                sample = task_spec(task)["sample"](sample_rng(seed, task, "train", 10_000 * (
                    hash_name(src.name) % 997) + i), size=size, index=i, split="train")
                structures = sample.get("structures", [])
                ids, unmapped = map_structures(onto, structures)
                record.update(structures=";".join(structures), ontology_ids=";".join(ids),
                              unmapped=";".join(unmapped))
                if src.fmt == "cine" and "frames" in sample:
                    frames = np.stack([screen_from_image(f[0], src.device, rng, screen=src.screen,
                                                         depth_mm=depth, calipers=False,
                                                         probe_kind=probe_kind)
                                       for f in sample["frames"]])
                    rgb = frames[0]
                    data = _dicom(frames, base)
                else:
                    rgb = screen_from_image(sample["image"][0], src.device, rng,
                                            screen=src.screen, depth_mm=depth,
                                            calipers=bool(rng.random() < 0.3),
                                            probe_kind=probe_kind)
                    data = _encode(rgb, src.fmt, rng, base)
                if defect == "corrupt":
                    data = data[: len(data) // 3]
                    record["kind"] = "corrupt"
            record["_bytes"] = data
            written[src.name].append((fname, rgb, record))
            if src.fmt == "zip":
                archive.append((fname, data))
            else:
                (folder / fname).write_bytes(data)
            rows.append(record)
        if src.fmt == "zip":
            zpath = folder / f"{src.name.lower()}.zip"
            with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in archive:
                    zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                    zf.writestr(zi, data)
            for r in rows:
                if r["source"] == src.name:
                    r["file"] = f"{zpath.name}!{r['file']}"
    truth = pd.DataFrame([{k: v for k, v in r.items() if k != "_bytes"
                           and k not in ("patient_name", "institution")} for r in rows])
    truth.insert(0, "path", truth["source"] + "/" + truth["file"])
    truth.to_csv(root / "truth.csv", index=False)
    (root / "sources.json").write_text(json.dumps([asdict(s) for s in sources], indent=1))
    from ..curation.pipeline import ANNOTATIONS_FILE  # the file name curation reads

    annotations(truth, onto).to_csv(root / ANNOTATIONS_FILE, index=False)
    return CorpusReport(root, sources, truth)


def annotations(truth: pd.DataFrame, onto) -> pd.DataFrame:
    """What the sources' annotators wrote per image file: ``path`` and ``structures`` (ontology
    names, ';'-separated), at the levels each source labels.

    Public collections ship such per-image annotations (masks, class folders, label CSVs);
    the paper "generated canonical categorical labels for each image" from them. A source that
    labels only regions names the region, one that labels down to meta-objects names those.
    Files the source never annotated (blank frames, non-ultrasound images) have no row; the
    duplicates a source re-distributes carry the annotation of their original."""
    rows = []
    for r in truth.itertuples(index=False):
        ids = [i for i in r.ontology_ids.split(";") if i]
        if not ids:
            continue
        deepest = max(LEVELS.index(level) for level in str(r.label_levels).split(";"))
        names = dict.fromkeys(onto.node(onto.path(i)[min(deepest, len(onto.path(i)) - 1)]).name
                              for i in ids)
        rows.append({"path": r.path, "structures": ";".join(names)})
    return pd.DataFrame(rows, columns=["path", "structures"])


def hash_name(name: str) -> int:
    import zlib

    return zlib.crc32(name.encode())


def _pick_defect(rng, src: SourceSpec, written) -> str | None:
    if not written.get(src.name) or rng.random() >= src.defect_rate * 2:
        return None
    return DEFECTS[int(rng.integers(len(DEFECTS)))]


def corpus_manifest(root: "str | Path") -> pd.DataFrame:
    """The simulated corpus's manifest: one row per source (data set) with its country,
    device and the ontology ids of the organs it holds, as the curation step expects."""
    onto = load_ontology()
    path = Path(root) / "sources.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: write the corpus with write_corpus first")
    rows = []
    for src in json.loads(path.read_text()):
        ids = list(dict.fromkeys(onto.find(o) for f in src["families"] for o in FAMILY_ORGANS[f]))
        rows.append({"dataset": src["name"], "country": src["country"],
                     "device": device_style(src["device"]).label, "format": src["fmt"],
                     "ontology_ids": ";".join(ids)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- in memory
def _pretraining_one(job) -> dict:
    fam, seed, split, i, size = job
    onto = load_ontology()
    task = FAMILIES[fam][0]
    rng = sample_rng(seed, f"pretrain-{task}", split, i)
    s = task_spec(task)["sample"](rng, size=size, index=i, split=split)
    ids, _ = map_structures(onto, s.get("structures", []))
    # Like real sources, some label only the coarser levels (the loss masks the rest).
    levels = LEVELS[: 1 + (i % 3)] if i % 4 else LEVELS
    return {"image": s["image"], "hierarchy": onto.encode(ids),
            "hierarchy_mask": onto.level_mask(levels),
            "meta": {**s["meta"], "family": fam, "structures": s.get("structures", [])}}


def pretraining_samples(n: int, *, size: int, seed: int = 0, families=None, split: str = "train",
                        progress: bool = False, n_jobs: int = 1) -> list[dict]:
    """Clean frames with hierarchy labels for pretraining straight from the simulator.

    Each sample: ``image`` [1, H, W], ``hierarchy`` multi-hot over the ontology (the visible
    structures and all their ancestors), ``hierarchy_mask`` (the levels this simulated
    source labels), ``meta`` (source family, device, ...). Every sample has its own random
    stream (seed, family, split, index), so ``n_jobs`` worker processes give the same images
    bit for bit; ``split="test"`` gives a disjoint held-out set."""
    fams = list(families or FAMILIES)
    jobs = [(fams[i % len(fams)], seed, split, i, size) for i in range(n)]
    return map_jobs(_pretraining_one, jobs, n_jobs,
                    desc=f"simulating pretraining images ({split})", progress=progress)
