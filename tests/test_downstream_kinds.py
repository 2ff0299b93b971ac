"""Detection (ellipses fitted to masks), landmarks (heatmaps) and EF regression (cine, clips)
in the downstream framework: each learns a tiny synthetic case, in both fine-tuning modes
where that is cheap, and the pieces between (ellipse fitting, clip sampling, lower-is-better
model selection) do what they say."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from echocare_lib.downstream import build_encoder, get_task
from echocare_lib.downstream.finetune import (FinetuneConfig, encode_frozen, finetune, predict,
                                              predict_encoded, split_by_patient)
from echocare_lib.downstream.geometry import ellipse_iou, ellipse_mask, gaussian_heatmaps
from echocare_lib.downstream.heads import (DownstreamModel, clip_starts,
                                           gaussian_heatmaps_torch, masks_to_ellipses)
from echocare_lib.downstream.trials import _resize, evaluate, save_predictions


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _meta(p, k):
    return {"patient_id": f"p{p}", "case_id": f"p{p}-{k}", "pixel_spacing_mm": 0.5}


def _split(s, seed=0):
    kept, held = split_by_patient(s, 0.25, seed=seed)
    return [s[i] for i in kept], [s[i] for i in held]


# --------------------------------------------------------------------------------- detection
def _detection_samples(n=24, size=64, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        th = {"label": "thorax", "cx": rng.uniform(26, 38), "cy": rng.uniform(26, 38),
              "a": rng.uniform(17, 22), "b": rng.uniform(12, 16), "angle": rng.uniform(0, 180)}
        ca = {"label": "cardiac", "cx": th["cx"] + rng.uniform(-3, 3),
              "cy": th["cy"] + rng.uniform(-3, 3), "a": rng.uniform(7, 9),
              "b": rng.uniform(4.5, 6.5), "angle": rng.uniform(0, 180)}
        mt, mc = ellipse_mask(th, (size, size)), ellipse_mask(ca, (size, size))
        mask = np.zeros((size, size), np.uint8)
        mask[mt], mask[mc] = 1, 2   # cardiac drawn over thorax, as the simulator does
        img = rng.random((1, size, size), dtype=np.float32) * 0.3
        img[0][mt] += 0.35
        img[0][mc] += 0.3
        out.append({"image": img, "mask": mask, "ellipses": [th, ca],
                    "ctr": min(ca["a"], ca["b"]) / min(th["a"], th["b"]), "meta": _meta(i, 0)})
    return out


def test_masks_to_ellipses_recovers_rasterised_ellipses():
    th = {"label": "thorax", "cx": 31.3, "cy": 29.6, "a": 20.0, "b": 13.0, "angle": 35.0}
    ca = {"label": "cardiac", "cx": 33.0, "cy": 30.5, "a": 9.0, "b": 6.0, "angle": 120.0}
    lm = np.zeros((64, 64), np.int64)
    lm[ellipse_mask(th, lm.shape)] = 1
    lm[ellipse_mask(ca, lm.shape)] = 2
    lm[2, 2] = 2    # a stray pixel: the largest component keeps it out of the cardiac fit
    probs = torch.nn.functional.one_hot(torch.as_tensor(lm), 3).permute(2, 0, 1).float()
    (found,) = masks_to_ellipses(lm[None], probs[None] * 0.9)
    got = {e["label"]: e for e in found}
    for true in (th, ca):
        e = got[true["label"]]
        assert abs(e["cx"] - true["cx"]) < 0.15 and abs(e["cy"] - true["cy"]) < 0.15
        assert abs(e["a"] / true["a"] - 1) < 0.04 and abs(e["b"] / true["b"] - 1) < 0.05
        assert abs((e["angle"] - true["angle"] + 90) % 180 - 90) < 3.0
        assert ellipse_iou(e, true, lm.shape) > 0.93
        assert e["score"] == pytest.approx(0.9)
    # the thorax is fitted on thorax + cardiac (its pixels under the heart are thorax too)
    (own,) = masks_to_ellipses(lm[None], nested=False, largest_component=False)
    assert abs({e["label"]: e for e in own}["thorax"]["b"] - got["thorax"]["b"]) > 0.5


@pytest.mark.parametrize("mode,seg_head", [("full", "unetr"), ("frozen", "unetr-lite")])
def test_detection_learns_ellipses(mode, seg_head, tmp_path):
    task = get_task("fetal_4ch_detection")
    tr, va = _split(_detection_samples())
    cfg = FinetuneConfig(epochs=10, batch_size=8, lr_encoder=1e-3, lr_head=1e-2, patience=10,
                         mode=mode, seg_head=seg_head, use_frames=False)
    model, info = finetune(build_encoder("scratch", profile="smoke"), "detection", 3, tr, va,
                           cfg, 0, lambda p, v: evaluate(task, p, v, surface=False)["mDSC"])
    test = _detection_samples(n=8, seed=5)
    probs = predict(model, torch.as_tensor(np.stack([s["image"] for s in test])))
    res = evaluate(task, probs, test)
    assert res["mDSC"] > 0.7, res
    assert res["mask-AP"] > 0.2 and res["box-AP"] > 0.2 and res["P_CTR"] > 60, res
    assert info["val_score"] == pytest.approx(max(info["val_score"], 0.0))
    path = save_predictions(tmp_path, task.name, "scratch", 1.0, "h", probs,
                            kind="detection", classes=task.classes)
    with np.load(path) as z:
        assert z["predictions"].shape == (8, 2, 6) and z["label_maps"].shape == (8, 64, 64)


# --------------------------------------------------------------------------------- landmarks
def _landmark_samples(n=24, size=64, seed=0):
    """Two landmarks: the centres of a bright and of a mid-grey disc, placed at random."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for i in range(n):
        img = rng.random((1, size, size), dtype=np.float32) * 0.2
        pts = []
        for level in (0.9, 0.5):
            while True:
                c = rng.uniform(10, size - 10, 2)
                if all(np.hypot(*(c - q)) > 14 for q in pts):
                    break
            pts.append(c)
            img[0][(xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= 16] = level
        out.append({"image": img, "landmarks": np.array(pts, np.float32),
                    "mask": np.zeros((size, size), np.uint8), "meta": _meta(i, 0)})
    return out


def test_torch_heatmaps_match_geometry():
    pts = np.array([[3.3, 7.6], [10.0, 2.0]], np.float32)
    ref = gaussian_heatmaps(pts, (12, 14), 2.0)
    got = gaussian_heatmaps_torch(torch.as_tensor(pts)[None], (12, 14), 2.0)[0]
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-6)


