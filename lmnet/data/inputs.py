"""What an image network sees: every input image is made here, from a file to ``float32 (3, 128, 128)``
RGB in 0–255 (raw values; any rescaling happens inside the image encoder).

Sizes: an R2N2 rendering is :data:`R2N2_IMAGE_SIZE` = 137 px square; the networks take
:data:`CROP_SIZE` = 128 px, the rendering's centre :data:`CROP` (``[4:-5, 4:-5]``: :data:`CROP_OFFSET`
= 4 rows and columns removed before, :data:`CROP_END` = 5 after); the sizes are defined once, in
:mod:`lmnet.image_sizes`.

The three sources of input images:

- **ShapeNet renderings** (dataset, image cache): :func:`read_rgba` with ``require_alpha=True`` (through
  :func:`lmnet.data.layout.read_image`, which also checks the 137 px size), :func:`crop`, then
  :func:`composite` in the run's convention (:func:`run_background`). The image cache stores the
  cropped RGBA, so both conventions and the mask come from it.
- **User images** (``lmnet infer --images``): :func:`prepare_image`.
- **Pix3D photographs**: :func:`read_converted`, then :func:`prepare_pix3d`.

Decoding (:func:`read_rgba`) turns any image Pillow reads into ``uint8 (H, W, 4)`` RGBA, in display
orientation:

- **EXIF orientation** is applied (:func:`PIL.ImageOps.exif_transpose`), so a photo is seen the way
  a viewer shows it;
- **16-bit** grayscale (Pillow modes ``I;16*`` / ``I``) is scaled to 8 bits (``round(v / 257)``,
  65535 → 255) instead of being clipped at 255; 16-bit RGB(A) and LA are reduced by Pillow itself;
- **alpha**: an alpha channel or a ``tRNS`` transparency key becomes the alpha; without either the
  image is opaque (alpha 255). ``require_alpha=True`` refuses such an image instead (dataset
  renderings: their alpha is the silhouette, an opaque one would be a wrong mask);
- **size**: an image of more than :func:`max_pixels` pixels is refused before it is decoded
  (default 50 Mpixel; set ``LMNET_MAX_IMAGE_PIXELS`` to allow larger ones, ``0`` = no limit). A user
  image (:func:`prepare_image`, :func:`prepare_array`) is padded to a square first, so there the
  same limit holds for the padded square, ``max(H, W)²`` pixels, also checked before decoding.

Every problem raises :class:`~lmnet.errors.CorruptFileError` naming the file.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from lmnet.envvars import MAX_IMAGE_PIXELS
from lmnet.errors import ConfigError, CorruptFileError, DataError
from lmnet.image_sizes import CROP_OFFSET, CROP_SIZE, R2N2_IMAGE_SIZE

CROP_END = R2N2_IMAGE_SIZE - CROP_OFFSET - CROP_SIZE  #: removed after it: 5
#: the network crop of a rendering, ``[4:-5, 4:-5]`` (docs/formats.md#network-input-crop-and-background)
CROP = (slice(CROP_OFFSET, -CROP_END), slice(CROP_OFFSET, -CROP_END))
CROP_NOTATION = f"[{CROP_OFFSET}:-{CROP_END}, {CROP_OFFSET}:-{CROP_END}]"  #: as the image cache records it
#: the object's box's longer side over the network crop's side in the R2N2-like renderings: the median
#: of the 720 renders of ``lmnet synth --models 6`` (5 categories; 5th–95th percentile 0.51–0.90)
RENDER_FILL = 0.70
#: the 1st–99th percentile of that fill over the 2880 renders of ``make demo``'s data: a square photo
#: whose object's fill lies in it is already framed like a rendering and keeps its framing
#: (:func:`framed_like_a_rendering`)
RENDER_FILL_RANGE = (0.45, 0.98)
#: a photo whose sides differ by at most this fraction of the longer one counts as square
SQUARE_TOLERANCE = 0.02
#: a photo's object smaller than this (box's longer side, px) is warned about (:func:`framing_warnings`)
TINY_OBJECT_PX = 32
#: Pix3D: the object's longest side is resized to ``CROP_SIZE - PIX3D_PAD`` = 93 px (:func:`prepare_pix3d`)
PIX3D_PAD = 35

MAX_PIXELS_ENV = MAX_IMAGE_PIXELS.env
DEFAULT_MAX_PIXELS = MAX_IMAGE_PIXELS.default
_HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_open_lock = threading.Lock()  # Pillow's own bomb limit is a module global, switched off around open


# ---------------------------------------------------------------------------- decoding


def max_pixels() -> int | None:
    """The largest image (in pixels) :func:`read_rgba` decodes: ``$LMNET_MAX_IMAGE_PIXELS`` or the
    default; None when the variable is ``0`` (no limit)."""
    return MAX_IMAGE_PIXELS.value()


def _check_file_pixels(path: Path, w: int, h: int) -> None:
    limit = max_pixels()
    if limit is not None and w * h > limit:
        raise CorruptFileError(path, f"image of {w}x{h} = {w * h:,} pixels is larger than the "
                                     f"{limit:,}-pixel limit; set {MAX_PIXELS_ENV}={w * h} (or 0 for "
                                     f"no limit) to allow it")


def check_padded_size(width: int, height: int, name: str) -> None:
    """Refuse (:class:`~lmnet.errors.ResourceLimitError`) a ``width × height`` user image whose
    padded square, ``max(width, height)²`` pixels (:func:`prepare_array`), is over :func:`max_pixels`
    — a 1×60000 image is 60,000 pixels but a 14.4 GB square; ``name`` is what the message calls it."""
    side = max(int(width), int(height))
    MAX_IMAGE_PIXELS.check(side * side, f"{name}: a {width}x{height} image is padded to a {side}x{side} square",
                           hint="crop it closer to the object")


def _open(path: Path):
    from PIL import Image

    with _open_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # checked below, with our limit
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _open_limited(path: Path):
    """``path`` opened by Pillow with only its header read, or :class:`CorruptFileError` when it
    has more than :func:`max_pixels` pixels (:func:`_check_file_pixels`): the check comes before
    any pixel is decoded, in place of Pillow's own bomb limit (whose exception was a traceback)."""
    im = _open(path)
    try:
        _check_file_pixels(path, *im.size)
    except CorruptFileError:
        im.close()
        raise
    return im


