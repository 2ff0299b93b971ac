"""Pretraining configuration: the paper's protocol (section 3.2) and the profiles' schedules.

Optimiser: AdamW with beta1 = 0.9 and weight decay 0.05 (no decay on biases, norms, the mask
token and Swin's relative-position tables), peak learning rate 1e-4 after 10,000 linear
warm-up steps, cosine decay; stochastic depth 0.1; batch 256; one million steps.

The paper prints "beta2 = 0.9 and eps = 0.9". An epsilon of 0.9 would swamp Adam's
denominator (sqrt(v) is ~1e-3 for typical gradients) and turn AdamW into a badly scaled SGD;
it is surely a typesetting slip. We use the standard beta2 = 0.999 and eps = 1e-8 (PyTorch's
defaults, and those of SimMIM and Swin) and record them in every checkpoint.

Gradient-norm clipping at 5.0 follows SimMIM's released configuration (the paper is silent).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from ..models.decoders import DECODERS
from ..models.encoder import EncoderConfig, get_preset
from ..models.pretrainer import VARIANTS
from ..profiles import Profile, get_profile

#: Fields that change how a run is carried out but not its numbers (left out of the hash).
_NOT_HASHED = {"log_every", "checkpoint_every", "num_workers", "progress"}


@dataclass(frozen=True)
class PretrainConfig:
    encoder: str
    image_size: int
    steps: int
    batch_size: int
    peak_lr: float
    warmup_steps: int
    weight_decay: float
    drop_path_rate: float
    mask_ratio: float
    variant: str = "echocare"
    decoder: str = "simmim"
    mask_patch_size: int | None = None  # None: the encoder preset's (2x2 model tokens)
    min_lr: float = 1e-6
    warmup_lr: float = 1e-7
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip_grad: float | None = 5.0
    seed: int = 0
    #: "auto": bf16 autocast on CUDA, fp32 on CPU; or "fp32" / "bf16".
    precision: str = "auto"
    data: str = "auto"  # "auto" | "curated" | "simulator"
    #: Fingerprint of the data actually used (``DataChoice.fingerprint``): part of the hash, so
    #: a re-curated index or another corpus never reuses a checkpoint trained on other data.
    data_id: str = ""
    n_images: int | None = None
    num_workers: int = 0
    log_every: int = 1
    checkpoint_every: int = 0  # 0: only at the end
    progress: bool = True

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        for name in ("steps", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        get_preset(self.encoder)

    @classmethod
    def from_profile(cls, profile: "Profile | str | None" = None, *, variant: str = "echocare",
                     seed: int = 0, **overrides) -> "PretrainConfig":
        p = get_profile(profile)
        cfg = cls(encoder=p.encoder, image_size=p.image_size, steps=p.pretrain_steps,
                  batch_size=p.pretrain_batch_size, peak_lr=p.pretrain_peak_lr,
                  warmup_steps=p.pretrain_warmup_steps, weight_decay=p.weight_decay,
                  drop_path_rate=p.drop_path_rate, mask_ratio=p.mask_ratio, variant=variant,
                  seed=seed, n_images=p.pretrain_images, num_workers=p.num_workers)
        return cfg.replace(**overrides) if overrides else cfg

    def replace(self, **changes) -> "PretrainConfig":
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"PretrainConfig has no field(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **changes)

    def encoder_config(self) -> EncoderConfig:
        base = get_preset(self.encoder)
        return base.replace(image_size=self.image_size, drop_path_rate=self.drop_path_rate,
                            mask_patch_size=self.mask_patch_size or base.mask_patch_size)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        d = dict(d)
        d["betas"] = tuple(d.get("betas", (0.9, 0.999)))
        return cls(**d)

    def config_hash(self) -> str:
        d = {k: v for k, v in self.to_dict().items() if k not in _NOT_HASHED}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]
