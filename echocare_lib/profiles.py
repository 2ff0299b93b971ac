"""Run profiles: the single switch between "runs in CI in minutes" and "the paper's settings".

A profile is chosen, in order of precedence, by an explicit argument (the notebooks'
Papermill ``profile`` parameter), by the ``ECHOCARE_PROFILE`` environment variable (for runs
that cannot inject parameters, such as nbval), or falls back to ``cpu``, the profile
``make figures`` uses.

Profiles are defined here once; notebooks and the library read their fields instead of
hard-coding sizes. Later stages (simulator, pretraining, downstream tasks) read the fields
they need; a field a stage does not use is harmless.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field

ENV_VAR = "ECHOCARE_PROFILE"
DEFAULT_PROFILE = "cpu"


@dataclass(frozen=True)
class Profile:
    """Everything that changes between a CI smoke run, a laptop run and the paper's run."""

    name: str
    purpose: str
    #: "simulator" (embedded EchoAtlas-Sim) or "real" (data sets found under the data dir).
    data_source: str
    #: Wall-clock budget for the whole compendium, in minutes, on the hardware named below.
    budget_minutes: float
    budget_hardware: str
    #: Square input size of the encoder, in pixels.
    image_size: int
    #: Encoder preset passed to the encoder factory (see DESIGN.md: one encoder interface).
    encoder: str
    # --- pretraining (paper section 3.2) ---
    pretrain_images: int | None  # None: every image of the curated index
    pretrain_steps: int
    pretrain_batch_size: int
    pretrain_peak_lr: float
    pretrain_warmup_steps: int
    weight_decay: float
    drop_path_rate: float
    mask_ratio: float
    # --- downstream adaptation (paper section 4) ---
    n_trials: int
    finetune_epochs: int
    finetune_batch_size: int
    #: Images per split per downstream task when the simulator is the data source.
    sim_train_size: int
    sim_test_size: int
    train_fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    #: Simulated raw corpus for the curation notebook: sources x files per source.
    corpus_sources: int = 9
    corpus_images_per_source: int = 6
    #: "full": fine-tune encoder and head (the paper); "frozen": train the head on frozen
    #: encoder features (see ``downstream.finetune``).
    finetune_mode: str = "full"
    #: segmentation head: "unetr" (to full resolution, image skip) or "unetr-lite" (stride-4
    #: logits upsampled; see ``downstream.heads``).
    seg_head: str = "unetr"
    #: "auto" picks CUDA when available, else CPU.
    device: str = "auto"
    num_workers: int = 0
    extra: dict = field(default_factory=dict)
    #: trials of the generative applications (enhancement GAN, report decoder), whose one
    #: trial costs ten or more probe trials on a CPU; 0: ``n_trials``
    generative_trials: int = 0
    #: epochs of the report decoder (its own loop; 0: three times ``finetune_epochs``)
    report_epochs: int = 0
    # --- label efficiency and ablation (notebook 10, Fig. 8) ---
    #: trials per train fraction of Fig. 8a-j and per encoder of Fig. 8k; 0: ``n_trials``.
    #: The first trials at fraction 1 are the ones notebooks 03-09 ran (cached rows).
    efficiency_trials: int = 0
    #: the same for the generative applications; 0: ``generative_trials``
    efficiency_generative_trials: int = 0
    #: train fractions of the generative applications' curves; empty: ``train_fractions``
    #: (their evaluation costs the same at every fraction: beam search, METEOR, IQA)
    efficiency_generative_fractions: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train_fractions"] = list(self.train_fractions)
        d["efficiency_generative_fractions"] = list(self.efficiency_generative_fractions)
        return d

    def replace(self, **changes) -> "Profile":
        """A copy with some fields changed (unknown field names raise a clear error)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(
                f"Profile has no field(s) {unknown}; known fields: {sorted(known)}"
            )
        return dataclasses.replace(self, **changes)

    def config_hash(self) -> str:
        """Short stable hash of the profile's settings, for cache keys of results."""
        d = self.to_dict()
        # trial counts and the fractions notebook 10 asks for are not settings of any one
        # result row (rows are cached per trial and fraction): left out, so that adding them
        # kept the cached rows of the other notebooks valid
        for k in _NOT_HASHED:
            d.pop(k)
        blob = json.dumps(d, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


_NOT_HASHED = ("generative_trials", "efficiency_trials", "efficiency_generative_trials",
               "efficiency_generative_fractions", "train_fractions")

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        purpose="CI, nbval and unit tests: proves every code path runs; numbers mean nothing",
        data_source="simulator",
        budget_minutes=10,
        budget_hardware="2 CPU cores",
        image_size=64,
        encoder="echocare-tiny",
        pretrain_images=256,
        pretrain_steps=20,
        pretrain_batch_size=16,
        pretrain_peak_lr=1e-3,
        pretrain_warmup_steps=2,
        weight_decay=0.05,
        drop_path_rate=0.0,
        mask_ratio=0.5,
        n_trials=2,
        finetune_epochs=1,
        finetune_batch_size=16,
        sim_train_size=32,
        sim_test_size=16,
        train_fractions=(0.5, 1.0),
        efficiency_trials=1,
        corpus_sources=9,
        corpus_images_per_source=6,
    ),
    "cpu": Profile(
        name="cpu",
        purpose="the README's main job and teaching: small enough for a laptop, large enough "
        "to show the paper's qualitative findings",
        data_source="simulator",
        budget_minutes=30,
        budget_hardware="2 CPU cores",
        image_size=64,
        encoder="echocare-small",
        # 8,000 images seen per variant, about 65 s each on 2 cores, three variants (with
        # 300 steps the compendium took 30.2 min on 2 cores, 2026-11-29: over its budget)
        pretrain_images=1200,
        pretrain_steps=250,
        pretrain_batch_size=32,
        pretrain_peak_lr=1e-3,
        pretrain_warmup_steps=25,
        weight_decay=0.05,
        drop_path_rate=0.1,
        mask_ratio=0.5,
        # Frozen-encoder adaptation (downstream.finetune): ten applications x three encoders x
        # six trials fit on two cores only this way; six trials is the fewest with which the
        # two-sided Wilcoxon signed-rank test can reach p < 0.05 (2/2^6 = 0.031).
        n_trials=6,
        # 2: a GAN or report-decoder trial costs one to two minutes on 2 cores; two trials
        # give a spread, not a test (no test reaches p < 0.05 with 2 pairs): the budget
        generative_trials=2,
        # Fig. 8 on the budget: 2 trials per fraction (the first 2 of notebooks 03-09's at
        # fraction 1); the generative applications one trial (see the fractions below)
        efficiency_trials=2,
        efficiency_generative_trials=1,
        # the GAN only at 100%: at 25% of 128 images it takes 16 optimizer steps and returns
        # nearly its input (NIQE 13.84-13.85 and FD 347.3-347.4 for all three encoders,
        # against 13.5-13.7 and 304-340 at 100%; 2026-11-29)
        efficiency_generative_fractions=(1.0,),
        # the decoder needs about 300 optimizer steps at this scale (24 epochs of 128 training
        # reports, 192 steps, gave BLEU-4 2%; 36 epochs, 288 steps, gave 9-12%): 44 epochs of
        # the ~102 training reports left by 128 cases are 308 steps
        report_epochs=44,
        finetune_epochs=8,
        finetune_batch_size=32,
        finetune_mode="frozen",
        seg_head="unetr-lite",
        # 128 / 64 per application. With 240 / 120 the whole compendium took about 44 min on
        # 2 cores, with 160 / 80 33 min (both measured 2026-11-29), over the design's "well
        # under half an hour"; trials and epochs were kept instead (six trials for the test,
        # and the dense heads still improve at their last epoch)
        sim_train_size=128,
        sim_test_size=64,
        # Fig. 8 at 10%, 30% and 100% (log-spaced): one fraction fewer than (0.1, 0.25, 0.5,
        # 1.0), to fit the half-hour budget (2026-11-29)
        train_fractions=(0.1, 0.3, 1.0),
        corpus_sources=18,
        corpus_images_per_source=20,
    ),
    "paper": Profile(
        name="paper",
        purpose="re-running the paper: real data sets via the manifests, the paper's schedule",
        data_source="real",
        budget_minutes=0,  # 0: no budget; GPU days (the paper trains 1M steps)
        budget_hardware="GPU(s); torchrun for several",
        image_size=256,
        encoder="echocare-base",
        pretrain_images=None,
        # Paper section 3.2: 1M steps, batch 256, 256x256 input, AdamW, cosine decay to a
        # peak lr of 1e-4 with 10,000 linear warm-up steps, weight decay 0.05, stochastic
        # depth 0.1. (The paper's "beta2 = 0.9, eps = 0.9" is read as a typesetting slip;
        # the optimizer settings live with the pretraining code, which documents its choice.)
        pretrain_steps=1_000_000,
        pretrain_batch_size=256,
        pretrain_peak_lr=1e-4,
        pretrain_warmup_steps=10_000,
        weight_decay=0.05,
        drop_path_rate=0.1,
        mask_ratio=0.5,
        # Paper section 4.4: mean +- std across 20 independent trials.
        n_trials=20,
        finetune_epochs=100,
        finetune_batch_size=32,
        sim_train_size=0,
        sim_test_size=0,
        train_fractions=(0.1, 0.2, 0.4, 0.6, 0.8, 1.0),
        corpus_sources=0,  # real data: the curation pipeline reads the data directory
        corpus_images_per_source=0,
        num_workers=8,
    ),
}


def profile_names() -> list[str]:
    return list(PROFILES)


def get_profile(profile: "str | Profile | None" = None) -> Profile:
    """Resolve a profile by name, by ``$ECHOCARE_PROFILE``, or the default (``cpu``).

    An unknown name raises ``ValueError`` naming where it came from and the valid choices.
    """
    if isinstance(profile, Profile):
        return profile
    source = "the 'profile' argument"
    if profile is None or (isinstance(profile, str) and profile.strip() == ""):
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            profile, source = env, f"the environment variable {ENV_VAR}"
        else:
            profile, source = DEFAULT_PROFILE, "the default"
    if not isinstance(profile, str):
        raise TypeError(
            f"profile must be a name such as {profile_names()}, got {type(profile).__name__}"
        )
    key = profile.strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"Unknown profile {profile!r} (from {source}). "
            f"Choose one of {profile_names()}, e.g. PROFILE=smoke make figures."
        )
    return PROFILES[key]