def read_rgba(path: str | Path, require_alpha: bool = False, exif_orientation: bool = True) -> np.ndarray:
    """Decode ``path`` → ``uint8 (H, W, 4)`` RGBA (rules in the module docstring).

    ``exif_orientation=False`` keeps the stored pixel order: for datasets whose annotations (masks,
    boxes, keypoints) were made on the stored pixels, as CMR's CUB / Pascal3D+ ``.mat`` files were."""
    from PIL import ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with _open_limited(path) as im:
            im.load()
            has_alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
            mode = im.mode
            if exif_orientation:
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
        raise _unreadable(path, exc) from None
    if require_alpha and not has_alpha:
        raise CorruptFileError(path, f"{mode} image without an alpha channel: the silhouette (mask) would be "
                                     f"all opaque; renderings must be RGBA")
    return np.ascontiguousarray(rgba)


def _unreadable(path: Path, exc: Exception) -> CorruptFileError:
    kind = "PNG" if path.suffix.lower() == ".png" else "image"
    return CorruptFileError(path, f"unreadable or truncated {kind} ({exc})")


def _high_bit_gray(values: np.ndarray, transparency) -> np.ndarray:
    """16-bit gray ``(H, W)`` (0..65535) → ``uint8 (H, W, 4)``: gray / 257, alpha from the key."""
    v = values.astype(np.int64)
    gray = np.clip(np.rint(v / 257.0), 0, 255).astype(np.uint8)
    alpha = np.full(v.shape, 255, np.uint8)
    if isinstance(transparency, int):
        alpha[v == transparency] = 0
    return np.stack([gray, gray, gray, alpha], axis=-1)


