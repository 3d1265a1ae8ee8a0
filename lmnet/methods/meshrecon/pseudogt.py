"""Pseudo-ground-truth generation (convmesh's ``--generate_pseudogt``): one file per training image.

For every image of a dataset, in order and without augmentation, the method's ``predict`` gives the
texture, the displacement map and the posed mesh; :func:`lmnet.render.uv_projection.pseudo_ground_truth`
projects the photograph into UV space where the mesh is visible. Written (``R`` = ``resolution``)::

    <out_dir>/pseudogt_<R>x<R>/<index>.npz   mesh, texture, texture_alpha, image (lmnet.data.cmr_cache)
    <out_dir>/pseudogt_<R>x<R>.json          what generated them (the folder's marker, written first)
    <out_dir>/poses_metadata.npz             the dataset's poses and paths (written last)

The folder (:mod:`lmnet.runs.guard`): a missing or empty ``out_dir`` is created; one that holds
anything but a convmesh cache (``poses_metadata.npz``, ``pseudogt_*``, ``precomputed_fid_*.npz``,
``captions``) is refused, and so is a ``pseudogt_<R>x<R>/`` without its marker, a marker written
with other settings (resolution, render_size, image_size, template, the dataset's paths, ``source``)
and a ``poses_metadata.npz`` of another dataset. The folder's lock is held while writing.

Resuming: every file is written atomically, so a killed run leaves complete ``<index>.npz`` files;
running again keeps those that read back with the expected shapes, removes the killed run's
temporaries and generates the rest (it reads every image again, for its pose, but predicts and
renders only the missing ones). ``poses_metadata.npz`` is written once all images are done.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from lmnet import atomic_io
from lmnet.data import cmr_cache
from lmnet.errors import ConfigError, CorruptFileError, NonFiniteError
from lmnet.render.uv_projection import pseudo_ground_truth
from lmnet.runs import guard
from lmnet.uvmesh import UVSphereTemplate

__all__ = ["generate_pseudogt", "marker_path"]

#: what a convmesh cache folder may hold besides this generator's outputs
_CACHE_NAME = re.compile(r"^(poses_metadata\.npz|pseudogt_\d+x\d+(\.json)?|precomputed_fid_[\w.-]+\.npz|captions"
                         r"|\.[^/]+\.tmp)$")
_ITEM_NAME = re.compile(r"^(\d+)\.npz$")
_TEMPORARY = re.compile(r"^\..+\.tmp$")

Predict = Callable[[dict], tuple]


def marker_path(out_dir: str | Path, resolution: int) -> Path:
    """``<out_dir>/pseudogt_<R>x<R>.json``: the settings the folder's pseudo-GT was generated with."""
    return Path(out_dir) / f"{cmr_cache.pseudogt_dir(out_dir, resolution).name}.json"


