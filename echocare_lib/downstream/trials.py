"""Task data and repeated trials: what the downstream notebooks call.

``task_data(task, profile, seed, data_dir)`` gives (train, test) sample lists from the real
reader when ``data_dir`` holds the data set, else from the simulator (cached on disk under
``build/<profile>/tasks/``). ``run_trials(...)`` fine-tunes every encoder of the zoo
``n_trials`` times per train fraction and returns the tidy rows, reusing cached rows whose
configuration hash matches.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import metrics as M
from .finetune import (FinetuneConfig, ResultStore, _inputs, assert_no_leak, config_hash,
                       finetune, predict, split_by_patient, subsample_patients, trial_seed)
from .registry import Task, get_task
from .zoo import build_encoder

_ARRAY_KEYS = ("image", "mask", "frames")


def _resize(sample: dict, size: int) -> dict:
    """Resize image/frames (area) and mask (nearest) to ``size`` x ``size``."""
    out = dict(sample)
    for key in ("image", "frames"):
        if key in sample:
            a = torch.as_tensor(np.asarray(sample[key], np.float32))
            a4 = a if a.ndim == 4 else a[None]
            if a4.shape[-2:] != (size, size):
                a4 = F.interpolate(a4, size=(size, size), mode="area")
            out[key] = (a4 if a.ndim == 4 else a4[0]).numpy()
    if "mask" in sample:
        m = torch.as_tensor(np.asarray(sample["mask"]).astype(np.int64))[None, None].float()
        if m.shape[-2:] != (size, size):
            m = F.interpolate(m, size=(size, size), mode="nearest")
        out["mask"] = m[0, 0].numpy().astype(np.uint8)
        sp = sample["meta"].get("pixel_spacing_mm")
        if sp:
            h = np.asarray(sample["mask"]).shape[0]
            out["meta"] = {**sample["meta"], "pixel_spacing_mm": float(sp) * h / size}
    return out


def _cache_path(root: Path, task: str, split: str, n: int, size: int, seed: int) -> Path:
    return root / f"{task}-{split}-n{n}-s{size}-seed{seed}"


def _save_cache(path: Path, samples: list[dict]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    arrays = {f"{k}_{i}": s[k] for i, s in enumerate(samples) for k in _ARRAY_KEYS if k in s}
    np.savez(path / "arrays.npz", **arrays)
    rest = [{k: v for k, v in s.items() if k not in _ARRAY_KEYS and k in ("label", "label_name",
                                                                        "meta")}
            for s in samples]
    (path / "samples.json").write_text(json.dumps(rest, default=str))


def _load_cache(path: Path) -> list[dict] | None:
    if not (path / "samples.json").exists() or not (path / "arrays.npz").exists():
        return None
    try:
        rest = json.loads((path / "samples.json").read_text())
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            for i, s in enumerate(rest):
                for k in _ARRAY_KEYS:
                    if f"{k}_{i}" in z:
                        s[k] = z[f"{k}_{i}"]
        return rest
    except (OSError, ValueError, json.JSONDecodeError):
        return None  # a damaged cache is rebuilt


def task_data(task: str, *, profile, seed: int = 0, data_dir=None, n_jobs: int = 2,
              progress: bool = True) -> tuple[list[dict], list[dict], str]:
    """(train, test, source description) for one task, resized to the profile's input size."""
    from ..paths import build_dir
    from ..profiles import get_profile
    from ..sim.tasks import generate

    prof = get_profile(profile)
    size = prof.image_size
    if data_dir is not None:
        from ..readers import read_task
        from ..readers.splits import patient_split

        samples = read_task(task, data_dir)
        train, test = patient_split(samples, test_fraction=0.2, seed=seed)
        source = f"real: {get_task(task).dataset} under {data_dir}"
    else:
        root = build_dir() / prof.name / "tasks"
        out = []
        for split, n in (("train", prof.sim_train_size), ("test", prof.sim_test_size)):
            path = _cache_path(root, task, split, n, size, seed)
            cached = _load_cache(path)
            if cached is None:
                cached = generate(task, n, size=size, seed=seed, split=split, n_jobs=n_jobs,
                                  progress=progress)
                _save_cache(path, cached)
            out.append(cached)
        train, test = out
        source = "simulator"
    train = [_resize(s, size) for s in train]
    test = [_resize(s, size) for s in test]
    assert_no_leak(train, test)
    return train, test, source


def evaluate(task: Task, probs: torch.Tensor, samples: list[dict]) -> dict[str, float]:
    """The task's metrics on softmax outputs."""
    if task.kind == "classification":
        y = np.array([int(s["label"]) for s in samples])
        r = M.classification_metrics(y, probs.numpy(), list(task.classes))
        out = {"ACC": r["ACC"], "F1": r["F1"], "macro-F1": r["macro_F1"], "AUC": r["AUC"],
               "precision": r["precision"], "recall": r["recall"]}
        if len(task.classes) == 2:
            yo = M.youden_operating_point(y, probs[:, 1].numpy())
            out.update({"sensitivity@Youden": yo["sensitivity"],
                        "specificity@Youden": yo["specificity"]})
        return out
    pred = probs.argmax(1).numpy()
    target = np.stack([s["mask"] for s in samples])
    spacing = np.array([[s["meta"].get("pixel_spacing_mm") or 1.0] * 2 for s in samples])
    r = M.segmentation_metrics(pred, target, list(task.classes), spacing)
    out = {"mDSC": r.mDSC, "mNSD": r.mNSD}
    if len(task.classes) == 2:
        out.update({"DSC": r.mDSC, "NSD": r.mNSD})
    for _, row in r.per_class.iterrows():
        out[f"DSC[{row['class']}]"] = row["dsc"]
    return out


