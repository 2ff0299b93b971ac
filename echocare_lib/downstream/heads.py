"""Task heads on the one encoder interface, and the model that joins them.

* :class:`ClassificationHead`: dropout + linear on the pooled feature. Cine input (``frames``
  [B, T, 1, H, W]) is embedded frame by frame and the pooled features averaged over time
  before the linear layer (the simplest temporal model; it is what the clip classifiers of the
  paper's baselines do at test time).
* :class:`SegmentationHead`: a SwinUNETR-style decoder from MONAI's UNETR blocks on the four
  stages, plus one full-resolution skip from the input image (SwinUNETR's ``encoder1``). In
  fine-tuning the input is never masked, so this skip leaks nothing and sharpens boundaries.
  ``full_resolution=False`` ("unetr-lite", the ``cpu`` profile's choice) stops the decoder at
  the finest stage (stride 4) and upsamples the logits bilinearly, as SegFormer/UPerNet-style
  heads do: the full-resolution blocks cost three quarters of the head's training time on a CPU.
* detection, landmarks and EF regression: see :class:`DownstreamModel` (masks fitted with
  ellipses, heatmaps on the same decoder, :class:`TemporalRegressionHead` over frames).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.decoders import UnetrPath
from .geometry import decode_heatmaps
from .zoo import encoder_channels


class ClassificationHead(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, n_classes)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(pooled))


#: segmentation head names (``FinetuneConfig.seg_head`` / ``Profile.seg_head``)
SEG_HEADS = ("unetr", "unetr-lite")


class SegmentationHead(nn.Module):
    def __init__(self, stage_channels: tuple[int, ...], n_classes: int, width: int = 24,
                 norm: str = "instance", full_resolution: bool = True) -> None:
        super().__init__()
        from monai.networks.blocks import (UnetOutBlock, UnetrBasicBlock, UnetrPrUpBlock,
                                           UnetrUpBlock)

        w = width
        self.full_resolution = full_resolution
        self.path = UnetrPath(stage_channels, w, norm)
        self.out = UnetOutBlock(2, w, n_classes)
        if not full_resolution:
            return
        self.to_half = UnetrPrUpBlock(2, w, w, num_layer=0, kernel_size=3, stride=1,
                                      upsample_kernel_size=2, norm_name=norm, conv_block=True,
                                      res_block=True)  # stride 4 -> 2
        self.image_skip = UnetrBasicBlock(2, 1, w, kernel_size=3, stride=1, norm_name=norm,
                                          res_block=True)
        self.final = UnetrUpBlock(2, w, w, kernel_size=3, upsample_kernel_size=2,
                                  norm_name=norm, res_block=True)  # stride 2 -> 1, + image

    def forward(self, features: list[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        if not self.full_resolution:
            return F.interpolate(self.out(self.path(features)), size=image.shape[-2:],
                                 mode="bilinear", align_corners=False)
        x = self.final(self.to_half(self.path(features)), self.image_skip(image))
        return self.out(x)


class TemporalRegressionHead(nn.Module):
    """Per-frame pooled features ``[B, L, C]`` -> one value per clip ``[B]`` (EF / 100).

    A linear projection to ``hidden`` channels, one temporal 1-D convolution (kernel 3, 'same'
    padding) and pooling over time by mean, max and min concatenated, then a linear output.
    Why this module: EF = (EDV - ESV) / EDV is a *contrast* between the largest and the
    smallest ventricle in the clip, so max/min pooling over time of a per-frame code is the
    natural read-out, and the 1-D convolution lets neighbouring frames (the motion) shape that
    code; it is order-aware yet length-agnostic (any clip length L >= 1), and it is small
    enough to train on frozen features within a few epochs (a GRU or a Transformer over 10-16
    frames would add parameters without adding what the read-out needs)."""

    def __init__(self, in_dim: int, hidden: int = 64, kernel: int = 3,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(in_dim, hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2)
        self.out = nn.Linear(3 * hidden, 1)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.proj(self.drop(seq))).transpose(1, 2)     # [B, H, L]
        h = F.gelu(self.conv(h)) + h
        z = torch.cat([h.mean(2), h.amax(2), h.amin(2)], dim=1)   # [B, 3H]
        return self.out(z)[:, 0]


def clip_starts(n_frames: int, clip_len: int, stride: int = 1) -> list[int]:
    """Start frames of the test-time clips: every ``stride``-th start of a clip of
    ``L = min(clip_len, n_frames)`` consecutive frames, plus the last possible start, so that
    the clips always cover every frame (EchoNet-Dynamic averages over all clips). The stride
    is capped at L (a larger one would skip frames); stride 1 (the default) is every clip."""
    length = min(clip_len, n_frames)
    last = n_frames - length
    starts = list(range(0, last + 1, min(length, max(1, int(stride)))))
    if starts[-1] != last:
        starts.append(last)
    return starts


def take_clips(seq: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """``seq[b, starts[b]:starts[b] + length]`` for every b (``seq``: [B, T, ...])."""
    idx = starts.to(seq.device)[:, None] + torch.arange(length, device=seq.device)[None]
    return seq[torch.arange(len(seq), device=seq.device)[:, None], idx]


def random_clip_starts(batch: int, n_frames: int, length: int) -> torch.Tensor:
    """Training: one uniformly random start per sample (torch's global generator)."""
    return torch.randint(0, n_frames - length + 1, (batch,))


#: the task kinds :class:`DownstreamModel` has a head for
KINDS = ("classification", "segmentation", "detection", "landmarks", "regression")


def masks_to_ellipses(label_maps, probs=None, classes=("background", "thorax", "cardiac"),
                      nested: bool = True, largest_component: bool = True,
                      min_pixels: int = 5) -> list[list[dict]]:
    """Predicted label maps ``[N, H, W]`` (and softmax ``probs`` [N, C, H, W]) -> per image a
    list of ellipse dicts ``{"label", "cx", "cy", "a", "b", "angle", "score"}`` (the
    ``geometry`` convention), one per foreground class that has at least ``min_pixels``.

    ``nested=True`` (FOCUS: the cardiac ellipse lies inside the thorax ellipse and the label
    map draws it over the thorax): class k's region is every pixel labelled k or a later class,
    so the thorax is fitted on thorax ∪ cardiac and the cardiac on cardiac alone; ``False``:
    on the class's own pixels. ``largest_component``: keep the region's largest 8-connected
    component (``scipy.ndimage.label``) and fill its holes, so that stray pixels do not pull
    the moments. The ellipse is :func:`geometry.fit_ellipse`'s second-moment fit (exact for a
    filled ellipse up to rasterisation). ``score``: the mean probability of the region's
    classes over the region's pixels (1.0 without ``probs``), the detector's confidence that
    COCO AP ranks by."""
    from scipy import ndimage

    from .geometry import fit_ellipse

    lm = np.asarray(label_maps.cpu() if isinstance(label_maps, torch.Tensor) else label_maps)
    pr = None
    if probs is not None:
        pr = np.asarray(probs.cpu() if isinstance(probs, torch.Tensor) else probs)
    if lm.ndim == 2:
        lm, pr = lm[None], (pr[None] if pr is not None else None)
    out = []
    eight = np.ones((3, 3), bool)
    for i in range(len(lm)):
        found = []
        for k in range(1, len(classes)):
            members = list(range(k, len(classes))) if nested else [k]
            region = np.isin(lm[i], members)
            if largest_component and region.any():
                lab, n = ndimage.label(region, structure=eight)
                if n > 1:
                    sizes = np.bincount(lab.ravel())[1:]
                    region = lab == (int(np.argmax(sizes)) + 1)
                region = ndimage.binary_fill_holes(region)
            if region.sum() < min_pixels:
                continue
            e = fit_ellipse(region, label=str(classes[k]))
            if e is None or e["b"] <= 0:
                continue
            score = float(pr[i, members].sum(0)[region].mean()) if pr is not None else 1.0
            e["score"] = score
            found.append(e)
        out.append(found)
    return out


def gaussian_heatmaps_torch(points: torch.Tensor, shape, sigma: float) -> torch.Tensor:
    """Batched :func:`geometry.gaussian_heatmaps`: points [B, K, 2] (x, y) -> [B, K, H, W]
    (the training targets, built per batch instead of stored for the whole data set)."""
    h, w = shape
    pts = points.to(torch.float32)
    xs = torch.arange(w, dtype=torch.float32, device=pts.device)
    ys = torch.arange(h, dtype=torch.float32, device=pts.device)
    gx = torch.exp(-(xs[None, None] - pts[..., :1]) ** 2 / (2 * sigma ** 2))   # [B, K, W]
    gy = torch.exp(-(ys[None, None] - pts[..., 1:]) ** 2 / (2 * sigma ** 2))   # [B, K, H]
    return gy[..., :, None] * gx[..., None, :]


class DownstreamModel(nn.Module):
    """encoder + head for one task kind (see :data:`KINDS`).

    * ``classification``: :class:`ClassificationHead` on the pooled feature (cine averaged).
    * ``segmentation``: :class:`SegmentationHead`; outputs class logits.
    * ``detection`` (FOCUS thorax / heart ellipses): the *same* segmentation model with the
      background/thorax/cardiac classes, its label map turned into ellipses by
      :func:`masks_to_ellipses`. Why masks fitted with ellipses rather than a rotated-box
      regressor: it reuses the UNETR head on the multi-scale features unchanged (and its frozen
      mode), FOCUS ships the masks (or they are rasterised from its ellipses) so the dense
      target is free, and the second-moment fit is exact for an ellipse (a filled ellipse has
      variance a^2/4 along its axis), so nothing is lost between mask and ellipse; the class
      probability inside gives the score AP ranks by.
    * ``landmarks``: the segmentation head with ``n_classes`` = K output channels read as
      heatmaps (no activation), trained with MSE against Gaussians of ``heatmap_sigma`` pixels
      (:func:`gaussian_heatmaps_torch`), decoded to sub-pixel (x, y) by
      :func:`geometry.decode_heatmaps`.
    * ``regression`` (EF from cine): every frame embedded by the encoder's pooled feature,
      then :class:`TemporalRegressionHead` over time; the output is EF / 100. EchoNet-Dynamic's
      protocol: in training one random clip of ``L = min(T, clip_len)`` consecutive frames per
      sample; in evaluation the prediction is averaged over all clips (:func:`clip_starts`,
      ``clip_stride``; the last start is always included so every frame is covered).
    """

    def __init__(self, encoder: nn.Module, kind: str, n_classes: int,
                 seg_head: str = "unetr", *, clip_len: int = 16, clip_stride: int = 1,
                 heatmap_sigma: float = 2.0) -> None:
        super().__init__()
        if seg_head not in SEG_HEADS:
            raise ValueError(f"seg_head must be one of {SEG_HEADS}, got {seg_head!r}")
        if kind not in KINDS:
            raise ValueError(f"no head for task kind {kind!r} yet; known: {KINDS}")
        self.encoder, self.kind = encoder, kind
        self.clip_len, self.clip_stride = int(clip_len), int(clip_stride)
        self.heatmap_sigma = float(heatmap_sigma)
        channels, pooled = encoder_channels(encoder)
        if kind == "classification":
            self.head = ClassificationHead(pooled, n_classes)
        elif kind in ("segmentation", "detection", "landmarks"):
            self.head = SegmentationHead(channels, n_classes,
                                         full_resolution=seg_head == "unetr")
        else:  # regression
            self.head = TemporalRegressionHead(pooled)
        self.feature_norm = False

    def set_feature_norm(self, pooled: torch.Tensor, eps: float = 1e-6) -> None:
        """Standardise the pooled feature before the head with the per-channel mean and std of
        ``pooled`` (the training split's frozen encodings, [N, C] or [N, T, C]).

        Why: a frozen encoder's pooled channels can have very different scales (the
        pretrained Swin's LayerNorm output is dominated by a few large channels), and a head
        trained for a few epochs then regresses to the mean (EF) or to the majority class.
        Linear probing in the MIM literature (MAE, SimMIM) puts a parameter-free BatchNorm
        before the probe for the same reason; a fixed standardisation is that BatchNorm's
        evaluation form. Only the pooled kinds (classification, regression) use it; the
        stats are buffers, so they travel with the state dict."""
        if self.dense:
            raise ValueError("feature standardisation applies to the pooled kinds only")
        flat = pooled.detach().float().reshape(-1, pooled.shape[-1])
        self.register_buffer("feat_mean", flat.mean(0))
        self.register_buffer("feat_std", flat.std(0).clamp_min(eps))
        self.feature_norm = True

    def _standardise(self, pooled: torch.Tensor) -> torch.Tensor:
        if not self.feature_norm:
            return pooled
        return (pooled - self.feat_mean) / self.feat_std

    @property
    def dense(self) -> bool:
        """True when the head is the UNETR decoder on the four stages."""
        return self.kind in ("segmentation", "detection", "landmarks")

    def _frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, 1, H, W] (or one image [B, 1, H, W]) -> pooled per frame [B, T, C]."""
        if x.ndim == 4:
            return self.encoder(x).pooled[:, None]
        b, t = x.shape[:2]
        return self.encoder(x.flatten(0, 1)).pooled.view(b, t, -1)

    def encode(self, x: torch.Tensor):
        """The encoder's output for a batch: ``pooled`` [B, C] for classification (cine clips
        [B, T, 1, H, W] averaged over frames), per-frame ``pooled`` [B, T, C] for regression,
        the :class:`EncoderOutput` for the dense kinds."""
        if self.kind == "classification":
            if x.ndim == 5:
                b, t = x.shape[:2]
                return self.encoder(x.flatten(0, 1)).pooled.view(b, t, -1).mean(1)
            return self.encoder(x).pooled
        if self.kind == "regression":
            return self._frame_features(x)
        return self.encoder(x)

    def decode(self, encoded, x: torch.Tensor | None = None) -> torch.Tensor:
        """Raw outputs from :meth:`encode`'s output (``x``: the image, for the segmentation
        skip): logits, heatmaps, or EF / 100 [B] (regression: a random clip in training mode,
        the mean over all clips in eval mode)."""
        if self.kind == "classification":
            return self.head(self._standardise(encoded))
        if self.kind == "regression":
            encoded = self._standardise(encoded)
            b, t = encoded.shape[:2]
            length = min(self.clip_len, t)
            if t == length:
                return self.head(encoded)
            if self.training:
                return self.head(take_clips(encoded, random_clip_starts(b, t, length), length))
            preds = [self.head(encoded[:, s:s + length])
                     for s in clip_starts(t, self.clip_len, self.clip_stride)]
            return torch.stack(preds).mean(0)
        return self.head(encoded.features, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 1, H, W] (or cine [B, T, 1, H, W] for classification / regression) -> raw
        outputs (see :meth:`decode`)."""
        if self.kind == "regression" and self.training and x.ndim == 5:
            t = x.shape[1]
            length = min(self.clip_len, t)
            if t > length:  # encode only the training clip's frames
                x = take_clips(x, random_clip_starts(len(x), t, length), length)
        return self.decode(self.encode(x), x)

    @torch.no_grad()
    def postprocess(self, out: torch.Tensor) -> torch.Tensor:
        """Raw outputs -> what evaluation takes: softmax probabilities (classification,
        segmentation, detection), decoded (x, y) landmarks [B, K, 2], or EF in % [B]."""
        if self.kind == "landmarks":  # spatial softmax (the training loss's distribution)
            b, k, h, w = out.shape
            prob = out.float().flatten(2).softmax(-1).view(b, k, h, w)
            return decode_heatmaps(prob)
        if self.kind == "regression":
            return out.float() * 100.0
        return out.float().softmax(1)