def _positive(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _check_dataset(dataset, image_size: int, render_size: int) -> None:
    """ConfigError unless ``dataset`` is a CMR dataset opened with mirror=False and both extra sizes."""
    if not all(hasattr(dataset, a) for a in ("mirror", "extra_sizes", "paths", "num_images")):
        raise ConfigError(f"dataset must be a CUB or Pascal3D+ dataset (lmnet.data.cmr_dataset.CmrDataset), "
                          f"got {type(dataset).__name__}")
    if dataset.mirror:
        raise ConfigError("dataset must be opened with mirror=False: the pseudo-ground-truth has one file per image")
    missing = [s for s in (image_size, render_size) if s not in dataset.extra_sizes]
    if missing:
        raise ConfigError(f"dataset must be opened with extra_sizes=({image_size}, {render_size}) (image_size, "
                          f"render_size); it has {tuple(dataset.extra_sizes)}, without {missing[0]}")


def _settings(dataset, template: UVSphereTemplate, resolution: int, render_size: int, image_size: int,
              source) -> dict:
    """The marker's content: everything the files depend on that can be recorded."""
    paths = "\n".join(dataset.paths).encode("utf-8")
    return {"kind": "pseudogt", "resolution": resolution, "render_size": render_size, "image_size": image_size,
            "template_rings": int(template.rings), "images": int(dataset.num_images),
            "paths_sha256": hashlib.sha256(paths).hexdigest(), "source": None if source is None else str(source)}


def _check_folder(out_dir: Path, settings: dict, paths: list[str]) -> None:
    """Refuse a folder that is not this generation's (module docstring); nothing is deleted."""
    foreign = [n for n in guard.entries(out_dir) if not _CACHE_NAME.match(n)]
    if foreign:
        raise ConfigError(f"out_dir {out_dir} holds {guard.listing(foreign)}, which is not a pseudo-ground-truth "
                          "cache: choose a new or empty folder")
    resolution = settings["resolution"]
    marker, items = marker_path(out_dir, resolution), cmr_cache.pseudogt_dir(out_dir, resolution)
    if marker.is_file():
        recorded = _read_marker(marker)
        changed = [k for k in settings if recorded.get(k) != settings[k]]
        if changed:
            k = changed[0]
            raise ConfigError(f"{marker} records {k}={recorded.get(k)!r}, this run has {k}={settings[k]!r}: its "
                              f"files would be mixed; choose another out_dir or delete {items} and {marker}")
    elif guard.entries(items):
        raise ConfigError(f"{items} is not empty and has no {marker.name}: not written by this generator; choose "
                          "another out_dir")
    extra = [n for n in guard.entries(items) if not _ITEM_NAME.match(n) and not _TEMPORARY.match(n)]
    if extra:
        raise ConfigError(f"{items} holds {guard.listing(extra)}, which this generator does not write; choose "
                          "another out_dir")
    poses = out_dir / cmr_cache.POSES_FILE
    if poses.is_file() and cmr_cache.read_poses_metadata(poses)["path"] != paths:
        raise ConfigError(f"{poses} lists the images of another dataset; choose another out_dir")


def _read_marker(path: Path) -> dict:
    """A marker file's object; CorruptFileError when it is not a JSON object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(path, f"cannot be read as JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CorruptFileError(path, f"expected a JSON object, got {type(value).__name__}")
    return value


def _kept_items(items: Path, resolution: int, image_size: int, count: int) -> set[int]:
    """The complete ``<index>.npz`` files of an earlier run: those that read back with the expected
    texture and image sizes. The killed run's temporaries are removed; other files stay (and are
    regenerated)."""
    kept = set()
    for name in guard.entries(items):
        if _TEMPORARY.match(name):
            (items / name).unlink()
            continue
        index = int(_ITEM_NAME.match(name).group(1))
        try:
            entries = cmr_cache.read_pseudogt(items / name)
        except CorruptFileError:
            continue
        if index < count and entries["texture"].shape[1] == resolution and \
                tuple(entries["image"].shape[1:]) == (image_size, image_size):
            kept.add(index)
    return kept


def _check_prediction(batch: dict, texture, displacement, vertices_img, num_vertices: int) -> None:
    """ValueError for outputs of ``predict`` of the wrong shape (a bug of the method), NonFiniteError
    naming the image for NaN or infinite values."""
    b = len(batch["index"])
    ok = (texture.dim() == 4 and texture.shape[:2] == (b, 3) and texture.shape[2] == texture.shape[3]
          and displacement.dim() == 4 and displacement.shape[:2] == (b, 3)
          and tuple(vertices_img.shape) == (b, num_vertices, 3))
    if not ok:
        raise ValueError(f"predict must return texture ({b}, 3, T, T), displacement ({b}, 3, M, M) and "
                         f"vertices_img ({b}, {num_vertices}, 3); got {tuple(texture.shape)}, "
                         f"{tuple(displacement.shape)}, {tuple(vertices_img.shape)}")
    for name, t in (("texture", texture), ("displacement", displacement), ("vertices", vertices_img)):
        bad = ~torch.isfinite(t.reshape(b, -1)).all(1)
        if bad.any():
            path = batch["path"][int(bad.nonzero()[0])]
            raise NonFiniteError(f"predict gave NaN or infinite {name} for {path}: are its weights finite?")


def _write_batch(predict: Predict, batch: dict, out_dir: Path, template: UVSphereTemplate, sizes: dict) -> None:
    """Predict, project and write the pseudo-GT of every item of ``batch``."""
    with torch.no_grad():
        texture, displacement, vertices_img = (t.detach() for t in predict(batch))
    _check_prediction(batch, texture, displacement, vertices_img, template.num_vertices)
    image_hd = batch[f"image_{sizes['render_size']}"].to(device=vertices_img.device, dtype=vertices_img.dtype)
    uv, alpha = pseudo_ground_truth(vertices_img, template, texture, image_hd, resolution=sizes["resolution"],
                                    render_size=sizes["render_size"])
    image = batch[f"image_{sizes['image_size']}"]
    for k, index in enumerate(batch["index"].tolist()):
        cmr_cache.write_pseudogt(cmr_cache.pseudogt_path(out_dir, sizes["resolution"], index), displacement[k],
                                 uv[k].clamp(-1, 1), alpha[k], image[k])


def _progress_bar(total: int, enabled: bool):
    return tqdm(total=total, desc="pseudo-GT", unit="image", disable=not enabled or total < 2, leave=False,
                file=sys.stderr)


def _generate(predict: Predict, dataset, out_dir: Path, template: UVSphereTemplate, sizes: dict, batch_size: int,
              progress: bool) -> dict:
    """The locked part of :func:`generate_pseudogt`: every missing file, then ``poses_metadata.npz``."""
    items = cmr_cache.pseudogt_dir(out_dir, sizes["resolution"])
    kept = _kept_items(items, sizes["resolution"], sizes["image_size"], dataset.num_images)
    items.mkdir(parents=True, exist_ok=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    poses = {k: [] for k in ("scale", "translation", "rotation")}
    written = 0
    with _progress_bar(dataset.num_images, progress) as bar:
        for batch in loader:
            for key, rows in poses.items():
                rows.append(batch[key])
            todo = [k for k, i in enumerate(batch["index"].tolist()) if i not in kept]
            if todo:
                _write_batch(predict, _select(batch, todo), out_dir, template, sizes)
            written += len(todo)
            bar.update(len(batch["index"]))
    pose_path = out_dir / cmr_cache.POSES_FILE
    cmr_cache.write_poses_metadata(pose_path, *(torch.cat(poses[k]) for k in ("scale", "translation", "rotation")),
                                   dataset.paths)
    return {"out_dir": str(out_dir), "pseudogt_dir": str(items), "poses": str(pose_path),
            "images": dataset.num_images, "written": written, "kept": len(kept), **sizes}


def _select(batch: dict, rows: list[int]) -> dict:
    """The items ``rows`` of a collated batch (tensors indexed, lists picked)."""
    if len(rows) == len(batch["index"]):
        return batch
    index = torch.tensor(rows)
    return {k: v[index] if isinstance(v, torch.Tensor) else [v[r] for r in rows] for k, v in batch.items()}


def generate_pseudogt(predict: Predict, dataset, out_dir: str | Path, *, template: UVSphereTemplate,
                      resolution: int = 512, render_size: int = 1024, image_size: int = 299, batch_size: int = 8,
                      progress: bool = True, source: str | None = None) -> dict:
    """Write the pseudo-ground-truth of every image of ``dataset`` into ``out_dir`` (module docstring).

    Args:
        predict: ``batch (a collated dict of dataset items) → (texture (B, 3, T, T) full and
            symmetrised, in [-1, 1]; displacement (B, 3, 32, 32); vertices_img (B, V, 3) in image
            space, the pose and any learned pose offsets applied)``; called without autograd.
        dataset: a :class:`lmnet.data.cmr_dataset.CmrDataset` opened with ``mirror=False`` and
            ``extra_sizes=(image_size, render_size)``.
        out_dir: the cache folder (convmesh: ``cache/<dataset>``).
        template: the UV-sphere template the mesh deforms (CUB: ``uv_sphere_template(16)``).
        resolution: side ``R`` of the stored texture (convmesh: 512).
        render_size: side of the photograph projected and of the visibility render (convmesh: 1024).
        image_size: side of the stored ``image`` (convmesh: 299, Inception's input).
        batch_size: images per ``predict`` call.
        progress: show a progress bar on stderr.
        source: what made the predictions (e.g. the run folder); recorded in the marker, and a
            resumed run must give the same.
    Returns:
        ``{"out_dir", "pseudogt_dir", "poses", "images", "written", "kept", "resolution",
        "render_size", "image_size"}``: ``written`` files made by this call, ``kept`` from an earlier one.
    """
    sizes = {"resolution": _positive("resolution", resolution), "image_size": _positive("image_size", image_size),
             "render_size": _positive("render_size", render_size, minimum=8)}
    _positive("batch_size", batch_size)
    if not isinstance(template, UVSphereTemplate):
        raise ConfigError(f"template must be a UV-sphere template (lmnet.uvmesh.uv_sphere_template), got "
                          f"{type(template).__name__}")
    _check_dataset(dataset, image_size, render_size)
    out_dir = guard.require_folder_path(out_dir, "out_dir")
    settings = _settings(dataset, template, resolution, render_size, image_size, source)
    with guard.lock_folder(out_dir, "out_dir", "lmnet pseudo-ground-truth"):
        _check_folder(out_dir, settings, list(dataset.paths))
        marker = marker_path(out_dir, resolution)
        if not marker.is_file():
            atomic_io.write_json(marker, settings)
        return _generate(predict, dataset, out_dir, template, sizes, batch_size, progress)
