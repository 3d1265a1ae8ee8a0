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

import functools
import math
import os
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from lmnet.data.cmr_item import crop, network_image, square_bbox
from lmnet.data.inputs import (as_rgba, check_image_header, composite, crop_rgba, frame_photo_rgba,
                               framing_warnings, read_rgba, resize_linear_float)
from lmnet.errors import ConfigError, CorruptFileError, DataError

__all__ = ["NoObjectError", "NotFoundError", "read_photo_rgba", "foreground", "estimate_foreground", "rembg_foreground",
           "photo_input", "array_input", "object_crop", "BACKGROUND_METHODS", "WORK_SIDE", "BORDER_FRAC", "N_COLOURS",
           "MIN_CONTRAST", "PLAIN_MIN_CONTRAST", "MIN_FRACTION", "MAX_FRACTION"]

#: how an opaque photo's object is found (``--background``): offline estimate, or the optional rembg
BACKGROUND_METHODS = ("auto", "rembg")
#: rembg's default model file
REMBG_MODEL = "u2net.onnx"

#: the estimate works on the photo block-averaged to at most this many pixels on its longer side
#: (was 400: a 411 px photo was halved, and the edge rule's 5 px window then reached 4 photo pixels
#: into thin parts; benchmarks/results/photo_mask.md)
WORK_SIDE = 600
#: the background is learnt from a band this fraction of the shorter side wide (≥ 2 px)
BORDER_FRAC = 0.03
#: a background whose band departs from a smooth colour surface by at most this (99th percentile,
#: RGB in [0, 1], Euclidean) is "plain" (white, grey, a gradient); a larger spread is "textured"
PLAIN_SPREAD = 0.06
#: how many k-means centres of colour and texture describe a textured background
N_COLOURS = 24
#: texture features: Gaussian window σ (px of the working image) and the weight of the local spread
TEXTURE_SIGMA, TEXTURE_WEIGHT = 2.0, 2.0
#: textured backgrounds: the object's colours (k-means centres) and how far (px) from the first
#: guess pixels are re-decided by colour (:func:`_colour_refine`), in how many rounds
OBJECT_COLOURS, REFINE_RADIUS, REFINE_ROUNDS = 8, 6, 3
#: the smallest distance counted as "not background": on a textured background, and on a plain one
#: (0.012: 2 grey levels of 255; the band's own noise raises it on real photos). The plain floor was
#: 0.04, then 0.02: object faces shaded within a few levels of a grey background vanished. Measured
#: in benchmarks/results/photo_mask.md: 0.006 filled a chair's slat gaps with JPEG ringing on 2×
#: enlarged renders; 0.012 at full resolution is better than 0.02 on grey and equal elsewhere
PLAIN_MIN_CONTRAST = 0.012
MIN_CONTRAST = 0.04
#: one grey level of an 8-bit photo, in the [0, 1] colour units of the estimate
LEVEL = 1 / 255
#: plain backgrounds, step 3's edge pixels: the window (px either side) where an edge pixel finds
#: the object's own colour, and how far from a blend of it with the background it may be and still
#: count as one (:func:`_blended_edge`): × the threshold, or × the object colour's own distance,
#: the larger (JPEG's half-resolution colour makes edges on coloured backgrounds inexact blends)
EDGE_RADIUS, BLEND_TOLERANCE, BLEND_SHARE = 2, 2.0, 0.15
#: digitally flat backgrounds (:func:`_flat_background_faces`): the largest 5 × 5 spread (grey
#: levels) of a flat pixel, the edge strength (levels per px) where JPEG rings and how far (px)
#: from such an edge a face pixel must be, and a face's least offset from the background (levels)
FLAT_SPREAD, FLAT_EDGE_LEVELS, FLAT_EDGE_GAP, FLAT_MIN_LEVELS = 0.3, 8.0, 8, 0.6
#: flat mid-grey backgrounds: slivers up to about twice this fraction of the longer side are closed
#: (:func:`_close_slivers`; 0.005: a 2 px disc at 411 px)
SLIVER_FRAC = 0.005
#: holes of at most this fraction of the image are filled; parts of at least KEEP_PART of the
#: largest part's size are kept
MAX_HOLE, KEEP_PART = 0.002, 0.05
#: an estimated object must cover more than this fraction of the photo, and at most MAX_FRACTION
MIN_FRACTION, MAX_FRACTION = 0.01, 0.90


