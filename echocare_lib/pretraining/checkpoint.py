"""Checkpoints without pickles: safetensors for tensors, JSON for everything else.

A checkpoint is a folder:

* ``model.safetensors``: the whole pretraining model (encoder, decoder, classifier);
* ``optimizer.safetensors``: AdamW's per-parameter state (``state.<i>.<key>``);
* ``checkpoint.json``: format version, pretraining config and its hash, encoder config,
  step, the optimizer's hyper-parameters per group, and the loss history so far;
* ``encoder.safetensors`` + ``encoder.json``: the encoder alone, what downstream notebooks
  load with :func:`load_encoder`.

Random state needs no saving: every random draw of step ``k`` (batch, augmentation, mask,
stochastic depth) comes from generators seeded by ``(seed, k, rank)``, so resuming at ``k``
reproduces the uninterrupted run exactly. The learning rate is a function of the step.

A checkpoint is written to a temporary sibling folder and renamed into place, so an
interrupted write never leaves a half checkpoint behind. Nothing here unpickles anything.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..models.encoder import EchoCareEncoder, EncoderConfig

FORMAT = "echocare-pretrain-checkpoint/1"
ENCODER_FORMAT = "echocare-encoder/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or from another configuration; the message says which."""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: not a checkpoint folder (expected "
                              "checkpoint.json or encoder.json next to .safetensors files)") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); the checkpoint is corrupt: "
                              "delete the folder and re-run pretraining") from None


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete: delete the "
                              "folder and re-run pretraining")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e}); delete the "
                              "checkpoint folder and re-run pretraining") from None


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"state.{pid}.{k}"] = t.detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd["param_groups"]]
    return tensors, groups


def _optimizer_state(tensors: dict[str, torch.Tensor], groups: list[dict]) -> dict:
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = t
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in groups]
    return {"state": state, "param_groups": groups}


def _state_dict_cpu(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_checkpoint(folder: "str | os.PathLike", *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, step: int, config: dict,
                    config_hash: str, history: list[dict], extra: dict | None = None) -> Path:
    """Write a checkpoint folder atomically (see module docstring)."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_state_dict_cpu(model), str(tmp / "model.safetensors"))
    opt_tensors, groups = _optimizer_tensors(optimizer)
    save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    enc: EchoCareEncoder = model.encoder
    meta = {"format": FORMAT, "step": int(step), "config": config, "config_hash": config_hash,
            "encoder": enc.config.to_dict(), "optimizer_param_groups": groups,
            "history": history, **(extra or {})}
    (tmp / "checkpoint.json").write_text(json.dumps(meta, indent=1))
    save_encoder(enc, tmp, extra={"config_hash": config_hash, "step": int(step),
                                  "variant": config.get("variant")})
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def read_checkpoint_meta(folder: "str | os.PathLike") -> dict:
    meta = _read_json(Path(folder) / "checkpoint.json")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{folder}/checkpoint.json has format {meta.get('format')!r}, "
                              f"expected {FORMAT!r}")
    return meta


def load_checkpoint(folder: "str | os.PathLike", *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Load weights (and optimizer state) into existing objects; returns the JSON metadata."""
    folder = Path(folder)
    meta = read_checkpoint_meta(folder)
    weights = _read_tensors(folder / "model.safetensors")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{folder}/model.safetensors does not fit this model: {e}") from None
    if optimizer is not None:
        state = _optimizer_state(_read_tensors(folder / "optimizer.safetensors"),
                                 meta["optimizer_param_groups"])
        optimizer.load_state_dict(state)
    return meta


def save_encoder(encoder: EchoCareEncoder, folder: "str | os.PathLike",
                 extra: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_state_dict_cpu(encoder), str(folder / "encoder.safetensors"))
    (folder / "encoder.json").write_text(json.dumps(
        {"format": ENCODER_FORMAT, "encoder": encoder.config.to_dict(), **(extra or {})}, indent=1))
    return folder / "encoder.safetensors"


def load_encoder(path: "str | os.PathLike", device: str | torch.device = "cpu") -> EchoCareEncoder:
    """The pretrained EchoCare encoder from a checkpoint folder or its ``encoder.safetensors``.

    This is how every downstream notebook gets the encoder. Returns it in eval mode; the JSON
    beside the weights rebuilds the architecture, and the weights must fit it exactly."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not folder.exists():
        raise CheckpointError(f"{path} does not exist: run notebook 02_pretraining (make figures "
                              "ONLY=02) or pass the folder of an EchoCare checkpoint")
    meta = _read_json(folder / "encoder.json")
    if meta.get("format") != ENCODER_FORMAT:
        raise CheckpointError(f"{folder}/encoder.json has format {meta.get('format')!r}, "
                              f"expected {ENCODER_FORMAT!r}")
    try:
        cfg = EncoderConfig.from_dict(meta["encoder"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder}/encoder.json has no valid encoder config: {e}") from None
    enc = EchoCareEncoder(cfg)
    weights = _read_tensors(folder / "encoder.safetensors")
    try:
        enc.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{folder}/encoder.safetensors does not fit the architecture in "
                              f"encoder.json: {e}") from None
    enc.checkpoint_meta = meta
    return enc.to(device).eval()
