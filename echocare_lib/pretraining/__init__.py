"""EchoCare pretraining (paper section 3): configuration, data, loop, checkpoints.

>>> from echocare_lib.pretraining import PretrainConfig, pretrain, load_encoder
>>> cfg = PretrainConfig.from_profile("smoke", variant="echocare")
>>> result = pretrain(cfg, "build/smoke/pretrain/demo")
>>> encoder = load_encoder(result.folder)
"""
from .checkpoint import CheckpointError, load_encoder, save_encoder
from .config import PretrainConfig
from .train import PretrainResult, default_curated_index, default_folder, pretrain

__all__ = ["PretrainConfig", "pretrain", "PretrainResult", "load_encoder", "save_encoder",
           "CheckpointError", "default_folder", "default_curated_index"]
