"""The pretraining loop: one code path for one CPU, one GPU, and ``torchrun`` across GPUs/nodes.

``pretrain(config, folder)`` trains (or resumes, or reuses) one variant and returns its loss
history. Under ``torchrun`` the same function runs in every process: it initialises
``torch.distributed`` from the environment (NCCL on CUDA, gloo on CPU), wraps the model in
DistributedDataParallel, gives each rank its share of every global batch, and lets rank 0
write checkpoints. Command line (also the torchrun entry point)::

    python -m echocare_lib.pretraining --profile cpu --variant echocare
    torchrun --nproc_per_node 8 -m echocare_lib.pretraining --profile paper

The optimiser and scheduler come from timm (``create_optimizer_v2``, ``CosineLRScheduler``).
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from tqdm.auto import tqdm

from ..models.masking import random_mask
from ..models.pretrainer import EchoCarePretrainer
from ..ontology import load_ontology
from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint_meta, save_checkpoint
from .config import PretrainConfig
from .data import choose_data, step_generator, step_loader

HISTORY_COLUMNS = ["step", "loss", "mim", "hie", "lr", "seconds"]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def resolve_device(device: str | None, dist: DistInfo | None = None) -> str:
    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and dist is not None and dist.world_size > 1:
        device = f"cuda:{dist.local_rank}"
    return device


def build_model(config: PretrainConfig) -> EchoCarePretrainer:
    onto = load_ontology()
    return EchoCarePretrainer(config.encoder_config(), variant=config.variant,
                              decoder=config.decoder, ancestors=onto.ancestor_matrix())


def build_optimizer(model: EchoCarePretrainer, config: PretrainConfig):
    opt = create_optimizer_v2(model, opt="adamw", lr=config.peak_lr,
                              weight_decay=config.weight_decay, betas=config.betas, eps=config.eps)
    sched = CosineLRScheduler(opt, t_initial=config.steps, lr_min=config.min_lr,
                              warmup_t=config.warmup_steps, warmup_lr_init=config.warmup_lr,
                              warmup_prefix=True, t_in_epochs=False)
    return opt, sched


def default_folder(profile_name: str, config: PretrainConfig) -> Path:
    """``build/<profile>/pretrain/<variant>-<config hash>``: a changed configuration never
    silently reuses an old checkpoint."""
    from ..paths import build_dir

    return build_dir() / profile_name / "pretrain" / f"{config.variant}-{config.config_hash()}"


def default_curated_index(profile_name: str) -> Path:
    from ..curation.pipeline import default_curation_dir

    return default_curation_dir(profile_name) / "curated" / "curated_index.parquet"


@dataclass
class PretrainResult:
    folder: Path
    config: PretrainConfig
    history: pd.DataFrame
    data: str
    status: str          # "trained", "resumed" or "cached"
    seconds: float
    images_per_s: float | None
    model: EchoCarePretrainer | None = None


def _autocast(config: PretrainConfig, device: str):
    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.startswith("cuda"))
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu",
                          dtype=torch.bfloat16)


def _mean_across_ranks(values: torch.Tensor, dist_info: DistInfo) -> torch.Tensor:
    if dist_info.world_size > 1:
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values)
        values /= dist_info.world_size
    return values


def pretrain(config: PretrainConfig, folder: "str | os.PathLike", *, dataset=None,
             curated_index: "str | os.PathLike | None" = None, device: str | None = "auto",
             resume: bool = True, stop_after: int | None = None,
             data_jobs: int = 1) -> PretrainResult:
    """Train ``config`` into ``folder`` (checkpoint folder), resuming or reusing what is there.

    * a finished checkpoint with the same configuration hash is reused ("cached");
    * an unfinished one with the same hash is resumed from its step ("resumed");
    * a checkpoint with another hash is an error (pick another folder, or delete it).

    ``dataset`` overrides the data choice (tests); ``stop_after`` ends the run after that many
    steps *as if the process had been killed* right after a checkpoint at that step."""
    folder = Path(folder)
    dist_info = init_distributed(device or "auto")
    device = resolve_device(device, dist_info)
    chash = config.config_hash()
    start, history = 0, []
    torch.manual_seed(config.seed)  # initial weights: a function of the config, not of history
    model = build_model(config)
    opt, sched = build_optimizer(model, config)
    status = "trained"
    if resume and (folder / "checkpoint.json").exists():
        meta = read_checkpoint_meta(folder)
        if meta.get("config_hash") != chash:
            raise CheckpointError(
                f"{folder} holds a checkpoint of another configuration (hash "
                f"{meta.get('config_hash')} vs {chash}); use another folder or delete it")
        load_checkpoint(folder, model=model, optimizer=opt)
        start, history = int(meta["step"]), list(meta.get("history", []))
        status = "cached" if start >= config.steps else "resumed"
    data_source = "n/a"
    if status == "cached":
        hist = pd.DataFrame(history, columns=HISTORY_COLUMNS)
        return PretrainResult(folder, config, hist, meta.get("data", "n/a"), status, 0.0, None,
                              model.eval())

    if dataset is None:
        choice = choose_data(config.data, size=config.image_size, n_images=config.n_images,
                             seed=config.seed, curated_index=curated_index, n_jobs=data_jobs,
                             progress=config.progress and dist_info.is_main)
        dataset, data_source = choice.dataset, choice.description
    else:
        data_source = getattr(dataset, "description", type(dataset).__name__)

    model.to(device)
    net = model
    if dist_info.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[torch.device(device).index] if device.startswith("cuda")
                  else None, find_unused_parameters=False)
    stop = config.steps if stop_after is None else min(config.steps, stop_after)
    loader = step_loader(dataset, batch_size=config.batch_size, seed=config.seed,
                         start_step=start, stop_step=stop, rank=dist_info.rank,
                         world_size=dist_info.world_size, num_workers=config.num_workers)
    bar = tqdm(total=stop - start, desc=f"pretraining {config.variant}", unit="step",
               disable=not (config.progress and dist_info.is_main), leave=False)
    t0 = time.perf_counter()
    n_images = 0
    mcfg = model.encoder.config
    net.train()
    for batch in loader:
        step = batch.step
        sched.step_update(step)  # lr of this step: a function of the step alone
        torch.manual_seed(int(step_generator(config.seed, step, dist_info.rank, 3).initial_seed()))
        x = batch.images.to(device, non_blocking=True)
        mask = None
        if model.use_mim:
            mask = random_mask(x.shape[0], x.shape[-1], mcfg.mask_patch_size, config.mask_ratio,
                               generator=step_generator(config.seed, step, dist_info.rank, 2),
                               device=device)
        with _autocast(config, device):
            out = net(x, mask, batch.hierarchy.to(device), batch.hierarchy_mask.to(device))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if config.clip_grad:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
        opt.step()
        n_images += x.shape[0] * dist_info.world_size
        vals = torch.stack([out.loss.detach().float(),
                            (out.mim if out.mim is not None else out.loss.new_tensor(float("nan"))).detach().float(),
                            (out.hie if out.hie is not None else out.loss.new_tensor(float("nan"))).detach().float()])
        if (step + 1) % config.log_every == 0 or step + 1 == stop:
            loss, mim, hie = _mean_across_ranks(vals, dist_info).cpu().tolist()
            if not math.isfinite(loss):
                raise FloatingPointError(f"pretraining loss became {loss} at step {step}; lower "
                                         "the learning rate or check the data")
            history.append({"step": step, "loss": loss, "mim": mim, "hie": hie,
                            "lr": opt.param_groups[0]["lr"],
                            "seconds": time.perf_counter() - t0})
            bar.set_postfix(loss=f"{loss:.4f}")
        bar.update()
        done = step + 1
        if dist_info.is_main and config.checkpoint_every and done % config.checkpoint_every == 0 \
                and done < stop:
            save_checkpoint(folder, model=model, optimizer=opt, step=done,
                            config=config.to_dict(), config_hash=chash, history=history,
                            extra={"data": data_source})
    bar.close()
    seconds = time.perf_counter() - t0
    if dist_info.is_main:
        save_checkpoint(folder, model=model, optimizer=opt, step=stop, config=config.to_dict(),
                        config_hash=chash, history=history, extra={"data": data_source})
    if dist_info.world_size > 1:
        import torch.distributed as dist

        dist.barrier()
    hist = pd.DataFrame(history, columns=HISTORY_COLUMNS)
    ips = n_images / seconds if seconds > 0 and n_images else None
    return PretrainResult(folder, config, hist, data_source,
                          "resumed" if start else "trained", seconds, ips, model.eval())


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m echocare_lib.pretraining",
                                 description="EchoCare pretraining (single process or torchrun).")
    ap.add_argument("--profile", default=None, help="smoke, cpu or paper (default: $ECHOCARE_PROFILE or cpu)")
    ap.add_argument("--variant", default="echocare", help="echocare, mim-only or hie-only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folder", default=None, help="checkpoint folder (default build/<profile>/pretrain/...)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--curated-index", default=None)
    ap.add_argument("--stop-after", type=int, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                    help="override a config field, e.g. --set steps=100 --set decoder='\"unetr\"'")
    ap.add_argument("--report", default=None, help="write a JSON summary (per rank: <report>.rank<k>)")
    a = ap.parse_args(argv)
    from ..profiles import get_profile

    prof = get_profile(a.profile)
    overrides = {}
    for item in a.set:
        k, _, v = item.partition("=")
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    cfg = PretrainConfig.from_profile(prof, variant=a.variant, seed=a.seed, **overrides)
    dist_info = init_distributed(a.device)
    choice = choose_data(cfg.data, size=cfg.image_size, n_images=cfg.n_images, seed=cfg.seed,
                         curated_index=a.curated_index or default_curated_index(prof.name),
                         progress=cfg.progress and dist_info.is_main)
    cfg = cfg.replace(data_id=choice.fingerprint)
    folder = Path(a.folder) if a.folder else default_folder(prof.name, cfg)
    res = pretrain(cfg, folder, dataset=choice.dataset, device=a.device,
                   stop_after=a.stop_after)
    rank = int(os.environ.get("RANK", "0"))
    if a.report:  # per-rank summary, used by the test that checks DDP ranks agree
        weights_sum = float(sum(v.double().sum() for v in res.model.state_dict().values()))
        Path(f"{a.report}.rank{rank}").write_text(json.dumps({
            "rank": rank, "status": res.status, "losses": res.history["loss"].tolist(),
            "weights_sum": weights_sum}))
    if rank == 0:
        print(f"{res.status}: {cfg.variant} -> {res.folder} ({len(res.history)} logged steps, "
              f"data: {res.data})")
    return 0

