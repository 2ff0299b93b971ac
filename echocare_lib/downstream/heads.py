"""Task heads on the one encoder interface, and the model that joins them.

* :class:`ClassificationHead`: dropout + linear on the pooled feature. Cine input (``frames``
  [B, T, 1, H, W]) is embedded frame by frame and the pooled features averaged over time
  before the linear layer (the simplest temporal model; it is what the clip classifiers of the
  paper's baselines do at test time).
* :class:`SegmentationHead`: a SwinUNETR-style decoder from MONAI's UNETR blocks on the four
  stages, plus one full-resolution skip from the input image (SwinUNETR's ``encoder1``). In
  fine-tuning the input is never masked, so this skip leaks nothing and sharpens boundaries.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.decoders import UnetrPath
from .zoo import encoder_channels


class ClassificationHead(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, n_classes)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(pooled))


class SegmentationHead(nn.Module):
    def __init__(self, stage_channels: tuple[int, ...], n_classes: int, width: int = 24,
                 norm: str = "instance") -> None:
        super().__init__()
        from monai.networks.blocks import (UnetOutBlock, UnetrBasicBlock, UnetrPrUpBlock,
                                           UnetrUpBlock)

        w = width
        self.path = UnetrPath(stage_channels, w, norm)
        self.to_half = UnetrPrUpBlock(2, w, w, num_layer=0, kernel_size=3, stride=1,
                                      upsample_kernel_size=2, norm_name=norm, conv_block=True,
                                      res_block=True)  # stride 4 -> 2
        self.image_skip = UnetrBasicBlock(2, 1, w, kernel_size=3, stride=1, norm_name=norm,
                                          res_block=True)
        self.final = UnetrUpBlock(2, w, w, kernel_size=3, upsample_kernel_size=2,
                                  norm_name=norm, res_block=True)  # stride 2 -> 1, + image
        self.out = UnetOutBlock(2, w, n_classes)

    def forward(self, features: list[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        x = self.final(self.to_half(self.path(features)), self.image_skip(image))
        return self.out(x)


class DownstreamModel(nn.Module):
    """encoder + head for one task kind ('classification' or 'segmentation')."""

    def __init__(self, encoder: nn.Module, kind: str, n_classes: int) -> None:
        super().__init__()
        self.encoder, self.kind = encoder, kind
        channels, pooled = encoder_channels(encoder)
        if kind == "classification":
            self.head = ClassificationHead(pooled, n_classes)
        elif kind == "segmentation":
            self.head = SegmentationHead(channels, n_classes)
        else:
            raise ValueError(f"no head for task kind {kind!r} yet")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 1, H, W] (or cine [B, T, 1, H, W] for classification) -> logits."""
        if self.kind == "classification":
            if x.ndim == 5:
                b, t = x.shape[:2]
                pooled = self.encoder(x.flatten(0, 1)).pooled.view(b, t, -1).mean(1)
            else:
                pooled = self.encoder(x).pooled
            return self.head(pooled)
        enc = self.encoder(x)
        return self.head(enc.features, x)
