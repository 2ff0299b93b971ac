"""The EchoCare image encoder: a timm Swin Transformer with a SimMIM mask token.

This is the *one encoder interface* of DESIGN.md: ``encoder(images)`` returns an
:class:`EncoderOutput` with four NCHW feature maps (strides 4, 8, 16, 32) and a pooled vector.
Every downstream head attaches to that interface only.

What timm gives us: the whole Swin Transformer (patch embedding, shifted-window stages, patch
merging, stochastic depth). What we add (paper section 3.1, "Unified masked pretraining"):

* a learnable mask embedding ``e_[M]`` that replaces the patch embeddings of masked patches
  right after the patch embedding, before any attention, so no information from a masked
  patch can reach any later layer;
* per-stage outputs in NCHW (timm's stages work in NHWC) and the final LayerNorm'd, average-
  pooled vector the hierarchical classifier and downstream classification heads use.

Channels: ultrasound is grayscale, so the encoder has one input channel. ``images`` may be
``[B, 1, H, W]`` or ``[B, 3, H, W]``; three-channel input (RGB exports, colour-map device
styles) is converted to luminance with the ITU-R BT.601 weights (0.299, 0.587, 0.114), the
same conversion PIL's ``convert("L")`` uses in curation. Inputs are floats in [0, 1]; the
encoder standardises them with fixed constants (:data:`PIXEL_MEAN`, :data:`PIXEL_STD`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from timm.models.swin_transformer import SwinTransformer

#: Fixed input standardisation for [0, 1] grayscale ultrasound (B-mode images are dark on
#: average; these are round values close to the simulated corpus's statistics and to those
#: of the pydicom-data scanner frames, and the same for every data source).
PIXEL_MEAN = 0.25
PIXEL_STD = 0.25
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of one encoder preset (everything needed to rebuild it from JSON)."""

    name: str
    image_size: int
    patch_size: int
    window_size: int
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    #: Side of one masking unit in pixels (see ``masking.py`` for the choice of 2x2 tokens).
    mask_patch_size: int
    drop_path_rate: float = 0.1
    in_chans: int = 1
    notes: str = ""

    @property
    def stage_channels(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2 ** i for i in range(len(self.depths)))

    @property
    def stage_strides(self) -> tuple[int, ...]:
        return tuple(self.patch_size * 2 ** i for i in range(len(self.depths)))

    @property
    def pooled_dim(self) -> int:
        return self.stage_channels[-1]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["depths"], d["num_heads"] = list(self.depths), list(self.num_heads)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"encoder config has unknown field(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        d["depths"], d["num_heads"] = tuple(d["depths"]), tuple(d["num_heads"])
        return cls(**d)

    def replace(self, **changes) -> "EncoderConfig":
        d = self.to_dict()
        d.update(changes)
        return EncoderConfig.from_dict(d)


# Model patch size 4 everywhere (Swin's own, so stage strides are 4/8/16/32 and published
# Swin-B/L configurations apply unchanged); mask unit = 2x2 model tokens = 8 px (see masking.py).
PRESETS: dict[str, EncoderConfig] = {
    "echocare-tiny": EncoderConfig(
        name="echocare-tiny", image_size=64, patch_size=4, window_size=4, embed_dim=32,
        depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), mask_patch_size=8, drop_path_rate=0.0,
        notes="smoke profile: proves the code paths; 1.4 M parameters"),
    "echocare-small": EncoderConfig(
        name="echocare-small", image_size=64, patch_size=4, window_size=4, embed_dim=48,
        depths=(2, 2, 2, 2), num_heads=(2, 4, 8, 16), mask_patch_size=8, drop_path_rate=0.1,
        notes="cpu profile: laptop-sized Swin with the Swin-T layout at half width, 5 M parameters"),
    "echocare-base": EncoderConfig(
        name="echocare-base", image_size=256, patch_size=4, window_size=8, embed_dim=128,
        depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), mask_patch_size=8, drop_path_rate=0.1,
        notes="paper: Swin-B at 256 px, window 8 (section 3.1)"),
    "echocare-large": EncoderConfig(
        name="echocare-large", image_size=256, patch_size=4, window_size=8, embed_dim=192,
        depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), mask_patch_size=8, drop_path_rate=0.1,
        notes="paper: Swin-L at 256 px, window 8 (section 3.1)"),
}


