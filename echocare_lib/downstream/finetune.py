"""Fine-tuning trials: one function from (task, encoder, trial) to tidy result rows.

Protocol (paper section 4.1/4.4, scaled by the profile):

* the task's train split is split again at **patient level** into fine-tuning and validation
  (80:20); the test split is never touched until the end (``splits.assert_no_leak`` checks);
* ``train_fraction`` < 1 keeps that fraction of the training *patients* (Fig. 8);
* AdamW, a few epochs (``profile.finetune_epochs``), the head at a 10x higher learning rate
  than the pretrained encoder; after each epoch the validation metric is computed and the best
  epoch's weights are kept (early stopping with patience);
* ``mode="full"`` (the paper, section 4.1) trains the whole network. ``mode="frozen"`` keeps the
  encoder fixed and trains only the head on features computed once per image (a linear probe on
  the pooled feature for classification, the UNETR decoder on the four frozen stages for
  segmentation): the standard frozen-backbone evaluation of a foundation model's features, and
  the only protocol that fits ten applications x three encoders x several trials into the
  ``cpu`` profile's budget on two cores (``profile.finetune_mode`` chooses);
* detection (ellipses fitted to the segmentation model's masks), landmarks (heatmaps, MSE
  against Gaussians) and EF regression (per-frame pooled features and a temporal head; random
  clips in training, all clips averaged in evaluation) run through the same loop in both
  modes; see ``heads.DownstreamModel``. Model selection maximises the validation score, or
  minimises it for lower-is-better primaries (``higher_is_better=False``: MRE, MAE);
* every trial has its own seed (``trial_seed``), which decides the validation split, the
  fraction subsample, the head's initialisation and the batch order.

The rows are (task, model, trial, seed, train_fraction, metric, value, config_hash); a
:class:`ResultStore` caches them on disk and reuses a row only when its configuration hash
matches.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .heads import DownstreamModel, gaussian_heatmaps_torch


def trial_seed(seed: int, trial: int) -> int:
    return int(np.random.SeedSequence([seed, trial, 0xF17E]).generate_state(1)[0] % (2 ** 31))


def patient_ids(samples: list[dict]) -> np.ndarray:
    return np.array([str(s["meta"].get("patient_id") or s["meta"].get("case_id")) for s in samples])


def split_by_patient(samples: list[dict], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (kept, held out): ``fraction`` of the patients (at least one) held out."""
    pids = patient_ids(samples)
    uniq = np.unique(pids)
    rng = np.random.default_rng(seed)
    n_out = max(1, int(round(fraction * len(uniq)))) if len(uniq) > 1 else 0
    out = set(rng.permutation(uniq)[:n_out].tolist())
    held = [i for i, p in enumerate(pids) if p in out]
    kept = [i for i, p in enumerate(pids) if p not in out]
    return kept, held


def subsample_patients(indices: list[int], samples: list[dict], fraction: float,
                       seed: int) -> list[int]:
    if fraction >= 1.0:
        return list(indices)
    pids = patient_ids([samples[i] for i in indices])
    uniq = np.unique(pids)
    k = max(1, int(round(fraction * len(uniq))))
    keep = set(np.random.default_rng([seed, 7]).permutation(uniq)[:k].tolist())
    return [i for i, p in zip(indices, pids) if p in keep]


def assert_no_leak(train: list[dict], test: list[dict]) -> None:
    both = set(patient_ids(train)) & set(patient_ids(test))
    if both:
        raise AssertionError(f"{len(both)} patient(s) are in both train and test, e.g. "
                             f"{sorted(both)[:3]}")


