"""A user's photograph → the object crop the textured-mesh network sees (the input of a CUB /
Pascal3D+ item, :mod:`lmnet.data.cmr_item`, made from a photo without annotations).

Two steps:

1. :func:`read_photo_rgba`: the photo and its object mask. The photo is decoded by
   :func:`lmnet.data.inputs.read_rgba` as every user image is (EXIF orientation applied, 16-bit
   scaled, refused beyond ``LMNET_MAX_IMAGE_PIXELS``, with its padded square, before decoding). The
   mask comes from, in this order:

   - **a mask file** (``mask_path``, PNG or JPEG, the photo's size, read the same way): a pixel is
     object where its grey level (the mean of R, G, B) is > 127 and, if the file has alpha, its
     alpha is > 127;
   - **the photo's alpha channel**, when it is not fully opaque: ``alpha / 255``;
   - **an automatic estimate** (:func:`estimate_foreground`), for an opaque photo with the object
     in front of a background that shows along the photo's borders.

2. :func:`object_crop`: the mask's box (pixels > 0.5) → the square crop with 5 % padding, resized,
   ``image = (rgb · 2 − 1) · mask``: the ``image`` / ``mask`` convention of a CmrDataset item, made
   with the same functions (:func:`~lmnet.data.cmr_item.square_bbox`,
   :func:`~lmnet.data.cmr_item.crop`, :func:`~lmnet.data.inputs.resize_linear_float`,
   :func:`~lmnet.data.cmr_item.network_image`).

When no object is found, :class:`NoObjectError` says to pass a mask (``--masks``) or an RGBA PNG.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from lmnet.data.cmr_item import crop, network_image, square_bbox
from lmnet.data.inputs import check_image_header, read_rgba, resize_linear_float
from lmnet.errors import CorruptFileError, DataError

__all__ = ["NoObjectError", "read_photo_rgba", "estimate_foreground", "otsu_threshold", "object_crop",
           "WORK_SIDE", "BORDER_FRAC", "N_COLOURS", "MIN_CONTRAST", "MIN_FRACTION", "MAX_FRACTION"]

#: the estimate works on the photo block-averaged to at most this many pixels on its longer side
WORK_SIDE = 400
#: the background colours are learnt from a band this fraction of the shorter side wide (≥ 2 px)
BORDER_FRAC = 0.03
#: how many colours (k-means centres) describe the background
N_COLOURS = 24
#: the smallest colour distance (RGB in [0, 1], Euclidean) counted as "not background"
MIN_CONTRAST = 0.08
#: an estimated object must cover more than this fraction of the photo, and at most MAX_FRACTION
MIN_FRACTION, MAX_FRACTION = 0.01, 0.90


class NoObjectError(DataError):
    """No object could be found in a photograph: the message names the file and what to pass instead."""


def _hint() -> str:
    return "pass a mask (--masks) or an RGBA PNG whose alpha is the object"


def _read_image(path: Path, what: str) -> np.ndarray:
    """``path`` → ``uint8 (H, W, 4)`` (:func:`~lmnet.data.inputs.read_rgba`) after the header checks
    of every user image; a missing file is a :class:`DataError` naming ``what`` it is."""
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist")
    check_image_header(path)
    return read_rgba(path)


def _mask_from_file(mask_path: Path, shape: tuple[int, int], photo: Path) -> np.ndarray:
    """The mask file's object pixels (module docstring) → float64 ``(H, W)`` of 0 / 1."""
    rgba = _read_image(mask_path, "mask")
    if rgba.shape[:2] != shape:
        raise CorruptFileError(mask_path, f"mask is {rgba.shape[1]}x{rgba.shape[0]} but the photo {photo} is "
                                          f"{shape[1]}x{shape[0]}; they must be the same size")
    grey = rgba[..., :3].astype(np.float64).mean(-1)
    return ((grey > 127) & (rgba[..., 3] > 127)).astype(np.float64)