class NoObjectError(DataError):
    """No object could be found in a photograph: the message names the file and what to pass instead."""


class NotFoundError(NoObjectError):
    """The automatic estimate (or rembg) found no object; ``why`` says what its best guess was."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


def _hint() -> str:
    return "pass a mask (--masks) or an RGBA PNG whose alpha is the object"


def photo_input(path, mask_path=None, image_background: float | None = 255.0,
                background: str = "auto") -> tuple[np.ndarray, list[str]]:
    """A user's image file (and optionally its mask file, read as :func:`read_photo_rgba` reads it)
    → :func:`array_input` of its decoded pixels."""
    crop, warnings = photo_crop(path, mask_path, background)
    return composite(crop, image_background)[0], warnings


def photo_crop(path, mask_path=None, background: str = "auto") -> tuple[np.ndarray, list[str]]:
    """:func:`array_crop` of a user's image file (and optionally its mask file)."""
    path = Path(path)
    rgba = _read_image(path, "image")
    mask = None
    if mask_path is not None:
        mask = _mask_from_file(Path(mask_path), rgba.shape[:2], path)
        if not bool((mask > 0.5).any()):
            raise NoObjectError(f"{mask_path}: the mask is empty (no pixel is object); {_hint()}")
    return array_crop(rgba, str(path), background, mask)