@pytest.mark.parametrize("mode,seg_head", [("full", "unetr-lite"), ("frozen", "unetr-lite")])
def test_landmarks_learn_points(mode, seg_head):
    task = dataclasses.replace(get_task("fetal_brain_landmarks"), classes=("bright", "grey"))
    tr, va = _split(_landmark_samples(n=64))
    cfg = FinetuneConfig(epochs=8, batch_size=8, lr_encoder=1e-3, lr_head=1e-2, patience=8,
                         mode=mode, seg_head=seg_head, use_frames=False, heatmap_sigma=2.0)
    model, info = finetune(build_encoder("scratch", profile="smoke"), "landmarks", 2, tr, va,
                           cfg, 0, lambda p, v: evaluate(task, p, v)["MRE"],
                           higher_is_better=False)
    test = _landmark_samples(n=8, seed=5)
    coords = predict(model, torch.as_tensor(np.stack([s["image"] for s in test])))
    assert coords.shape == (8, 2, 2)
    res = evaluate(task, coords, test)
    gt = np.stack([s["landmarks"] for s in test])
    mean_pos = np.stack([s["landmarks"] for s in tr]).mean(0)
    baseline = float(np.linalg.norm(gt - mean_pos, axis=-1).mean())  # ~18 px here
    # spatial-softmax cross-entropy (finetune._loss) learns this in 8 epochs: ~1-6 px here
    assert res["MRE"] < 0.5 * baseline, (res["MRE"], baseline)
    assert res["MSE"] == res["MRE"] and res["MSE_px2"] >= res["MRE"] ** 2 - 1e-9
    assert "MRE_mm" in res and "MRE[grey]" in res


