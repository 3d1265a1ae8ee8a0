"""Pascal3D+ cars in the layout CMR and convmesh read (the item and its index convention:
:mod:`lmnet.data.cmr_dataset`; the ``.mat`` fields: :mod:`lmnet.data.cmr`).

Layout under a root (convmesh's ``datasets/p3d``)::

    PASCAL3D+_release1.1/Images/<rel_path>  the photographs (car_imagenet/..., car_pascal/...)
    data/car_<split>.mat                    CMR annotations (``images``; rel_path with backslashes)
    data/car_kps.mat                        ``kp_names`` and ``kp_perm_inds`` (1-based mirror permutation)
    sfm/car_<split>.mat                     CMR SfM poses (``sfm_anno``, ``S``, ``conv_tri``)
    p3d_labels.csv                          convmesh's labels: ``#filename,primary,secondary,shape,valid``

Splits: ``train`` (4972 images) and ``val`` (218). Labels are looked up by file name (the last part
of ``rel_path``), as convmesh does: ``labels`` = ids of (shape, primary colour, secondary colour),
each the index of the name among the sorted distinct names of its column; ``class_id`` is the shape
id. An image without a row (every ``car_pascal`` one) has ``class_id`` −1 and labels −1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lmnet.data import cmr
from lmnet.data.cmr_dataset import CmrDataset
from lmnet.errors import CorruptFileError, DataError

SPLITS = ("train", "val")
RELEASE_DIR = "PASCAL3D+_release1.1"
IMAGES_DIR = f"{RELEASE_DIR}/Images"
KPS_FILE = "data/car_kps.mat"
LABELS_FILE = "p3d_labels.csv"
LABELS_HEADER = "#filename,primary,secondary,shape,valid"
#: the 12 Pascal3D+ car keypoints (``kp_names``) and their 1-based mirror permutation (``kp_perm_inds``)
KP_NAMES = ("left_back_trunk", "left_back_wheel", "left_front_light", "left_front_wheel", "right_back_trunk",
            "right_back_wheel", "right_front_light", "right_front_wheel", "upper_left_rearwindow",
            "upper_left_windshield", "upper_right_rearwindow", "upper_right_windshield")
KP_PERM_1BASED = (5, 6, 7, 8, 1, 2, 3, 4, 11, 12, 9, 10)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"Pascal3D+ split {split!r} is not one of {', '.join(SPLITS)}")
    return split


def annotation_path(root: str | Path, split: str) -> Path:
    return Path(root) / "data" / f"car_{check_split(split)}.mat"


def sfm_path(root: str | Path, split: str) -> Path:
    return Path(root) / "sfm" / f"car_{check_split(split)}.mat"


def read_kp_perm(root: str | Path) -> np.ndarray:
    """The 0-based keypoint mirror permutation of ``data/car_kps.mat``."""
    path = Path(root) / KPS_FILE
    value = cmr.load_mat(path, ["kp_perm_inds"])["kp_perm_inds"]
    return cmr.read_permutation(path, value, "kp_perm_inds", one_based=True)


def read_labels(root: str | Path) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """``({file name: int64 [shape, primary, secondary] ids}, {column: sorted names})`` of
    ``p3d_labels.csv`` (module docstring)."""
    path = Path(root) / LABELS_FILE
    lines = cmr.read_text_lines(path)
    if not lines or lines[0].strip() != LABELS_HEADER:
        raise CorruptFileError(path, f"first line must be {LABELS_HEADER!r}, got {(lines or [''])[0][:80]!r}")
    rows = []
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) != 5 or not fields[0]:
            raise CorruptFileError(path, f"line {n}: {line[:80]!r}: expected 5 comma-separated fields")
        rows.append(fields)
    names = {col: sorted({r[k] for r in rows}) for col, k in (("shape", 3), ("primary", 1), ("secondary", 2))}
    ids = {col: {name: i for i, name in enumerate(v)} for col, v in names.items()}
    mapping = {r[0]: np.array([ids["shape"][r[3]], ids["primary"][r[1]], ids["secondary"][r[2]]], np.int64)
               for r in rows}
    return mapping, names


class P3DDataset(CmrDataset):
    """Pascal3D+ cars ``split`` under ``root`` (module docstring), items of ``image_size``², mirrored
    copies with ``mirror`` and the same crop at ``extra_sizes``; items also hold ``labels`` (3,)."""

    backslashes = True

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 256, mirror: bool = False,
                 extra_sizes=()):
        self.root, self.split = Path(root), check_split(split)
        super().__init__(self.root / IMAGES_DIR, annotation_path(root, split), sfm_path(root, split),
                         read_kp_perm(root), image_size=image_size, mirror=mirror, extra_sizes=extra_sizes)
        mapping, self.label_names = read_labels(self.root)
        none = np.full(3, -1, np.int64)
        self.labels = [mapping.get(p.rsplit("/", 1)[-1], none) for p in self.paths]
        self.class_ids = [int(lab[0]) for lab in self.labels]

    def item_extras(self, image_index: int) -> dict:
        return {"labels": torch.from_numpy(self.labels[image_index].copy())}
