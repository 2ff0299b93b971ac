"""Pretraining throughput: our training step vs a plain timm Swin, and the loader vs the model.

1. **Training step** (the ``cpu`` profile's preset: echocare-small at 64 px, batch 32, variant
   ``echocare``, SimMIM decoder). Ours is the body of ``pretraining.train.pretrain``'s loop:
   scheduler update, mask generation, EchoCarePretrainer forward (L_MIM + L_HIE), backward,
   gradient clipping, AdamW step (``build_optimizer``: timm's ``create_optimizer_v2``) and the
   per-step loss logging. Peer (same run, same batch): a plain timm ``SwinTransformer`` of the
   same size (embed_dim, depths, heads, window, patch, in_chans, img_size) with its own
   classification head over the ontology's classes, BCE-with-logits, forward + backward +
   AdamW step. The two alternate step by step (ABAB...) and we compare medians.
   Target: time_ours / time_peer <= 1.15. The ablation variants (mim-only, hie-only) and the
   UNETR decoder are timed in the same rotation, for information.
2. **Loader** (``pretraining.data.step_loader`` with the paper's augmentations, no model) on an
   in-memory simulated corpus (``ArrayImages``) and on the curated index (``CuratedImages`` on
   PNG files), with 0 and 2 workers, against our training step timed in the same rotation.
   Target: loader images/s >= 2x training images/s.
3. **GPU** (only when ``torch.cuda.is_available()``): the ``paper`` preset (echocare-base at
   256 px, batch 256 or the largest power-of-two that fits, bf16 autocast) for a few hundred
   steps: images/s and model FLOP utilisation against the H200's dense bf16 peak, FLOPs
   counted with ``torch.utils.flop_counter.FlopCounterMode`` on one step.

The machine is shared (2 cores here): every number is a median over interleaved repeats, and
the load average before and after is recorded.

    .venv/bin/python benchmarks/bench_pretraining.py            # full CPU run (5-20 min, with load)
    .venv/bin/python benchmarks/bench_pretraining.py --quick    # a few minutes
    .venv/bin/python benchmarks/bench_pretraining.py --gpu-only # GPU part alone (< 5 min)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer
from timm.optim import create_optimizer_v2

from echocare_lib.models.masking import random_mask
from echocare_lib.ontology import LEVELS, load_ontology
from echocare_lib.paths import project_root
from echocare_lib.pretraining.config import PretrainConfig
from echocare_lib.pretraining.data import (ArrayImages, CuratedImages, simulated_images,
                                           step_generator, step_loader)
from echocare_lib.pretraining.train import _autocast, build_model, build_optimizer

TARGET_OVERHEAD = 1.15  # time_ours / time_peer
TARGET_LOADER = 2.0     # loader images/s / training images/s
H200_BF16_DENSE_PEAK = 989e12  # FLOP/s, dense (no sparsity)
RESULTS = project_root() / "benchmarks" / "results" / "pretraining.json"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _versions() -> dict:
    import monai
    import PIL
    import timm
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "timm": timm.__version__, "monai": monai.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__,
            "pillow": PIL.__version__}


# --------------------------------------------------------------------------- step builders
class OurStep:
    """One iteration of ``pretrain``'s loop (everything but the loader and checkpoints)."""

    def __init__(self, cfg: PretrainConfig, device: str, images, hierarchy, hierarchy_mask):
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg).to(device).train()
        self.opt, self.sched = build_optimizer(self.model, cfg)
        self.images, self.hierarchy, self.hierarchy_mask = images, hierarchy, hierarchy_mask
        self.step_i = 0

    def loss_only(self):
        """Forward + loss (for the FLOP count)."""
        x = self.images.to(self.device)
        mcfg = self.model.encoder.config
        mask = (random_mask(x.shape[0], x.shape[-1], mcfg.mask_patch_size, self.cfg.mask_ratio,
                            device=self.device) if self.model.use_mim else None)
        with _autocast(self.cfg, self.device):
            return self.model(x, mask, self.hierarchy.to(self.device),
                              self.hierarchy_mask.to(self.device)).loss

    def __call__(self) -> None:
        cfg, model, device, step = self.cfg, self.model, self.device, self.step_i
        self.step_i += 1
        self.sched.step_update(step)
        torch.manual_seed(int(step_generator(cfg.seed, step, 0, 3).initial_seed()))
        x = self.images.to(device, non_blocking=True)
        mask = None
        if model.use_mim:
            mcfg = model.encoder.config
            mask = random_mask(x.shape[0], x.shape[-1], mcfg.mask_patch_size, cfg.mask_ratio,
                               generator=step_generator(cfg.seed, step, 0, 2), device=device)
        with _autocast(cfg, device):
            out = model(x, mask, self.hierarchy.to(device), self.hierarchy_mask.to(device))
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        self.opt.step()
        nan = out.loss.new_tensor(float("nan"))
        vals = torch.stack([out.loss.detach().float(),
                            (out.mim if out.mim is not None else nan).detach().float(),
                            (out.hie if out.hie is not None else nan).detach().float()])
        vals.cpu().tolist()  # the loop logs every step (log_every=1)


