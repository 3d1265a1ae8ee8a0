"""One CMR item (CUB-200-2011 or Pascal3D+) → what the mesh-reconstruction network sees.

The steps and formulas are those of CMR's ``data/base.py`` as convmesh uses it, with no jitter:

1. **Read** the photograph as float64 RGB in [0, 1] (``imread / 255``; grayscale repeated to three
   channels; no EXIF rotation, since the masks and boxes were made on the stored pixels; larger than
   ``LMNET_MAX_IMAGE_PIXELS`` refused). Its size must equal the mask's.
2. **Box**: the 1-based ``bbox`` minus 1, padded by :data:`PADDING_FRAC` = 5 % of its width / height
   on each side, then made square (:func:`square_bbox`, rounding as Python's ``round`` does).
3. **Crop** the image (outside pixels white, 1.0) and the mask (outside 0); the visible keypoints
   (0-based: ``parts − 1``) and the SfM translation move by ``−(x0, y0)``.
4. **Resize** both to ``size × size`` with :func:`lmnet.data.inputs.resize_linear_float` (OpenCV's
   float64 ``INTER_LINEAR``; the mask stays a bilinear value in [0, 1]); visible keypoints, ``scale``
   and ``trans`` are multiplied by ``size / side``.
5. **Mirror** (optional): flip left-right; keypoint ``x ← W − 1 − x`` then the keypoints are permuted
   by the dataset's mirror permutation; ``R ← diag(−1, 1, 1) · R · diag(−1, 1, 1)``;
   ``tx ← W − 1 − tx``.
6. **Normalise** to NDC ([−1, 1], x right, y down): keypoints ``2 x / W − 1``, ``2 y / H − 1`` (×
   visibility, so hidden ones are 0); ``s ← s · (1 / W + 1 / H)``; ``t ← (2 tx / W − 1, 2 ty / H − 1)``;
   ``q = quaternion_from_matrix(R)`` in (w, x, y, z) (:mod:`lmnet.quaternions`).

After step 6 the pose projects the keypoint mean shape ``S`` (3×K) onto the item's keypoints:
``keypoints[:, :2] ≈ s · (R @ S)[:2].T + t`` for the visible ones (mirrored: with ``S`` mirrored,
``S[:, perm] = diag(−1, 1, 1) · S``, as CMR's mean shapes are).

The network input (convmesh's ``ImageDataset``): ``image = (rgb · 2 − 1) · mask`` in float32,
``(3, S, S)``, i.e. in [−1, 1] with the background 0; ``mask`` ``(1, S, S)`` in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lmnet.data.cmr import Annotation, SfmPose
from lmnet.data.inputs import read_rgba, resize_linear_float
from lmnet.errors import CorruptFileError
from lmnet.quaternions import quaternion_from_matrix

PADDING_FRAC = 0.05
#: ``diag(−1, 1, 1)``: the x mirror of a rotation, ``F · R · F``
MIRROR = np.diag([-1.0, 1.0, 1.0])


def read_photo(path: str | Path, mask_shape: tuple[int, int] | None = None) -> np.ndarray:
    """A photograph → float64 ``(H, W, 3)`` in [0, 1] (step 1); its ``(H, W)`` must be
    ``mask_shape`` when given."""
    rgb = read_rgba(path, exif_orientation=False)[..., :3] / 255.0
    if mask_shape is not None and rgb.shape[:2] != tuple(mask_shape):
        raise CorruptFileError(path, f"image is {rgb.shape[1]}x{rgb.shape[0]} but its annotation mask is "
                                     f"{mask_shape[1]}x{mask_shape[0]}; they must match")
    return rgb


def square_bbox(bbox1: np.ndarray, padding: float = PADDING_FRAC) -> list[float]:
    """1-based ``(x1, y1, x2, y2)`` → the padded square crop box ``[x0, y0, x1, y1]`` (0-based,
    inclusive; ``x0, y0`` integers), as CMR's ``peturb_bbox`` + ``square_bbox``."""
    box = [float(c) - 1 for c in bbox1]
    bw, bh = box[2] - box[0] + 1, box[3] - box[1] + 1
    box = [box[0] - padding * bw, box[1] - padding * bh, box[2] + padding * bw, box[3] + padding * bh]
    sq = [int(round(c)) for c in box]
    bw, bh = sq[2] - sq[0] + 1, sq[3] - sq[1] + 1
    side = float(max(bw, bh))
    sq[0] -= int(round((side - bw) / 2.0))
    sq[1] -= int(round((side - bh) / 2.0))
    return [sq[0], sq[1], sq[0] + side - 1, sq[1] + side - 1]