def read_photo_rgba(path, mask_path=None) -> tuple[np.ndarray, np.ndarray]:
    """A user's photo (and optionally its mask file) → ``(rgb, mask)``: ``rgb`` float64
    ``(H, W, 3)`` in [0, 1] and ``mask`` float64 ``(H, W)`` in [0, 1] (1 = object), from the mask
    file, else the photo's alpha, else :func:`estimate_foreground` (module docstring).

    Errors: a missing photo or mask → :class:`DataError`; an undecodable, truncated or too large
    one → :class:`CorruptFileError`; a mask of another size → :class:`CorruptFileError` naming the
    mask; no object (an empty mask, or an estimate that finds none) → :class:`NoObjectError`."""
    path = Path(path)
    rgba = _read_image(path, "image")
    rgb = rgba[..., :3] / 255.0
    if mask_path is not None:
        mask, source = _mask_from_file(Path(mask_path), rgb.shape[:2], path), Path(mask_path)
    elif bool((rgba[..., 3] < 255).any()):
        mask, source = rgba[..., 3] / 255.0, path
    else:
        return rgb, estimate_foreground(rgb, str(path))
    if not bool((mask > 0.5).any()):
        raise NoObjectError(f"{source}: the mask is empty (no pixel is object); {_hint()}")
    return rgb, mask


