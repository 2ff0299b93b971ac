"""Pretraining data: the curated EchoAtlas index when present, else the simulator's corpus.

Both sources become one map-style dataset yielding ``(uint8 image [1, S, S], hierarchy
multi-hot [N], hierarchy label mask [N])``. Batches are a pure function of
``(seed, step, rank)``: which images (an epoch-wise permutation), which augmentations (a
generator seeded per step) and hence which numbers. That is what makes resuming exact and
lets any number of loader workers give identical batches.

Augmentations (paper section 3.2): random vertical and horizontal flips (p = 0.5 each), random
crop (p = 0.5; a random-resized crop covering 50-100% of the image, rescaled to the input
size), weak colour jitter (p = 0.2; brightness and contrast within +-20%). Images are
converted to grayscale when read (the paper's "convert images to greyscale"), so the
saturation and hue parts of colour jitter have nothing to act on and are left out.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from ..ontology import LEVELS, load_ontology

CROP_P, FLIP_P, JITTER_P = 0.5, 0.5, 0.2
CROP_SCALE, JITTER = (0.5, 1.0), 0.2


class ArrayImages(Dataset):
    """In-memory images (uint8 [N, S, S]) with hierarchy labels and label masks."""

    def __init__(self, images: np.ndarray, hierarchy: np.ndarray, hierarchy_mask: np.ndarray,
                 description: str = "in-memory images") -> None:
        if not (len(images) == len(hierarchy) == len(hierarchy_mask)):
            raise ValueError("images, hierarchy and hierarchy_mask must have the same length")
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.hierarchy = np.asarray(hierarchy, dtype=np.float32)
        self.hierarchy_mask = np.asarray(hierarchy_mask, dtype=bool)
        self.description = description

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return (torch.from_numpy(self.images[i][None]), torch.from_numpy(self.hierarchy[i]),
                torch.from_numpy(self.hierarchy_mask[i]))


def _label_mask_for(onto, ids: list[str]) -> np.ndarray:
    """A data set labelled down to level L is labelled on levels <= L; deeper levels are
    unknown (masked out of L_HIE). No ids: nothing is labelled (the image serves L_MIM only)."""
    if not ids:
        return np.zeros(len(onto), dtype=bool)
    depth = max(LEVELS.index(onto.node(i).level) for i in ids)
    return onto.level_mask(LEVELS[: depth + 1])


def square_resize(img: Image.Image, size: int) -> np.ndarray:
    """Grayscale, centre-crop to a square, resize to ``size`` (area filter); uint8 [S, S]."""
    g = img.convert("L")
    w, h = g.size
    s = min(w, h)
    g = g.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return np.asarray(g.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


class CuratedImages(Dataset):
    """Images of a curated index (``curated_index.parquet`` from curation), read lazily.

    Reading on demand keeps memory flat for the real 4.5-million-image EchoAtlas; loader
    workers (``num_workers``) decode in parallel."""

    def __init__(self, index_path: "str | os.PathLike", size: int,
                 max_images: int | None = None) -> None:
        import pandas as pd

        self.index_path = Path(index_path)
        if not self.index_path.is_file():
            raise FileNotFoundError(f"curated index {self.index_path} not found: run the curation "
                                    "notebook (01) first, or pretrain on the simulator corpus")
        df = pd.read_parquet(self.index_path)
        missing = {"image_path", "ontology_ids"} - set(df.columns)
        if missing:
            raise ValueError(f"{self.index_path} lacks column(s) {sorted(missing)}; is it a "
                             "curated_index.parquet written by echocare_lib.curation?")
        if max_images is not None and len(df) > max_images:
            df = df.iloc[:max_images]
        self.root = self.index_path.parent
        self.size = size
        self.paths = [self.root / p for p in df["image_path"]]
        onto = load_ontology()
        ids = [[i for i in str(s).split(";") if i] for s in df["ontology_ids"].fillna("")]
        self.hierarchy = np.stack([onto.encode(i) for i in ids]) if ids else np.zeros((0, len(onto)))
        self.hierarchy_mask = (np.stack([_label_mask_for(onto, i) for i in ids]) if ids
                               else np.zeros((0, len(onto)), dtype=bool))
        self.description = f"curated index {self.index_path} ({len(self.paths)} images)"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            with Image.open(self.paths[i]) as im:
                arr = square_resize(im, self.size)
        except (OSError, ValueError) as e:
            raise OSError(f"cannot read curated image {self.paths[i]} (row {i} of "
                          f"{self.index_path}): {e}. Re-run curation to rebuild the index.") from e
        return (torch.from_numpy(arr[None].copy()), torch.from_numpy(self.hierarchy[i]),
                torch.from_numpy(self.hierarchy_mask[i]))


def simulated_images(n: int, size: int, seed: int, split: str = "train", n_jobs: int = 1,
                     progress: bool = True) -> ArrayImages:
    """``n`` clean simulated frames with per-image hierarchy labels (EchoAtlas-Sim families)."""
    from ..sim.corpus import pretraining_samples

    samples = pretraining_samples(n, size=size, seed=seed, split=split, n_jobs=n_jobs,
                                  progress=progress)
    images = np.stack([np.clip(s["image"][0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
                       for s in samples])
    ds = ArrayImages(images, np.stack([s["hierarchy"] for s in samples]),
                     np.stack([s["hierarchy_mask"] for s in samples]),
                     description=f"EchoAtlas-Sim corpus ({n} images, {split}, seed {seed})")
    ds.meta = [s["meta"] for s in samples]
    return ds


@dataclass
class DataChoice:
    dataset: Dataset
    source: str  # "curated" or "simulator"
    description: str
    fingerprint: str  # identifies the data: content hash of the index, or the corpus recipe


def choose_data(source: str, *, size: int, n_images: int | None, seed: int,
                curated_index: "str | os.PathLike | None", n_jobs: int = 1,
                progress: bool = True) -> DataChoice:
    """``source`` = "auto" (curated index when it exists, else simulator), "curated" or
    "simulator". ``n_images`` caps the curated index and sizes the simulated corpus."""
    if source not in ("auto", "curated", "simulator"):
        raise ValueError(f"pretraining data source must be 'auto', 'curated' or 'simulator', "
                         f"got {source!r}")
    have = curated_index is not None and Path(curated_index).is_file()
    if source == "curated" or (source == "auto" and have):
        ds = CuratedImages(curated_index, size, n_images)
        if len(ds) == 0:
            raise ValueError(f"{curated_index} lists no images: curation kept nothing")
        digest = hashlib.sha256(Path(curated_index).read_bytes()).hexdigest()[:16]
        return DataChoice(ds, "curated", ds.description, f"curated:{digest}:{len(ds)}")
    if not n_images:
        raise ValueError("the simulator corpus needs a size: set the profile's pretrain_images")
    ds = simulated_images(n_images, size, seed, n_jobs=n_jobs, progress=progress)
    return DataChoice(ds, "simulator", ds.description, f"simulator:{n_images}:{size}:{seed}")


# ----------------------------------------------------------------------------- batches
@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)


def step_indices(step: int, n: int, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> np.ndarray:
    """This rank's dataset indices at ``step``: the global batch is positions
    ``step*B .. step*B+B-1`` of an endless stream of epoch-wise permutations; rank r takes
    every world_size-th of them."""
    pos = step * batch_size + np.arange(batch_size)
    epoch, k = pos // n, pos % n
    idx = np.array([_epoch_permutation(n, seed, int(e))[j] for e, j in zip(epoch, k)])
    return idx[rank::world_size]


def step_generator(seed: int, step: int, rank: int, stream: int) -> torch.Generator:
    """A torch generator for one (seed, step, rank, stream): batches do not depend on history."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed, step, rank, stream]).generate_state(1)[0]))
    return g


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 [B, 1, S, S] -> float [B, 1, S, S] in [0, 1] with the paper's augmentations."""
    x = images.float().div_(255.0)
    b, _, h, w = x.shape
    u = torch.rand(b, 8, generator=generator)
    out = []
    for i in range(b):
        xi = x[i]
        if u[i, 0] < CROP_P:
            area = CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * float(u[i, 1])
            aspect = float(np.exp(np.log(3 / 4) + (np.log(4 / 3) - np.log(3 / 4)) * float(u[i, 2])))
            ch = min(h, max(1, int(round(h * np.sqrt(area / aspect)))))
            cw = min(w, max(1, int(round(w * np.sqrt(area * aspect)))))
            top = int(float(u[i, 3]) * (h - ch + 1))
            left = int(float(u[i, 4]) * (w - cw + 1))
            xi = TF.resized_crop(xi, top, left, ch, cw, [h, w], antialias=True)
        if u[i, 5] < JITTER_P:
            f = torch.rand(2, generator=generator)
            xi = TF.adjust_brightness(xi, 1.0 + JITTER * (2 * float(f[0]) - 1))
            xi = TF.adjust_contrast(xi, 1.0 + JITTER * (2 * float(f[1]) - 1))
        out.append(xi)
    x = torch.stack(out)
    hflip = (u[:, 6] < FLIP_P).view(b, 1, 1, 1)
    vflip = (u[:, 7] < FLIP_P).view(b, 1, 1, 1)
    x = torch.where(hflip, x.flip(-1), x)
    x = torch.where(vflip, x.flip(-2), x)
    return x.clamp_(0.0, 1.0)


