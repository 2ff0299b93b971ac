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

from . import geometry as G
from . import metrics as M
from .finetune import (FinetuneConfig, ResultStore, _inputs, assert_no_leak, config_hash,
                       encode_frozen, finetune, predict, predict_encoded, split_by_patient,
                       subsample_patients, take_encoded, trial_seed)
from .heads import DownstreamModel, masks_to_ellipses
from .registry import GENERATIVE_KINDS, Task, get_task
from .zoo import build_encoder

_ARRAY_KEYS = ("image", "mask", "frames", "landmarks", "target", "images")
#: non-array sample keys kept in the cache (detection: ellipses and CTR; EF: ef, ED/ES)
_JSON_KEYS = ("label", "label_name", "meta", "ellipses", "ctr", "ef", "ed_index", "es_index",
              "landmark_names", "organ", "report", "entities")
#: what each kind's evaluation needs from a sample (a cache without it is rebuilt)
_NEEDS = {"detection": "ellipses", "landmarks": "landmarks", "regression": "ef",
          "enhancement": "target", "report": "report"}


def _scale_ellipse(e: dict, sx: float, sy: float) -> dict:
    """An ellipse under the pixel-index map x' = (x + .5) sx - .5, y' = (y + .5) sy - .5
    (an affine image of an ellipse is an ellipse: its shape matrix is scaled and
    re-diagonalised, so anisotropic resizes stay exact)."""
    t = np.deg2rad(float(e["angle"]))
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    m = r @ np.diag([float(e["a"]) ** 2, float(e["b"]) ** 2]) @ r.T
    s = np.diag([sx, sy])
    lam, vec = np.linalg.eigh(s @ m @ s)
    out = dict(e)
    out.update(cx=(float(e["cx"]) + .5) * sx - .5, cy=(float(e["cy"]) + .5) * sy - .5,
               a=float(np.sqrt(lam[1])), b=float(np.sqrt(lam[0])),
               angle=float(np.degrees(np.arctan2(vec[1, 1], vec[0, 1])) % 180.0))
    return out