def crop(img: np.ndarray, box: Sequence[float], background: float) -> np.ndarray:
    """``img (H, W, C)`` cut to ``box`` (0-based inclusive, rounded) → float64 ``(h, w, C)``;
    pixels outside the image are ``background``."""
    x0, y0, x1, y1 = (int(round(c)) for c in box)
    h, w = img.shape[:2]
    out = np.full((y1 - y0 + 1, x1 - x0 + 1, img.shape[2]), float(background))
    sx0, sx1, sy0, sy1 = max(0, x0), min(w, x1 + 1), max(0, y0), min(h, y1 + 1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return out


@dataclass
class _Pose:
    """An SfM pose in pixels as the steps change it: ``scale``, ``trans (2,)``, ``rot (3, 3)``."""

    scale: float
    trans: np.ndarray
    rot: np.ndarray

    @classmethod
    def of(cls, sfm: SfmPose) -> "_Pose":
        return cls(float(sfm.scale), sfm.trans.astype(np.float64).copy(), sfm.rot.copy())


def _cropped(image: np.ndarray, anno: Annotation, sfm: SfmPose):
    """Steps 2–3: ``(image crop, mask crop (h, w, 1), keypoints (K, 3) 0-based, visible (K,), pose)``."""
    box = square_bbox(anno.bbox)
    kp = anno.parts.T.astype(np.float64).copy()
    vis = kp[:, 2] > 0
    kp[vis, :2] -= 1
    kp[vis, 0] -= box[0]
    kp[vis, 1] -= box[1]
    pose = _Pose.of(sfm)
    pose.trans -= np.array(box[:2], np.float64)
    return crop(image, box, 1.0), crop(anno.mask[..., None].astype(np.float64), box, 0.0), kp, vis, pose


def _scaled(img, mask, kp, vis, pose: _Pose, size: int, weights: str):
    """Step 4 on copies: ``(image (size, size, 3), mask (size, size), keypoints, pose)``."""
    factor = size / float(max(img.shape[0], img.shape[1]))
    h, w = (int(v) for v in np.round(np.array(img.shape[:2]) * factor))
    kp = kp.copy()
    kp[vis, :2] *= factor
    out = _Pose(pose.scale * factor, pose.trans * factor, pose.rot.copy())
    return (resize_linear_float(img, h, w, weights), resize_linear_float(mask, h, w, weights)[..., 0], kp, out)


def _mirrored(img, mask, kp, pose: _Pose, perm: np.ndarray):
    """Step 5."""
    width = img.shape[1]
    kp = np.concatenate([(width - kp[:, 0] - 1)[:, None], kp[:, 1:]], axis=1)[perm]
    pose.rot = MIRROR @ pose.rot @ MIRROR
    pose.trans[0] = width - pose.trans[0] - 1
    return img[:, ::-1].copy(), mask[:, ::-1].copy(), kp, pose


def _normalised(kp: np.ndarray, pose: _Pose, h: int, w: int):
    """Step 6: ``(keypoints (K, 3), scale, translation (2,), quaternion (4,))``."""
    vis = kp[:, 2:3] > 0
    kp_n = np.stack([2 * (kp[:, 0] / w) - 1, 2 * (kp[:, 1] / h) - 1, kp[:, 2]]).T * vis
    scale = pose.scale * (1.0 / w + 1.0 / h)
    trans = np.array([2.0 * pose.trans[0] / w - 1, 2.0 * pose.trans[1] / h - 1])
    return kp_n, scale, trans, quaternion_from_matrix(pose.rot)


def network_image(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` in [0, 1] and its mask ``(H, W)`` → float32 ``(3, H, W)`` ``(rgb · 2 − 1) · mask``."""
    m = mask.astype(np.float32)
    return np.ascontiguousarray((img.astype(np.float32).transpose(2, 0, 1) * 2 - 1) * m[None])


def prepare(image: np.ndarray, anno: Annotation, sfm: SfmPose, sizes: Sequence[int], mirror: bool,
            perm: np.ndarray, weights: str = "opencv4") -> dict:
    """Steps 2–6 for a photograph ``image`` (float64 ``(H, W, 3)`` in [0, 1], step 1) →
    ``{"image": float32 (3, S, S), "mask": float32 (1, S, S), "keypoints": float32 (K, 3) in NDC
    with visibility, "scale": float32 (1,), "translation": float32 (2,), "rotation": float32 (4,)
    (w, x, y, z), "extra": {size: (image, mask)} for sizes[1:]}``, ``S = sizes[0]``. ``perm`` is the
    0-based keypoint mirror permutation; ``weights`` the resize precision
    (:func:`~lmnet.data.inputs.resize_linear_float`)."""
    img_c, mask_c, kp, vis, pose = _cropped(image, anno, sfm)
    out: dict = {"extra": {}}
    for k, size in enumerate(sizes):
        img, mask, kp_s, pose_s = _scaled(img_c, mask_c, kp, vis, pose, int(size), weights)
        if mirror:
            img, mask, kp_s, pose_s = _mirrored(img, mask, kp_s, pose_s, perm)
        if k == 0:
            kp_n, scale, trans, q = _normalised(kp_s, pose_s, img.shape[0], img.shape[1])
            out.update(image=network_image(img, mask), mask=mask[None].astype(np.float32),
                       keypoints=kp_n.astype(np.float32), scale=np.array([scale], np.float32),
                       translation=trans.astype(np.float32), rotation=q.astype(np.float32))
        else:
            out["extra"][int(size)] = (network_image(img, mask), mask[None].astype(np.float32))
    return out