class PeerStep:
    """Plain timm SwinTransformer of the same size: forward + BCE + backward + AdamW step."""

    def __init__(self, cfg: PretrainConfig, device: str, images, hierarchy):
        ec = cfg.encoder_config()
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.seed)
        self.model = SwinTransformer(
            img_size=ec.image_size, patch_size=ec.patch_size, in_chans=ec.in_chans,
            num_classes=hierarchy.shape[1], embed_dim=ec.embed_dim, depths=ec.depths,
            num_heads=ec.num_heads, window_size=ec.window_size,
            drop_path_rate=ec.drop_path_rate).to(device).train()
        self.opt = create_optimizer_v2(self.model, opt="adamw", lr=cfg.peak_lr,
                                       weight_decay=cfg.weight_decay, betas=cfg.betas,
                                       eps=cfg.eps)
        self.images, self.hierarchy = images, hierarchy

    def loss_only(self):
        with _autocast(self.cfg, self.device):
            logits = self.model(self.images.to(self.device))
        return F.binary_cross_entropy_with_logits(logits.float(), self.hierarchy.to(self.device))

    def __call__(self) -> None:
        loss = self.loss_only()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        loss.detach().float().cpu().tolist()


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _timed(fn, device: str = "cpu") -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def _timed2(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call. The process CPU time is less sensitive than the wall
    time to other users of a shared machine (time spent descheduled is not counted); with
    several intra-op threads it includes their spin-waiting."""
    c, t = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t, time.process_time() - c


# ----------------------------------------------------------------------------- data sets
def in_memory_dataset(quick: bool) -> ArrayImages:
    if quick:  # random uint8 images of the same shape: the loader's cost does not depend on content
        onto = load_ontology()
        rng = np.random.default_rng(0)
        ids = rng.choice(np.asarray(onto.ids), 256)
        hier = np.stack([onto.encode([i]) for i in ids])
        mask = np.stack([onto.level_mask(LEVELS[: LEVELS.index(onto.node(i).level) + 1])
                         for i in ids])
        return ArrayImages(rng.integers(0, 256, (256, 64, 64), dtype=np.uint8), hier, mask,
                           description="random uint8 images (256 x 64 x 64)")
    return simulated_images(n=256, size=64, seed=0, progress=False)


def curated_index(tmp: Path) -> tuple[Path, str]:
    """The cpu profile's curated index when curation has run, else a small one written here."""
    existing = project_root() / "build" / "cpu" / "curation" / "curated" / "curated_index.parquet"
    if existing.is_file():
        return existing, f"{existing.relative_to(project_root())}"
    import pandas as pd
    from PIL import Image

    onto = load_ontology()
    rng = np.random.default_rng(0)
    (tmp / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(300):
        h, w = (int(v) for v in rng.integers(200, 401, 2))
        yy, xx = np.mgrid[:h, :w]
        img = (rng.rayleigh(40, (h, w)) * (0.5 + 0.5 * np.sin(xx / 17.0 + yy / 29.0) ** 2))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(tmp / "images" / f"{k:04d}.png")
        rows.append({"image_path": f"images/{k:04d}.png",
                     "ontology_ids": str(rng.choice(np.asarray(onto.ids)))})
    path = tmp / "curated_index.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path, "written by the benchmark: 300 synthetic PNGs of 200-400 px"


# ------------------------------------------------------------------------- 1. training step
def bench_training(cfg: PretrainConfig, ds: ArrayImages, threads: list[int], rounds: int,
                   warmup: int) -> dict:
    b = cfg.batch_size
    idx = np.arange(b) % len(ds)
    images = torch.from_numpy(ds.images[idx][:, None]).float() / 255.0
    hier = torch.from_numpy(ds.hierarchy[idx])
    hmask = torch.from_numpy(ds.hierarchy_mask[idx])
    steps = {
        "ours": OurStep(cfg, "cpu", images, hier, hmask),
        "peer": PeerStep(cfg, "cpu", images, hier),
        "mim-only": OurStep(cfg.replace(variant="mim-only"), "cpu", images, hier, hmask),
        "hie-only": OurStep(cfg.replace(variant="hie-only"), "cpu", images, hier, hmask),
        "echocare + unetr": OurStep(cfg.replace(decoder="unetr"), "cpu", images, hier, hmask),
    }
    params = {k: _n_params(s.model) for k, s in steps.items()}
    out = {"batch_size": b, "image_size": cfg.image_size, "encoder": cfg.encoder,
           "rounds": rounds, "params": params, "by_threads": {}}
    default_threads = torch.get_num_threads()
    for n in threads:
        torch.set_num_threads(n)
        for s in steps.values():
            for _ in range(warmup):
                s()
        times: dict[str, list[float]] = {k: [] for k in steps}
        cpu: dict[str, list[float]] = {k: [] for k in steps}
        t_all = time.perf_counter()
        for r in range(rounds):
            for k, s in steps.items():  # ours and peer adjacent: ABAB...
                wall, c = _timed2(s)
                times[k].append(wall)
                cpu[k].append(c)
        med = {k: statistics.median(v) for k, v in times.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        paired = [o / p for o, p in zip(times["ours"], times["peer"])]
        res = {"seconds": time.perf_counter() - t_all,
               "median_step_s": med, "min_step_s": {k: min(v) for k, v in times.items()},
               "images_per_s": {k: b / v for k, v in med.items()},
               "ratio_vs_peer": {k: med[k] / med["peer"] for k in steps if k != "peer"},
               "overhead_ratio": med["ours"] / med["peer"],
               "overhead_ratio_paired_median": statistics.median(paired),
               "overhead_ratio_of_minima": min(times["ours"]) / min(times["peer"]),
               "median_step_cpu_s": med_cpu,
               "overhead_ratio_cpu_time": med_cpu["ours"] / med_cpu["peer"],
               "load_average": os.getloadavg(),
               "step_times_s": times, "step_cpu_s": cpu}
        res["pass"] = res["overhead_ratio"] <= TARGET_OVERHEAD
        out["by_threads"][str(n)] = res
        print(f"\n[1] training step, cpu preset ({cfg.encoder}, {cfg.image_size} px, batch {b}), "
              f"torch threads = {n}, {rounds} interleaved rounds ({res['seconds']:.0f} s)")
        print(f"    {'model':<22}{'params':>10}{'median s/step':>15}{'min s/step':>12}"
              f"{'images/s':>10}{'vs peer':>9}{'CPU s/step':>12}{'vs peer':>9}")
        for k in steps:
            ratio = "1.00" if k == "peer" else f"{res['ratio_vs_peer'][k]:.2f}"
            print(f"    {k:<22}{params[k] / 1e6:>9.2f}M{med[k]:>15.3f}{min(times[k]):>12.3f}"
                  f"{b / med[k]:>10.1f}{ratio:>8}x{med_cpu[k]:>12.3f}"
                  f"{med_cpu[k] / med_cpu['peer']:>8.2f}x")
        print(f"    overhead ours/peer: {res['overhead_ratio']:.3f} (ratio of median wall times; "
              f"paired median {res['overhead_ratio_paired_median']:.3f}, ratio of minima "
              f"{res['overhead_ratio_of_minima']:.3f}, CPU time {res['overhead_ratio_cpu_time']:.3f})"
              f" target <= {TARGET_OVERHEAD}: {'PASS' if res['pass'] else 'MISS'}")
    torch.set_num_threads(default_threads)
    return out


# ------------------------------------------------------------------------------- 2. loader
def bench_loader(cfg: PretrainConfig, sources: dict, train_step: OurStep, blocks: int,
                 batches: int, train_steps: int) -> dict:
    """Blocks of ``batches`` loader batches (after the first, which pays worker start-up) for
    each (source, workers), each block followed by ``train_steps`` timed training steps."""
    b = cfg.batch_size
    configs = [(name, nw) for name in sources for nw in (0, 2)]
    rate: dict = {c: [] for c in configs}
    first: dict = {c: [] for c in configs}
    train_t: list[float] = []
    start = 0
    for _ in range(blocks):
        for name, nw in configs:
            ds = sources[name][0]
            t0 = time.perf_counter()
            loader = step_loader(ds, batch_size=b, seed=cfg.seed, start_step=start,
                                 stop_step=start + batches + 1, num_workers=nw)
            it = iter(loader)
            next(it)
            t1 = time.perf_counter()
            n = sum(batch.images.shape[0] for batch in it)
            t2 = time.perf_counter()
            del it, loader
            start += batches + 1
            first[(name, nw)].append(t1 - t0)
            rate[(name, nw)].append(n / (t2 - t1))
            for _ in range(train_steps):
                train_t.append(_timed(train_step))
    train_ips = b / statistics.median(train_t)
    out = {"batch_size": b, "blocks": blocks, "batches_per_block": batches,
           "training_images_per_s_alongside": train_ips, "torch_threads": torch.get_num_threads(),
           "results": []}
    print(f"\n[2] loader (step_loader + augmentations, no model), batch {b}, {blocks} blocks x "
          f"{batches} batches, interleaved with our training step "
          f"({train_ips:.1f} images/s, median of {len(train_t)} steps)")
    print(f"    {'source':<46}{'workers':>8}{'images/s':>10}{'first batch s':>15}{'x training':>12}")
    for name, nw in configs:
        ips = statistics.median(rate[(name, nw)])
        ratio = ips / train_ips
        row = {"source": name, "description": sources[name][1], "num_workers": nw,
               "images_per_s": ips, "first_batch_s": statistics.median(first[(name, nw)]),
               "ratio_vs_training": ratio, "pass": ratio >= TARGET_LOADER,
               "block_images_per_s": rate[(name, nw)]}
        out["results"].append(row)
        print(f"    {name:<46}{nw:>8}{ips:>10.0f}{row['first_batch_s']:>15.3f}{ratio:>11.1f}x  "
              f"{'PASS' if row['pass'] else 'MISS'} (target >= {TARGET_LOADER:g}x)")
    return out


# ---------------------------------------------------------------------------------- 3. GPU
def bench_gpu(device: str = "cuda", profile: str = "paper", batch: int | None = None,
              steps: int = 300, warmup: int = 10, max_seconds: float = 75.0,
              peak_flops: float = H200_BF16_DENSE_PEAK) -> "dict | str":
    """The paper preset on one GPU with bf16 autocast: images/s and MFU, ours and the peer.
    Runnable alone (``--gpu-only``); ``device="cpu"`` with a small profile smoke-tests it."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("\n[3] GPU: skipped: no CUDA device (torch.cuda.is_available() is False)")
        return "skipped: no CUDA device"
    from torch.utils.flop_counter import FlopCounterMode

    t_start = time.perf_counter()
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = PretrainConfig.from_profile(profile, precision="bf16", progress=False)
    onto = load_ontology()
    n_cls = len(onto)
    bs = batch or cfg.batch_size
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    out = {"device": name, "profile": profile, "encoder": cfg.encoder,
           "image_size": cfg.image_size, "precision": "bf16 autocast",
           "peak_flops_per_s": peak_flops, "requested_batch": bs, "models": {}}
    gen = torch.Generator().manual_seed(0)
    for key in ("ours", "peer"):
        while True:
            try:
                images = torch.rand(bs, 1, cfg.image_size, cfg.image_size, generator=gen)
                hier = (torch.rand(bs, n_cls, generator=gen) < 0.1).float()
                hmask = torch.ones(bs, n_cls, dtype=torch.bool)
                images, hier, hmask = images.to(device), hier.to(device), hmask.to(device)
                cfg_b = cfg.replace(batch_size=bs)
                step = (OurStep(cfg_b, device, images, hier, hmask) if key == "ours"
                        else PeerStep(cfg_b, device, images, hier))
                for _ in range(warmup):
                    step()
                _sync(device)
                break
            except torch.OutOfMemoryError:
                step = None
                torch.cuda.empty_cache()
                if bs <= 8:
                    raise
                bs //= 2
                print(f"    {key}: out of memory, retrying with batch {bs}")
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        step.opt.zero_grad(set_to_none=True)
        with FlopCounterMode(display=False) as fc:
            step.loss_only().backward()
        flops = fc.get_total_flops()  # forward + backward of one step (optimizer excluded)
        step.opt.zero_grad(set_to_none=True)
        _sync(device)
        n, t0 = 0, time.perf_counter()
        while n < steps and time.perf_counter() - t0 < max_seconds:
            step()
            n += 1
        _sync(device)
        dt = (time.perf_counter() - t0) / n
        mem = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.startswith("cuda") else None
        out["models"][key] = {"batch_size": bs, "steps": n, "step_s": dt,
                              "images_per_s": bs / dt, "flops_per_step": flops,
                              "tflops_per_s": flops / dt / 1e12,
                              "mfu": flops / dt / peak_flops, "max_memory_gib": mem,
                              "params": _n_params(step.model)}
        del step, images, hier, hmask
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    o, p = out["models"]["ours"], out["models"]["peer"]
    out["overhead_ratio"] = (o["step_s"] / o["batch_size"]) / (p["step_s"] / p["batch_size"])
    out["seconds"] = time.perf_counter() - t_start
    print(f"\n[3] GPU: {name}, {profile} preset ({cfg.encoder}, {cfg.image_size} px), bf16 autocast, "
          f"MFU against {peak_flops / 1e12:.0f} TFLOP/s")
    print(f"    {'model':<8}{'batch':>7}{'steps':>7}{'s/step':>9}{'images/s':>10}"
          f"{'GFLOP/img':>11}{'TFLOP/s':>9}{'MFU':>7}{'mem GiB':>9}")
    for key, m in out["models"].items():
        mem = f"{m['max_memory_gib']:.1f}" if m["max_memory_gib"] is not None else "-"
        print(f"    {key:<8}{m['batch_size']:>7}{m['steps']:>7}{m['step_s']:>9.3f}"
              f"{m['images_per_s']:>10.0f}{m['flops_per_step'] / m['batch_size'] / 1e9:>11.1f}"
              f"{m['tflops_per_s']:>9.1f}{m['mfu']:>7.1%}{mem:>9}")
    print(f"    time per image ours/peer: {out['overhead_ratio']:.3f} (information)")
    return out


# ------------------------------------------------------------------------------------ main
def _header() -> dict:
    return {"date": str(date.today()), "machine": platform.platform(),
            "processor": platform.processor(), "cores": os.cpu_count(),
            "torch_threads_default": torch.get_num_threads(), "versions": _versions()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (a few minutes)")
    ap.add_argument("--gpu-only", action="store_true",
                    help="run only the GPU part and merge it into the results JSON")
    ap.add_argument("--threads", default=None,
                    help="comma list of torch thread counts for the training comparison "
                         "(default: 1 and torch's default)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved training rounds")
    ap.add_argument("--gpu-device", default="cuda", help=argparse.SUPPRESS)
    ap.add_argument("--gpu-profile", default="paper", help=argparse.SUPPRESS)
    ap.add_argument("--gpu-batch", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--gpu-steps", type=int, default=None)
    ap.add_argument("--out", default=str(RESULTS), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    out_path = Path(a.out)
    gpu_steps = a.gpu_steps or (50 if a.quick else 300)

    if a.gpu_only:
        gpu = bench_gpu(a.gpu_device, a.gpu_profile, a.gpu_batch, gpu_steps)
        data = json.loads(out_path.read_text()) if out_path.is_file() else _header()
        data["gpu"] = gpu
        data["gpu_date"] = str(date.today())
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"results (gpu) -> {out_path}")
        return 0

    results = _header()
    results["quick"] = a.quick
    results["load_average_start"] = os.getloadavg()
    default_threads = torch.get_num_threads()
    threads = ([int(t) for t in a.threads.split(",")] if a.threads
               else sorted({1, default_threads}))
    rounds = a.rounds or (6 if a.quick else 25)
    cfg = PretrainConfig.from_profile("cpu", progress=False)
    print(f"EchoCare pretraining benchmark ({'quick' if a.quick else 'full'}); "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, torch threads "
          f"{default_threads}; cpu profile: {cfg.encoder}, {cfg.image_size} px, batch "
          f"{cfg.batch_size}, variant {cfg.variant}, decoder {cfg.decoder}")
    t0 = time.perf_counter()
    ds = in_memory_dataset(a.quick)
    print(f"in-memory corpus: {ds.description} ({time.perf_counter() - t0:.1f} s to build)")
    results["training"] = bench_training(cfg, ds, threads, rounds, warmup=2)

    with tempfile.TemporaryDirectory() as tmp:
        index, how = curated_index(Path(tmp))
        cur = CuratedImages(index, cfg.image_size)
        from PIL import Image

        sizes = []
        for p in cur.paths[:50]:
            with Image.open(p) as im:
                sizes.append(im.size)
        cur_desc = (f"curated index {how} ({len(cur)} PNGs, median "
                    f"{int(np.median([s[0] for s in sizes]))}x{int(np.median([s[1] for s in sizes]))} px)")
        sources = {"in-memory (ArrayImages)": (ds, ds.description),
                   "curated index (CuratedImages, PNG)": (cur, cur_desc)}
        print(f"curated: {cur_desc}")
        torch.set_num_threads(default_threads)
        train_step = OurStep(cfg, "cpu", torch.from_numpy(ds.images[:cfg.batch_size][:, None]).float() / 255,
                             torch.from_numpy(ds.hierarchy[:cfg.batch_size]),
                             torch.from_numpy(ds.hierarchy_mask[:cfg.batch_size]))
        train_step()
        results["loader"] = bench_loader(cfg, sources, train_step, blocks=3 if a.quick else 7,
                                         batches=4 if a.quick else 8, train_steps=2)

    results["gpu"] = bench_gpu(a.gpu_device, a.gpu_profile, a.gpu_batch, gpu_steps)
    results["load_average_end"] = os.getloadavg()
    results["targets"] = {"overhead_ratio_max": TARGET_OVERHEAD,
                          "loader_vs_training_min": TARGET_LOADER}

    print("\nsummary")
    for n, r in results["training"]["by_threads"].items():
        print(f"  training overhead ours/peer ({n} thread{'s' if n != '1' else ''}): "
              f"{r['overhead_ratio']:.3f} (target <= {TARGET_OVERHEAD}) "
              f"{'PASS' if r['pass'] else 'MISS'}")
    for row in results["loader"]["results"]:
        print(f"  loader {row['source']}, {row['num_workers']} workers: "
              f"{row['ratio_vs_training']:.1f}x training (target >= {TARGET_LOADER:g}x) "
              f"{'PASS' if row['pass'] else 'MISS'}")
    gpu = results["gpu"]
    print(f"  GPU: {gpu if isinstance(gpu, str) else 'MFU ours %.1f%%' % (100 * gpu['models']['ours']['mfu'])}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