class _StepItems(Dataset):
    """Wraps a dataset so that items carry the step they belong to (for seeding collate)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, key):
        step, i = key
        return (step, *self.ds[i])


class _StepBatches:
    def __init__(self, n, batch_size, seed, start, stop, rank, world_size) -> None:
        self.args = (n, batch_size, seed, rank, world_size)
        self.start, self.stop = start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self):
        n, bs, seed, rank, world = self.args
        for step in range(self.start, self.stop):
            yield [(step, int(i)) for i in step_indices(step, n, bs, seed, rank, world)]


@dataclass
class Batch:
    step: int
    images: torch.Tensor          # float [B, 1, S, S] in [0, 1], augmented
    hierarchy: torch.Tensor       # float [B, N]
    hierarchy_mask: torch.Tensor  # bool [B, N]


class _Collate:
    def __init__(self, seed: int, rank: int, do_augment: bool) -> None:
        self.seed, self.rank, self.do_augment = seed, rank, do_augment

    def __call__(self, items) -> Batch:
        step = items[0][0]
        imgs = torch.stack([it[1] for it in items])
        x = (augment(imgs, step_generator(self.seed, step, self.rank, 1)) if self.do_augment
             else imgs.float() / 255.0)
        return Batch(step, x, torch.stack([it[2] for it in items]),
                     torch.stack([it[3] for it in items]))


def step_loader(ds: Dataset, *, batch_size: int, seed: int, start_step: int, stop_step: int,
                rank: int = 0, world_size: int = 1, num_workers: int = 0,
                augment_images: bool = True) -> DataLoader:
    """Yields one :class:`Batch` per step from ``start_step`` to ``stop_step - 1`` for this rank
    (``batch_size`` is the global batch; each rank gets batch_size / world_size)."""
    if batch_size % world_size:
        raise ValueError(f"global batch {batch_size} is not divisible by {world_size} processes")
    sampler = _StepBatches(len(ds), batch_size, seed, start_step, stop_step, rank, world_size)
    return DataLoader(_StepItems(ds), batch_sampler=sampler, num_workers=num_workers,
                      collate_fn=_Collate(seed, rank, augment_images),
                      persistent_workers=False, pin_memory=torch.cuda.is_available(),
                      prefetch_factor=4 if num_workers else None)
