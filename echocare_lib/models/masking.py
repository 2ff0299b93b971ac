"""Random patch masking for masked image modelling (SimMIM-style).

Sizes, and the paper's ambiguous "2x2" (section 3.2: "an input image with 256x256 pixels and
then patched as 2x2 pixels"):

* **model patch size** = 4 px: the Swin patch embedding's stride. A literal 2-px patch
  embedding would quadruple the tokens of every stage (128x128 tokens in stage 1 at 256 px)
  and leave the published Swin-B/L layouts, which the paper says it uses.
* **mask patch size** = 8 px = **2x2 model tokens**: our reading of "2x2". A masking unit is a
  2x2 block of tokens, so the encoder's 4x4 patch merging never mixes a half-masked unit at
  stage 1. SimMIM (Xie et al., 2022) found larger units (32 px at 192 px input) slightly
  better on ImageNet; the unit is a parameter (``mask_patch_size``) so the ablation can be run.

Exactly ``round(mask_ratio * n_units)`` units are masked in every image (not a Bernoulli
draw per unit), as in SimMIM's generator, so the masked fraction is the same for each image.
"""
from __future__ import annotations

import torch


def n_masked(n_units: int, mask_ratio: float) -> int:
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    return int(round(mask_ratio * n_units))


def random_mask(batch: int, image_size: int, mask_patch_size: int, mask_ratio: float, *,
                generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    """Float mask [B, h, w] (h = w = image_size / mask_patch_size), 1 on masked units.

    Each row masks exactly ``round(mask_ratio * h * w)`` units, chosen uniformly at random by
    ranking i.i.d. uniform scores (one ``torch.rand`` call: fast and reproducible).
    """
    if image_size % mask_patch_size:
        raise ValueError(f"image_size {image_size} is not a multiple of mask_patch_size "
                         f"{mask_patch_size}")
    side = image_size // mask_patch_size
    n = side * side
    k = n_masked(n, mask_ratio)
    scores = torch.rand(batch, n, generator=generator)
    order = scores.argsort(dim=1)
    mask = torch.zeros(batch, n)
    mask.scatter_(1, order[:, :k], 1.0)
    return mask.view(batch, side, side).to(device)


def pixel_mask(mask: torch.Tensor, mask_patch_size: int) -> torch.Tensor:
    """[B, h, w] unit mask -> [B, 1, H, W] pixel mask."""
    return (mask.repeat_interleave(mask_patch_size, 1)
                .repeat_interleave(mask_patch_size, 2).unsqueeze(1))
