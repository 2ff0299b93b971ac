"""Unpaired low-quality -> high-quality ultrasound enhancement (paper section 4.5.6, USenhance).

The paper trains without pairs (collecting registered low/high pairs is impractical in the
clinic) and compares against EnlightenGAN. Our generator puts the foundation model's encoder
under the UNETR decoder of the segmentation head (:class:`heads.SegmentationHead` at full
resolution, with its image skip) and predicts a residual in logit space:

    G(x) = sigmoid(logit(x) + D(E(x), x)),

with the last convolution zero-initialised so that G starts as the identity (the enhancement
is learned as a change of the input, which keeps the anatomy where it is).

Why a one-sided GAN with identity and content terms, not CycleGAN: a cycle needs a second
generator (high -> low) and a second discriminator, doubling the cost per step, and its
reconstruction term mostly guards against the generator moving anatomy, which the residual
parameterisation and a low-pass content term already prevent. EnlightenGAN (the paper's
baseline) is one-sided for the same reason, with a self-feature-preserving loss in place of
the cycle. The losses per step (LSGAN, Mao et al. 2017, as CycleGAN uses):

* discriminator: ``((D(y) - 1)^2 + D(G(x))^2) / 2`` on unpaired high-quality ``y``;
* generator: ``(D(G(x)) - 1)^2 + lambda_idt |G(y) - y|_1 + lambda_content |P(G(x)) - P(x)|_1``,
  where the identity term (CycleGAN's) asks G to leave an image that is already high quality
  alone, and ``P`` is a 4x4 average pool: the anatomy lives in the low spatial frequencies,
  while speckle texture, noise and blur, which enhancement should change, live in the high
  ones (our stand-in for EnlightenGAN's VGG self-feature-preserving loss: an ImageNet VGG is
  not ours to download and ultrasound is not its domain).

The discriminator is MONAI's ``PatchDiscriminator`` (the pix2pix / CycleGAN PatchGAN).
There is no validation target in the unpaired setting, so no model selection: the last
epoch is kept, as CycleGAN and EnlightenGAN do; the trial's validation split is trained on.

In ``frozen`` mode (the ``cpu`` profile) the encoder's features of every low- and high-quality
image are computed once per encoder and shared by the trials, as for the other tasks.

Metrics (:mod:`.iqa`, blind, lower is better): NIQE, BRISQUE and PIQE per enhanced test image
(mean over images) and a Fréchet distance between the enhanced test images and the
high-quality test images (on EfficientNet-Lite0 features unless Inception weights are given:
not comparable to published FID, and labelled so).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .heads import SegmentationHead
from .zoo import encoder_channels

#: metrics of the enhancement task, in the registry's order (all lower-is-better)
METRICS = ("NIQE", "BRISQUE", "PIQE", "FD")


@dataclass(frozen=True)
class EnhanceConfig:
    epochs: int
    batch_size: int = 16
    lr_generator: float = 2e-4      # CycleGAN's rate, Adam(0.5, 0.999)
    lr_discriminator: float = 2e-4
    lr_encoder: float = 2e-5        # full mode: the pretrained encoder moves ten times slower
    lambda_identity: float = 5.0
    lambda_content: float = 10.0
    content_pool: int = 4
    disc_channels: int = 32
    #: decoder width (the segmentation head's is 24): the generator runs twice per step
    #: (input and identity), so its full-resolution blocks dominate a step's cost
    width: int = 16
    mode: str = "full"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def for_profile(cls, prof) -> "EnhanceConfig":
        """The profile's epochs at batch 16 (a GAN step costs two generator and three
        discriminator passes: on the ``cpu`` profile a trial takes about a minute)."""
        return cls(epochs=prof.finetune_epochs, batch_size=16, mode=prof.finetune_mode)


class Enhancer(nn.Module):
    """G(x) = sigmoid(logit(x) + UNETR(E(x), x)); starts as the identity (see module doc)."""

    def __init__(self, encoder: nn.Module, width: int = 24) -> None:
        super().__init__()
        self.encoder = encoder
        channels, _ = encoder_channels(encoder)
        self.head = SegmentationHead(channels, 1, width=width, full_resolution=True)
        conv = self.head.out.conv.conv if hasattr(self.head.out.conv, "conv") else \
            self.head.out.conv
        nn.init.zeros_(conv.weight)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)

    def encode(self, x: torch.Tensor):
        return self.encoder(x)

    def decode(self, encoded, x: torch.Tensor) -> torch.Tensor:
        delta = self.head(encoded.features, x)
        return torch.sigmoid(torch.logit(x.clamp(1e-3, 1 - 1e-3)) + delta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), x)


def discriminator(channels: int = 32) -> nn.Module:
    """MONAI's PatchGAN: three stride-2 4x4 convolutions, instance norm, LeakyReLU(0.2); one
    real/fake score per receptive-field patch (CycleGAN's 70x70 design at our sizes)."""
    from monai.networks.nets import PatchDiscriminator

    return PatchDiscriminator(spatial_dims=2, channels=channels, in_channels=1, out_channels=1,
                              num_layers_d=3, norm="INSTANCE")


class _Source:
    """Generator outputs for rows of a tensor, from frozen encodings when there are some."""

    def __init__(self, model: Enhancer, x: torch.Tensor, encoded=None) -> None:
        self.model, self.x, self.encoded = model, x, encoded

    def __call__(self, idx) -> torch.Tensor:
        if self.encoded is None:
            return self.model(self.x[idx])
        from .finetune import take_encoded

        return self.model.decode(take_encoded(self.encoded, idx), self.x[idx])


def train_enhancer(encoder: nn.Module, low: torch.Tensor, high: torch.Tensor,
                   cfg: EnhanceConfig, seed: int, *, encoded: tuple | None = None,
                   progress: bool = False, desc: str = "") -> tuple[Enhancer, dict]:
    """Train G on low-quality images ``low`` [N, 1, H, W] against unpaired high-quality
    images ``high`` [M, 1, H, W] (shuffled independently of ``low``: pairs, when the data have
    them, are never used). ``encoded``: (low, high) frozen encodings in ``frozen`` mode.
    Returns the generator (eval mode) and info (losses per epoch, seconds, images/s)."""
    torch.manual_seed(seed)
    model = Enhancer(encoder, width=cfg.width)
    disc = discriminator(cfg.disc_channels)
    frozen = cfg.mode == "frozen"
    if frozen:
        model.encoder.requires_grad_(False)
        g_groups = [{"params": model.head.parameters(), "lr": cfg.lr_generator}]
    else:
        g_groups = [{"params": model.encoder.parameters(), "lr": cfg.lr_encoder},
                    {"params": model.head.parameters(), "lr": cfg.lr_generator}]
    opt_g = torch.optim.Adam(g_groups, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_discriminator, betas=(0.5, 0.999))
    if frozen and encoded is None:
        from .finetune import encode_frozen

        encoded = (encode_frozen(model, low), encode_frozen(model, high))
    enc_low, enc_high = encoded if frozen else (None, None)
    g_low, g_high = _Source(model, low, enc_low), _Source(model, high, enc_high)
    pool = cfg.content_pool
    gen = torch.Generator().manual_seed(seed)
    history, n_img, t0 = [], 0, time.perf_counter()
    for _ in tqdm(range(cfg.epochs), desc=desc or "enhancement GAN", leave=False,
                  disable=not progress):
        model.train()
        if frozen:
            model.encoder.eval()
        order_low = torch.randperm(len(low), generator=gen)
        order_high = torch.randperm(len(high), generator=gen)
        sums = np.zeros(4)
        n_steps = 0
        for i in range(0, len(order_low), cfg.batch_size):
            il = order_low[i:i + cfg.batch_size]
            ih = order_high[torch.arange(i, i + len(il)) % len(high)]
            x, y = low[il], high[ih]
            fake = g_low(il)
            # discriminator step (LSGAN)
            d_loss = 0.5 * ((disc(y)[-1] - 1).pow(2).mean() + disc(fake.detach())[-1].pow(2).mean())
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            # generator step: fool D, leave high-quality images alone, keep the anatomy
            adv = (disc(fake)[-1] - 1).pow(2).mean()
            idt = F.l1_loss(g_high(ih), y)
            content = F.l1_loss(F.avg_pool2d(fake, pool), F.avg_pool2d(x, pool))
            g_loss = adv + cfg.lambda_identity * idt + cfg.lambda_content * content
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            sums += [float(d_loss.detach()), float(adv.detach()), float(idt.detach()),
                     float(content.detach())]
            n_steps += 1
            n_img += len(il)
        history.append(dict(zip(("D", "G_adv", "identity", "content"), sums / max(n_steps, 1))))
    secs = time.perf_counter() - t0
    return model.eval(), {"history": history, "seconds": secs,
                          "train_images_per_s": n_img / secs if secs > 0 else float("nan")}


@torch.no_grad()
def enhance(model: Enhancer, x: torch.Tensor, encoded=None, batch_size: int = 32) -> torch.Tensor:
    """Enhanced images [N, 1, H, W] in [0, 1] (from frozen encodings when given)."""
    model.eval()
    src = _Source(model, x, encoded)
    idx = torch.arange(len(x))
    return torch.cat([src(idx[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def evaluate_enhancement(enhanced, high_reference, *, fov=None) -> dict[str, float]:
    """Blind quality of ``enhanced`` [N, 1, H, W] (means over images of NIQE, BRISQUE, PIQE)
    and the Fréchet distance to the high-quality reference set (``FD``). ``fov`` [N, H, W]
    (optional) is not used by the blind metrics, which score the whole frame as the paper's
    do; it is accepted so callers can pass samples' fields uniformly."""
    from . import iqa

    enh = np.asarray(enhanced, np.float32)
    ref = np.asarray(high_reference, np.float32)
    q = iqa.blind_quality(list(enh))
    out = {m: float(q[m].mean()) for m in ("NIQE", "BRISQUE", "PIQE")}
    out["FD"] = float(iqa.frechet_distance(ref, enh))
    return out