def _block_mean(rgb: np.ndarray, k: int) -> np.ndarray:
    """``(H, W, 3)`` → the means of its ``k × k`` blocks, ``(ceil(H / k), ceil(W / k), 3)`` (the last
    blocks padded by repeating the edge)."""
    if k == 1:
        return rgb
    h, w = rgb.shape[:2]
    hp, wp = -(-h // k) * k, -(-w // k) * k
    padded = np.pad(rgb, ((0, hp - h), (0, wp - w), (0, 0)), mode="edge")
    return padded.reshape(hp // k, k, wp // k, k, 3).mean(axis=(1, 3))


def _border(img: np.ndarray, width: int) -> np.ndarray:
    """The pixels of the band ``width`` wide along the four borders of ``img (h, w, C)`` → ``(M, C)``."""
    band = np.zeros(img.shape[:2], bool)
    band[:width], band[-width:], band[:, :width], band[:, -width:] = True, True, True, True
    return img[band]


def _kmeans(points: np.ndarray, k: int, iterations: int = 10) -> np.ndarray:
    """Deterministic k-means of ``points (M, 3)`` → ``(≤ k, 3)`` centres: initialised at evenly spaced
    quantiles of the points sorted by brightness, then Lloyd's iterations (empty clusters dropped)."""
    order = np.argsort(points.sum(1), kind="stable")
    centres = points[order[np.linspace(0, len(points) - 1, min(k, len(points))).round().astype(int)]]
    for _ in range(iterations):
        nearest = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        counts = np.bincount(nearest, minlength=len(centres))
        sums = np.stack([np.bincount(nearest, weights=points[:, c], minlength=len(centres)) for c in range(3)], 1)
        centres = sums[counts > 0] / counts[counts > 0, None]
    return centres


def _distance_to(img: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(h, w)``: each pixel's Euclidean RGB distance to the nearest of ``centres (K, 3)``."""
    d = np.full(img.shape[:2], np.inf)
    for c in centres:
        d = np.minimum(d, np.sqrt(((img - c) ** 2).sum(-1)))
    return d


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values``: the histogram cut (``bins`` bins) that maximises the variance
    between the two classes; values ``>`` it are the upper class. All values equal → their value."""
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        return hi
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    p = hist / hist.sum()
    centres = (edges[:-1] + edges[1:]) / 2
    w0, m0 = np.cumsum(p), np.cumsum(p * centres)
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.where((w0 > 0) & (w1 > 1e-12), (m0[-1] * w0 - m0) ** 2 / (w0 * w1), -1.0)
    return float(edges[int(np.argmax(between)) + 1])


def _clean(fg: np.ndarray) -> np.ndarray:
    """Morphological clean-up of a boolean map: opening (drops specks), closing (joins parts), the
    largest 8-connected component, its holes filled."""
    square = np.ones((3, 3), bool)
    fg = ndimage.binary_closing(ndimage.binary_opening(fg, square), square, iterations=2, border_value=0)
    labels, n = ndimage.label(fg, structure=square)
    if n == 0:
        return fg
    sizes = np.bincount(labels.ravel())[1:]
    return ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))


def _check_found(fg: np.ndarray, name: str) -> None:
    """:class:`NoObjectError` unless ``fg`` covers ``MIN_FRACTION`` < f ≤ ``MAX_FRACTION`` of the
    photo and does not touch all four borders."""
    fraction = float(fg.mean())
    touches_all = fg[0].any() and fg[-1].any() and fg[:, 0].any() and fg[:, -1].any()
    if fraction <= MIN_FRACTION or fraction > MAX_FRACTION or touches_all:
        why = "touches all four borders" if touches_all and MIN_FRACTION < fraction <= MAX_FRACTION else \
            f"would cover {100 * fraction:.1f} % of it (expected {100 * MIN_FRACTION:g}–{100 * MAX_FRACTION:g} %)"
        raise NoObjectError(f"{name}: no object found against the background along the photo's borders "
                            f"(the best guess {why}); {_hint()}")


def estimate_foreground(rgb: np.ndarray, name: str = "photo") -> np.ndarray:
    """Guess the object of an opaque photo ``rgb`` (float ``(H, W, 3)`` in [0, 1]) → float64
    ``(H, W)`` of 0 / 1. The heuristic assumes the object stands in front of a background that
    shows all along the photo's borders:

    1. block-average the photo to at most :data:`WORK_SIDE` px on its longer side and smooth it
       (Gaussian, σ = 1 px there);
    2. describe the background by :data:`N_COLOURS` k-means colours of a band
       (:data:`BORDER_FRAC` of the shorter side) along the four borders;
    3. each pixel's distance to the nearest background colour; object = distance above a threshold
       chosen per photo: Otsu's on the distances, but at least :data:`MIN_CONTRAST` and at least
       the 95th percentile of the border band's own distances;
    4. clean-up (:func:`_clean`): opening, closing, the largest connected component, holes filled;
    5. back to full size (each block's value for its pixels).

    :class:`NoObjectError` (naming ``name``) when what is left covers at most :data:`MIN_FRACTION`
    or more than :data:`MAX_FRACTION` of the photo, or touches all four borders."""
    h, w = rgb.shape[:2]
    k = max(1, math.ceil(max(h, w) / WORK_SIDE))
    small = ndimage.gaussian_filter(_block_mean(np.asarray(rgb, dtype=np.float64), k), sigma=(1, 1, 0))
    band = max(2, round(BORDER_FRAC * min(small.shape[:2])))
    centres = _kmeans(_border(small, band), N_COLOURS)
    dist = _distance_to(small, centres)
    threshold = max(otsu_threshold(dist), MIN_CONTRAST, float(np.quantile(_border(dist[..., None], band), 0.95)))
    fg = _clean(dist > threshold)
    _check_found(fg, name)
    rows, cols = np.arange(h) // k, np.arange(w) // k
    return fg[rows[:, None], cols[None, :]].astype(np.float64)


def object_crop(rgb: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The network input of a photo: ``rgb`` float ``(H, W, 3)`` in [0, 1] and ``mask`` ``(H, W)`` in
    [0, 1] → ``(image float32 (3, S, S) in [−1, 1], mask float32 (1, S, S))``, ``S = size``.

    As a CmrDataset item is made (:mod:`lmnet.data.cmr_item`, steps 2–4, no mirror): the box of the
    mask's pixels > 0.5, padded by 5 % and made square (:func:`~lmnet.data.cmr_item.square_bbox`);
    the crop (outside the photo: image white, mask 0); OpenCV-style float64 bilinear resize to
    ``size``; ``image = (rgb · 2 − 1) · mask``. An empty mask is a ValueError."""
    ys, xs = np.nonzero(np.asarray(mask) > 0.5)
    if len(xs) == 0:
        raise ValueError("the mask is empty: no pixel > 0.5")
    box = square_bbox(np.array([xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1]))
    img = resize_linear_float(crop(np.asarray(rgb, dtype=np.float64), box, 1.0), size, size)
    m = resize_linear_float(crop(np.asarray(mask, dtype=np.float64)[..., None], box, 0.0), size, size)[..., 0]
    return network_image(img, m), m[None].astype(np.float32)