MODES = ("full", "frozen")


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int
    batch_size: int
    lr_encoder: float = 2e-4
    lr_head: float = 2e-3
    #: the head's rate when the encoder is frozen: a head alone on fixed features tolerates
    #: (and within a few epochs needs) a higher rate; 1e-2 beat 2e-3 on breast BI-RADS and
    #: thyroid-nodule segmentation (cpu profile, ImageNet and EchoCare encoders alike)
    lr_head_frozen: float = 1e-2
    #: EF regression's frozen head (on standardised features, output EF / 100): on the cpu
    #: profile's EF task (3 trials) 3e-3 gave MAE 9.3 / 11.4 / 9.3 (EchoCare / ImageNet /
    #: scratch) against 12.3 / 13.3 / 10.5 at 1e-2, which overshoots to a constant
    lr_head_frozen_regression: float = 3e-3
    weight_decay: float = 0.05
    val_fraction: float = 0.2
    patience: int = 3
    use_frames: bool = True  # cine tasks: the clip; False: the key frame only
    mode: str = "full"       # "full": fine-tune everything; "frozen": train the head only
    seg_head: str = "unetr"  # or "unetr-lite" (logits at stride 4, upsampled; see heads.py)
    #: EF regression: clip length L (frames; min(T, L) is used) and the test-time clip stride
    clip_len: int = 16
    clip_stride: int = 1
    #: landmarks: the Gaussian targets' sigma in input pixels (2 px at the 64 px profiles)
    heatmap_sigma: float = 2.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"FinetuneConfig.mode must be one of {MODES}, got {self.mode!r}")

    def to_dict(self) -> dict:
        """The settings, for the results' configuration hash. The fields added for detection,
        landmarks and regression are left out while they keep their defaults, so the hashes
        (and cached rows) of the classification and segmentation tasks stay what they were."""
        d = dict(self.__dict__)
        for k, v in _KIND_DEFAULTS.items():
            if d.get(k) == v:
                d.pop(k)
        return d

    def model_kwargs(self) -> dict:
        return {"clip_len": self.clip_len, "clip_stride": self.clip_stride,
                "heatmap_sigma": self.heatmap_sigma}


_KIND_DEFAULTS = {"clip_len": 16, "clip_stride": 1, "heatmap_sigma": 2.0,
                  "lr_head_frozen_regression": 3e-3}


def _inputs(samples: list[dict], use_frames: bool) -> torch.Tensor:
    if use_frames and "frames" in samples[0]:
        return torch.as_tensor(np.stack([s["frames"] for s in samples]))
    return torch.as_tensor(np.stack([s["image"] for s in samples]))


def _targets(samples: list[dict], kind: str) -> torch.Tensor:
    """Class labels [N]; label maps [N, H, W] (segmentation, detection: the masks the ellipses
    are fitted to); landmark (x, y) [N, K, 2] (heatmaps are built per batch in :func:`_loss`);
    EF / 100 [N] (regression)."""
    if kind == "classification":
        return torch.as_tensor([int(s["label"]) for s in samples])
    if kind == "landmarks":
        return torch.as_tensor(np.stack([np.asarray(s["landmarks"], np.float32)
                                         for s in samples]))
    if kind == "regression":
        return torch.as_tensor([float(s["ef"]) / 100.0 for s in samples], dtype=torch.float32)
    return torch.as_tensor(np.stack([s["mask"] for s in samples]).astype(np.int64))


