"""Synthetic textured birds and cars in the real CUB-200-2011 / Pascal3D+ layouts (``lmnet synth
--format cub|p3d``), with their ground truth kept aside (:mod:`.textured_truth`).

Each photograph shows one object: the UV-sphere template (16 rings for birds, 31 for cars) deformed
by a displacement map (:mod:`.textured_shapes`) and coloured by a class texture
(:mod:`.textured_patterns`), rendered by :mod:`lmnet.render.textured` over a random background at a
random photo size, with its hard mask, bounding box, keypoints and SfM pose, written with
:func:`lmnet.data.cmr_write.write_cub_tree` / :func:`~lmnet.data.cmr_write.write_p3d_tree`.

**Placement and pose convention.** The stored SfM pose (``rot``, ``scale``, ``trans``) places the
object in *continuous pixel coordinates*, in which pixel ``j`` covers ``[j, j + 1)`` (its centre is
``j + 1/2``): a vertex ``v`` lands at ``X = scale · (rot @ v)[:2] + trans``, and the photo is rendered
with NDC ``x = 2 X_x / W − 1``, ``y = 1 − 2 X_y / H`` (y up), which puts pixel centres where the
renderer's convention puts them. That is exactly the mapping the loader applies to a 0-based pixel
coordinate (``2 x / W − 1``), and OpenCV's resize scales these coordinates exactly, so the loader's
NDC pose of the unmirrored crop renders the truth vertices onto the crop's mask
(``transform_vertices(vertices, s, t, q)`` then ``render_textured``). Mirrored items follow CMR's rule
``x ← W − 1 − x``, which moves the pose one crop pixel to the left of the flipped image (the flip maps
``X`` to ``W − X``).

Keypoints are template vertices (:func:`~.textured_shapes.keypoint_vertices`), annotated where the
deformed object puts them (``parts = X + 1``, 1-based), visible when not hidden by the object itself
(depth test against the rendered surface); hidden ones are all zero. The SfM mean shape ``S`` is the
keypoint vertices of the dataset's mean shape (the template deformed by the mean displacement map, no
per-item coefficients), so ``parts − 1 = scale · (rot @ S)[:2] + trans`` holds up to the item's own
deformation (the pose is the true one, not a fit); the keypoint vertices of the item's truth
``vertices`` re-project exactly.

Items are numbered per split; item ``i`` has class ``i mod n_classes``; everything about it derives
from ``numpy.random.default_rng([seed, dataset, split, i])`` and rendering runs single-threaded, so a
seed gives the same files. Resumable: per item, the truth file and then a work file
(``.synth_work/<split>/<i>.npz``) are written atomically; a re-run skips items whose work file
exists, then writes the layouts and marks the folder complete (``.lmnet_synth_cmr.json``).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lmnet import atomic_io
from lmnet.data import cmr_item
from lmnet.data.cmr_write import CmrItem, write_cub_tree, write_p3d_tree
from lmnet.errors import ConfigError, CorruptFileError
from lmnet.quaternions import quaternion_from_matrix
from lmnet.render.textured import face_corners, rasterize, sample_texture, transform_vertices
from lmnet.synthetic.textured_patterns import MAX_CLASSES, PATTERNS, background, class_design, item_texture
from lmnet.synthetic.textured_shapes import (RINGS, displacement_basis, item_displacement, keypoint_vertices,
                                             mean_displacement)
from lmnet.synthetic.textured_truth import read_npz, truth_path, write_npz
from lmnet.uvmesh import pad_for_sampling, uv_sphere_template

__all__ = ["FORMATS", "SPLITS", "MARKER", "Assets", "generate_cmr", "object_rotation", "novel_offsets"]

FORMATS = ("cub", "p3d")
SPLITS = {"cub": ("train", "testval"), "p3d": ("train", "val")}
MARKER = ".lmnet_synth_cmr.json"
WORK_DIR = ".synth_work"
#: Pascal3D+ shape names of the classes, sorted, so the loader's shape id (index among the sorted
#: names) is the class when every class has an item
P3D_SHAPES = ("coupe", "hatchback", "minivan", "pickup", "sedan", "suv", "van", "wagon")
_COLOUR_NAMES = {"black": (0.1, 0.1, 0.1), "white": (0.92, 0.92, 0.92), "gray": (0.5, 0.5, 0.5),
                 "red": (0.8, 0.15, 0.15), "orange": (0.9, 0.55, 0.1), "yellow": (0.9, 0.85, 0.2),
                 "green": (0.2, 0.65, 0.25), "blue": (0.2, 0.3, 0.8), "purple": (0.55, 0.25, 0.7)}
#: photo azimuth (degrees, about the object's up axis), elevation (positive: seen from above), roll
AZIMUTH, ELEVATION, ROLL = (0.0, 360.0), (-10.0, 35.0), (-10.0, 10.0)
#: the object's longest projected side, as a fraction of the photo's shorter side
OBJECT_FRACTION = (0.55, 0.8)
#: camera frame of the object's frame: object y up → image up, object +z → towards the camera
_BASE = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Setting:
    """Everything that decides the files (recorded in the folder's marker)."""

    format: str
    n_train: int
    n_val: int
    n_classes: int
    image_size: tuple
    seed: int
    novel_views: int
    truth_size: int

    def counts(self) -> dict:
        return dict(zip(SPLITS[self.format], (self.n_train, self.n_val)))


class Assets:
    """What every item of a set shares: the template, its faces and UVs, keypoint vertices, the mean
    displacement and its basis, and the SfM mean shape ``S`` (3, K): the keypoint vertices of the
    mean shape (the template deformed by the mean displacement), exactly mirror-symmetric."""

    def __init__(self, fmt: str, seed: int):
        self.template = uv_sphere_template(RINGS[fmt])
        self.faces = self.template.tensor("faces")
        self.uvs = self.template.tensor("uvs")
        self.face_uvs = self.template.tensor("face_uvs")
        self.keypoints = keypoint_vertices(self.template, fmt)
        self.mean = mean_displacement(fmt)
        self.basis = displacement_basis(fmt, seed)
        mean_vertices = self.template.vertex_positions(torch.from_numpy(self.mean.astype(np.float32))[None])[0]
        self.mean_shape = mean_vertices.numpy()[self.keypoints].T.astype(np.float64)


def _rot(axis: int, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def object_rotation(azimuth: float, elevation: float, roll: float) -> np.ndarray:
    """The SfM rotation ``(3, 3)`` of a view (degrees): the object turned by ``azimuth`` about its up
    axis, tilted by ``elevation`` towards the camera (seen from above), rolled in the image plane."""
    return _BASE @ _rot(2, roll) @ _rot(0, elevation) @ _rot(1, azimuth)


def novel_offsets(n: int) -> np.ndarray:
    """``n`` azimuth offsets (degrees) of the truth's novel views: 60° … 180°, alternating sides."""
    mags = np.linspace(60.0, 180.0, n) if n > 1 else np.array([120.0])
    return mags * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


# ----------------------------------------------------------------------------- rendering
def _shade(assets: Assets, v_img: torch.Tensor, texture: np.ndarray, size):
    """Render ``v_img (B, V, 3)`` (NDC, z larger = nearer) with ``texture (3, T, T)`` at ``size`` →
    ``(rgb (B, 3, H, W) in [−1, 1] background 0, mask (B, H, W), depth (B, H, W))`` (hard pass only)."""
    uvs, tex = pad_for_sampling(assets.uvs, torch.from_numpy(texture)[None], symmetric=True)
    face_uvs = uvs[assets.face_uvs][None].expand(v_img.shape[0], -1, -1, -1)
    attributes = torch.cat([face_uvs, face_corners(v_img[..., 2:], assets.faces)], -1)
    hard = rasterize(v_img, assets.faces, attributes, size)
    rgb = sample_texture(tex, hard.values[:, :2], hard.mask)
    return rgb, hard.mask[:, 0], hard.values[:, 2]


def _photo_vertices(vertices: np.ndarray, rot, scale, trans, height: int, width: int) -> torch.Tensor:
    """Object-space ``(V, 3)`` → renderer NDC ``(1, V, 3)`` of a photo (module docstring); z in pixels."""
    p = scale * vertices.astype(np.float64) @ rot.T
    x = 2 * (p[:, 0] + trans[0]) / width - 1
    y = 1 - 2 * (p[:, 1] + trans[1]) / height
    return torch.from_numpy(np.stack([x, y, -p[:, 2]], 1)).float()[None]


def _sample_pose(rng: np.random.Generator, vertices: np.ndarray, height: int, width: int):
    """``(azimuth, elevation, roll, rot, scale, trans (2,))``: a random view with the object inside the photo."""
    az, el, roll = rng.uniform(*AZIMUTH), rng.uniform(*ELEVATION), rng.uniform(*ROLL)
    rot = object_rotation(az, el, roll)
    p = vertices.astype(np.float64) @ rot.T
    lo, hi = p[:, :2].min(0), p[:, :2].max(0)
    scale = rng.uniform(*OBJECT_FRACTION) * min(height, width) / float((hi - lo).max())
    margin = 0.03 * min(height, width) + 2
    trans = np.array([rng.uniform(margin - scale * lo[k], size - margin - scale * hi[k])
                      for k, size in ((0, width), (1, height))])
    return az, el, roll, rot, float(scale), trans


def _keypoints(assets: Assets, vertices, rot, scale, trans, depth: np.ndarray) -> np.ndarray:
    """``parts (3, K)``: 1-based pixel positions of the keypoint vertices and visibility (a keypoint
    is visible when no other surface lies in front of it at its pixel); hidden ones all 0."""
    p = scale * vertices[assets.keypoints].astype(np.float64) @ rot.T
    xy = p[:, :2] + trans
    height, width = depth.shape
    col, row = np.clip(xy[:, 0].astype(int), 0, width - 1), np.clip(xy[:, 1].astype(int), 0, height - 1)
    visible = (-p[:, 2] >= depth[row, col] - 0.05 * scale).astype(np.float64)
    parts = np.vstack([(xy + 1).T, visible])
    parts[:, visible == 0] = 0
    return parts


def _loader_pose(bbox, rot, scale: float, trans, size: int) -> dict:
    """The NDC pose :mod:`lmnet.data.cmr_item` gives the unmirrored crop at ``size`` (float32)."""
    box = cmr_item.square_bbox(np.asarray(bbox, np.float64))
    factor = size / float(box[2] - box[0] + 1)
    t = (np.asarray(trans, np.float64) - np.array(box[:2], np.float64)) * factor
    return {"scale": np.array([scale * factor * 2.0 / size], np.float32),
            "translation": (2 * t / size - 1).astype(np.float32),
            "rotation": quaternion_from_matrix(rot).astype(np.float32)}


def _novel_views(assets: Assets, vertices, texture, pose: dict, view, n: int, size: int):
    """``(novel_rgba (n, 4, S, S), novel_rotation (n, 4))`` at the azimuth offsets :func:`novel_offsets`."""
    az, el, roll = view
    quats = np.stack([quaternion_from_matrix(object_rotation(az + d, el, roll)) for d in novel_offsets(n)])
    quats = torch.from_numpy(quats).float()
    v = torch.from_numpy(vertices).float()[None].expand(n, -1, -1)
    v_img = transform_vertices(v, torch.from_numpy(pose["scale"]).expand(n, 1),
                               torch.from_numpy(pose["translation"])[None].expand(n, 2), quats)
    rgb, mask, _ = _shade(assets, v_img, texture, size)
    return torch.cat([rgb, mask[:, None]], 1).numpy().astype(np.float32), quats.numpy()


# ----------------------------------------------------------------------------- one item
def _rel_path(fmt: str, split: str, index: int, class_id: int) -> str:
    """CUB: ``NNN.Synth_<Pattern>/Synth_<Pattern>_<split>_<index>.jpg``; cars:
    ``car_imagenet/n02814533_<split number><index>.JPEG`` (file names unique across splits)."""
    if fmt == "cub":
        name = "Synth_" + PATTERNS[class_id].title()
        return f"{class_id + 1:03d}.{name}/{name}_{split}_{index:04d}.jpg"
    return f"car_imagenet/n02814533_{SPLITS[fmt].index(split) + 1}{index:05d}.JPEG"


def _colour_name(rgb: np.ndarray) -> str:
    names = list(_COLOUR_NAMES)
    return names[int(np.argmin([np.linalg.norm(rgb - np.array(_COLOUR_NAMES[k])) for k in names]))]


def _labels(setting: Setting, class_id: int):
    """Pascal3D+ ``(primary, secondary, shape)`` of a class; None for CUB."""
    if setting.format != "p3d":
        return None
    palette = class_design(setting.seed, class_id).palette
    return _colour_name(palette[0]), _colour_name(palette[1]), P3D_SHAPES[class_id]


def make_item(assets: Assets, setting: Setting, split: str, index: int) -> tuple[CmrItem, dict]:
    """Photograph ``index`` of ``split`` → ``(its CmrItem, its truth arrays)`` (module docstring)."""
    fmt = setting.format
    rng = np.random.default_rng([setting.seed, FORMATS.index(fmt), SPLITS[fmt].index(split), index])
    class_id = index % setting.n_classes
    disp, _ = item_displacement(assets.mean, assets.basis, rng)
    vertices = assets.template.vertex_positions(torch.from_numpy(disp)[None])[0].numpy()
    texture, palette = item_texture(class_design(setting.seed, class_id), fmt, rng)
    height, width = (int(rng.integers(setting.image_size[0], setting.image_size[1] + 1)) for _ in range(2))
    az, el, roll, rot, scale, trans = _sample_pose(rng, vertices, height, width)
    rgb, mask, depth = _shade(assets, _photo_vertices(vertices, rot, scale, trans, height, width), texture,
                              (height, width))
    mask = mask[0].numpy().astype(np.uint8)
    photo = background(rng, height, width, palette)
    photo = np.where(mask[..., None] > 0, (rgb[0].numpy().transpose(1, 2, 0) + 1) / 2, photo)
    rows, cols = np.nonzero(mask)
    bbox = (int(cols.min()) + 1, int(rows.min()) + 1, int(cols.max()) + 1, int(rows.max()) + 1)
    parts = _keypoints(assets, vertices, rot, scale, trans, depth[0].numpy())
    item = CmrItem(_rel_path(fmt, split, index, class_id), np.round(photo * 255).astype(np.uint8), mask, bbox,
                   parts, rot, scale, trans, class_id=class_id, p3d_labels=_labels(setting, class_id))
    pose = _loader_pose(bbox, rot, scale, trans, setting.truth_size)
    novel_rgba, novel_rotation = _novel_views(assets, vertices, texture, pose, (az, el, roll),
                                              setting.novel_views, setting.truth_size)
    truth = {"texture": texture, "displacement": disp, "vertices": vertices.astype(np.float32),
             "keypoint_vertices": assets.keypoints.astype(np.int64), "class_id": np.int64(class_id), **pose,
             "novel_rotation": novel_rotation, "novel_rgba": novel_rgba}
    return item, truth


_WORK_KEYS = {"image": 3, "mask": 2, "bbox": 1, "parts": 2, "rot": 2, "scale": 0, "trans": 1, "class_id": 0}


def _work_path(out: Path, split: str, index: int) -> Path:
    return out / WORK_DIR / split / f"{index}.npz"


def _write_work(path: Path, item: CmrItem) -> None:
    write_npz(path, {"image": item.image, "mask": item.mask, "bbox": np.asarray(item.bbox, np.float64),
                     "parts": item.parts, "rot": item.rot, "scale": np.float64(item.scale),
                     "trans": np.asarray(item.trans, np.float64), "class_id": np.int64(item.class_id)})


def _read_work(path: Path, setting: Setting, split: str, index: int) -> CmrItem:
    w = read_npz(path, _WORK_KEYS)
    class_id = int(w["class_id"])
    return CmrItem(_rel_path(setting.format, split, index, class_id), w["image"], w["mask"],
                   tuple(float(v) for v in w["bbox"]), w["parts"], w["rot"], float(w["scale"]), w["trans"],
                   class_id=class_id, p3d_labels=_labels(setting, class_id))


# ----------------------------------------------------------------------------- the folder
def _check_setting(setting: Setting) -> None:
    if setting.format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {setting.format!r}")
    lo, hi = setting.image_size
    checks = [("n_train", setting.n_train, 1), ("n_val", setting.n_val, 1), ("n_classes", setting.n_classes, 1),
              ("novel_views", setting.novel_views, 0), ("truth_size", setting.truth_size, 16), ("image_size", lo, 48)]
    for name, value, least in checks:
        if int(value) < least:
            raise ConfigError(f"{name} must be >= {least}, got {value}")
    if setting.n_classes > MAX_CLASSES:
        raise ConfigError(f"n_classes must be <= {MAX_CLASSES} (one pattern kind each), got {setting.n_classes}")
    if hi < lo:
        raise ConfigError(f"image_size must be (smallest, largest) side, got {setting.image_size}")


def _marker_record(setting: Setting, complete: bool) -> dict:
    return {"generator": "lmnet synth cmr", **asdict(setting), "image_size": list(setting.image_size),
            "complete": complete}


def _claim_folder(out: Path, setting: Setting) -> bool:
    """Check that ``out`` may hold this set; returns whether it is already complete. Refused
    (ConfigError): a file, a non-empty folder without this generator's marker, or a set written with
    other settings. A new or empty folder gets the marker (incomplete)."""
    existing = next(p for p in (out, *out.parents) if p.exists() or p.is_symlink())  # "." or "/" at worst
    if not existing.is_dir():
        raise ConfigError(f"--out {out} is a file, expected a folder" if existing == out else
                          f"--out {out} cannot be a folder: {existing} is a file")
    names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    marker = out / MARKER
    if names and not marker.is_file():
        shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
        raise ConfigError(f"--out {out} is not empty and holds no synthetic CUB / Pascal3D+ set (no {MARKER}): "
                          f"it holds {shown}; choose a new or empty folder")
    if not names:
        atomic_io.write_json(marker, _marker_record(setting, False))
        return False
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CorruptFileError(marker, f"unreadable marker ({exc}); delete the folder to start again") from None
    wanted = _marker_record(setting, bool(record.get("complete")))
    differ = [k for k in wanted if k != "complete" and record.get(k) != wanted[k]]
    if differ:
        raise ConfigError(f"--out {out} holds a synthetic set written with other settings "
                          f"({', '.join(f'{k}={record.get(k)!r}' for k in differ)}); choose a new folder")
    return bool(record.get("complete"))


def _write_layout(out: Path, setting: Setting, assets: Assets) -> None:
    """The dataset layout of every split, from the work files; then the folder is marked complete."""
    write = write_cub_tree if setting.format == "cub" else write_p3d_tree
    for split, n in setting.counts().items():
        items = [_read_work(_work_path(out, split, i), setting, split, i) for i in range(n)]
        write(out, items, split, mean_shape=assets.mean_shape)
    atomic_io.write_json(out / MARKER, _marker_record(setting, True))
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)


def generate_cmr(out: str | Path, fmt: str = "cub", n_train: int = 160, n_val: int = 40, n_classes: int = 6,
                 image_size=(120, 200), seed: int = 0, novel_views: int = 4, truth_size: int = 128,
                 progress: bool = True) -> dict:
    """Write a synthetic CUB (``fmt="cub"``: splits train / testval) or Pascal3D+ cars (``"p3d"``:
    train / val) set under ``out`` with ``n_train`` / ``n_val`` photographs of ``n_classes`` classes,
    photo sides drawn in ``image_size`` (smallest, largest), and the truth of every photograph
    (:mod:`.textured_truth`) with ``novel_views`` renders at ``truth_size``. Resumable; refuses a
    folder that is a file, holds something else, or a set of other settings (module docstring).

    Returns ``{"out_dir", "format", "splits": {split: count}, "classes", "generated", "skipped",
    "seconds"}``.
    """
    setting = Setting(fmt, int(n_train), int(n_val), int(n_classes), tuple(int(v) for v in image_size),
                      int(seed), int(novel_views), int(truth_size))
    _check_setting(setting)
    out = Path(out)
    t0 = time.perf_counter()
    total = setting.n_train + setting.n_val
    summary = {"out_dir": str(out), "format": fmt, "splits": setting.counts(), "classes": setting.n_classes}
    if _claim_folder(out, setting):
        return {**summary, "generated": 0, "skipped": total, "seconds": time.perf_counter() - t0}
    assets = Assets(fmt, setting.seed)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="photo", desc=f"synth {fmt}")
    generated, threads = 0, torch.get_num_threads()
    torch.set_num_threads(1)  # single-threaded: the same bytes whatever the machine
    try:
        for split, n in setting.counts().items():
            for i in range(n):
                if not _work_path(out, split, i).is_file():
                    item, truth = make_item(assets, setting, split, i)
                    write_npz(truth_path(out, split, i), truth)
                    _write_work(_work_path(out, split, i), item)
                    generated += 1
                if bar is not None:
                    bar.update(1)
        _write_layout(out, setting, assets)
    finally:
        torch.set_num_threads(threads)
        if bar is not None:
            bar.close()
    return {**summary, "generated": generated, "skipped": total - generated, "seconds": time.perf_counter() - t0}