def read_converted(path: str | Path, mode: str) -> np.ndarray:
    """Decode ``path`` with Pillow converted to ``mode`` → ``uint8 (H, W, 3)`` for ``"RGB"``,
    ``(H, W)`` for ``"L"``: the Pix3D photographs and masks, read as Pix3D always was (no EXIF
    orientation), with the pixel limit of :func:`read_rgba` (:func:`max_pixels`, checked before
    decoding). A missing file is a :class:`DataError`, an undecodable or too large one a
    :class:`CorruptFileError`."""
    with _opened(Path(path)) as im:
        return np.asarray(im.convert(mode))


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file, from its header only (nothing decoded), with the pixel
    limit of :func:`read_rgba`; errors as :func:`read_converted`."""
    with _opened(Path(path)) as im:
        return im.size


@contextlib.contextmanager
def _opened(path: Path) -> Iterator:
    """``path`` opened within the pixel limit (:func:`_open_limited`) for :func:`read_converted`
    and :func:`image_size`; Pillow's exceptions in the block → :class:`CorruptFileError`."""
    from PIL import UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"{path} does not exist")
    try:
        with _open_limited(path) as im:
            yield im
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptFileError(path, f"cannot decode image ({exc})") from None


# ---------------------------------------------------------------------------- renderings: crop, background


def crop(rgba: np.ndarray) -> np.ndarray:
    """A rendering ``(137, 137, C)`` → its network crop ``(128, 128, C)`` (:data:`CROP`, a view)."""
    return rgba[CROP]


def composite(rgba: np.ndarray, background: float | None = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """``uint8 (H, W, 4)`` RGBA → ``(image float32 (3, H, W) in 0–255, mask float32 (1, H, W) in 0–1)``,
    with ``a = alpha / 255`` and ``mask = a``. The image is one of the two input conventions a run's
    ``image_input`` names (:func:`run_background` maps a run's config to ``background``):

    - ``"composite"`` (lmnet's default, ``background`` a number): ``rgb · a + background · (1 − a)``,
      ``background`` 255 (white) by default;
    - ``"stored_rgb"`` (``background=None``): the RGB channels as stored, alpha ignored, so black
      (≈ 0, with stray values) where a rendering is transparent. The published models and imported
      runs use it: both published codes read the PNG with ``cv2.imread``, which drops alpha.
    """
    a = rgba[..., 3].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32).transpose(2, 0, 1)
    image = rgb if background is None else rgb * a + np.float32(background) * (1.0 - a)
    return np.ascontiguousarray(image, dtype=np.float32), a[None].copy()


# The two input conventions a run's ``image_input`` names (:func:`composite`).
IMAGE_INPUTS = ("composite", "stored_rgb")


def run_image_input(config: Mapping, where: str = "run config") -> str:
    """The input convention (one of :data:`IMAGE_INPUTS`) of a run's ``config.json`` dict; ``where``
    (the file) is named in errors.

    A run that records ``image_input`` used that value. Without the key: ``image_input`` and
    ``arch`` were added together (before them every run composited over ``background``) and every
    imported run has recorded it since the first import, so

    - an imported run (it has ``source``) used ``"stored_rgb"``, the only convention published
      weights were ever imported with (both published codes fed the PNG's RGB as stored);
    - a run with ``arch`` but no ``image_input`` had its config edited: its convention cannot be
      known (``arch`` only sets a default), and it is refused naming the key;
    - a run with neither (written before the key; silhouette runs, which have no such key) used
      ``"composite"``.
    """
    if "image_input" in config:
        value = config["image_input"]
        if value not in IMAGE_INPUTS:
            raise ConfigError(f"{where}: key 'image_input' must be one of {list(IMAGE_INPUTS)}, got {value!r}")
        return value
    if "source" in config:
        return "stored_rgb"
    if "arch" in config:
        raise ConfigError(f"{where}: key 'image_input' is missing, and a run with 'arch' (here {config['arch']!r}) "
                          f"was written with it, so the input convention it was trained with is unknown; add "
                          f"\"image_input\": \"composite\" (RGB over the background) or \"stored_rgb\" (RGB as "
                          f"stored, what arch official/port default to)")
    return "composite"