def _resize(sample: dict, size: int) -> dict:
    """Resize image/frames (area) and mask (nearest) to ``size`` x ``size``."""
    out = dict(sample)
    hw = np.asarray(sample["image"] if "image" in sample else sample["frames"]).shape[-2:]
    # image-like keys: the image, cine frames, enhancement's high-quality target (its own
    # size), report cases' two images [2, 1, H, W]
    if tuple(hw) != (size, size):  # point and ellipse annotations follow the pixels
        sx, sy = size / hw[1], size / hw[0]
        if "landmarks" in sample:
            pts = np.asarray(sample["landmarks"], np.float32)
            out["landmarks"] = ((pts + .5) * np.array([sx, sy], np.float32) - .5
                                ).astype(np.float32)
        if "ellipses" in sample:
            out["ellipses"] = [_scale_ellipse(e, sx, sy) for e in sample["ellipses"]]
    for key in ("image", "frames", "target", "images"):
        if key in sample and sample[key] is not None:
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
    rest = [{k: v for k, v in s.items() if k not in _ARRAY_KEYS and k in _JSON_KEYS}
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
            need = _NEEDS.get(get_task(task).kind)
            if cached is not None and need and cached and need not in cached[0]:
                cached = None  # written before this kind's annotations were cached
            if cached is None:
                cached = generate(task, n, size=size, seed=seed, split=split, n_jobs=n_jobs,
                                  progress=progress)
                _save_cache(path, cached)
            out.append(cached)
        train, test = out
        source = "simulator"
    train = [_resize(s, size) for s in train]
    test = [_resize(s, size) for s in test]
    both = common_clip_length(train + test)
    train, test = both[:len(train)], both[len(train):]
    assert_no_leak(train, test)
    return train, test, source


def common_clip_length(samples: list[dict]) -> list[dict]:
    """Cine samples resampled to one length, so they can be batched: real loops have as many
    frames as the patient's recording (CAMUS half-sequences, AIMI clips), simulated ones do not
    differ. The common length is the shortest loop's (no frame is invented); frames are picked at
    evenly spaced indices that keep the first and the last frame (for CAMUS half-sequences: ED
    and ES), per-frame masks alike, and ``ed_index``/``es_index`` move to the picked frames
    nearest to them. Samples without ``frames``, or all of one length, are returned unchanged."""
    lengths = {len(s["frames"]) for s in samples if "frames" in s}
    if len(lengths) <= 1:
        return list(samples)
    n = min(lengths)
    out = []
    for s in samples:
        t = len(s.get("frames", ()))
        if not t or t == n:
            out.append(s)
            continue
        idx = np.unique(np.round(np.linspace(0, t - 1, n)).astype(int))
        r = dict(s, frames=np.asarray(s["frames"])[idx])
        if "masks" in s:
            r["masks"] = np.asarray(s["masks"])[idx]
        for key in ("ed_index", "es_index"):
            if key in s and s[key] is not None:
                r[key] = int(np.abs(idx - int(s[key])).argmin())
        r["meta"] = {**s["meta"], "frames_resampled_from": t}
        out.append(r)
    return out


def evaluate(task: Task, probs: torch.Tensor, samples: list[dict], *,
             surface: bool = True) -> dict[str, float]:
    """The task's metrics on the model's outputs (``finetune.predict``): softmax probabilities
    for classification, segmentation and detection, landmark (x, y) [N, K, 2], EF in % [N].
    ``surface=False``: the cheap subset for model selection on the validation split
    (segmentation without NSD, detection without COCO AP)."""
    if task.kind == "detection":
        return _evaluate_detection(task, probs, samples, ap=surface)
    if task.kind == "landmarks":
        return _evaluate_landmarks(task, probs, samples)
    if task.kind == "regression":
        r = M.regression_metrics([float(s["ef"]) for s in samples], probs.numpy())
        return {"MAE": r["MAE"], "RMSE": r["RMSE"], "R2": r["R2"]}
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
    r = M.segmentation_metrics(pred, target, list(task.classes), spacing, nsd=surface)
    out = {"mDSC": r.mDSC, "mNSD": r.mNSD}
    if len(task.classes) == 2:
        out.update({"DSC": r.mDSC, "NSD": r.mNSD})
    for _, row in r.per_class.iterrows():
        out[f"DSC[{row['class']}]"] = row["dsc"]
    return out


def _evaluate_detection(task: Task, probs: torch.Tensor, samples: list[dict], *,
                        ap: bool = True) -> dict[str, float]:
    """FOCUS metrics of the ellipses fitted to the predicted masks: per-object DSC of the
    rasterised ellipses (``DSC[thorax]``, ``DSC[cardiac]``, ``mDSC`` their mean; a missed
    object counts 0), ``P_CTR`` (percent, mean over images; an image without both predicted
    ellipses counts 0) and ``CTR_MAE``, and with ``ap`` COCO box-AP / mask-AP (fractions)."""
    fg = [str(c) for c in task.classes[1:]]
    pred = masks_to_ellipses(probs.argmax(1), probs, task.classes)
    gts = [[dict(e) for e in s["ellipses"]] for s in samples]
    shapes = [np.asarray(s["image"]).shape[-2:] for s in samples]
    dsc = G.object_dsc(pred, gts, shapes, fg)
    out = {f"DSC[{c}]": float(dsc.loc[dsc["class"] == c, "dsc"].mean()) for c in fg}
    out["mDSC"] = float(np.nanmean([out[f"DSC[{c}]"] for c in fg]))
    if {"thorax", "cardiac"} <= set(fg):
        pc, err = [], []
        for s, p_img, g_img in zip(samples, pred, gts):
            r_true = float(s["ctr"]) if s.get("ctr") is not None else G.ctr(g_img)
            labels = [e["label"] for e in p_img]
            if labels.count("thorax") == 1 and labels.count("cardiac") == 1:
                r_pred = G.ctr(p_img)
                pc.append(G.p_ctr(r_true, r_pred))
                err.append(abs(r_true - r_pred))
            else:
                pc.append(0.0)
        out["P_CTR"] = float(np.mean(pc))
        out["CTR_MAE"] = float(np.mean(err)) if err else float("nan")
    if ap:
        det = G.detection_ap(pred, gts, shapes, fg)
        out.update(det.summary)
        for c in fg:
            out[f"box-AP[{c}]"] = det.get("bbox", c)
            out[f"mask-AP[{c}]"] = det.get("segm", c)
    return out


def _evaluate_landmarks(task: Task, coords: torch.Tensor, samples: list[dict]) -> dict:
    """Landmark metrics (``geometry.landmark_metrics``): ``MRE`` (mean radial error, px),
    ``SDR@2/4/10`` (percent), per-landmark ``MRE[name]``, ``MRE_mm`` when every sample has a
    pixel spacing, and two MSE readings: ``MSE`` is the number the paper *prints* as "MSE"
    (7.71 for EchoCare), which its SDRs show to be a mean radial error in pixels (see
    ``landmark_metrics``' docstring), so ``MSE`` = ``MRE``; ``MSE_px2`` is the paper's written
    formula, the mean *squared* radial error in px^2."""
    gt = np.stack([np.asarray(s["landmarks"], np.float64) for s in samples])
    sp = [s["meta"].get("pixel_spacing_mm") for s in samples]
    spacing = np.array([[float(v)] * 2 for v in sp]) if all(sp) else None
    r = G.landmark_metrics(coords.numpy(), gt, spacing_mm=spacing, names=task.classes)
    out = {"MRE": r["MRE_px"], "MSE": r["MRE_px"], "MSE_px2": r["MSE_px2"],
           "SDR@2": r["SDR@2"], "SDR@4": r["SDR@4"], "SDR@10": r["SDR@10"]}
    if spacing is not None:
        out["MRE_mm"] = r["MRE_mm"]
    for _, row in r["per_landmark"].iterrows():
        out[f"MRE[{row['name']}]"] = float(row["MRE_px"])
    return out


def _probe_parts(task, cfg) -> list[str]:
    """Extra hash parts for a frozen pooled head, whose features are standardised
    (:meth:`DownstreamModel.set_feature_norm`); dense tasks' cached rows keep their hashes."""
    return (["standardised pooled features"]
            if cfg.mode == "frozen" and task.kind in ("classification", "regression") else [])


def run_trials(task_name: str, encoders: list[str], *, profile, seed: int = 0, data=None,
               train_fractions=(1.0,), n_trials: int | None = None, results_dir=None,
               progress: bool = True, cached_only: bool = False) -> pd.DataFrame:
    """Tidy rows for every (encoder, train fraction, trial); cached rows are reused when the
    configuration (profile, task data, fine-tuning settings, encoder checkpoint) matches.
    Rows of a fraction below 1 carry the metrics that need no surface distances or COCO AP
    (the primary metric always). ``cached_only``: return the cached rows and train nothing
    (what a summary of earlier notebooks' runs needs)."""
    from ..paths import build_dir
    from ..profiles import get_profile

    prof = get_profile(profile)
    task = get_task(task_name)
    train, test, source = data if data is not None else task_data(task_name, profile=prof,
                                                                  seed=seed)
    cfg = FinetuneConfig(epochs=prof.finetune_epochs, batch_size=prof.finetune_batch_size,
                         use_frames=task.uses_frames, mode=prof.finetune_mode,
                         seg_head=prof.seg_head)
    # lower-is-better primaries (MRE, MAE) are minimised in model selection
    higher = task.better(task.primary)
    store = ResultStore(results_dir or build_dir() / prof.name / "results", task_name)
    trials = n_trials or prof.n_trials
    primary = task.primary
    rows = []
    generative = task.kind in GENERATIVE_KINDS
    if generative:
        from .generative import GenerativeTrials

        gen = GenerativeTrials(task, prof, train, test)
        trials = n_trials or prof.generative_trials or prof.n_trials
        settings = gen.cfg.to_dict()
    else:
        x_train, x_test = _inputs(train, cfg.use_frames), _inputs(test, cfg.use_frames)
        settings = cfg.to_dict()
    for enc_name in encoders:
        enc_id = _encoder_identity(enc_name, prof, seed)
        frozen = None  # frozen mode: (train, test) encodings, computed once for all trials
        for frac in train_fractions:
            for t in range(trials):
                h = config_hash(prof.config_hash(), task_name, source, len(train), len(test),
                                settings, enc_id, seed, *_probe_parts(task, cfg))
                hit = store.cached(h, enc_name, t, frac)
                if not hit.empty:
                    rows.append(hit)
                    continue
                if cached_only:
                    continue
                s = trial_seed(seed, t)
                kept, val_idx = split_by_patient(train, cfg.val_fraction, s)
                kept = subsample_patients(kept, train, frac, s)
                tr, va = [train[i] for i in kept], [train[i] for i in val_idx]
                torch.manual_seed(s)
                encoder = build_encoder(enc_name, profile=prof, seed=seed)
                if generative:
                    res, info, arrays = gen.trial(
                        encoder, kept, val_idx, s, enc_key=enc_name, progress=progress,
                        desc=f"{task_name} {enc_name} f={frac:g} trial {t}")
                    if t == 0:
                        path = predictions_path(store.path.parent, task_name, enc_name, frac, h)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        np.savez_compressed(path, **arrays)
                    res.update(info)
                    rows.append(_store_rows(store, task_name, enc_name, t, s, frac, h, res))
                    continue
                n_cls = len(task.classes)
                encoded = None
                if cfg.mode == "frozen":
                    if frozen is None:
                        stub = DownstreamModel(encoder, task.kind, n_cls, cfg.seg_head,
                                               **cfg.model_kwargs())
                        frozen = (encode_frozen(stub, x_train), encode_frozen(stub, x_test))
                    encoded = (take_encoded(frozen[0], kept), take_encoded(frozen[0], val_idx))
                model, info = finetune(
                    encoder, task.kind, n_cls, tr, va, cfg, s,
                    lambda p, v: evaluate(task, p, v, surface=False)[primary],
                    progress=progress,
                    desc=f"{task_name} {enc_name} f={frac:g} trial {t}", encoded=encoded,
                    higher_is_better=higher)
                probs = (predict_encoded(model, x_test, frozen[1]) if encoded is not None
                         else predict(model, x_test))
                # below the full training set (Fig. 8's curves, which plot the primary metric)
                # the surface-distance and COCO-AP metrics are skipped: at small fractions they
                # cost more than the training
                res = evaluate(task, probs, test, surface=frac >= 1.0)
                if t == 0:  # keep trial 0's test predictions for example figures and browsing
                    save_predictions(store.path.parent, task_name, enc_name, frac, h, probs,
                                     kind=task.kind, classes=task.classes)
                res.update({"val_" + primary: info["val_score"], "best_epoch": info["best_epoch"],
                            "train_seconds": info["seconds"],
                            "train_images_per_s": info["train_images_per_s"]})
                rows.append(_store_rows(store, task_name, enc_name, t, s, frac, h, res))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=ResultStore.COLUMNS)