def run_trials(task_name: str, encoders: list[str], *, profile, seed: int = 0, data=None,
               train_fractions=(1.0,), n_trials: int | None = None, results_dir=None,
               progress: bool = True) -> pd.DataFrame:
    """Tidy rows for every (encoder, train fraction, trial); cached rows are reused when the
    configuration (profile, task data, fine-tuning settings, encoder checkpoint) matches."""
    from ..paths import build_dir
    from ..profiles import get_profile

    prof = get_profile(profile)
    task = get_task(task_name)
    train, test, source = data if data is not None else task_data(task_name, profile=prof,
                                                                  seed=seed)
    cfg = FinetuneConfig(epochs=prof.finetune_epochs, batch_size=prof.finetune_batch_size,
                         use_frames=task.uses_frames)
    store = ResultStore(results_dir or build_dir() / prof.name / "results", task_name)
    trials = n_trials or prof.n_trials
    primary = task.primary
    rows = []
    for enc_name in encoders:
        enc_id = _encoder_identity(enc_name, prof, seed)
        for frac in train_fractions:
            for t in range(trials):
                h = config_hash(prof.config_hash(), task_name, source, len(train), len(test),
                                cfg.to_dict(), enc_id, seed)
                hit = store.cached(h, enc_name, t, frac)
                if not hit.empty:
                    rows.append(hit)
                    continue
                s = trial_seed(seed, t)
                kept, val_idx = split_by_patient(train, cfg.val_fraction, s)
                kept = subsample_patients(kept, train, frac, s)
                tr, va = [train[i] for i in kept], [train[i] for i in val_idx]
                torch.manual_seed(s)
                encoder = build_encoder(enc_name, profile=prof, seed=seed)
                n_cls = len(task.classes)
                model, info = finetune(
                    encoder, task.kind, n_cls, tr, va, cfg, s,
                    lambda p, v: evaluate(task, p, v)[primary], progress=progress,
                    desc=f"{task_name} {enc_name} f={frac:g} trial {t}")
                probs = predict(model, _inputs(test, cfg.use_frames))
                res = evaluate(task, probs, test)
                if t == 0:  # keep trial 0's test predictions for example figures and browsing
                    save_predictions(store.path.parent, task_name, enc_name, frac, h, probs)
                res.update({"val_" + primary: info["val_score"], "best_epoch": info["best_epoch"],
                            "train_seconds": info["seconds"],
                            "train_images_per_s": info["train_images_per_s"]})
                df = pd.DataFrame([{"task": task_name, "model": enc_name, "trial": t, "seed": s,
                                    "train_fraction": frac, "metric": k, "value": float(v),
                                    "config_hash": h} for k, v in res.items()])
                store.add(df)
                rows.append(df)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=ResultStore.COLUMNS)


def predictions_path(results_dir, task: str, model: str, fraction: float, h: str) -> Path:
    return Path(results_dir) / "predictions" / task / f"{model}-f{fraction:g}-{h}.npz"


def save_predictions(results_dir, task: str, model: str, fraction: float, h: str,
                     probs: torch.Tensor) -> Path:
    """Trial 0's test-set outputs: class probabilities, or the label map for segmentation."""
    path = predictions_path(results_dir, task, model, fraction, h)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = probs.argmax(1).numpy().astype(np.uint8) if probs.ndim == 4 else probs.numpy()
    np.savez_compressed(path, predictions=arr)
    return path


def load_predictions(rows: pd.DataFrame, task: str, model: str, fraction: float = 1.0,
                     results_dir=None, profile=None) -> np.ndarray:
    """Trial 0's saved test predictions for (task, model, fraction), found via the rows' hash."""
    from ..paths import build_dir
    from ..profiles import get_profile

    sel = rows[(rows.task == task) & (rows.model == model) & (rows.trial == 0)
               & np.isclose(rows.train_fraction.astype(float), fraction)]
    if sel.empty:
        raise KeyError(f"no trial-0 rows for {task} / {model} / fraction {fraction}")
    root = results_dir or build_dir() / get_profile(profile).name / "results"
    path = predictions_path(root, task, model, fraction, sel.config_hash.iloc[0])
    with np.load(path, allow_pickle=False) as z:
        return z["predictions"]


def _encoder_identity(name: str, prof, seed: int) -> str:
    """What makes an encoder's results reusable: our checkpoints' config hash, else the name."""
    from .zoo import OUR_CHECKPOINTS, checkpoint_folder

    if name in OUR_CHECKPOINTS:
        folder = checkpoint_folder(name, prof.name, seed)
        return f"{name}:{folder.name if folder else 'missing'}"
    return name