def run_background(config: Mapping, where: str = "run config") -> float | None:
    """The ``background`` argument of :func:`composite` for a run's ``config.json`` dict: ``None``
    when its convention (:func:`run_image_input`) is ``"stored_rgb"``, else its ``background``
    (255, white, when absent: runs written before ``image_input`` existed composited over it)."""
    if run_image_input(config, where) == "stored_rgb":
        return None
    return float(config.get("background", 255.0))


# ---------------------------------------------------------------------------- user images


def prepare_image(path: str | Path, background: float | None = 255.0) -> np.ndarray:
    """A user's image file (any size, PNG/JPG/...) → network input ``float32 (3, 128, 128)``, RGB 0–255.

    Decoded by :func:`read_rgba` (EXIF orientation, 16-bit scaling and the pixel limit included; the
    alpha, opaque if none, is kept through the geometry steps), then :func:`prepare_array`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image {path} does not exist")
    check_image_header(path)
    return prepare_array(read_rgba(path), background, str(path))


def check_image_header(path: str | Path) -> None:
    """Read only the header of the user image ``path`` and refuse it, before anything is decoded,
    when it is unreadable or over the pixel limit (:class:`~lmnet.errors.CorruptFileError`, as
    :func:`read_rgba`) or its padded square is (:func:`check_padded_size`)."""
    from PIL import UnidentifiedImageError

    path = Path(path)
    try:
        with _open_limited(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    check_padded_size(w, h, str(path))


def prepare_array(image: np.ndarray, background: float | None = 255.0, name: str = "image") -> np.ndarray:
    """A user's image as an array, ``uint8 (H, W, 3)`` (opaque) or ``(H, W, 4)`` RGBA, any size →
    network input ``float32 (3, 128, 128)``, RGB 0–255; ``name`` is what an error calls it.

    A non-square image is padded to a square with transparent pixels, centred. A 128×128 image is
    taken as already cropped; anything else is resized to 137×137 (premultiplied alpha, Lanczos; not
    when it is 137 px already) and cropped like the renderings (:func:`crop`). Last comes
    :func:`composite` with ``background`` (None: a "stored_rgb" run, whose transparent pixels are
    black after the premultiplied resize or the padding, as in the renderings). Objects should fill
    the frame roughly as in the renderings (centred, some margin)."""
    prepared, _ = composite(crop_rgba(image, name), background)
    return prepared


def crop_rgba(image: np.ndarray, name: str = "image") -> np.ndarray:
    """The geometry steps of :func:`prepare_array` (pad, resize, crop): ``uint8 (H, W, 3)`` or
    ``(H, W, 4)`` → the network crop as ``uint8 (128, 128, 4)`` RGBA, its alpha the object's mask."""
    from PIL import Image

    image = as_rgba(image, name)
    rgba = _pad_square(Image.fromarray(np.ascontiguousarray(image), "RGBA"))
    arr = np.asarray(rgba) if rgba.size == (CROP_SIZE, CROP_SIZE) else _render_crop(rgba)
    return np.ascontiguousarray(arr)


