"""Procedural colours of the synthetic birds and cars: class textures in UV space and photo backgrounds.

A texture is ``(3, T, T)`` float32 in [−1, 1] (T = 128), the convention of the textured-mesh
pipeline (docs/textured.md). It is mirror-symmetric: the half map ``(3, T, T/2)`` (the x ≥ 0 side,
``u`` in [1/4, 3/4]) is computed and :func:`lmnet.uvmesh.symmetrize_texture` makes the full map. A
texel of the half map is a point ``p`` of the unit sphere (the undeformed template; texel rows and
columns as in :func:`lmnet.synthetic.textured_shapes.texel_points`), so a pattern is a function of
``p`` (object frame: y up, front −z, right +x).

A class (:func:`class_design`) is a pattern kind and a palette of three colours, both drawn from
``(seed, class)``; an item jitters the palette and the pattern's phase slightly. The kinds: two-tone
back / belly, stripes across the body, spots, bands along the body, a cap with wing patches, wing
bars, a front-to-back gradient with speckles, a checker. Cars (``p3d``) also get dark windows on
the upper part and dark wheel discs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lmnet.synthetic.textured_shapes import texel_points
from lmnet.uvmesh import symmetrize_texture

__all__ = ["PATTERNS", "MAX_CLASSES", "ClassDesign", "class_design", "item_texture", "background"]

PATTERNS = ("two_tone", "stripes", "spots", "bands", "cap", "wing_bars", "gradient", "checker")
MAX_CLASSES = len(PATTERNS)
TEXTURE_SIZE = 128
#: background colours are kept at least this far (RGB distance, [0, 1] units) from every palette colour
BACKGROUND_GAP = 0.15


@dataclass(frozen=True)
class ClassDesign:
    """A class's look: ``pattern`` (one of :data:`PATTERNS`), ``palette`` ``(3, 3)`` RGB in [0, 1]
    and the pattern's ``frequency``."""

    pattern: str
    palette: np.ndarray
    frequency: float


