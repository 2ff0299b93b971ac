"""Fine-tuning trials: one function from (task, encoder, trial) to tidy result rows.

Protocol (paper section 4.1/4.4, scaled by the profile):

* the task's train split is split again at **patient level** into fine-tuning and validation
  (80:20); the test split is never touched until the end (``splits.assert_no_leak`` checks);
* ``train_fraction`` < 1 keeps that fraction of the training *patients* (Fig. 8);
* AdamW, a few epochs (``profile.finetune_epochs``), the whole network trained, the head at a
  10x higher learning rate than the pretrained encoder; after each epoch the validation metric
  is computed and the best epoch's weights are kept (early stopping with patience);
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

from .heads import DownstreamModel


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


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int
    batch_size: int
    lr_encoder: float = 2e-4
    lr_head: float = 2e-3
    weight_decay: float = 0.05
    val_fraction: float = 0.2
    patience: int = 3
    use_frames: bool = True  # cine tasks: the clip; False: the key frame only

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _inputs(samples: list[dict], use_frames: bool) -> torch.Tensor:
    if use_frames and "frames" in samples[0]:
        return torch.as_tensor(np.stack([s["frames"] for s in samples]))
    return torch.as_tensor(np.stack([s["image"] for s in samples]))


def _targets(samples: list[dict], kind: str) -> torch.Tensor:
    if kind == "classification":
        return torch.as_tensor([int(s["label"]) for s in samples])
    return torch.as_tensor(np.stack([s["mask"] for s in samples]).astype(np.int64))


@torch.no_grad()
def predict(model: DownstreamModel, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Softmax probabilities ([N, C] or [N, C, H, W])."""
    model.eval()
    out = [model(x[i:i + batch_size]).float().softmax(1) for i in range(0, len(x), batch_size)]
    return torch.cat(out)


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "classification":
        return F.cross_entropy(logits, y)
    # segmentation: cross-entropy + soft Dice over foreground classes (a standard pairing)
    ce = F.cross_entropy(logits, y)
    p = logits.softmax(1)[:, 1:]
    t = F.one_hot(y, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(p.dtype)
    inter = (p * t).sum((0, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((0, 2, 3)) + t.sum((0, 2, 3)) + 1)
    return ce + dice.mean()


def finetune(encoder: torch.nn.Module, kind: str, n_classes: int, train: list[dict],
             val: list[dict], cfg: FinetuneConfig, seed: int, val_score, *,
             progress: bool = False, desc: str = "") -> tuple[DownstreamModel, dict]:
    """Fine-tune encoder + a new head; keep the epoch with the best ``val_score(probs, val)``."""
    torch.manual_seed(seed)
    model = DownstreamModel(encoder, kind, n_classes)
    groups = [{"params": model.encoder.parameters(), "lr": cfg.lr_encoder},
              {"params": model.head.parameters(), "lr": cfg.lr_head}]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(train) / cfg.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[cfg.lr_encoder, cfg.lr_head], total_steps=cfg.epochs * steps_per_epoch,
        pct_start=0.15, anneal_strategy="cos")
    x, y = _inputs(train, cfg.use_frames), _targets(train, kind)
    xv = _inputs(val, cfg.use_frames)
    g = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch, waited = -np.inf, None, -1, 0
    t0, n_img = time.perf_counter(), 0
    for epoch in tqdm(range(cfg.epochs), desc=desc or f"fine-tuning {kind}", leave=False,
                      disable=not progress):
        model.train()
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if len(idx) < 2 and kind == "classification":
                continue
            loss = _loss(model(x[idx]), y[idx], kind)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n_img += len(idx)
        score = float("nan")
        if len(val):
            pv = predict(model, xv)
            score = float(val_score(pv, val))
            if not np.isfinite(score):  # e.g. AUC on a one-class validation split: use the loss
                yv = _targets(val, kind)
                score = -float(F.nll_loss(pv.clamp_min(1e-8).log(), yv))
        else:
            score = float(epoch)  # no validation data: keep the last epoch
        if score > best:
            best, best_epoch, waited = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    secs = time.perf_counter() - t0
    return model.eval(), {"best_epoch": best_epoch, "val_score": best, "seconds": secs,
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
        return pd.read_csv(self.path)

    def cached(self, config_hash: str, model: str, trial: int, fraction: float) -> pd.DataFrame:
        df = self.load()
        if df.empty:
            return df
        sel = ((df.config_hash == config_hash) & (df.model == model) & (df.trial == trial)
               & np.isclose(df.train_fraction.astype(float), fraction))
        return df[sel]

    def add(self, rows: pd.DataFrame) -> None:
        df = pd.concat([self.load(), rows[self.COLUMNS]], ignore_index=True)
        key = ["config_hash", "model", "trial", "train_fraction", "metric"]
        df = df.drop_duplicates(key, keep="last")
        df.to_csv(self.path, index=False)


def config_hash(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
