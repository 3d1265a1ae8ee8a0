"""Decoding image files into RGBA arrays: the one reader behind dataset renderings and ``lmnet infer``.

:func:`read_rgba` turns any image Pillow reads into ``uint8 (H, W, 4)`` RGBA, in display orientation:

- **EXIF orientation** is applied (:func:`PIL.ImageOps.exif_transpose`), so a photo is seen the way
  a viewer shows it;
- **16-bit** grayscale (Pillow modes ``I;16*`` / ``I``) is scaled to 8 bits (``round(v / 257)``,
  65535 → 255) instead of being clipped at 255; 16-bit RGB(A) and LA are reduced by Pillow itself;
- **alpha**: an alpha channel or a ``tRNS`` transparency key becomes the alpha; without either the
  image is opaque (alpha 255). ``require_alpha=True`` refuses such an image instead (dataset
  renderings: their alpha is the silhouette, an opaque one would be a wrong mask);
- **size**: an image of more than :func:`max_pixels` pixels is refused before it is decoded
  (default 50 Mpixel; set ``LMNET_MAX_IMAGE_PIXELS`` to allow larger ones, ``0`` = no limit).

Every problem raises :class:`~lmnet.errors.CorruptFileError` naming the file.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np

from lmnet.errors import ConfigError, CorruptFileError

MAX_PIXELS_ENV = "LMNET_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 50_000_000
_HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_open_lock = threading.Lock()  # Pillow's own bomb limit is a module global, switched off around open


def max_pixels() -> int | None:
    """The largest image (in pixels) :func:`read_rgba` decodes: ``$LMNET_MAX_IMAGE_PIXELS`` or the
    default; None when the variable is ``0`` (no limit)."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    if not raw.isdigit():
        raise ConfigError(f"{MAX_PIXELS_ENV} must be a whole number of pixels (0 = no limit), got {raw!r}")
    return int(raw) or None


def _open(path: Path):
    from PIL import Image

    with _open_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # checked below, with our limit
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def read_rgba(path: str | Path, require_alpha: bool = False) -> np.ndarray:
    """Decode ``path`` → ``uint8 (H, W, 4)`` RGBA (rules in the module docstring)."""
    from PIL import ImageOps, UnidentifiedImageError

    path = Path(path)
    limit = max_pixels()
    try:
        with _open(path) as im:
            w, h = im.size
            if limit is not None and w * h > limit:
                raise CorruptFileError(path, f"image of {w}x{h} = {w * h:,} pixels is larger than the "
                                             f"{limit:,}-pixel limit; set {MAX_PIXELS_ENV}={w * h} (or 0 for "
                                             f"no limit) to allow it")
            im.load()
            has_alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
            mode = im.mode
            im = ImageOps.exif_transpose(im)
            if mode in _HIGH_BIT_MODES:
                rgba = _high_bit_gray(np.asarray(im), im.info.get("transparency"))
            else:
                rgba = np.asarray(im.convert("RGBA"))
    except FileNotFoundError:
        raise CorruptFileError(path, "missing image") from None
    except CorruptFileError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        kind = "PNG" if path.suffix.lower() == ".png" else "image"
        raise CorruptFileError(path, f"unreadable or truncated {kind} ({exc})") from None
    if require_alpha and not has_alpha:
        raise CorruptFileError(path, f"{mode} image without an alpha channel: the silhouette (mask) would be "
                                     f"all opaque; renderings must be RGBA")
    return np.ascontiguousarray(rgba)


def _high_bit_gray(values: np.ndarray, transparency) -> np.ndarray:
    """16-bit gray ``(H, W)`` (0..65535) → ``uint8 (H, W, 4)``: gray / 257, alpha from the key."""
    v = values.astype(np.int64)
    gray = np.clip(np.rint(v / 257.0), 0, 255).astype(np.uint8)
    alpha = np.full(v.shape, 255, np.uint8)
    if isinstance(transparency, int):
        alpha[v == transparency] = 0
    return np.stack([gray, gray, gray, alpha], axis=-1)