def get_preset(name: str) -> EncoderConfig:
    key = str(name).strip().lower()
    if key not in PRESETS:
        raise ValueError(f"Unknown encoder preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[key]


@dataclass
class EncoderOutput:
    """Four NCHW feature maps (strides 4, 8, 16, 32) and the pooled vector [B, C4]."""

    features: list[torch.Tensor] = field(default_factory=list)
    pooled: torch.Tensor | None = None


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """[B, 1|3, H, W] floats -> [B, 1, H, W]; three channels are mixed with BT.601 weights."""
    if images.ndim != 4:
        raise ValueError(f"expected images [B, C, H, W], got shape {tuple(images.shape)}")
    if images.shape[1] == 1:
        return images
    if images.shape[1] == 3:
        w = images.new_tensor(_LUMA).view(1, 3, 1, 1)
        return (images * w).sum(1, keepdim=True)
    raise ValueError(f"expected 1 (grayscale) or 3 (RGB) channels, got {images.shape[1]}")


class EchoCareEncoder(nn.Module):
    """timm ``SwinTransformer`` + learnable mask token; returns multi-scale NCHW features."""

    def __init__(self, config: EncoderConfig | str) -> None:
        super().__init__()
        self.config = get_preset(config) if isinstance(config, str) else config
        c = self.config
        if c.image_size % (c.patch_size * 2 ** (len(c.depths) - 1)):
            raise ValueError(f"image_size {c.image_size} must be divisible by the final stride "
                             f"{c.stage_strides[-1]}")
        if c.mask_patch_size % c.patch_size:
            raise ValueError(f"mask_patch_size {c.mask_patch_size} must be a multiple of the "
                             f"model patch size {c.patch_size}")
        self.swin = SwinTransformer(
            img_size=c.image_size, patch_size=c.patch_size, in_chans=c.in_chans, num_classes=0,
            global_pool="avg", embed_dim=c.embed_dim, depths=c.depths, num_heads=c.num_heads,
            window_size=c.window_size, drop_path_rate=c.drop_path_rate)
        # e_[M] of eq. (1)'s surroundings: one learnable embedding shared by all masked patches.
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 1, c.embed_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    @property
    def stage_channels(self) -> tuple[int, ...]:
        return self.config.stage_channels

    @property
    def pooled_dim(self) -> int:
        return self.config.pooled_dim

    def no_weight_decay(self) -> set[str]:
        return {"mask_token"} | {f"swin.{n}" for n in self.swin.no_weight_decay()}

    def token_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Mask on the mask-patch grid [B, h, w] -> on the model's token grid [B, H/p, W/p]."""
        scale = self.config.mask_patch_size // self.config.patch_size
        return mask.repeat_interleave(scale, 1).repeat_interleave(scale, 2)

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> EncoderOutput:
        """``images`` [B, 1|3, H, W] in [0, 1]; ``mask`` [B, h, w] (1 = masked) on the mask-patch
        grid (h = H / mask_patch_size) or None for unmasked use (fine-tuning, inference)."""
        x = (to_grayscale(images) - PIXEL_MEAN) / PIXEL_STD
        x = self.swin.patch_embed(x)  # [B, H/4, W/4, C] (NHWC, LayerNorm'd)
        if mask is not None:
            if mask.ndim != 3 or mask.shape[0] != x.shape[0]:
                raise ValueError(f"mask must be [B, h, w] with B = {x.shape[0]} (one mask per "
                                 f"image), got shape {tuple(mask.shape)}")
            w = self.token_mask(mask).unsqueeze(-1).to(x.dtype)
            if w.shape[1:3] != x.shape[1:3]:
                raise ValueError(f"mask grid {tuple(mask.shape[1:])} does not match the image: "
                                 f"expected {x.shape[1] * self.config.patch_size // self.config.mask_patch_size}"
                                 f" x {x.shape[2] * self.config.patch_size // self.config.mask_patch_size}")
            # Masked tokens are *replaced* (w = 1), so their pixels cannot reach any later layer.
            x = x * (1.0 - w) + self.mask_token.to(x.dtype) * w
        features = []
        for i, stage in enumerate(self.swin.layers):
            x = stage(x)
            out = self.swin.norm(x) if i == len(self.swin.layers) - 1 else x
            features.append(out.permute(0, 3, 1, 2).contiguous())
        pooled = features[-1].mean(dim=(2, 3))
        return EncoderOutput(features=features, pooled=pooled)
