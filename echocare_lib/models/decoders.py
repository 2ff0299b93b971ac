"""Image decoders for masked image modelling (paper section 3.1: "We follow SimMIM and
SwinUNETR to build the image decoder head").

* :class:`SimMIMDecoder`: SimMIM's one-layer head, a 1x1 convolution from the last stage to
  ``stride**2`` values per token, rearranged to pixels with ``PixelShuffle``.
* :class:`UNETRDecoder`: a SwinUNETR-style multi-scale decoder built from MONAI's UNETR
  blocks on the encoder's four stages. SwinUNETR also feeds the *raw input image* into its
  highest-resolution skip connections; here that would hand the decoder the unmasked pixels
  and make reconstruction trivial, so every skip comes from an encoder stage (which only ever
  saw the mask token in place of masked patches) and the last x4 upsampling has no skip.

Both end in a sigmoid: the reconstruction is a grayscale value in [0, 1] per pixel, as the
paper states.
"""
from __future__ import annotations

import torch
from torch import nn

DECODERS = ("simmim", "unetr")


class SimMIMDecoder(nn.Module):
    def __init__(self, stage_channels: tuple[int, ...], stride: int, out_chans: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.proj = nn.Conv2d(stage_channels[-1], stride ** 2 * out_chans, kernel_size=1)
        self.shuffle = nn.PixelShuffle(stride)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return torch.sigmoid(self.shuffle(self.proj(features[-1])))


class UnetrPath(nn.Module):
    """The SwinUNETR-style multi-scale path from MONAI blocks: one residual block per encoder
    stage (SwinUNETR's encoder2..encoder10), then x2 upsampling fused with the next finer stage
    (decoder5..decoder2). Returns features at the finest stage's stride, ``width`` channels.
    Shared by the MIM decoder here and the segmentation head of ``downstream.heads``."""

    def __init__(self, stage_channels: tuple[int, ...], width: int, norm: str = "instance") -> None:
        super().__init__()
        # MONAI is imported here, not at module level: it costs seconds per process start
        # and only the UNETR-style modules need it.
        from monai.networks.blocks import UnetrBasicBlock, UnetrUpBlock

        c, w = stage_channels, width
        self.enc = nn.ModuleList(
            UnetrBasicBlock(2, ci, w * 2 ** i, kernel_size=3, stride=1, norm_name=norm,
                            res_block=True) for i, ci in enumerate(c))
        self.up = nn.ModuleList(
            UnetrUpBlock(2, w * 2 ** (i + 1), w * 2 ** i, kernel_size=3, upsample_kernel_size=2,
                         norm_name=norm, res_block=True) for i in reversed(range(len(c) - 1)))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        skips = [enc(f) for enc, f in zip(self.enc, features)]
        x = skips[-1]
        for up, skip in zip(self.up, reversed(skips[:-1])):
            x = up(x, skip)
        return x


class UNETRDecoder(nn.Module):
    """Stage-4 -> stage-1 upsampling path with skips from stages 3..1, then x4 to pixels."""

    def __init__(self, stage_channels: tuple[int, ...], patch_size: int = 4,
                 out_chans: int = 1, width: int | None = None, norm: str = "instance") -> None:
        super().__init__()
        from monai.networks.blocks import UnetOutBlock, UnetrPrUpBlock

        w = width or stage_channels[0]
        self.path = UnetrPath(stage_channels, w, norm)
        # From stride `patch_size` to pixels without a skip: transposed convolutions only.
        n_up = max(0, (patch_size.bit_length() - 1) - 1)  # x2 per layer after the first x2
        self.to_pixels = UnetrPrUpBlock(2, w, w, num_layer=n_up, kernel_size=3, stride=1,
                                        upsample_kernel_size=2, norm_name=norm, conv_block=True,
                                        res_block=True)
        self.out = UnetOutBlock(2, w, out_chans)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return torch.sigmoid(self.out(self.to_pixels(self.path(features))))


def build_decoder(kind: str, stage_channels: tuple[int, ...], *, patch_size: int,
                  final_stride: int, out_chans: int = 1) -> nn.Module:
    if kind == "simmim":
        return SimMIMDecoder(stage_channels, final_stride, out_chans)
    if kind == "unetr":
        return UNETRDecoder(stage_channels, patch_size, out_chans)
    raise ValueError(f"Unknown decoder {kind!r}; choose one of {DECODERS}.")