def as_rgba(image: np.ndarray, name: str = "image") -> np.ndarray:
    """A user's image array, ``uint8 (H, W, 3)`` (opaque) or ``(H, W, 4)`` → ``uint8 (H, W, 4)``;
    :class:`DataError` naming ``name`` for anything else, and the padded-square pixel limit
    (:func:`check_padded_size`)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise DataError(f"{name}: expected a uint8 array (H, W, 3) or (H, W, 4), got {image.dtype} {image.shape}")
    check_padded_size(image.shape[1], image.shape[0], name)
    if image.shape[2] == 3:
        image = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return image


def _render_crop(rgba) -> np.ndarray:
    """A square PIL RGBA image → ``uint8 (128, 128, 4)``: resized to 137×137 as a rendering
    (premultiplied alpha, Lanczos; not when it is 137 px already), then its network :func:`crop`."""
    from PIL import Image

    if rgba.size != (R2N2_IMAGE_SIZE, R2N2_IMAGE_SIZE):
        size = (R2N2_IMAGE_SIZE, R2N2_IMAGE_SIZE)
        rgba = rgba.convert("RGBa").resize(size, Image.LANCZOS).convert("RGBA")
    return crop(np.asarray(rgba))


def frame_photo(rgb: np.ndarray, mask: np.ndarray, background: float | None = 255.0) -> np.ndarray:
    """A photo and its object mask → network input ``float32 (3, 128, 128)``, RGB 0–255: the
    :func:`composite` with ``background`` of :func:`frame_photo_rgba`."""
    prepared, _ = composite(frame_photo_rgba(rgb, mask), background)
    return prepared


def frame_photo_rgba(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A photo and its object mask → the network crop ``uint8 (128, 128, 4)`` RGBA (alpha = the
    object's mask), framed as the renderings frame their object. ``rgb``: ``uint8 (H, W, 3)``; ``mask``: ``(H, W)`` in [0, 1]
    (1 = object; :func:`lmnet.data.photo_mask.read_photo_rgba`).

    A photo already framed like a rendering (:func:`framed_like_a_rendering`) keeps its framing: the
    whole photo (padded square) is the rendering's 137 px frame. Otherwise the box of the mask's
    pixels > 0.5 is centred in a square whose 128 px network crop the box's longer side fills to
    :data:`RENDER_FILL` (the renderings' median); the square covers the rendering's whole 137 px frame
    (the crop plus :data:`CROP_OFFSET` / ``CROP_END`` px), and what lies outside the photo is
    transparent. Its alpha is ``mask · 255``; then the steps of a rendering: resize to 137 px
    (:func:`_render_crop`), :func:`crop`. An empty mask is a ValueError."""
    from PIL import Image

    fg = np.asarray(mask) > 0.5
    if not fg.any():
        raise ValueError("the mask is empty: no pixel > 0.5")
    alpha = np.clip(np.rint(np.asarray(mask, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    rgba = Image.fromarray(np.ascontiguousarray(np.dstack([rgb, alpha])), "RGBA")
    if framed_like_a_rendering(mask):
        return np.ascontiguousarray(_render_crop(_pad_square(rgba)))
    ys, xs = np.nonzero(fg)
    inner = _box_side(fg) / RENDER_FILL  # the network crop's side, in photo pixels
    side = max(1, round(inner * R2N2_IMAGE_SIZE / CROP_SIZE))
    before = inner * CROP_OFFSET / CROP_SIZE  # the frame's rows / columns before the crop
    left = round((xs.min() + xs.max() + 1) / 2 - inner / 2 - before)
    top = round((ys.min() + ys.max() + 1) / 2 - inner / 2 - before)
    framed = rgba.crop((left, top, left + side, top + side))  # outside the photo: (0, 0, 0, 0)
    return np.ascontiguousarray(_render_crop(framed))


def _box_side(fg: np.ndarray) -> int:
    """The longer side (px) of the box of a boolean object map's True pixels ``(H, W)``; 0 when none."""
    ys, xs = np.nonzero(fg)
    return int(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1) if len(xs) else 0


def framed_like_a_rendering(mask: np.ndarray) -> bool:
    """Whether a photo with object ``mask`` ``(H, W)`` (in [0, 1]) is framed as the renderings frame
    their objects: square (sides within :data:`SQUARE_TOLERANCE`), and the box of the mask's pixels
    > 0.5, once the photo is scaled to the rendering's 137 px, fills the 128 px network crop to
    within :data:`RENDER_FILL_RANGE`. Such a photo is not reframed: the networks are trained on
    renderings at those fills, and reframing a rendering to the median fill changed ``make demo``'s
    Variant I predictions by +18 % CD (lmnet protocol; benchmarks/results/photo_mask.md)."""
    fg = np.asarray(mask) > 0.5
    h, w = fg.shape
    if not fg.any() or abs(h - w) > SQUARE_TOLERANCE * max(h, w):
        return False
    fill = _box_side(fg) * R2N2_IMAGE_SIZE / max(h, w) / CROP_SIZE
    return RENDER_FILL_RANGE[0] <= fill <= RENDER_FILL_RANGE[1]


def framing_warnings(mask: np.ndarray) -> list[str]:
    """What makes a photo's object unlike the renderings' (their objects are whole and seen at
    :data:`RENDER_FILL` · 128 ≈ 89 px): the mask (``(H, W)`` in [0, 1]) touching the photo's border
    (the object is probably cut off), or an object whose box's longer side is under
    :data:`TINY_OBJECT_PX` px (the network sees it enlarged, blurred). One phrase per finding."""
    fg = np.asarray(mask) > 0.5
    found = []
    sides = [name for name, edge in (("top", fg[0]), ("bottom", fg[-1]), ("left", fg[:, 0]), ("right", fg[:, -1]))
             if edge.any()]
    if sides:
        found.append(f"the object touches the photo's {'/'.join(sides)} border (cut off?)")
    longest = _box_side(fg)
    if 0 < longest < TINY_OBJECT_PX:
        found.append(f"the object is tiny ({longest} px across; the renderings show it at "
                     f"~{round(RENDER_FILL * CROP_SIZE)} px)")
    return found


def _pad_square(rgba):
    """A PIL RGBA image → the same, centred on a transparent square canvas of its longest side."""
    from PIL import Image

    w, h = rgba.size
    if w == h:
        return rgba
    side = max(w, h)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(rgba, ((side - w) // 2, (side - h) // 2))
    return canvas


# ---------------------------------------------------------------------------- Pix3D photographs


def prepare_pix3d(rgb: np.ndarray, mask: np.ndarray, bbox: Sequence[int]) -> np.ndarray:
    """A Pix3D photograph ``uint8 (H, W, 3)``, its mask ``(H, W)`` (non-zero = object) and bbox
    ``(x0, y0, x1, y1)`` in pixels → network input ``float32 (3, 128, 128)``, raw 0–255, no alpha.

    As the 3D-LMNet loaders do: RGB × (mask ≠ 0); crop rows ``y0:y1``, columns ``x0:x1``; resize with
    :func:`resize_bilinear` so the longest side is ``CROP_SIZE − PIX3D_PAD`` = 93, each side
    ``int(side · 93 / longest)`` (at least 1); pad with black to 128×128 with ``top = Δh // 2``,
    ``left = Δw // 2``."""
    x0, y0, x1, y1 = (int(v) for v in bbox)
    masked = (rgb * (np.asarray(mask) != 0)[..., None]).astype(np.uint8)
    box = masked[y0:y1, x0:x1]
    h, w = box.shape[:2]
    side = CROP_SIZE - PIX3D_PAD
    longest = max(h, w)
    nh, nw = max(1, int(h * side / longest)), max(1, int(w * side / longest))
    resized = resize_bilinear(box, nh, nw)
    out = np.zeros((CROP_SIZE, CROP_SIZE, 3), np.float32)
    top, left = (CROP_SIZE - nh) // 2, (CROP_SIZE - nw) // 2
    out[top:top + nh, left:left + nw] = resized
    return np.ascontiguousarray(out.transpose(2, 0, 1))


_COEF_SCALE = 2048  #: OpenCV's INTER_RESIZE_COEF_SCALE (11 bits)


def _positions(n_src: int, n_dst: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One axis of OpenCV's ``INTER_LINEAR``: source indices ``i0, i1`` and the fraction ``f`` per
    output pixel. The position ``(x + 0.5) · n_src / n_dst − 0.5`` is computed in float64 and
    rounded to ``dtype``, ``f`` is its distance to ``floor`` in ``dtype``; positions before the first
    or from the last pixel on are clamped to that pixel with ``f = 0``."""
    scale = 1.0 / (n_dst / n_src)
    s = ((np.arange(n_dst) + 0.5) * scale - 0.5).astype(dtype)
    i0 = np.floor(s).astype(np.int64)
    f = (s - i0.astype(dtype)).astype(dtype)
    clamp = (i0 < 0) | (i0 >= n_src - 1)
    i0 = np.clip(i0, 0, n_src - 1)
    f[clamp] = 0
    return i0, np.minimum(i0 + 1, n_src - 1), f


def _taps(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_positions` with 11-bit fixed-point weights ``w0, w1`` (each rounded on its own), as
    OpenCV's 8-bit path uses them."""
    i0, i1, f = _positions(n_src, n_dst)
    one = np.float32(_COEF_SCALE)
    w0 = np.rint((np.float32(1) - f) * one).astype(np.int64)
    w1 = np.rint(f * one).astype(np.int64)
    return i0, i1, w0, w1


def resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``uint8 (H, W, C)`` → ``uint8 (height, width, C)``, OpenCV ``INTER_LINEAR`` (what the 3D-LMNet
    loaders call) in its integer arithmetic: pixel centres at ``(x + 0.5) · scale − 0.5``, clamped at
    the borders, no anti-aliasing when shrinking; the horizontal pass sums ``w0·a + w1·b``, the
    vertical one combines two such rows as OpenCV's SIMD path does,
    ``((r0 >> 4)·v0 >> 16) + ((r1 >> 4)·v1 >> 16) + 2 >> 2``. Equal to ``cv2.resize`` when shrinking
    (tested where OpenCV is installed); when enlarging, border rows can differ by one grey level."""
    a = np.asarray(img).astype(np.int64)
    y0, y1, v0, v1 = _taps(a.shape[0], height)
    x0, x1, w0, w1 = _taps(a.shape[1], width)
    rows = a[:, x0] * w0[None, :, None] + a[:, x1] * w1[None, :, None]
    out = ((((rows[y0] >> 4) * v0[:, None, None]) >> 16) + (((rows[y1] >> 4) * v1[:, None, None]) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


#: the weight precision of OpenCV's ``INTER_LINEAR`` on float64 images: float32 up to OpenCV 4 (what
#: CMR and convmesh ran with), float64 from OpenCV 5 on
LINEAR_WEIGHTS = {"opencv4": np.float32, "opencv5": np.float64}


def resize_linear_float(img: np.ndarray, height: int, width: int, weights: str = "opencv4") -> np.ndarray:
    """``float (H, W)`` or ``(H, W, C)`` → float64 ``(height, width)`` / ``(height, width, C)``:
    OpenCV ``INTER_LINEAR`` on a float64 image (what CMR's loaders call on ``imread / 255``), in its
    arithmetic: the positions and fractions of :func:`_positions`, weights ``1 − f`` and ``f``,
    products and sums in float64, the horizontal pass first. ``weights`` picks the precision of the
    positions and weights (:data:`LINEAR_WEIGHTS`): ``"opencv4"`` (float32, the original code's
    OpenCV) or ``"opencv5"`` (float64); the two differ by at most ~1e-5 of the value range. Equal
    to ``cv2.resize`` of the matching OpenCV (tested where OpenCV is installed) up to the last bit;
    unlike it, a ``(H, W, 1)`` input keeps its channel axis."""
    if weights not in LINEAR_WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(LINEAR_WEIGHTS)}, got {weights!r}")
    a = np.asarray(img, dtype=np.float64)
    if a.ndim not in (2, 3) or min(a.shape[:2]) < 1 or height < 1 or width < 1:
        raise ValueError(f"resize_linear_float expects (H, W[, C]) with H, W >= 1 to a size >= 1, "
                         f"got {a.shape} -> ({height}, {width})")
    dtype = LINEAR_WEIGHTS[weights]
    flat = a[..., None] if a.ndim == 2 else a
    y0, y1, fy = _positions(flat.shape[0], height, dtype)
    x0, x1, fx = _positions(flat.shape[1], width, dtype)
    w0, w1 = (dtype(1) - fx).astype(np.float64), fx.astype(np.float64)
    v0, v1 = (dtype(1) - fy).astype(np.float64), fy.astype(np.float64)
    rows = flat[:, x0] * w0[None, :, None] + flat[:, x1] * w1[None, :, None]
    out = rows[y0] * v0[:, None, None] + rows[y1] * v1[:, None, None]
    return out[..., 0] if a.ndim == 2 else out
