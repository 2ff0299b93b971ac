"""The downstream framework: registry, encoder zoo, patient-level splits, fine-tuning that
learns, and the cached results store."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from echocare_lib.downstream import TASKS, build_encoder, get_task
from echocare_lib.downstream.finetune import (FinetuneConfig, ResultStore, assert_no_leak,
                                              finetune, predict, split_by_patient,
                                              subsample_patients)
from echocare_lib.downstream.finetune import encode_frozen, predict_encoded, take_encoded
from echocare_lib.downstream.heads import DownstreamModel
from echocare_lib.downstream.trials import evaluate
from echocare_lib.downstream.zoo import EFFNET_LITE0_SHA256
from echocare_lib.figures import load_catalogue


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _samples(n_patients=10, per=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for p in range(n_patients):
        for k in range(per):
            label = p % 2
            img = rng.random((1, size, size), dtype=np.float32) * 0.3 + 0.6 * label
            # a bright disk at a random place: the segmentation target
            cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
            yy, xx = np.mgrid[:size, :size]
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < (size // 6) ** 2).astype(np.uint8)
            img[0][mask > 0] = 0.95 - 0.6 * label
            out.append({"image": img, "label": label, "mask": mask,
                        "meta": {"patient_id": f"p{p}", "case_id": f"p{p}-{k}",
                                 "pixel_spacing_mm": 0.5}})
    return out


def test_registry_matches_catalogue_and_table1():
    cat = load_catalogue().set_index("label")
    for t in TASKS.values():
        assert cat.loc[t.figure, "notebook"] == t.notebook
        assert t.primary in t.metrics
    from echocare_lib.downstream.registry import table1_rows

    assert set(table1_rows()["sim_task"]) == set(TASKS)
    with pytest.raises(ValueError, match="unknown task"):
        get_task("nope")


def test_patient_split_never_leaks_and_is_deterministic():
    s = _samples()
    kept, held = split_by_patient(s, 0.2, seed=3)
    assert set(kept).isdisjoint(held) and sorted(kept + held) == list(range(len(s)))
    pk = {s[i]["meta"]["patient_id"] for i in kept}
    ph = {s[i]["meta"]["patient_id"] for i in held}
    assert pk.isdisjoint(ph) and len(ph) == 2
    assert split_by_patient(s, 0.2, seed=3) == (kept, held)
    assert_no_leak([s[i] for i in kept], [s[i] for i in held])
    with pytest.raises(AssertionError, match="both train and test"):
        assert_no_leak(s[:3], s[:1])
    sub = subsample_patients(kept, s, 0.5, seed=1)
    assert {s[i]["meta"]["patient_id"] for i in sub} <= pk
    assert len({s[i]["meta"]["patient_id"] for i in sub}) == 4


def test_imagenet_encoder_has_real_weights_and_the_interface():
    enc = build_encoder("imagenet", profile="smoke").eval()
    out = enc(torch.rand(2, 1, 64, 64))
    assert [f.shape[-1] for f in out.features] == [16, 8, 4, 2]
    assert out.pooled.shape == (2, enc.pooled_dim)
    # pretrained BatchNorm statistics are not the fresh-init values (0 mean, 1 var)
    bn = next(m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    assert len(EFFNET_LITE0_SHA256) == 64


def test_scratch_encoder_and_unknown_names():
    enc = build_encoder("scratch", profile="smoke")
    assert len(enc(torch.rand(1, 1, 64, 64)).features) == 4
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("nonexistent-model", profile="smoke")


@pytest.mark.parametrize("kind,mode,seg_head", [
    ("classification", "full", "unetr"), ("segmentation", "full", "unetr"),
    ("classification", "frozen", "unetr"), ("segmentation", "frozen", "unetr-lite")])
def test_finetune_learns_a_separable_task(kind, mode, seg_head):
    s = _samples(size=64)
    task = get_task("thyroid_nodule_cine_cls" if kind == "classification" else "thyroid_nodule_seg")
    kept, held = split_by_patient(s, 0.3, seed=0)
    cfg = FinetuneConfig(epochs=12, batch_size=8, lr_encoder=1e-3, lr_head=1e-2, patience=12,
                         use_frames=False, mode=mode, seg_head=seg_head)
    enc = build_encoder("scratch", profile="smoke")
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    model, info = finetune(enc, kind, 2, [s[i] for i in kept], [s[i] for i in held], cfg, 0,
                           lambda p, v: evaluate(task, p, v)[task.primary])
    test = _samples(n_patients=4, size=64, seed=9)
    probs = predict(model, torch.as_tensor(np.stack([t["image"] for t in test])))
    res = evaluate(task, probs, test)
    if kind == "classification":
        assert res["ACC"] == 1.0 and res["AUC"] == 1.0
    else:
        assert res["DSC"] > 0.8
    assert info["best_epoch"] >= 0 and info["train_images_per_s"] > 0
    after = model.encoder.state_dict()
    unchanged = all(torch.equal(before[k], after[k]) for k in before)
    assert unchanged == (mode == "frozen")  # frozen: the encoder is exactly as it was


def test_frozen_trials_share_encodings_and_match_a_plain_forward():
    s = _samples(size=64)
    enc = build_encoder("scratch", profile="smoke")
    model = DownstreamModel(enc, "segmentation", 2, "unetr-lite").eval()
    x = torch.as_tensor(np.stack([t["image"] for t in s]))
    encoded = encode_frozen(model, x, batch_size=3)
    torch.testing.assert_close(predict_encoded(model, x, encoded), predict(model, x))
    sub = take_encoded(encoded, [1, 4])
    assert [f.shape[0] for f in sub.features] == [2] * 4
    with pytest.raises(ValueError, match="mode"):
        FinetuneConfig(epochs=1, batch_size=2, mode="linear")
    with pytest.raises(ValueError, match="seg_head"):
        DownstreamModel(enc, "segmentation", 2, "deeplab")


def test_frozen_pooled_head_sees_standardised_training_features():
    s = _samples(size=64)
    task = get_task("thyroid_nodule_cine_cls")
    kept, held = split_by_patient(s, 0.3, seed=0)
    cfg = FinetuneConfig(epochs=2, batch_size=8, patience=2, use_frames=False, mode="frozen")
    model, _ = finetune(build_encoder("scratch", profile="smoke"), "classification", 2,
                        [s[i] for i in kept], [s[i] for i in held], cfg, 0,
                        lambda p, v: evaluate(task, p, v)[task.primary])
    x_tr = torch.as_tensor(np.stack([s[i]["image"] for i in kept]))
    pooled = encode_frozen(model, x_tr)
    z = model._standardise(pooled)
    torch.testing.assert_close(z.mean(0), torch.zeros(z.shape[1]), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(z.shape[1]), atol=1e-3, rtol=0)
    assert "feat_mean" in model.state_dict()          # travels with the weights
    # predictions from encodings equal a plain forward (the standardisation is in both)
    torch.testing.assert_close(predict_encoded(model, x_tr, pooled), predict(model, x_tr))
    dense = DownstreamModel(model.encoder, "segmentation", 2, "unetr-lite")
    with pytest.raises(ValueError, match="pooled kinds"):
        dense.set_feature_norm(pooled)


def test_result_store_caches_by_config_hash(tmp_path):
    store = ResultStore(tmp_path, "t")
    rows = pd.DataFrame([{"task": "t", "model": "m", "trial": 0, "seed": 1,
                          "train_fraction": 1.0, "metric": "ACC", "value": 0.5,
                          "config_hash": "abc"}])
    store.add(rows)
    store.add(rows.assign(value=0.7))  # same key: replaced, not duplicated
    assert len(store.load()) == 1 and store.load().value.iloc[0] == 0.7
    assert len(store.cached("abc", "m", 0, 1.0)) == 1
    assert store.cached("other", "m", 0, 1.0).empty
    assert store.cached("abc", "m", 0, 0.5).empty
    # hex hashes that look like numbers stay strings and still match
    for h in ("123456789012", "12e456789012", "000000000001"):
        store.add(rows.assign(config_hash=h))
        assert len(store.cached(h, "m", 0, 1.0)) == 1, h
    assert not list(tmp_path.glob(".t-*.csv"))  # no temporary file left behind
