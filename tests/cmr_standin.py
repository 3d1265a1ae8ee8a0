"""Tiny CUB / Pascal3D+ stand-in trees for the tests, written with lmnet's layout writer.

Every item is geometrically consistent: its keypoints are the projection of a known keypoint mean
shape ``S`` (3, K), mirror-symmetric under the dataset's keypoint permutation
(``S[:, perm] = diag(-1, 1, 1) @ S``), under a known SfM pose (``parts[:2] - 1 = scale · (rot @ S)[:2]
+ trans``); the mask is an ellipse around them (its bbox is the item's), the photograph random noise
with the object painted in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmnet.data import cub, p3d
from lmnet.data.cmr_write import CmrItem, write_cub_tree, write_p3d_tree
from lmnet.quaternions import quaternion_to_matrix

CUB_PERM = cub.KP_PERM
P3D_PERM = np.array(p3d.KP_PERM_1BASED) - 1


def symmetric_shape(perm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A (3, K) keypoint mean shape with ``S[:, perm] == diag(-1, 1, 1) @ S``."""
    shape = np.zeros((3, len(perm)))
    for j, p in enumerate(perm):
        if p < j:
            continue
        v = rng.normal(size=3) * 0.5
        if p == j:
            v[0] = 0.0
        shape[:, j] = v
        shape[:, p] = v * np.array([-1.0, 1.0, 1.0])
    return shape


def make_item(rel_path: str, shape: np.ndarray, rng: np.random.Generator, height: int = 60, width: int = 80,
              gray: bool = False, class_id: int = 0, labels=None) -> CmrItem:
    """One consistent item (module docstring); one keypoint is hidden."""
    q = rng.normal(size=4)
    rot = quaternion_to_matrix(q / np.linalg.norm(q))
    scale = 12.0 + 4.0 * rng.random()
    trans = np.array([width / 2, height / 2]) + rng.normal(size=2) * 3
    proj = scale * (rot @ shape)[:2] + trans[:, None]
    vis = np.ones(shape.shape[1])
    vis[rng.integers(shape.shape[1])] = 0
    parts = np.vstack([proj + 1, vis])
    parts[:2, vis == 0] = 0
    yy, xx = np.mgrid[:height, :width]
    (cx, cy), (rx, ry) = proj.mean(1), np.ptp(proj, axis=1) / 2 + 4
    mask = ((((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) <= 1).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    bbox = (xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image[mask > 0] = (200, 40, 30)
    return CmrItem(rel_path, image[..., 0] if gray else image, mask, bbox, parts, rot, scale, trans,
                   class_id=class_id, p3d_labels=labels)


def write_cub(root: str | Path, seed: int = 0, n_train: int = 4, n_testval: int = 2) -> np.ndarray:
    """A CUB tree under ``root`` (item 1 of train is grayscale, items alternate two species);
    returns the mean shape ``S``."""
    rng = np.random.default_rng(seed)
    shape = symmetric_shape(CUB_PERM, rng)
    for split, n, offset in (("train", n_train, 0), ("testval", n_testval, 100)):
        items = [make_item(f"{(i % 2) + 1:03d}.Bird_{i % 2}/bird_{offset + i}.jpg", shape, rng, gray=(i == 1),
                           class_id=i % 2) for i in range(n)]
        write_cub_tree(root, items, split, mean_shape=shape)
    return shape


def write_p3d(root: str | Path, seed: int = 0, n_train: int = 3, n_val: int = 2) -> np.ndarray:
    """A Pascal3D+ tree under ``root``: train has ImageNet cars with labels and one Pascal car
    without; val has Pascal cars. Returns the mean shape ``S``."""
    rng = np.random.default_rng(seed)
    shape = symmetric_shape(P3D_PERM, rng)
    colours = (("red", "", "sedan"), ("blue", "white", "suv"))
    train = [make_item(f"car_imagenet/n02814533_{i}.JPEG", shape, rng, labels=colours[i % 2])
             for i in range(n_train - 1)]
    train.append(make_item("car_pascal/2008_000001.jpg", shape, rng))
    write_p3d_tree(root, train, "train", mean_shape=shape)
    write_p3d_tree(root, [make_item(f"car_pascal/2009_{i:06d}.jpg", shape, rng) for i in range(n_val)], "val",
                   mean_shape=shape)
    return shape
