"""What scanners burn into exported screens: text, depth scale, focus marker, calipers.

Raw exports in EchoAtlas's sources carry a black surround, vendor text, depth and gain
read-outs, a depth ruler, a focus marker, an orientation logo, a grey bar and measurement
calipers. The curation step must find the field of view and remove all of it, so the
simulator draws them (with Pillow) around and over the image, never inside the labels.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .geometry import Display, Probe


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType: fixed bitmap font
        return ImageFont.load_default()


def burn_in(image: np.ndarray, fov: np.ndarray, display: Display, probe: Probe, *,
            depth_mm: float, gain_db: float, label: str, rng: np.random.Generator,
            calipers: bool = False) -> tuple[np.ndarray, dict]:
    """Return the screen with annotations drawn on it, and what was drawn (for tests)."""
    h, w = image.shape
    screen = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(screen)
    size = max(int(h / 40), 7)
    font = _font(size)
    white = int(rng.integers(200, 256))
    rows, cols = np.nonzero(fov)
    top, left, right = rows.min(), cols.min(), cols.max()
    drawn = {"text": [], "calipers": []}
    lines = [label, f"{probe.kind[0].upper()}{probe.f0_mhz:.0f}-{probe.f0_mhz * 1.6:.0f}",
             f"{probe.f0_mhz:.1f}MHz", f"D {depth_mm / 10:.1f}cm", f"G {gain_db + 80:.0f}",
             f"DR {int(rng.integers(45, 75))}"]
    y = 2
    for text in lines:
        draw.text((3, y), text, fill=white, font=font)
        drawn["text"].append(text)
        y += size + 2
    stamp = f"{int(rng.integers(1, 28)):02d}/{int(rng.integers(1, 12)):02d}/20{int(rng.integers(10, 25))}"
    draw.text((w - 6 * size, 2), stamp, fill=white, font=font)
    drawn["text"].append(stamp)
    # depth ruler: a dot every centimetre along the right edge of the field of view
    for cm in range(0, int(depth_mm // 10) + 1):
        _, row = display.to_pixel(0.0, cm * 10.0)
        r = int(row)
        x = min(right + 4, w - 3)
        if 0 <= r < h:
            draw.rectangle([x, r, x + 1, r + 1], fill=white)
    # focus marker: a small triangle at the focal depth
    _, frow = display.to_pixel(0.0, probe.focus_mm)
    fx = min(right + 8, w - 6)
    if 0 <= frow < h:
        draw.polygon([(fx, frow), (fx + 5, frow - 3), (fx + 5, frow + 3)], fill=white)
    # orientation marker near the top-left of the field of view
    draw.ellipse([left + 2, top + 2, left + 7, top + 7], outline=white)
    # grey bar
    bar_x = max(left - 12, 1)
    for i in range(min(64, h // 3)):
        v = int(255 * (1 - i / min(64, h // 3)))
        draw.line([(bar_x, h // 3 + i), (bar_x + 5, h // 3 + i)], fill=v)
    if calipers:
        for _ in range(int(rng.integers(1, 3))):
            idx = rng.integers(0, len(rows), 2)
            p = [(int(cols[i]), int(rows[i])) for i in idx]
            for cx, cy in p:
                draw.line([(cx - 3, cy), (cx + 3, cy)], fill=white)
                draw.line([(cx, cy - 3), (cx, cy + 3)], fill=white)
            n = 12
            for k in range(0, n, 2):
                a = (p[0][0] + (p[1][0] - p[0][0]) * k / n, p[0][1] + (p[1][1] - p[0][1]) * k / n)
                draw.point(a, fill=white)
            drawn["calipers"].append(p)
    return np.asarray(screen, np.float32) / 255.0, drawn