# -------------------------------------------------------------------------------------- EF
def _ef_samples(n=24, size=64, n_frames=8, seed=0):
    """A disc whose radius follows one cycle r0 (1 - c (1 - cos(2 pi t / T)) / 2); EF from its
    areas: 100 (A_max - A_min) / A_max."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for i in range(n):
        r0, c = rng.uniform(18, 24), rng.uniform(0.1, 0.5)
        cx, cy = rng.uniform(26, 38, 2)
        frames, areas = [], []
        for t in range(n_frames):
            r = r0 * (1 - c * (1 - np.cos(2 * np.pi * t / n_frames)) / 2)
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            f = rng.random((1, size, size), dtype=np.float32) * 0.2
            f[0][disc] += 0.7
            frames.append(f)
            areas.append(disc.sum())
        ef = 100.0 * (max(areas) - min(areas)) / max(areas)
        frames = np.stack(frames)
        out.append({"image": frames[0], "frames": frames, "ef": float(ef), "ed_index": 0,
                    "es_index": n_frames // 2, "meta": _meta(i, 0)})
    return out


def test_clip_starts_cover_every_frame():
    for t in range(1, 20):
        for length in (1, 3, 8, 16):
            for stride in (1, 2, 5, 40):
                starts = clip_starts(t, length, stride)
                ell = min(length, t)
                covered = set()
                for s in starts:
                    assert 0 <= s <= t - ell
                    covered |= set(range(s, s + ell))
                assert covered == set(range(t)), (t, length, stride)
    assert clip_starts(10, 4, 3) == [0, 3, 6]
    assert clip_starts(10, 4, 4) == [0, 4, 6]
    assert clip_starts(10, 4, 9) == [0, 4, 6]   # stride capped at L: no frame skipped


def test_ef_clip_sampling_and_test_time_average():
    enc = build_encoder("scratch", profile="smoke")
    model = DownstreamModel(enc, "regression", 1, clip_len=3, clip_stride=2)
    seen = []
    model.head.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    feats = torch.randn(4, 8, model.head.proj.in_features)
    model.train()
    model.decode(feats)
    assert seen == [3]                      # training: one random clip of L frames
    seen.clear()
    model.eval()
    avg = model.decode(feats)
    starts = clip_starts(8, 3, 2)
    assert starts == [0, 2, 4, 5] and seen == [3] * len(starts)
    manual = torch.stack([model.head(feats[:, s:s + 3]) for s in starts]).mean(0)
    torch.testing.assert_close(avg, manual)
    # forward in training mode encodes only the clip's frames
    x = torch.rand(2, 8, 1, 64, 64)
    model.train()
    assert model(x).shape == (2,)
    # frozen-mode predictions equal the plain forward (all-clip average in both)
    model.eval()
    torch.testing.assert_close(predict_encoded(model, x, encode_frozen(model, x)),
                               predict(model, x))


@pytest.mark.parametrize("mode,clip_len", [("frozen", 6), ("full", 16)])
def test_ef_regression_learns(mode, clip_len):
    task = get_task("echo_ef")
    tr, va = _split(_ef_samples())
    cfg = FinetuneConfig(epochs=60 if mode == "frozen" else 8, batch_size=8, lr_encoder=1e-3,
                         lr_head=1e-2, patience=60, mode=mode, use_frames=True,
                         clip_len=clip_len)
    model, info = finetune(build_encoder("scratch", profile="smoke"), "regression", 1, tr, va,
                           cfg, 0, lambda p, v: evaluate(task, p, v)["MAE"],
                           higher_is_better=False)
    test = _ef_samples(n=10, seed=5)
    ef = predict(model, torch.as_tensor(np.stack([s["frames"] for s in test])))
    assert ef.shape == (10,)
    res = evaluate(task, ef, test)
    y = np.array([s["ef"] for s in test])
    base = np.abs(y - np.mean([s["ef"] for s in tr])).mean()
    assert res["MAE"] < base, (res, base)   # below predicting the training mean


# ----------------------------------------------------------------- selection, registry, resize
def test_lower_is_better_selection_keeps_the_lowest_validation_error():
    tr, va = _split(_ef_samples(n=8, n_frames=4))
    cfg = FinetuneConfig(epochs=5, batch_size=8, patience=5, mode="frozen", use_frames=True)
    for higher, want_epoch, want in ((False, 2, 1.0), (True, 0, 5.0)):
        scores = iter([5.0, 3.0, 1.0, 2.0, 4.0])
        _, info = finetune(build_encoder("scratch", profile="smoke"), "regression", 1, tr, va,
                           cfg, 0, lambda p, v: next(scores), higher_is_better=higher)
        assert info["best_epoch"] == want_epoch and info["val_score"] == want


def test_registry_declares_the_new_kinds():
    det, lm, ef = (get_task(n) for n in ("fetal_4ch_detection", "fetal_brain_landmarks",
                                         "echo_ef"))
    assert (det.kind, lm.kind, ef.kind) == ("detection", "landmarks", "regression")
    assert det.primary == "mDSC" and det.better("mDSC") and len(lm.classes) == 24
    assert not lm.better("MRE") and not lm.better("MSE") and lm.better("SDR@2")
    assert not ef.better("MAE") and not ef.better("RMSE") and ef.better("R2")
    assert ef.uses_frames


def test_resize_moves_landmarks_and_ellipses_with_the_pixels():
    s = _detection_samples(n=1, size=64)[0]
    s["landmarks"] = np.array([[10.0, 20.0]], np.float32)
    r = _resize(s, 32)
    np.testing.assert_allclose(r["landmarks"], [[4.75, 9.75]])
    th = r["ellipses"][0]
    assert th["a"] == pytest.approx(s["ellipses"][0]["a"] / 2)
    assert ellipse_iou(th, {**th, "label": "thorax"}, (32, 32)) == 1.0
    # the nearest-resized mask and the scaled ellipse agree
    assert (ellipse_mask(th, (32, 32)) == (r["mask"] >= 1)).mean() > 0.95


def test_cine_loops_of_different_lengths_are_brought_to_one_length():
    from echocare_lib.downstream.trials import common_clip_length

    def loop(t, pid):
        frames = np.arange(t, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 4, 4), np.float32)
        return {"frames": frames, "masks": np.zeros((t, 4, 4), np.uint8), "ed_index": 0,
                "es_index": t - 1, "ef": 50.0, "meta": _meta(pid, 0)}

    out = common_clip_length([loop(10, 0), loop(17, 1), loop(10, 2)])
    assert [len(s["frames"]) for s in out] == [10, 10, 10]
    long = out[1]
    # first (ED) and last (ES) frames kept, evenly spaced in between, masks alike
    assert long["frames"][0, 0, 0, 0] == 0 and long["frames"][-1, 0, 0, 0] == 16
    assert len(long["masks"]) == 10 and long["es_index"] == 9 and long["ed_index"] == 0
    assert long["meta"]["frames_resampled_from"] == 17
    assert out[0] is not None and out[0]["frames"].shape[0] == 10
    same = [loop(8, 0), loop(8, 1)]
    assert common_clip_length(same) == same


def test_real_camus_loops_of_different_lengths_reach_the_model(tmp_path):
    """The CAMUS fixture's loops have 4-5 frames: task_data must make them batchable."""
    import warnings

    from fixtures_readers_fetal_cardiac import write_camus

    from echocare_lib.downstream.finetune import _inputs
    from echocare_lib.downstream.trials import task_data

    write_camus(tmp_path / "CAMUS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fixture's deliberately broken cases are skipped
        train, test, source = task_data("echo_ef", profile="smoke", data_dir=tmp_path)
    assert source.startswith("real")
    x = _inputs(train + test, True)
    assert x.ndim == 5 and x.shape[-2:] == (64, 64)