@torch.no_grad()
def predict(model: DownstreamModel, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """The outputs evaluation takes (:meth:`DownstreamModel.postprocess`): softmax
    probabilities ([N, C] or [N, C, H, W]; detection too), landmark (x, y) [N, K, 2], or EF
    in % [N]."""
    model.eval()
    out = [model.postprocess(model(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return torch.cat(out)


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str,
          heatmap_sigma: float = 2.0) -> torch.Tensor:
    if kind == "classification":
        return F.cross_entropy(logits, y)
    if kind == "landmarks":
        # Each landmark's logits are a distribution over pixels (spatial softmax) trained with
        # cross-entropy against the normalised Gaussian around the true point. Plain MSE on
        # sparse heatmaps learns to predict zeros first and was unreliable (MRE above the
        # mean-position baseline on a two-disc toy case); the softmax form has a gradient that
        # pulls mass towards the point from the first step (integral/heatmap regression, e.g.
        # Nibali et al. 2018).
        target = gaussian_heatmaps_torch(y, logits.shape[-2:], heatmap_sigma).flatten(2)
        target = target / target.sum(-1, keepdim=True).clamp_min(1e-12)
        logp = logits.float().flatten(2).log_softmax(-1)
        return -(target * logp).sum(-1).mean()
    if kind == "regression":  # EchoNet-Dynamic: squared error on EF (here EF / 100)
        return F.mse_loss(logits.float(), y)
    # segmentation: cross-entropy + soft Dice over foreground classes (a standard pairing)
    ce = F.cross_entropy(logits, y)
    p = logits.softmax(1)[:, 1:]
    t = F.one_hot(y, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(p.dtype)
    inter = (p * t).sum((0, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((0, 2, 3)) + t.sum((0, 2, 3)) + 1)
    return ce + dice.mean()


@torch.no_grad()
def encode_frozen(model: DownstreamModel, x: torch.Tensor, batch_size: int = 64):
    """:meth:`DownstreamModel.encode` over ``x`` in batches, concatenated (encoder in eval mode)."""
    model.encoder.eval()
    parts = [model.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    if isinstance(parts[0], torch.Tensor):  # classification [N, C], regression [N, T, C]
        return torch.cat(parts)
    return type(parts[0])(features=[torch.cat(f) for f in zip(*(p.features for p in parts))],
                          pooled=torch.cat([p.pooled for p in parts]))


def take_encoded(encoded, idx):
    """Rows ``idx`` of :func:`encode_frozen`'s output."""
    if isinstance(encoded, torch.Tensor):
        return encoded[idx]
    return type(encoded)(features=[f[idx] for f in encoded.features], pooled=encoded.pooled[idx])


def predict_encoded(model: DownstreamModel, x: torch.Tensor, encoded) -> torch.Tensor:
    """:func:`predict` from frozen encodings of ``x`` (the same numbers, without the encoder)."""
    return _Batches(model, x, True, encoded).probs()


class _Batches:
    """What a training step consumes: raw inputs (``full``) or frozen encodings (``frozen``)."""

    def __init__(self, model: DownstreamModel, x: torch.Tensor, frozen: bool,
                 encoded=None) -> None:
        self.model, self.x = model, x
        if frozen and encoded is None and len(x):
            encoded = encode_frozen(model, x)
        self.encoded = encoded if frozen else None

    def logits(self, idx) -> torch.Tensor:
        if self.encoded is None:
            return self.model(self.x[idx])
        return self.model.decode(take_encoded(self.encoded, idx), self.x[idx])

    @torch.no_grad()
    def probs(self, batch_size: int = 32) -> torch.Tensor:
        """Evaluation outputs (:meth:`DownstreamModel.postprocess`; softmax probabilities for
        the classification/segmentation/detection kinds, whence the name)."""
        self.model.eval()
        idx = torch.arange(len(self.x))
        return torch.cat([self.model.postprocess(self.logits(idx[i:i + batch_size]))
                          for i in range(0, len(idx), batch_size)])


class BestEpoch:
    """Model selection with early stopping: keeps the state dict of the highest-scoring epoch
    and says when ``patience`` scored epochs in a row have not improved on it."""

    def __init__(self, patience: int) -> None:
        self.patience, self.best, self.epoch, self.state, self.waited = patience, -np.inf, -1, \
            None, 0

    def update(self, model: torch.nn.Module, epoch: int, score: float) -> bool:
        """Record ``epoch``'s score; True when training should stop."""
        if score > self.best:
            self.best, self.epoch, self.waited = score, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        """Load the kept epoch's weights (nothing kept: the model stays as it is)."""
        if self.state is not None:
            model.load_state_dict(self.state)


def finetune(encoder: torch.nn.Module, kind: str, n_classes: int, train: list[dict],
             val: list[dict], cfg: FinetuneConfig, seed: int, val_score, *,
             progress: bool = False, desc: str = "",
             encoded: tuple | None = None,
             higher_is_better: bool = True) -> tuple[DownstreamModel, dict]:
    """Fine-tune encoder + a new head (or the head alone, ``cfg.mode == "frozen"``); keep the
    epoch with the best ``val_score(outputs, val)``: the highest, or with
    ``higher_is_better=False`` (MRE, MAE) the lowest. ``info["val_score"]`` is the kept
    epoch's score as ``val_score`` returned it (not negated).

    ``encoded``: in frozen mode, (train, val) encodings already computed by
    :func:`encode_frozen` with this encoder (trials share them: the frozen encoder gives the
    same features every time)."""
    torch.manual_seed(seed)
    model = DownstreamModel(encoder, kind, n_classes, cfg.seg_head, **cfg.model_kwargs())
    frozen = cfg.mode == "frozen"
    t0 = time.perf_counter()
    if frozen:
        model.encoder.requires_grad_(False)
        lr = cfg.lr_head_frozen_regression if kind == "regression" else cfg.lr_head_frozen
        groups = [{"params": model.head.parameters(), "lr": lr}]
    else:
        groups = [{"params": model.encoder.parameters(), "lr": cfg.lr_encoder},
                  {"params": model.head.parameters(), "lr": cfg.lr_head}]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(train) / cfg.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=cfg.epochs * steps_per_epoch,
        pct_start=0.15, anneal_strategy="cos")
    enc_tr, enc_va = encoded if (frozen and encoded is not None) else (None, None)
    batches = _Batches(model, _inputs(train, cfg.use_frames), frozen, enc_tr)
    if frozen and not model.dense and batches.encoded is not None and len(train) > 1:
        model.set_feature_norm(batches.encoded)  # see DownstreamModel.set_feature_norm
    y = _targets(train, kind)
    if kind == "regression" and len(y):  # start from the training mean: a few epochs suffice
        with torch.no_grad():
            model.head.out.bias.fill_(float(y.mean()))
    sign = 1.0 if higher_is_better else -1.0
    val_batches = (_Batches(model, _inputs(val, cfg.use_frames), frozen, enc_va) if len(val)
                   else None)
    g = torch.Generator().manual_seed(seed)
    keeper = BestEpoch(cfg.patience)
    n_img = 0
    for epoch in tqdm(range(cfg.epochs), desc=desc or f"fine-tuning {kind}", leave=False,
                      disable=not progress):
        model.train()
        if frozen:
            model.encoder.eval()
        order = torch.randperm(len(y), generator=g)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if len(idx) < 2 and kind == "classification":
                continue
            loss = _loss(batches.logits(idx), y[idx], kind, cfg.heatmap_sigma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n_img += len(idx)
        if val_batches is not None:
            pv = val_batches.probs()
            score = sign * float(val_score(pv, val))
            if not np.isfinite(score) and kind in ("classification", "segmentation"):
                # e.g. AUC on a one-class validation split: use the loss
                yv = _targets(val, kind)
                score = -float(F.nll_loss(pv.clamp_min(1e-8).log(), yv))
        else:
            score = float(epoch)  # no validation data: keep the last epoch
        if keeper.update(model, epoch, score):
            break
    keeper.restore(model)
    secs = time.perf_counter() - t0
    best_reported = keeper.best * sign if val_batches is not None else keeper.best
    return model.eval(), {"best_epoch": keeper.epoch, "val_score": best_reported, "seconds": secs,
                          "train_images_per_s": n_img / secs if secs > 0 else float("nan")}


class ResultStore:
    """Tidy result rows of one task on disk (``<root>/<task>.csv``), cached by config hash."""

    COLUMNS = ["task", "model", "trial", "seed", "train_fraction", "metric", "value",
               "config_hash"]

    def __init__(self, root: "str | Path", task: str) -> None:
        self.path = Path(root) / f"{task}.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> pd.DataFrame:
        if not self.path.exists():
            return pd.DataFrame(columns=self.COLUMNS)
        # hashes are hex strings: one made only of digits ("123456789012") or like "12e456"
        # must not be read as a number, or its cached rows would never match again
        return pd.read_csv(self.path, dtype={"config_hash": str, "model": str, "task": str,
                                             "metric": str})

    def cached(self, config_hash: str, model: str, trial: int, fraction: float) -> pd.DataFrame:
        df = self.load()
        if df.empty:
            return df
        sel = ((df.config_hash == config_hash) & (df.model == model) & (df.trial == trial)
               & np.isclose(df.train_fraction.astype(float), fraction))
        return df[sel]

    def add(self, rows: pd.DataFrame) -> None:
        """Append rows (a row with the same key replaces the old one), under a file lock and
        through a temporary file, so a reader never sees half a file."""
        import os
        import tempfile

        from filelock import FileLock

        with FileLock(str(self.path) + ".lock", timeout=300):
            df = pd.concat([self.load(), rows[self.COLUMNS]], ignore_index=True)
            key = ["config_hash", "model", "trial", "train_fraction", "metric"]
            df = df.drop_duplicates(key, keep="last")
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}-",
                                       suffix=".csv")
            with os.fdopen(fd, "w", newline="") as fh:
                df.to_csv(fh, index=False)
            os.replace(tmp, self.path)


def config_hash(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
