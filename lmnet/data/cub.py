"""CUB-200-2011 birds in the layout CMR and convmesh read (the item and its index convention:
:mod:`lmnet.data.cmr_dataset`; the ``.mat`` fields: :mod:`lmnet.data.cmr`).

Layout under a root (convmesh's ``datasets/cub``)::

    CUB_200_2011/images.txt              "<id> <rel_path>", one image a line
    CUB_200_2011/image_class_labels.txt  "<id> <class 1..200>"
    CUB_200_2011/images/<rel_path>       the photographs (JPEG; some grayscale)
    data/<split>_cub_cleaned.mat         CMR annotations (``images``)
    sfm/anno_<split>.mat                 CMR SfM poses (``sfm_anno``, ``S``, ``conv_tri``)

Splits: ``train`` (5964 images) and ``testval`` (5747). The class of an image is its
``image_class_labels.txt`` entry minus 1 (0..199), found through ``images.txt``. The keypoint mirror
permutation is fixed (:data:`KP_PERM`, 15 keypoints).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmnet.data import cmr
from lmnet.data.cmr_dataset import CmrDataset
from lmnet.errors import CorruptFileError, DataError

SPLITS = ("train", "testval")
CUB_DIR = "CUB_200_2011"
IMAGES_TXT = f"{CUB_DIR}/images.txt"
CLASS_LABELS_TXT = f"{CUB_DIR}/image_class_labels.txt"
IMAGES_DIR = f"{CUB_DIR}/images"
N_KEYPOINTS = 15
#: 0-based mirror permutation of the 15 CUB keypoints (left and right eye, leg, wing swap)
KP_PERM = np.array([1, 2, 3, 4, 5, 6, 11, 12, 13, 10, 7, 8, 9, 14, 15]) - 1


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"CUB split {split!r} is not one of {', '.join(SPLITS)}")
    return split


def annotation_path(root: str | Path, split: str) -> Path:
    return Path(root) / "data" / f"{check_split(split)}_cub_cleaned.mat"


def sfm_path(root: str | Path, split: str) -> Path:
    return Path(root) / "sfm" / f"anno_{check_split(split)}.mat"


def read_id_file(path: str | Path) -> dict[str, str]:
    """``{id: value}`` of a CUB ``"<id> <value>"`` text file (``images.txt``, ``image_class_labels.txt``)."""
    path = Path(path)
    lines = cmr.read_text_lines(path)
    out: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, sep, value = line.strip().partition(" ")
        if not sep or not key.isdigit() or not value.strip() or " " in value.strip():
            raise CorruptFileError(path, f"line {n}: {line[:80]!r}: expected '<id> <value>'")
        if key in out:
            raise CorruptFileError(path, f"line {n}: id {key} appears twice")
        out[key] = value.strip()
    return out


def read_classes(root: str | Path) -> dict[str, int]:
    """``{rel_path: class 0..199}`` from ``images.txt`` and ``image_class_labels.txt``."""
    root = Path(root)
    images, labels = read_id_file(root / IMAGES_TXT), read_id_file(root / CLASS_LABELS_TXT)
    out = {}
    for key, rel in images.items():
        label = labels.get(key)
        if label is None:
            raise DataError(f"{root / CLASS_LABELS_TXT}: no class for image id {key} ({rel}) of {root / IMAGES_TXT}")
        if not label.isdigit() or int(label) < 1:
            raise CorruptFileError(root / CLASS_LABELS_TXT, f"id {key}: class {label!r} is not a number >= 1")
        out[rel] = int(label) - 1
    return out


class CUBDataset(CmrDataset):
    """CUB-200-2011 ``split`` under ``root`` (module docstring), items of ``image_size``² (convmesh:
    256), mirrored copies with ``mirror`` and the same crop at ``extra_sizes``."""

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 256, mirror: bool = False,
                 extra_sizes=()):
        self.root, self.split = Path(root), check_split(split)
        super().__init__(self.root / IMAGES_DIR, annotation_path(root, split), sfm_path(root, split), KP_PERM,
                         image_size=image_size, mirror=mirror, extra_sizes=extra_sizes)
        classes = read_classes(self.root)
        missing = [p for p in self.paths if p not in classes]
        if missing:
            raise DataError(f"{self.root / IMAGES_TXT}: {len(missing)} image(s) of {self.anno_path} are not listed, "
                            f"e.g. {missing[0]!r}")
        self.class_ids = [classes[p] for p in self.paths]
