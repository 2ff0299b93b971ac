"""EchoAtlas-Sim: the physics-based ultrasound simulator that is the compendium's default data."""
from .devices import DEVICE_STYLES, DeviceStyle, apply_tint, device_style
from .geometry import Probe
from .physics import Frame, Processing, decorrelate, psf_for, simulate
from .render import acquire, as_image, frame_meta, sample_rng, screen_export, to_pixel_index
from .scene import TISSUES, Blob, Ellipse, Layer, Polygon, Scene, Tissue, Tube

__all__ = [
    "DEVICE_STYLES", "DeviceStyle", "apply_tint", "device_style", "Probe", "Frame",
    "Processing", "decorrelate", "psf_for", "simulate", "acquire", "as_image", "frame_meta",
    "sample_rng", "screen_export", "to_pixel_index", "TISSUES", "Blob", "Ellipse", "Layer",
    "Polygon", "Scene", "Tissue", "Tube",
]
