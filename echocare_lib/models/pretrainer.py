"""EchoCare's pretraining model: encoder + image decoder + meta-object classifier (Fig. 4).

``L_PRE = L_MIM + L_HIE`` (section 3.1). The three variants of the ablation (Fig. 8k):

* ``echocare``: masked image in; reconstruction (L_MIM) and hierarchy (L_HIE) from the same
  forward pass, as Fig. 4 draws it;
* ``mim-only``: the SimMIM baseline, L_MIM only (no classifier);
* ``hie-only``: the unmasked image in, L_HIE only (no decoder).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .decoders import build_decoder
from .encoder import EchoCareEncoder, EncoderConfig, EncoderOutput, to_grayscale
from .hierarchy import HierarchicalClassifier
from .masking import pixel_mask

VARIANTS = {
    "echocare": {"mim": True, "hie": True},
    "mim-only": {"mim": True, "hie": False},
    "hie-only": {"mim": False, "hie": True},
}


def mim_loss(pred: torch.Tensor, target: torch.Tensor, pmask: torch.Tensor) -> torch.Tensor:
    """Eq. (1): mean absolute error over the masked pixels only (pmask [B, 1, H, W], 1 = masked).

    Unmasked pixels contribute exactly nothing (not even to the normaliser)."""
    err = (pred - target).abs() * pmask
    return err.sum() / (pmask.sum() * pred.shape[1]).clamp_min(1.0)


@dataclass
class PretrainOutput:
    loss: torch.Tensor
    mim: torch.Tensor | None
    hie: torch.Tensor | None
    reconstruction: torch.Tensor | None
    logits: torch.Tensor | None
    encoded: EncoderOutput


class EchoCarePretrainer(nn.Module):
    def __init__(self, encoder: EncoderConfig | str, *, variant: str = "echocare",
                 decoder: str = "simmim", ancestors=None) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"Unknown variant {variant!r}; choose one of {sorted(VARIANTS)}.")
        self.variant = variant
        self.use_mim, self.use_hie = VARIANTS[variant]["mim"], VARIANTS[variant]["hie"]
        self.encoder = EchoCareEncoder(encoder)
        cfg = self.encoder.config
        self.decoder = (build_decoder(decoder, cfg.stage_channels, patch_size=cfg.patch_size,
                                      final_stride=cfg.stage_strides[-1])
                        if self.use_mim else None)
        if self.use_hie:
            if ancestors is None:
                raise ValueError("variant uses the hierarchical classifier: pass the ontology's "
                                 "ancestor matrix (ancestors=onto.ancestor_matrix())")
            self.classifier = HierarchicalClassifier(self.encoder.pooled_dim, ancestors)
        else:
            self.classifier = None

    def no_weight_decay(self) -> set[str]:
        return {f"encoder.{n}" for n in self.encoder.no_weight_decay()}

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None,
                hierarchy: torch.Tensor | None = None,
                hierarchy_mask: torch.Tensor | None = None) -> PretrainOutput:
        """``images`` [B, 1, H, W] in [0, 1]; ``mask`` [B, h, w] (required for MIM variants);
        ``hierarchy`` multi-hot [B, N] and ``hierarchy_mask`` [B, N] (required for HIE)."""
        if self.use_mim and mask is None:
            raise ValueError(f"variant {self.variant!r} needs a mask (see masking.random_mask)")
        enc = self.encoder(images, mask if self.use_mim else None)
        zero = images.new_zeros(())
        mim = hie = recon = logits = None
        if self.use_mim:
            recon = self.decoder(enc.features)
            pm = pixel_mask(mask, self.encoder.config.mask_patch_size).to(recon.dtype)
            mim = mim_loss(recon, to_grayscale(images).to(recon.dtype), pm)
        if self.use_hie:
            if hierarchy is None:
                raise ValueError(f"variant {self.variant!r} needs hierarchy labels")
            logits = self.classifier(enc.pooled)
            hie = self.classifier.hierarchy.loss(logits.float(), hierarchy, hierarchy_mask)
        loss = (mim if mim is not None else zero) + (hie if hie is not None else zero)
        return PretrainOutput(loss, mim, hie, recon, logits, enc)
