"""Models: the EchoCare encoder (one encoder interface), decoders, hierarchical classifier."""
from .encoder import PRESETS, EchoCareEncoder, EncoderConfig, EncoderOutput, get_preset, to_grayscale
from .hierarchy import HierarchicalClassifier, Hierarchy, ancestor_matrix_from_parents
from .masking import pixel_mask, random_mask
from .pretrainer import VARIANTS, EchoCarePretrainer, mim_loss

__all__ = ["PRESETS", "EchoCareEncoder", "EncoderConfig", "EncoderOutput", "get_preset",
           "to_grayscale", "HierarchicalClassifier", "Hierarchy", "ancestor_matrix_from_parents",
           "pixel_mask", "random_mask", "VARIANTS", "EchoCarePretrainer", "mim_loss"]