def array_input(image: np.ndarray, name: str, image_background: float | None = 255.0, background: str = "auto",
                mask: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """A user's image ``uint8 (H, W, 3)`` / ``(H, W, 4)`` → ``(network input float32 (3, 128, 128)
    RGB 0–255, warnings)`` for the point-cloud networks, in the run's input convention
    ``image_background`` (:func:`~lmnet.data.inputs.run_background`): :func:`array_crop`, then
    :func:`~lmnet.data.inputs.composite`."""
    crop, warnings = array_crop(image, name, background, mask)
    return composite(crop, image_background)[0], warnings


def array_crop(image: np.ndarray, name: str, background: str = "auto",
               mask: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """A user's image ``uint8 (H, W, 3)`` / ``(H, W, 4)`` → ``(network crop uint8 (128, 128, 4) RGBA
    whose alpha is the object's mask, warnings)``; ``name`` is what messages call it.

    - With alpha (not fully opaque) and no ``mask``: taken as framed by its maker, as a rendering is
      (:func:`~lmnet.data.inputs.crop_rgba`), no warnings.
    - Otherwise the object's mask (``mask`` ``(H, W)`` in [0, 1], else :func:`foreground` by
      ``background``) frames it as the renderings frame their object
      (:func:`~lmnet.data.inputs.frame_photo_rgba`), with the phrases of
      :func:`~lmnet.data.inputs.framing_warnings`. When the estimate finds no object, the whole
      image is taken as :func:`~lmnet.data.inputs.crop_rgba` takes it, with a phrase saying so."""
    rgba = as_rgba(image, name)
    if mask is None:
        if bool((rgba[..., 3] < 255).any()):
            return crop_rgba(rgba, name), []
        try:
            mask = foreground(rgba[..., :3], name, background)
        except NotFoundError as exc:
            return crop_rgba(rgba, name), [f"no object found ({exc.why}): the whole image "
                                           f"was fed as it is; pass a mask with --masks"]
    return frame_photo_rgba(rgba[..., :3], mask), framing_warnings(mask)


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


def read_photo_rgba(path, mask_path=None, background: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """A user's photo (and optionally its mask file) → ``(rgb, mask)``: ``rgb`` float64
    ``(H, W, 3)`` in [0, 1] and ``mask`` float64 ``(H, W)`` in [0, 1] (1 = object), from the mask
    file, else the photo's alpha, else :func:`foreground` with ``background`` (module docstring).

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
        return rgb, foreground(rgba[..., :3], str(path), background)
    if not bool((mask > 0.5).any()):
        raise NoObjectError(f"{source}: the mask is empty (no pixel is object); {_hint()}")
    return rgb, mask


def foreground(rgb: np.ndarray, name: str, background: str = "auto") -> np.ndarray:
    """The object mask of an opaque photo ``rgb`` (``uint8 (H, W, 3)``) → float64 ``(H, W)`` in [0, 1],
    by one of :data:`BACKGROUND_METHODS`: ``"auto"`` (:func:`estimate_foreground`, offline, no
    model) or ``"rembg"`` (:func:`rembg_foreground`). ``name`` is what errors call the photo."""
    if background == "auto":
        return estimate_foreground(rgb / 255.0, name)
    if background == "rembg":
        return rembg_foreground(rgb, name)
    raise ConfigError(f"--background must be one of {', '.join(BACKGROUND_METHODS)}, got {background!r}")


def rembg_model_path() -> Path:
    """Where rembg keeps its default model (``u2net.onnx`` under ``$U2NET_HOME``, else ``~/.u2net``)."""
    return Path(os.environ.get("U2NET_HOME") or Path.home() / ".u2net") / REMBG_MODEL


@functools.lru_cache(maxsize=1)
def _rembg_session(rembg):
    """rembg's U²-Net session, loaded once per process (not once per photo)."""
    return rembg.new_session("u2net")


def rembg_foreground(rgb: np.ndarray, name: str) -> np.ndarray:
    """The object mask of ``rgb`` (``uint8 (H, W, 3)``) by the optional ``rembg`` package (a learnt
    salient-object network, U²-Net) → float64 ``(H, W)`` in [0, 1]. Only where rembg and its model
    file are installed already: nothing is downloaded; otherwise a :class:`ConfigError` says what
    is missing. :class:`NoObjectError` as :func:`estimate_foreground` when its mask is empty."""
    try:
        import rembg  # heavy optional dependency (onnxruntime)
    except ImportError:
        raise ConfigError("--background rembg needs the optional package rembg, which is not installed "
                          "(pip install rembg, with its model file u2net.onnx in ~/.u2net); "
                          "or use --background auto or a mask file (--masks)") from None
    model = rembg_model_path()
    if not model.is_file():
        raise ConfigError(f"--background rembg: rembg's model file {model} is missing (lmnet does not download "
                          f"it); put u2net.onnx there or set U2NET_HOME, or use --background auto")
    from PIL import Image

    mask = np.asarray(rembg.remove(Image.fromarray(np.ascontiguousarray(rgb), "RGB"), only_mask=True,
                                   session=_rembg_session(rembg)), dtype=np.float64) / 255.0
    if not bool((mask > 0.5).any()):
        raise NotFoundError(f"{name}: rembg found no object; {_hint()}", "rembg's mask is empty")
    return mask


def _block_mean(rgb: np.ndarray, k: int) -> np.ndarray:
    """``(H, W, 3)`` → the means of its ``k × k`` blocks, ``(ceil(H / k), ceil(W / k), 3)`` (the last
    blocks padded by repeating the edge)."""
    if k == 1:
        return rgb
    h, w = rgb.shape[:2]
    hp, wp = -(-h // k) * k, -(-w // k) * k
    padded = np.pad(rgb, ((0, hp - h), (0, wp - w), (0, 0)), mode="edge")
    return padded.reshape(hp // k, k, wp // k, k, 3).mean(axis=(1, 3))


def _border_band(shape: tuple[int, int], width: int) -> np.ndarray:
    """Boolean ``shape``: True on the band ``width`` px wide along the four borders."""
    band = np.zeros(shape, bool)
    band[:width], band[-width:], band[:, :width], band[:, -width:] = True, True, True, True
    return band


def _kmeans(points: np.ndarray, k: int, iterations: int = 10) -> np.ndarray:
    """Deterministic k-means of ``points (M, C)`` → ``(≤ k, C)`` centres: initialised at evenly spaced
    quantiles of the points sorted by brightness, then Lloyd's iterations (empty clusters dropped)."""
    order = np.argsort(points.sum(1), kind="stable")
    centres = points[order[np.linspace(0, len(points) - 1, min(k, len(points))).round().astype(int)]]
    for _ in range(iterations):
        nearest = cKDTree(centres).query(points)[1]
        counts = np.bincount(nearest, minlength=len(centres))
        sums = np.stack([np.bincount(nearest, weights=points[:, c], minlength=len(centres))
                         for c in range(points.shape[1])], 1)
        centres = sums[counts > 0] / counts[counts > 0, None]
    return centres


def _distance_to(img: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(h, w)``: each pixel's Euclidean distance (``img (h, w, C)``) to the nearest of ``centres (K, C)``."""
    return cKDTree(centres).query(img.reshape(-1, img.shape[-1]))[0].reshape(img.shape[:2])


def _smooth_fit(img: np.ndarray, band: np.ndarray) -> np.ndarray:
    """The least-squares quadratic surface in ``(x, y)`` (per channel) through the pixels of
    ``img (h, w, C)`` where ``band (h, w)`` is True → ``(h, w, C)``: a plain or gradient background."""
    h, w = img.shape[:2]
    y, x = np.mgrid[:h, :w]
    y, x = y / h - 0.5, x / w - 0.5
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], -1)
    coef, *_ = np.linalg.lstsq(terms[band], img[band], rcond=None)
    return terms @ coef


def _texture_features(img: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` → ``(h, w, 4)``: the local mean colour and :data:`TEXTURE_WEIGHT` × the summed
    local standard deviation of the channels (Gaussian windows, σ = :data:`TEXTURE_SIGMA` px)."""
    sigma = (TEXTURE_SIGMA, TEXTURE_SIGMA, 0)
    mean = ndimage.gaussian_filter(img, sigma)
    std = np.sqrt(np.maximum(ndimage.gaussian_filter(img * img, sigma) - mean * mean, 0.0)).sum(-1)
    return np.concatenate([mean, TEXTURE_WEIGHT * std[..., None]], -1)


def _background_distance(img: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, float, str, np.ndarray]:
    """How unlike the background each pixel of ``img (h, w, 3)`` is, learnt from the border ``band``
    → ``(distance (h, w), threshold, kind, residual (h, w, 3))``, ``residual`` being the colour
    minus the quadratic surface fitted to the band (:func:`_smooth_fit`), whatever the kind.

    - ``"plain"`` (white, grey, gradient, with some noise): the distance of the colour to a
      quadratic surface fitted to the band (:func:`_smooth_fit`), used when the band's 99th
      percentile of that distance, smoothed (σ = 1 px), is at most :data:`PLAIN_SPREAD`;
      threshold: twice the band's 99th percentile of the distance, at least :data:`PLAIN_MIN_CONTRAST`;
    - ``"textured"`` otherwise: the distance of the local colour and texture
      (:func:`_texture_features`) to the nearest of :data:`N_COLOURS` k-means centres of the band's;
      threshold: the band's own 99th percentile of it, at least :data:`MIN_CONTRAST`."""
    residual = img - _smooth_fit(img, band)
    smoothed = np.sqrt((ndimage.gaussian_filter(residual, (1, 1, 0)) ** 2).sum(-1))
    if float(np.quantile(smoothed[band], 0.99)) <= PLAIN_SPREAD:
        dist = np.sqrt((residual ** 2).sum(-1))
        return dist, max(PLAIN_MIN_CONTRAST, 2 * float(np.quantile(dist[band], 0.99))), "plain", residual
    features = _texture_features(img)
    dist = _distance_to(features, _kmeans(features[band], N_COLOURS))
    return dist, max(MIN_CONTRAST, float(np.quantile(dist[band], 0.99))), "textured", residual


def _band_without_outliers(img: np.ndarray, band: np.ndarray) -> np.ndarray:
    """``band`` less its pixels that stand out from a smooth colour surface fitted to it (an object
    reaching into the band, e.g. a lamp's shade cut by the photo's top border), when at least half
    the band is left: distance to the fit above three times the band's median distance and above
    :data:`PLAIN_MIN_CONTRAST`, dilated by 1 px."""
    dist = np.sqrt(((img - _smooth_fit(img, band)) ** 2).sum(-1))
    out = band & (dist > max(PLAIN_MIN_CONTRAST, 3 * float(np.median(dist[band]))))
    keep = band & ~ndimage.binary_dilation(out)
    return keep if keep.sum() >= 0.5 * band.sum() else band


def _fill_small_holes(fg: np.ndarray) -> np.ndarray:
    """``fg`` with its holes of at most :data:`MAX_HOLE` of the image filled (specks inside the object;
    larger holes, the background seen between a chair's legs, stay)."""
    holes, n = ndimage.label(ndimage.binary_fill_holes(fg) & ~fg)
    if n == 0:
        return fg
    sizes = np.bincount(holes.ravel())[1:]
    return fg | np.isin(holes, 1 + np.flatnonzero(sizes <= MAX_HOLE * fg.size))


def _clean(fg: np.ndarray, opening: bool = True) -> np.ndarray:
    """Morphological clean-up of a boolean map: an opening (drops specks and, with them, parts 1 px
    thin: used on textured backgrounds only), small holes filled (:func:`_fill_small_holes`), and the
    8-connected components of at least :data:`KEEP_PART` of the largest one's size (an object may
    show as several parts, e.g. a lamp's shade and base)."""
    square = np.ones((3, 3), bool)
    fg = _fill_small_holes(ndimage.binary_opening(fg, square) if opening else fg)
    labels, n = ndimage.label(fg, structure=square)
    if n == 0:
        return fg
    sizes = np.bincount(labels.ravel())[1:]
    return np.isin(labels, 1 + np.flatnonzero(sizes >= KEEP_PART * sizes.max()))


def _check_found(fg: np.ndarray, name: str) -> None:
    """:class:`NoObjectError` unless ``fg`` covers ``MIN_FRACTION`` < f ≤ ``MAX_FRACTION`` of the
    photo and does not touch all four borders."""
    fraction = float(fg.mean())
    touches_all = fg[0].any() and fg[-1].any() and fg[:, 0].any() and fg[:, -1].any()
    if fraction <= MIN_FRACTION or fraction > MAX_FRACTION or touches_all:
        why = "touches all four borders" if touches_all and MIN_FRACTION < fraction <= MAX_FRACTION else \
            f"would cover {100 * fraction:.1f} % of it (expected {100 * MIN_FRACTION:g}–{100 * MAX_FRACTION:g} %)"
        raise NotFoundError(f"{name}: no object found against the background along the photo's borders "
                            f"(the best guess {why}); {_hint()}", f"the best guess {why}")


def _object_pixels(img: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Steps 2 and 3 of :func:`estimate_foreground` on the working image ``img (h, w, 3)`` with the
    background learnt from ``band (h, w)`` → the cleaned boolean object map."""
    dist, threshold, kind, residual = _background_distance(img, band)
    fg = dist > threshold
    if kind == "plain":  # step 3's edge pixels
        edge = fg & (ndimage.minimum_filter(dist, size=5) <= threshold)
        fg = _clean(fg & ~_blended_edge(residual, dist, edge, threshold), opening=False)
        return _flat_background_faces(img, residual, band, fg)
    fg = _clean(fg, opening=True)
    background_colours = _kmeans(img[band], N_COLOURS)
    for _ in range(REFINE_ROUNDS):
        fg = _colour_refine(img, background_colours, fg)
    return fg


def _blended_edge(residual: np.ndarray, dist: np.ndarray, candidates: np.ndarray, threshold: float,
                  radius: int = EDGE_RADIUS) -> np.ndarray:
    """Which ``candidates (h, w)`` (object pixels next to the background) are an anti-aliased blend
    of the background and the object, with less than half the object's weight (alpha < 0.5):
    ``q`` = the pixel of largest ``dist`` within ``radius`` px (the object's own colour there),
    ``alpha = <r_p, r_q> / |r_q|²`` clipped to [0, 1] (``residual (h, w, 3)``: colour minus the
    background), and the pixel is such a blend when ``alpha < 0.5`` and ``|r_p − alpha·r_q|`` is
    at most :data:`BLEND_TOLERANCE` × ``threshold`` or :data:`BLEND_SHARE` × ``|r_q|``. A pixel
    that no blend explains — a dark face beside a bright one on a mid-grey background, an airplane
    wing's shaded rim — stays object (it was dropped when the rule compared ``dist`` with half the
    largest nearby; benchmarks/results/photo_mask.md). → boolean ``(h, w)``."""
    ys, xs = np.nonzero(candidates)
    out = np.zeros(candidates.shape, bool)
    if len(ys) == 0:
        return out
    h, w = dist.shape
    offsets = np.arange(-radius, radius + 1)
    ny, nx = np.broadcast_arrays(np.clip(ys[:, None, None] + offsets[None, :, None], 0, h - 1),
                                 np.clip(xs[:, None, None] + offsets[None, None, :], 0, w - 1))
    ny, nx = ny.reshape(len(ys), -1), nx.reshape(len(xs), -1)  # (n, (2·radius + 1)²) window pixels
    best = np.argmax(dist[ny, nx], axis=1)
    rows = np.arange(len(ys))
    r_q = residual[ny[rows, best], nx[rows, best]]
    r_p = residual[ys, xs]
    q_squared = (r_q * r_q).sum(-1)
    alpha = np.clip((r_p * r_q).sum(-1) / np.maximum(q_squared, 1e-12), 0.0, 1.0)
    off = np.sqrt(((r_p - alpha[:, None] * r_q) ** 2).sum(-1))
    tolerance = np.maximum(BLEND_TOLERANCE * threshold, BLEND_SHARE * np.sqrt(q_squared))
    out[ys, xs] = (alpha < 0.5) & (off <= tolerance)
    return out


def _flat_background_faces(img: np.ndarray, residual: np.ndarray, band: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """On a digitally flat background (a composite: its band within half a grey level of one colour
    away from the clipped ends, as JPEG keeps a flat area exactly), faces shaded within the plain
    threshold of it but not equal to it are object: ``fg`` (boolean ``(h, w)``) plus

    - the flat pixels (every channel's 5 × 5 spread under :data:`FLAT_SPREAD` levels) outside
      ``fg``, more than :data:`FLAT_EDGE_GAP` px from an edge of :data:`FLAT_EDGE_LEVELS` levels
      (where JPEG rings), whose 3 × 3 median of the mean residual is at least
      :data:`FLAT_MIN_LEVELS` levels from the background;
    - the pixels outside ``fg`` that are not flat background (flat, under 0.4 level off) and
      whose nearest flat pixel is one of those,

    then :func:`_clean` without opening, and the slivers between faces closed
    (:func:`_close_slivers`). Photos with sensor noise are never flat: ``fg`` is returned.
    Measured: the synthetic grey-shaded objects on a mid-grey background (a table whose top and shelf
    are lit 1 level above it: IoU 0.34 → 0.93), benchmarks/results/photo_mask.md."""
    levels = residual / LEVEL
    background = (img - residual)[band].mean(0)
    if (background < 8 * LEVEL).any() or (background > 1 - 8 * LEVEL).any() or \
            float(np.quantile(np.abs(levels[band]), 0.95)) > 0.5:
        return fg
    fg = _close_slivers(fg)
    spread = np.zeros(fg.shape)
    gradient = np.zeros(fg.shape)
    for c in range(img.shape[-1]):
        channel = img[..., c] / LEVEL
        mean = ndimage.uniform_filter(channel, 5)
        spread = np.maximum(spread, np.sqrt(np.maximum(ndimage.uniform_filter(channel * channel, 5) - mean * mean, 0)))
        gradient = np.maximum(gradient, np.hypot(ndimage.sobel(channel, 0), ndimage.sobel(channel, 1)) / 8)
    flat = (spread < FLAT_SPREAD) & ~fg
    offset = np.abs(ndimage.median_filter(levels.mean(-1), size=3))
    far = ndimage.distance_transform_edt(gradient < FLAT_EDGE_LEVELS) > FLAT_EDGE_GAP
    faces = flat & far & (offset >= FLAT_MIN_LEVELS)
    if not faces.any():
        return fg
    background_px = flat & (offset < 0.4)
    _, (iy, ix) = ndimage.distance_transform_edt(~(faces | background_px), return_indices=True)
    return _close_slivers(_clean(fg | faces | (~fg & ~background_px & faces[iy, ix]), opening=False))


def _close_slivers(fg: np.ndarray) -> np.ndarray:
    """``fg (h, w)`` plus its morphological closing by a disc of radius ``max(1, round(max(h, w) ·``
    :data:`SLIVER_FRAC` ``))`` px (2 px at 411 px): on a flat mid-grey background a narrow face
    shaded exactly like it (an airplane's fuselage side between two lit faces) leaves a gap in the
    object no colour rule can see; gaps up to about twice the radius between object pixels are
    filled (real gaps that narrow are filled too). Measured (benchmarks/results/photo_mask.md):
    grey 0.947 → 0.952 on synth-12, 0.950 → 0.957 on the demo's data."""
    r = max(1, round(max(fg.shape) * SLIVER_FRAC))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    padded = np.pad(fg, r + 1)
    return fg | ndimage.binary_closing(padded, xx * xx + yy * yy <= r * r)[r + 1:-r - 1, r + 1:-r - 1]


def _colour_refine(img: np.ndarray, background_colours: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Pixel-level edges of an object found on a textured background, whose texture windows blur
    it (thin parts are lost): within :data:`REFINE_RADIUS` px of ``fg``, a pixel is object when its
    colour is nearer the object's colours (:data:`OBJECT_COLOURS` k-means centres of ``fg`` eroded
    by 2 px) than the background's (``background_colours (K, 3)``: the band's k-means centres)."""
    core = ndimage.binary_erosion(fg, iterations=2)
    if core.sum() < OBJECT_COLOURS:
        return fg
    near = ndimage.binary_dilation(fg, iterations=REFINE_RADIUS)
    to_object = _distance_to(img, _kmeans(img[core], OBJECT_COLOURS))
    to_background = _distance_to(img, background_colours)
    return _clean(core | (near & (to_object < to_background)), opening=True)


def estimate_foreground(rgb: np.ndarray, name: str = "photo") -> np.ndarray:
    """Guess the object of an opaque photo ``rgb`` (float ``(H, W, 3)`` in [0, 1]) → float64
    ``(H, W)`` of 0 / 1, offline and without a learnt model. It assumes the object stands in front
    of a background that shows all along the photo's borders:

    1. block-average the photo to at most :data:`WORK_SIDE` px on its longer side;
    2. learn the background from a band (:data:`BORDER_FRAC` of the shorter side) along the four
       borders, less the pixels that stand out from a smooth fit of it (:func:`_band_without_outliers`:
       an object cut by the border), and measure how unlike it each pixel is
       (:func:`_background_distance`: a smooth colour surface for plain and gradient backgrounds,
       colour and texture clusters otherwise);
    3. object = distance above the threshold, except, on a plain background, an edge pixel (a
       background pixel within 2 px) that is a blend of the background and the object's colour
       nearby with less than half the object's weight (:func:`_blended_edge`: alpha < 0.5);
       clean-up (:func:`_clean`; the opening only on a textured background, where it drops specks,
       since it would also drop parts 1 px thin such as a chair's legs); on a digitally flat
       background, the faces shaded within the threshold of it (:func:`_flat_background_faces`);
    4. where that object reaches into the band (a chair's leg cut by the photo's border), steps 2
       and 3 again with the band less the object's pixels (dilated by 2 px), so that the object's
       own colours are not learnt as background — when at least half the band is left;
    5. back to full size (each block's value for its pixels).

    Measured on renders over white, grey, gradient and textured backgrounds, and why GrabCut is not
    used (it lowered the IoU there): docs/usage.md#your-own-photo.

    :class:`NoObjectError` (naming ``name``) when what is left covers at most :data:`MIN_FRACTION`
    or more than :data:`MAX_FRACTION` of the photo, or touches all four borders."""
    h, w = rgb.shape[:2]
    k = max(1, math.ceil(max(h, w) / WORK_SIDE))
    small = _block_mean(np.asarray(rgb, dtype=np.float64), k)
    band = _border_band(small.shape[:2], max(2, round(BORDER_FRAC * min(small.shape[:2]))))
    band = _band_without_outliers(small, band)
    fg = _object_pixels(small, band)
    touching = band & ndimage.binary_dilation(fg, iterations=2)
    if touching.any() and (band & ~touching).sum() >= 0.5 * band.sum():  # step 4: the band without the object
        fg = _object_pixels(small, band & ~touching)
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