def _store_rows(store, task_name, enc_name, t, s, frac, h, res: dict) -> pd.DataFrame:
    df = pd.DataFrame([{"task": task_name, "model": enc_name, "trial": t, "seed": s,
                        "train_fraction": frac, "metric": k, "value": float(v),
                        "config_hash": h} for k, v in res.items()])
    store.add(df)
    return df


def predictions_path(results_dir, task: str, model: str, fraction: float, h: str) -> Path:
    return Path(results_dir) / "predictions" / task / f"{model}-f{fraction:g}-{h}.npz"


#: columns of the saved detection array (one row per foreground class, NaN when not found)
ELLIPSE_COLUMNS = ("cx", "cy", "a", "b", "angle", "score")


def ellipses_array(ellipses: list[list[dict]], classes) -> np.ndarray:
    """Per-image ellipse lists -> ``[N, n_classes, 6]`` (:data:`ELLIPSE_COLUMNS`; NaN rows for
    classes without an ellipse; the highest-scoring one when there are several)."""
    classes = [str(c) for c in classes]
    arr = np.full((len(ellipses), len(classes), len(ELLIPSE_COLUMNS)), np.nan, np.float32)
    for i, img in enumerate(ellipses):
        for k, c in enumerate(classes):
            hits = sorted((e for e in img if e["label"] == c),
                          key=lambda e: -float(e.get("score", 1.0)))
            if hits:
                arr[i, k] = [float(hits[0].get(col, 1.0)) for col in ELLIPSE_COLUMNS]
    return arr


def save_predictions(results_dir, task: str, model: str, fraction: float, h: str,
                     probs: torch.Tensor, *, kind: str | None = None,
                     classes=None) -> Path:
    """Trial 0's test-set outputs: class probabilities, the label map for segmentation,
    detection's fitted ellipses ``[N, n_foreground, 6]`` (:data:`ELLIPSE_COLUMNS`, foreground
    classes in the task's order; the label maps as ``label_maps``), landmark (x, y)
    ``[N, K, 2]``, or EF in % ``[N]``."""
    path = predictions_path(results_dir, task, model, fraction, h)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "detection":
        classes = tuple(classes or ("background", "thorax", "cardiac"))
        labels = probs.argmax(1)
        ell = ellipses_array(masks_to_ellipses(labels, probs, classes), classes[1:])
        np.savez_compressed(path, predictions=ell,
                            label_maps=labels.numpy().astype(np.uint8))
        return path
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