def class_design(seed: int, class_id: int) -> ClassDesign:
    """The design of class ``class_id`` (0 … :data:`MAX_CLASSES` − 1): its own pattern kind, a palette
    of three well-separated colours drawn from ``(seed, class_id)``."""
    rng = np.random.default_rng([seed, class_id, 11])
    hues = (rng.uniform() + np.array([0.0, 0.33, 0.66]) + rng.uniform(-0.08, 0.08, 3)) % 1.0
    sat, val = rng.uniform(0.45, 0.95, 3), np.array([rng.uniform(0.6, 0.95), rng.uniform(0.15, 0.45),
                                                      rng.uniform(0.75, 1.0)])
    return ClassDesign(PATTERNS[class_id % MAX_CLASSES], _hsv_to_rgb(hues, sat, val), float(rng.uniform(3.0, 6.0)))


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(n,)`` hue, saturation, value in [0, 1] → ``(n, 3)`` RGB in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0])[None] + h[:, None] * 6) % 6
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def _choice(p: np.ndarray, design: ClassDesign, phase: float, rng: np.random.Generator) -> np.ndarray:
    """Which palette colour (0, 1, 2) each point ``p (H, W, 3)`` takes, by the class's pattern."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    f, kind = design.frequency, design.pattern
    belly = y < -0.35 + 0.1 * np.sin(3 * z + phase)
    if kind == "two_tone":
        pick = np.where(y > 0.1 * np.sin(f * z + phase), 0, 1)
    elif kind == "stripes":
        pick = np.where(np.sin(f * 2 * z + phase) > 0, 0, 1)
    elif kind == "spots":
        centres = rng.normal(size=(12, 3))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        d2 = ((p[..., None, :] - centres) ** 2).sum(-1).min(-1)
        pick = np.where(d2 < (0.08 + 0.02 * np.sin(phase)) ** 2 * f, 1, 0)
    elif kind == "bands":
        pick = (np.floor((z + 1 + phase / 10) * f / 2) % 2).astype(int)
    elif kind == "cap":
        pick = np.where((y > 0.45) & (z < 0.2), 1, np.where(x > 0.75, 2, 0))
    elif kind == "wing_bars":
        pick = np.where((x > 0.6) & (np.sin(f * 3 * z + phase) > 0.3), 1, 0)
    elif kind == "gradient":
        pick = np.where(z + 0.3 * np.sin(f * 7 * x + phase) * np.sin(f * 5 * y) > 0, 1, 0)
    else:  # checker
        pick = ((np.floor((np.arctan2(x, -z) + phase / 10) * f / np.pi) + np.floor((y + 1) * f / 2)) % 2).astype(int)
    return np.where(belly & (pick == 0), 2, pick)


def _car_details(p: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Dark windows above ``y = 0.55`` and dark wheel discs at the lower corners, painted on ``colors``."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    out = colors.copy()
    out[(y > 0.55) & (y < 0.9) & (np.abs(x) > 0.2)] = (0.08, 0.1, 0.14)
    for zc in (-0.55, 0.55):
        wheel = (x > 0.4) & ((y + 0.55) ** 2 + (z - zc) ** 2 < 0.09)
        out[wheel] = (0.05, 0.05, 0.05)
    return out


def item_texture(design: ClassDesign, fmt: str, rng: np.random.Generator, size: int = TEXTURE_SIZE):
    """One item's texture: ``(texture (3, size, size) float32 in [−1, 1], palette (n, 3) in [0, 1])``
    (the colours it uses, for :func:`background`). Mirror-symmetric (module docstring)."""
    half = size // 2
    points, _ = texel_points(size, size, columns=np.arange(size // 4, size // 4 + half))
    palette = np.clip(design.palette + rng.uniform(-0.06, 0.06, design.palette.shape), 0, 1)
    pick = _choice(points, design, float(rng.uniform(0, 2 * np.pi)), rng)
    colors = palette[pick]
    if fmt == "p3d":
        colors = _car_details(points, colors)
        palette = np.concatenate([palette, [(0.08, 0.1, 0.14), (0.05, 0.05, 0.05)]])
    half_map = torch.from_numpy(np.ascontiguousarray(colors.transpose(2, 0, 1)[None] * 2 - 1))
    return symmetrize_texture(half_map)[0].numpy().astype(np.float32), palette


def background(rng: np.random.Generator, height: int, width: int, avoid: np.ndarray) -> np.ndarray:
    """A photo background ``(H, W, 3)`` float64 in [0, 1]: a smooth two-colour gradient in a random
    direction, a few soft blobs and pixel noise; then every pixel nearer than :data:`BACKGROUND_GAP`
    to a colour of ``avoid (n, 3)`` is moved away from it to that distance (and clipped to [0, 1]),
    so the object's colours do not occur in it."""
    yy, xx = np.mgrid[:height, :width] / max(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * xx + np.sin(angle) * yy
    t = (t - t.min()) / max(np.ptp(t), 1e-9)
    c0, c1 = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    for _ in range(int(rng.integers(2, 6))):
        cy, cx, r = rng.uniform(0, height / max(height, width)), rng.uniform(0, width / max(height, width)), \
            rng.uniform(0.05, 0.25)
        w = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2)[..., None]
        img = img * (1 - 0.7 * w) + 0.7 * w * rng.uniform(0, 1, 3)
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
    for color in np.asarray(avoid, np.float64):
        diff = img - color
        dist = np.linalg.norm(diff, axis=-1, keepdims=True)
        away = np.where(dist > 1e-6, diff / np.maximum(dist, 1e-6), (0.5 - color) / max(np.linalg.norm(0.5 - color), 1e-6))
        img = np.where(dist < BACKGROUND_GAP, color + away * BACKGROUND_GAP, img)
    return np.clip(img, 0, 1)
