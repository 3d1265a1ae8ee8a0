"""CUB-200-2011 / Pascal3D+ health check behind ``lmnet check-data --dataset cub|p3d``: every bad
file or ``.mat`` struct field, by name.

Per dataset: CUB's ``images.txt`` and ``image_class_labels.txt``; Pascal3D+'s ``data/car_kps.mat``
(a permutation ``kp_perm_inds``) and ``p3d_labels.csv``. Per split: the annotation and SfM files
load, hold as many entries as each other, and every entry's fields are present and well formed
(:mod:`lmnet.data.cmr`: ``rel_path``, ``bbox`` overlapping the image, ``parts`` 3×K, a 0/1
``mask``; ``rot``, ``scale``, ``trans``). For each image: its ``rel_path`` stays inside the images
folder, the file exists and (unless ``images=False``) decodes with the mask's size, and (CUB) it is
listed in ``images.txt`` with a class. An image is *usable* when none of this fails for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from lmnet.data import cmr, cmr_item, cub, p3d
from lmnet.data.check import problem_lines
from lmnet.data.paths import resolve_inside
from lmnet.errors import DataError

DATASETS = {"cub": cub, "p3d": p3d}


@dataclass
class CmrReport:
    dataset: str
    root: str
    splits: dict[str, dict[str, int]] = field(default_factory=dict)  #: split → {"images", "usable"}
    problems: list[str] = field(default_factory=list)                 #: "<file>: <field>: <reason>"

    @property
    def ok(self) -> bool:
        return not self.problems and sum(s["usable"] for s in self.splits.values()) > 0

    def table(self, max_problems: int = 200) -> str:
        name = {"cub": "CUB-200-2011", "p3d": "Pascal3D+ cars"}[self.dataset]
        lines = [f"{name} at {self.root}", "| split | images | usable |", "|---|---:|---:|"]
        lines += [f"| {s} | {c['images']} | {c['usable']} |" for s, c in self.splits.items()]
        return "\n".join(lines + problem_lines(self.problems, max_problems))

    def to_dict(self) -> dict:
        return asdict(self)


def _guard(report: CmrReport, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None with the error's line added to the report's problems."""
    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        report.problems.append(str(exc))
        return None


def _entries(report: CmrReport, path: Path, var: str) -> list | None:
    data = _guard(report, cmr.load_mat, path, [var])
    return None if data is None else _guard(report, cmr.struct_entries, path, data[var], var)


def _check_image(report: CmrReport, ds, anno_path: Path, i: int, anno: cmr.Annotation, images: bool,
                 classes: dict | None) -> bool:
    """The checks of one parsed entry that need the files; True when all pass."""
    field_name = f"{cmr.ANNOTATION_VAR}[{i}].rel_path"
    path = _guard(report, resolve_inside, Path(report.root) / ds.IMAGES_DIR, anno.rel_path, source=anno_path,
                  field=field_name, backslashes=ds is p3d)
    if path is None:
        return False
    if not path.is_file():
        report.problems.append(f"{path}: missing image ({anno_path}: {field_name})")
        return False
    if images and _guard(report, cmr_item.read_photo, path, anno.mask.shape) is None:
        return False
    if classes is not None and anno.rel_path not in classes:
        report.problems.append(f"{Path(report.root) / cub.IMAGES_TXT}: does not list {anno.rel_path!r} "
                               f"({anno_path}: {field_name}), so it has no class")
        return False
    return True


def _check_split(report: CmrReport, ds, split: str, n_keypoints: int, images: bool, classes: dict | None) -> None:
    anno_path, sfm_path = ds.annotation_path(report.root, split), ds.sfm_path(report.root, split)
    counts = report.splits.setdefault(split, {"images": 0, "usable": 0})
    entries, sfm = _entries(report, anno_path, cmr.ANNOTATION_VAR), _entries(report, sfm_path, cmr.SFM_VAR)
    if entries is None:
        return
    counts["images"] = len(entries)
    if sfm is not None:
        _guard(report, cmr.check_counts, anno_path, len(entries), sfm_path, len(sfm))
    for i, entry in enumerate(entries):
        good_pose = sfm is not None and i < len(sfm) and _guard(report, cmr.parse_sfm, sfm_path, sfm[i], i) is not None
        anno = _guard(report, cmr.parse_annotation, anno_path, entry, i, n_keypoints)
        if anno is not None and _check_image(report, ds, anno_path, i, anno, images, classes) and good_pose:
            counts["usable"] += 1


def _dataset_files(report: CmrReport, ds) -> tuple[int, dict | None]:
    """``(number of keypoints, CUB classes by rel_path; None for Pascal3D+ or an unreadable list)``
    from the dataset-level files."""
    if ds is cub:
        return cub.N_KEYPOINTS, _guard(report, cub.read_classes, report.root)  # None: already a problem
    perm = _guard(report, p3d.read_kp_perm, report.root)
    _guard(report, p3d.read_labels, report.root)
    return (len(perm) if perm is not None else len(p3d.KP_NAMES)), None


def check_cmr(root: str | Path, dataset: str, splits: Sequence[str] | None = None, images: bool = True) -> CmrReport:
    """Check ``splits`` (default: all of the dataset's) of a ``dataset`` (``cub`` or ``p3d``) tree
    under ``root``; ``images=False`` checks that the photographs exist without decoding them."""
    if dataset not in DATASETS:
        raise DataError(f"dataset {dataset!r} is not one of {', '.join(DATASETS)}")
    ds = DATASETS[dataset]
    report = CmrReport(dataset=dataset, root=str(root))
    wanted = list(splits) if splits else list(ds.SPLITS)
    for s in wanted:
        ds.check_split(s)
    n_keypoints, classes = _dataset_files(report, ds)
    for split in wanted:
        _check_split(report, ds, split, n_keypoints, images, classes)
    return report

